//! Attribute definitions (RFC 7643 §2, §7) parsed once from the bundled schema files, and
//! the lookup of one attribute by resource type and (possibly URN-qualified) name.

use std::collections::HashMap;
use std::sync::OnceLock;

use rustc_hash::FxBuildHasher;

use serde::Deserialize;
use serde_json::Value;

use super::{resource_type_def, ResourceTypeDef};

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    #[default]
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

/// When a client may write an attribute (RFC 7643 §7, "mutability").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// When an attribute is returned (RFC 7643 §7, "returned").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
    Request,
}

/// How unique a value must be (RFC 7643 §7, "uniqueness").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    #[default]
    None,
    Server,
    Global,
}

/// One attribute definition; absent properties take the defaults of RFC 7643 §7.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDef {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: AttrType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    #[serde(default)]
    pub uniqueness: Uniqueness,
    #[serde(default)]
    pub canonical_values: Vec<String>,
    #[serde(default)]
    pub reference_types: Vec<String>,
    #[serde(default)]
    pub sub_attributes: Vec<AttributeDef>,
    #[serde(skip)]
    subs_by_name: ByName,
}

impl AttributeDef {
    /// Attribute names are case-insensitive (RFC 7643 §2.1).
    pub fn sub_attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.subs_by_name.find(&self.sub_attributes, name)
    }
}

/// A schema: its URN and its attributes (RFC 7643 §7).
#[derive(Clone, Debug, Deserialize)]
pub struct SchemaDef {
    pub id: String,
    /// OPTIONAL (RFC 7643 §7).
    #[serde(default)]
    pub name: String,
    pub attributes: Vec<AttributeDef>,
    #[serde(skip)]
    by_name: ByName,
}

impl SchemaDef {
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.by_name.find(&self.attributes, name)
    }

    /// A top-level attribute of a resource whose core schema this is, by its name alone (no
    /// URN, no sub-attribute), case-insensitive: a common one (RFC 7643 §3.1) or this
    /// schema's own.
    pub fn top_level(&self, name: &str) -> Option<&AttributeDef> {
        let common = &registry().common;
        common.attribute(name).or_else(|| self.attribute(name))
    }
}

/// A list of attributes by their names, built the first time a name is looked up in it: a
/// resource is checked, coerced and judged name by name, several times on its way, and a
/// User has twenty-odd attributes to compare each name with. Names are case-insensitive, but
/// nearly every document spells them as the schema does, so that spelling is tried first.
#[derive(Clone, Debug, Default)]
struct ByName(OnceLock<HashMap<Box<[u8]>, usize, FxBuildHasher>>);

impl ByName {
    /// Up to this many attributes, comparing the name with each costs less than hashing it.
    const SCAN: usize = 6;
    /// The longest name hashed in lowercase; no attribute name is near it.
    const LONGEST: usize = 64;

    fn find<'a>(&self, attrs: &'a [AttributeDef], name: &str) -> Option<&'a AttributeDef> {
        let any_case = || attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name));
        if attrs.len() <= Self::SCAN {
            return attrs.iter().find(|a| a.name == name).or_else(any_case);
        }
        // Each name as the schema spells it and in lowercase; where two names differ only by
        // case, the first wins, as a scan finds it.
        let index = self.0.get_or_init(|| {
            let mut index = HashMap::default();
            for (i, a) in attrs.iter().enumerate().rev() {
                index.insert(a.name.as_bytes().into(), i);
                index.insert(a.name.to_ascii_lowercase().into_bytes().into(), i);
            }
            index
        });
        if let Some(&i) = index.get(name.as_bytes()) {
            return Some(&attrs[i]);
        }
        if name.len() > Self::LONGEST {
            return any_case();
        }
        let mut buf = [0u8; Self::LONGEST];
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        index.get(&*lower).map(|&i| &attrs[i])
    }
}

struct Registry {
    /// The published schemas, in the order `/Schemas` lists them, with their JSON text parsed.
    published: Vec<(SchemaDef, Value)>,
    /// The common attributes of RFC 7643 §3.1 (id, externalId, meta, schemas).
    common: SchemaDef,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        published: vec![
            load(include_str!("../schemas/user.json")),
            load(include_str!("../schemas/group.json")),
            load(include_str!("../schemas/enterprise_user.json")),
            // RFC 7643 §8.7.2: the discovery resources describe themselves too.
            load(include_str!("../schemas/service_provider_config.json")),
            load(include_str!("../schemas/resource_type.json")),
            load(include_str!("../schemas/schema.json")),
        ],
        common: load(include_str!("../schemas/common.json")).0,
    })
}

fn load(text: &str) -> (SchemaDef, Value) {
    let value: Value = serde_json::from_str(text).expect("bundled schema files are valid JSON");
    let def = SchemaDef::deserialize(&value).expect("bundled schema files match SchemaDef");
    (def, value)
}

/// The definition of a published schema, by URN (case-insensitive).
pub fn schema_def(urn: &str) -> Option<&'static SchemaDef> {
    // The exact URN first: it is what nearly every caller has, and compares as memory.
    let published = &registry().published;
    let found = published.iter().find(|(d, _)| d.id == urn).or_else(|| {
        published
            .iter()
            .find(|(d, _)| d.id.eq_ignore_ascii_case(urn))
    });
    found.map(|(d, _)| d)
}

/// The common attributes every resource has (RFC 7643 §3.1).
pub fn common_attributes() -> &'static [AttributeDef] {
    &registry().common.attributes
}

/// Looks up an attribute of a resource type: `userName`, `name.givenName`, `meta.created`,
/// or URN-qualified (`urn:…:enterprise:2.0:User:manager.value`), all case-insensitive.
/// Extension attributes must carry their URN (RFC 7644 §3.10).
pub fn attribute(resource_type: &str, path: &str) -> Option<&'static AttributeDef> {
    attribute_in(resource_type_def(resource_type)?, &[path])
}

/// The longest path looked up: a longer one names no attribute (the longest bundled path,
/// `urn:…:enterprise:2.0:User:manager.displayName`, is 78 bytes).
const MAX_PATH: usize = 128;

/// As [`attribute`], for a path given as the pieces it is written in, one after another
/// (`[urn, ":", name, ".", sub]`), so that a parsed path is looked up without being
/// formatted first.
pub fn attribute_in(rt: &ResourceTypeDef, pieces: &[&str]) -> Option<&'static AttributeDef> {
    let mut buf = [0u8; MAX_PATH];
    let mut len = 0;
    for piece in pieces {
        buf.get_mut(len..len + piece.len())?
            .copy_from_slice(piece.as_bytes());
        len += piece.len();
    }
    let path = &mut buf[..len];
    path.make_ascii_lowercase();
    // A core attribute is known by its name alone, an extension's by its URN and name.
    let core = rt.schema.as_bytes();
    let key = match path.get(..core.len()) {
        Some(head) if head.eq_ignore_ascii_case(core) && path.get(core.len()) == Some(&b':') => {
            &path[core.len() + 1..]
        }
        _ => path,
    };
    index_of(rt)?.get(key).copied()
}

/// One resource type's attributes, each with its sub-attributes, by their path in ASCII
/// lowercase: `name`, `name.givenname`, `urn:…:enterprise:2.0:user:manager.value`. The
/// common attributes win when a name is in both (as `top_level` has them).
type Index = HashMap<Box<[u8]>, &'static AttributeDef, FxBuildHasher>;

fn index_of(rt: &ResourceTypeDef) -> Option<&'static Index> {
    static INDEX: OnceLock<Vec<(&'static str, Index)>> = OnceLock::new();
    let all = INDEX.get_or_init(|| {
        super::RESOURCE_TYPES
            .iter()
            .map(|rt| (rt.name, build_index(rt)))
            .collect()
    });
    all.iter()
        .find(|(name, _)| *name == rt.name)
        .map(|(_, i)| i)
}

fn build_index(rt: &ResourceTypeDef) -> Index {
    let mut index = Index::default();
    let mut add = |prefix: &str, attrs: &'static [AttributeDef]| {
        for def in attrs {
            let name = format!("{prefix}{}", def.name).to_ascii_lowercase();
            for sub in &def.sub_attributes {
                let path = format!("{name}.{}", sub.name).to_ascii_lowercase();
                index.entry(path.into_bytes().into()).or_insert(sub);
            }
            index.entry(name.into_bytes().into()).or_insert(def);
        }
    };
    add("", common_attributes());
    if let Some(core) = schema_def(rt.schema) {
        add("", &core.attributes);
    }
    for urn in rt.extensions {
        if let Some(ext) = schema_def(urn) {
            add(&format!("{urn}:"), &ext.attributes);
        }
    }
    index
}

/// Splits a schema URN prefix off an attribute path (RFC 7644 §3.10), if it names one of the
/// resource type's schemas.
pub fn split_urn<'p>(rt: &ResourceTypeDef, path: &'p str) -> (Option<&'static str>, &'p str) {
    for urn in std::iter::once(&rt.schema).chain(rt.extensions) {
        let prefix = path
            .get(..urn.len())
            .filter(|p| p.eq_ignore_ascii_case(urn));
        if let Some(rest) = prefix.and_then(|_| path[urn.len()..].strip_prefix(':')) {
            return (Some(urn), rest);
        }
    }
    (None, path)
}

/// The published schemas with their documents, in the order `/Schemas` lists them.
pub(super) fn published() -> &'static [(SchemaDef, Value)] {
    &registry().published
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::urn;

    #[test]
    fn user_name_is_server_unique_and_case_insensitive() {
        let a = attribute("User", "userName").expect("userName");
        assert_eq!(
            (a.kind, a.required, a.case_exact),
            (AttrType::String, true, false)
        );
        assert_eq!(a.uniqueness, Uniqueness::Server);
    }

    #[test]
    fn names_and_resource_types_match_case_insensitively() {
        assert!(attribute("user", "USERNAME").is_some());
        let given = attribute("User", "Name.GivenName").expect("sub-attribute");
        assert_eq!(given.name, "givenName");
    }

    /// The first of `attrs` named `name` in any case, compared one by one.
    fn scan<'a>(attrs: &'a [AttributeDef], name: &str) -> Option<&'a AttributeDef> {
        attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The lookup as it was before any index: a scan of the common, core or extension
    /// attributes, then of the sub-attributes.
    fn by_scan(resource_type: &str, path: &str) -> Option<&'static AttributeDef> {
        let rt = resource_type_def(resource_type)?;
        let (schema, rest) = split_urn(rt, path);
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (rest, None),
        };
        let top = match schema {
            Some(urn) if urn != rt.schema => scan(&schema_def(urn)?.attributes, name),
            _ => scan(common_attributes(), name)
                .or_else(|| scan(&schema_def(rt.schema)?.attributes, name)),
        }?;
        match sub {
            Some(sub) => scan(&top.sub_attributes, sub),
            None => Some(top),
        }
    }

    #[test]
    fn a_schema_finds_by_name_what_a_scan_finds_in_any_case() {
        let same = |a: Option<&AttributeDef>, b: Option<&AttributeDef>| {
            a.map(|a| a as *const AttributeDef) == b.map(|b| b as *const AttributeDef)
        };
        let mut looked_up = 0;
        for (schema, _) in published() {
            let mut names: Vec<String> = vec![String::new(), "x".repeat(65), "nosuch".into()];
            for def in &schema.attributes {
                let lower = def.name.to_ascii_lowercase();
                names.extend([
                    def.name.clone(),
                    def.name.to_ascii_uppercase(),
                    lower.clone(),
                ]);
                names.push(lower + "x");
                for sub in ["", "value", "VALUE", "formatted", "nosuch"]
                    .into_iter()
                    .chain(def.sub_attributes.iter().map(|s| s.name.as_str()))
                {
                    let found = def.sub_attribute(sub);
                    assert!(
                        same(found, scan(&def.sub_attributes, sub)),
                        "{}.{sub}",
                        def.name
                    );
                    for other in [sub.to_ascii_uppercase(), sub.to_ascii_lowercase()] {
                        assert!(
                            same(def.sub_attribute(&other), found),
                            "{}.{other}",
                            def.name
                        );
                    }
                    looked_up += 1;
                }
            }
            for name in &names {
                let found = schema.attribute(name);
                assert!(
                    same(found, scan(&schema.attributes, name)),
                    "{} {name}",
                    schema.id
                );
                looked_up += 1;
            }
        }
        // Lists long enough to be hashed were among them (a User has twenty-odd attributes).
        assert!(published()
            .iter()
            .any(|(s, _)| s.attributes.len() > ByName::SCAN));
        assert!(looked_up > 300);
    }

    #[test]
    fn the_index_finds_what_a_scan_finds_in_any_case() {
        let mut paths = vec![
            String::new(),
            "urn:".into(),
            format!("{}:", urn::USER),
            urn::ENTERPRISE_USER.into(),
            "name.givenName.extra".into(),
            "emails[type eq \"work\"]".into(),
            "x".repeat(300),
        ];
        for rt in super::super::RESOURCE_TYPES {
            for urn in std::iter::once(rt.schema).chain(rt.extensions.iter().copied()) {
                let attrs = schema_def(urn).expect("bundled").attributes.iter();
                for def in attrs.chain(common_attributes()) {
                    let mut names = vec![def.name.clone()];
                    names.extend(
                        def.sub_attributes
                            .iter()
                            .map(|s| format!("{}.{}", def.name, s.name)),
                    );
                    for name in names {
                        paths.push(format!("{urn}:{name}"));
                        paths.push(name.to_ascii_uppercase());
                        paths.push(name);
                    }
                }
            }
        }
        for rt in ["User", "Group", "user"] {
            for path in &paths {
                let found = attribute(rt, path).map(|a| a as *const AttributeDef);
                let scanned = by_scan(rt, path).map(|a| a as *const AttributeDef);
                assert_eq!(found, scanned, "{rt} {path}");
                if let Ok(parsed) = crate::scim::path::AttrPath::parse(path) {
                    let info = super::super::SchemaInfo::new(resource_type_def(rt).expect("known"));
                    let by_parts = info.def(&parsed).map(|a| a as *const AttributeDef);
                    assert_eq!(by_parts, scanned, "{rt} {path} in parts");
                }
            }
        }
        assert!(paths.len() > 200);
    }

    #[test]
    fn common_attributes_are_found_for_every_type() {
        let id = attribute("Group", "id").expect("id");
        assert_eq!(
            (id.mutability, id.returned, id.case_exact),
            (Mutability::ReadOnly, Returned::Always, true)
        );
        assert_eq!(
            attribute("User", "meta.lastModified").map(|a| a.kind),
            Some(AttrType::DateTime)
        );
        assert!(attribute("User", "externalId").is_some_and(|a| a.case_exact));
    }

    #[test]
    fn urn_qualified_paths_reach_core_and_extension() {
        let core = format!("{}:userName", urn::USER);
        assert_eq!(
            attribute("User", &core).map(|a| a.name.as_str()),
            Some("userName")
        );
        let ext = format!("{}:manager.displayName", urn::ENTERPRISE_USER);
        let m = attribute("User", &ext).expect("manager.displayName");
        assert_eq!(m.mutability, Mutability::ReadOnly);
        // Extension attributes are only reachable through their URN (RFC 7644 §3.10).
        assert!(attribute("User", "employeeNumber").is_none());
        assert!(attribute("Group", &ext).is_none());
    }

    #[test]
    fn password_is_write_only_and_never_returned() {
        let p = attribute("User", "password").expect("password");
        assert_eq!(
            (p.mutability, p.returned),
            (Mutability::WriteOnly, Returned::Never)
        );
    }

    #[test]
    fn groups_are_read_only_and_members_immutable() {
        assert_eq!(
            attribute("User", "groups").map(|a| a.mutability),
            Some(Mutability::ReadOnly)
        );
        let v = attribute("Group", "members.value").expect("members.value");
        assert_eq!(v.mutability, Mutability::Immutable);
        assert!(attribute("Group", "members").is_some_and(|m| m.multi_valued));
    }

    #[test]
    fn canonical_values_come_from_the_rfc() {
        let t = attribute("User", "phoneNumbers.type").expect("type");
        assert!(t.canonical_values.iter().any(|v| v == "pager"));
        let r = attribute("User", "groups.$ref").expect("$ref");
        assert_eq!((r.kind, r.reference_types.len()), (AttrType::Reference, 2));
    }

    #[test]
    fn unknown_names_are_none() {
        assert!(attribute("User", "shoeSize").is_none());
        assert!(attribute("User", "name.nope").is_none());
        assert!(attribute("Device", "id").is_none());
    }
}
