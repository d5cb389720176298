//! The paths of a deny or allow list, compiled, and the one question the engine asks of them:
//! how much of the attribute at a given place in a document may pass.

use std::fmt;

use crate::scim::discovery::{schema_def, ResourceTypeDef};
use crate::scim::path::{self, AttrPath};

/// Attributes every resource carries (RFC 7643 §3.1), which no list can take away.
const COMMON: [&str; 3] = ["id", "schemas", "meta"];

/// Whether `name` is one of the attributes every resource carries.
pub fn is_common(name: &str) -> bool {
    COMMON.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// One entry of a deny or allow list: `[urn:] name [.sub | .*]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub schema: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl Selector {
    /// Reads one list entry; `name.*` is the same as `name` (the attribute with all its
    /// sub-attributes) and is accepted because operators write it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (path, star) = match text.strip_suffix(".*") {
            Some(head) => (head, true),
            None => (text, false),
        };
        let p =
            AttrPath::parse(path).map_err(|e| format!("{text:?} is not an attribute path: {e}"))?;
        if star && p.sub.is_some() {
            return Err(format!(
                "{text:?}: \".*\" may only follow an attribute, not a sub-attribute"
            ));
        }
        Ok(Self {
            schema: p.urn,
            name: p.name,
            sub: p.sub,
        })
    }

    /// Whether this entry names the attribute at `loc` (its sub-attributes aside).
    fn names_attr(&self, rt: &ResourceTypeDef, loc: &Loc<'_>) -> bool {
        self.name.eq_ignore_ascii_case(loc.name) && schema_matches(self.schema.as_deref(), loc, rt)
    }

    /// Whether this entry is a whole extension by its URN (`urn:…:enterprise:2.0:User`, which
    /// reads as the attribute `User` of `urn:…:2.0`) and that extension is `urn`.
    pub fn names_extension(&self, urn: &str) -> bool {
        let Some(schema) = self.schema.as_deref().filter(|_| self.sub.is_none()) else {
            return false;
        };
        urn.len() == schema.len() + 1 + self.name.len()
            && urn.as_bytes()[schema.len()] == b':'
            && urn[..schema.len()].eq_ignore_ascii_case(schema)
            && urn[schema.len() + 1..].eq_ignore_ascii_case(&self.name)
    }

    /// Whether this entry is a whole extension that holds the attribute at `loc`: the one
    /// `loc` names, or for a name written without URN, the resource type's extension whose
    /// schema defines it.
    fn holds(&self, rt: &ResourceTypeDef, loc: &Loc<'_>) -> bool {
        match loc.schema {
            Some(urn) => self.names_extension(urn),
            None => rt.extensions.iter().any(|ext| {
                self.names_extension(ext)
                    && schema_def(ext).is_some_and(|d| d.attribute(loc.name).is_some())
            }),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.schema {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        match &self.sub {
            Some(sub) => write!(f, ".{sub}"),
            None => Ok(()),
        }
    }
}

/// An entry with a URN names that schema only. A name written without URN in the document
/// (a top-level key, a PATCH path, a filter) may mean any of the resource type's schemas,
/// since lenient apps read `employeeNumber` as the enterprise one, so a qualified entry for
/// any of them covers it.
fn schema_matches(entry: Option<&str>, loc: &Loc<'_>, rt: &ResourceTypeDef) -> bool {
    match (entry, loc.schema) {
        (None, _) => true,
        (Some(e), Some(l)) => e.eq_ignore_ascii_case(l),
        (Some(e), None) => rt.has_schema(e),
    }
}

/// Where a value sits: the schema it was written under (`None` for a top-level name without
/// URN), the attribute, and the sub-attribute if the place is one.
#[derive(Clone, Copy, Debug)]
pub struct Loc<'a> {
    pub schema: Option<&'a str>,
    pub name: &'a str,
    pub sub: Option<&'a str>,
}

impl<'a> Loc<'a> {
    pub fn of(path: &'a AttrPath) -> Self {
        Self {
            schema: path.urn.as_deref(),
            name: &path.name,
            sub: path.sub.as_deref(),
        }
    }

    /// The place a member key names, read without copying it: `name`, `name.sub`, or either
    /// behind a URN.
    pub fn parse(key: &'a str) -> Option<Self> {
        let (schema, name, sub) = path::split(key).ok()?;
        Some(Self { schema, name, sub })
    }

    pub fn with_sub(self, sub: &'a str) -> Self {
        Self {
            sub: Some(sub),
            ..self
        }
    }

    /// The path as an Outcome or a Refusal names it.
    pub fn path(&self) -> String {
        let mut s = String::new();
        if let Some(urn) = self.schema {
            s.push_str(urn);
            s.push(':');
        }
        s.push_str(self.name);
        if let Some(sub) = self.sub {
            s.push('.');
            s.push_str(sub);
        }
        s
    }
}

/// Whether no list may take the attribute at `loc` away: the common attributes, and those
/// the resource type's schemas require (RFC 7643 §2.2 `required`).
pub fn protected(rt: &ResourceTypeDef, loc: &Loc<'_>) -> bool {
    let core = loc.schema.is_none_or(|s| s.eq_ignore_ascii_case(rt.schema));
    if core && is_common(loc.name) {
        return true;
    }
    let schema = match loc.schema {
        None => rt.schema,
        Some(s) if rt.has_schema(s) => s,
        Some(_) => return false,
    };
    let Some(def) = schema_def(schema).and_then(|d| d.attribute(loc.name)) else {
        return false;
    };
    def.required
        && loc
            .sub
            .is_none_or(|sub| def.sub_attribute(sub).is_some_and(|d| d.required))
}

/// A deny or allow list, or neither.
#[derive(Clone, Debug, Default)]
pub enum Lists {
    #[default]
    Open,
    Deny(Vec<Selector>),
    Allow(Vec<Selector>),
}

/// How much of one attribute passes.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'r> {
    Pass,
    Drop,
    /// The attribute passes with some of its sub-attributes.
    Subs(Subs<'r>),
}

/// Which sub-attributes of a complex value pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Subs<'r> {
    Except(Vec<&'r str>),
    Only(Vec<&'r str>),
}

impl Subs<'_> {
    pub fn keeps(&self, sub: &str) -> bool {
        match self {
            Self::Except(names) => !names.iter().any(|n| n.eq_ignore_ascii_case(sub)),
            Self::Only(names) => names.iter().any(|n| n.eq_ignore_ascii_case(sub)),
        }
    }
}

impl Lists {
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Open)
    }

    /// How much of the attribute at `loc` passes.
    pub fn judge(&self, rt: &ResourceTypeDef, loc: &Loc<'_>) -> Verdict<'_> {
        let (list, deny) = match self {
            Self::Open => return Verdict::Pass,
            Self::Deny(list) => (list, true),
            Self::Allow(list) => (list, false),
        };
        let verdict = Self::listed(list, deny, rt, loc);
        // What the schema requires passes whatever the lists say; asked last, as it costs
        // schema look-ups and most attributes pass anyway.
        if verdict != Verdict::Pass && protected(rt, loc) {
            return Verdict::Pass;
        }
        verdict
    }

    /// The lists' verdict alone.
    fn listed<'r>(
        list: &'r [Selector],
        deny: bool,
        rt: &ResourceTypeDef,
        loc: &Loc<'_>,
    ) -> Verdict<'r> {
        let named = |s: &&Selector| s.names_attr(rt, loc);
        let whole = list
            .iter()
            .any(|s| (s.sub.is_none() && named(&s)) || s.holds(rt, loc));
        if whole {
            return if deny { Verdict::Drop } else { Verdict::Pass };
        }
        let mut subs = list.iter().filter(named).filter_map(|s| s.sub.as_deref());
        let hit = match loc.sub {
            Some(sub) => subs.any(|s| s.eq_ignore_ascii_case(sub)),
            None => {
                let subs: Vec<&str> = subs.collect();
                return match (subs.is_empty(), deny) {
                    (true, true) => Verdict::Pass,
                    (true, false) => Verdict::Drop,
                    (false, true) => Verdict::Subs(Subs::Except(subs)),
                    (false, false) => Verdict::Subs(Subs::Only(subs)),
                };
            }
        };
        if hit == deny {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }

    /// For an extension object keyed `urn`: `Some(pass)` if a list entry names the whole
    /// extension, `None` if its attributes are judged one by one.
    pub fn extension(&self, urn: &str) -> Option<bool> {
        match self {
            Self::Open => Some(true),
            Self::Deny(list) => list.iter().any(|s| s.names_extension(urn)).then_some(false),
            Self::Allow(list) => list.iter().any(|s| s.names_extension(urn)).then_some(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::discovery::{GROUP, USER};
    use crate::scim::urn::ENTERPRISE_USER;

    fn sel(list: &[&str]) -> Vec<Selector> {
        list.iter()
            .map(|s| Selector::parse(s).expect("valid"))
            .collect()
    }

    fn loc(p: &AttrPath) -> Loc<'_> {
        Loc::of(p)
    }

    fn path(s: &str) -> AttrPath {
        AttrPath::parse(s).expect("valid")
    }

    #[test]
    fn star_means_the_whole_attribute() {
        assert_eq!(Selector::parse("addresses.*"), Selector::parse("addresses"));
        assert!(Selector::parse("name.givenName.*").is_err());
        assert!(Selector::parse("*").is_err());
        assert!(Selector::parse("bad name").is_err());
    }

    #[test]
    fn deny_without_urn_reaches_core_and_extension_attributes() {
        let deny = Lists::Deny(sel(&["employeeNumber", "NAME.givenname"]));
        let ext = path(&format!("{ENTERPRISE_USER}:employeeNumber"));
        assert_eq!(deny.judge(&USER, &loc(&ext)), Verdict::Drop);
        assert_eq!(
            deny.judge(&USER, &loc(&path("EmployeeNumber"))),
            Verdict::Drop
        );
        assert_eq!(
            deny.judge(&USER, &loc(&path("name"))),
            Verdict::Subs(Subs::Except(vec!["givenname"]))
        );
        assert_eq!(
            deny.judge(&USER, &loc(&path("name.GivenName"))),
            Verdict::Drop
        );
        assert_eq!(
            deny.judge(&USER, &loc(&path("name.familyName"))),
            Verdict::Pass
        );
    }

    #[test]
    fn deny_with_urn_names_that_schema_and_unqualified_names_it_defines() {
        let deny = Lists::Deny(sel(&[&format!("{ENTERPRISE_USER}:costCenter")]));
        assert_eq!(deny.judge(&USER, &loc(&path("costCenter"))), Verdict::Drop);
        let other = path("urn:example:ext:1.0:User:costCenter");
        assert_eq!(deny.judge(&USER, &loc(&other)), Verdict::Pass);
        // Groups have no enterprise extension, so an unqualified name there is another one.
        assert_eq!(deny.judge(&GROUP, &loc(&path("costCenter"))), Verdict::Pass);
        let core_only = Lists::Deny(sel(&["urn:ietf:params:scim:schemas:core:2.0:User:title"]));
        assert_eq!(core_only.judge(&USER, &loc(&path("title"))), Verdict::Drop);
        assert_eq!(core_only.judge(&GROUP, &loc(&path("title"))), Verdict::Pass);
    }

    #[test]
    fn a_whole_extension_takes_its_attributes_with_it() {
        let deny = Lists::Deny(sel(&[ENTERPRISE_USER]));
        assert_eq!(deny.extension(ENTERPRISE_USER), Some(false));
        assert_eq!(deny.extension("urn:example:ext:1.0:User"), None);
        let qualified = path(&format!("{ENTERPRISE_USER}:manager.value"));
        assert_eq!(deny.judge(&USER, &loc(&qualified)), Verdict::Drop);
        assert_eq!(deny.judge(&USER, &loc(&path("department"))), Verdict::Drop);
        assert_eq!(deny.judge(&USER, &loc(&path("title"))), Verdict::Pass);
    }

    #[test]
    fn allow_passes_what_it_lists_and_what_is_protected() {
        let allow = Lists::Allow(sel(&["emails.value", "active", "members"]));
        assert_eq!(
            allow.judge(&USER, &loc(&path("emails"))),
            Verdict::Subs(Subs::Only(vec!["value"]))
        );
        assert_eq!(
            allow.judge(&USER, &loc(&path("emails.type"))),
            Verdict::Drop
        );
        assert_eq!(allow.judge(&USER, &loc(&path("nickName"))), Verdict::Drop);
        for always in ["id", "schemas", "meta", "meta.created", "userName"] {
            assert_eq!(
                allow.judge(&USER, &loc(&path(always))),
                Verdict::Pass,
                "{always}"
            );
        }
        assert_eq!(
            allow.judge(&GROUP, &loc(&path("displayName"))),
            Verdict::Pass
        );
        assert_eq!(
            allow.judge(&USER, &loc(&path("displayName"))),
            Verdict::Drop
        );
    }

    #[test]
    fn protection_follows_the_resource_type() {
        assert!(protected(&USER, &loc(&path("USERNAME"))));
        assert!(protected(
            &USER,
            &loc(&path("urn:ietf:params:scim:schemas:core:2.0:User:userName"))
        ));
        assert!(!protected(&USER, &loc(&path("displayName"))));
        assert!(protected(&GROUP, &loc(&path("displayName"))));
        assert!(!protected(
            &USER,
            &loc(&path("urn:example:ext:1.0:User:id"))
        ));
    }
}
