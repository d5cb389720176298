//! The tables of the memory store and the writes on them: create, replace, patch and delete with
//! server-assigned ids, meta timestamps and versions, and the uniqueness rules of RFC 7643 §2.2.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::render::meta;
use super::{invalid, not_found, validate};
use crate::scim::discovery::{schema_def, ResourceTypeDef, SchemaInfo, Uniqueness, GROUP, USER};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::now;
use crate::scim::patch::PatchRequest;
use crate::scim::request::Endpoint;

/// The resource types the store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    User,
    Group,
}

impl Kind {
    pub(super) fn from_endpoint(endpoint: Endpoint) -> Option<Kind> {
        match endpoint {
            Endpoint::Users => Some(Kind::User),
            Endpoint::Groups => Some(Kind::Group),
            _ => None,
        }
    }

    pub(super) fn def(self) -> &'static ResourceTypeDef {
        match self {
            Kind::User => &USER,
            Kind::Group => &GROUP,
        }
    }
}

/// One stored resource. `attrs` holds what the client wrote, validated; `id`, `meta` and
/// derived attributes are added when it is rendered.
#[derive(Clone, Debug)]
pub(super) struct Stored {
    pub id: String,
    pub attrs: Map<String, Value>,
    pub created: String,
    pub last_modified: String,
    pub version: u64,
}

impl Stored {
    /// `meta.version` and the ETag header: a weak entity tag (RFC 7644 §3.14).
    pub(super) fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    fn touch(&mut self) {
        self.version += 1;
        self.last_modified = now();
    }
}

/// Resources of one type in creation order, so that lists page stably.
#[derive(Default)]
pub(super) struct Table {
    rows: BTreeMap<u64, Stored>,
    by_id: HashMap<String, u64>,
    next_seq: u64,
}

impl Table {
    pub(super) fn get(&self, id: &str) -> Option<&Stored> {
        self.by_id.get(id).and_then(|seq| self.rows.get(seq))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Stored> {
        self.by_id.get(id).and_then(|seq| self.rows.get_mut(seq))
    }

    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Stored> {
        self.rows.values()
    }

    fn insert(&mut self, stored: Stored) -> &Stored {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_id.insert(stored.id.clone(), seq);
        self.rows.entry(seq).or_insert(stored)
    }

    fn remove(&mut self, id: &str) -> Option<Stored> {
        let seq = self.by_id.remove(id)?;
        self.rows.remove(&seq)
    }
}

/// Every table of the store, behind the store's lock.
#[derive(Default)]
pub(super) struct Tables {
    pub users: Table,
    pub groups: Table,
}

impl Tables {
    pub(super) fn table(&self, kind: Kind) -> &Table {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }

    fn table_mut(&mut self, kind: Kind) -> &mut Table {
        match kind {
            Kind::User => &mut self.users,
            Kind::Group => &mut self.groups,
        }
    }

    /// POST (RFC 7644 §3.3): the server assigns `id` and `meta`. Answers the new id.
    pub(super) fn create(
        &mut self,
        kind: Kind,
        mut attrs: Map<String, Value>,
    ) -> Result<String, ScimError> {
        self.check_unique(kind, &attrs, None)?;
        Self::normalize_members(kind, &mut attrs)?;
        let created = now();
        let stored = Stored {
            id: uuid::Uuid::new_v4().to_string(),
            attrs,
            last_modified: created.clone(),
            created,
            version: 1,
        };
        Ok(self.table_mut(kind).insert(stored).id.clone())
    }

    /// PUT (RFC 7644 §3.5.1): replaces what the client may write; never creates.
    pub(super) fn replace(
        &mut self,
        kind: Kind,
        id: &str,
        mut attrs: Map<String, Value>,
    ) -> Result<(), ScimError> {
        let old = self
            .table(kind)
            .get(id)
            .ok_or_else(|| not_found(kind, id))?;
        carry_over_all(kind.def(), &old.attrs, &mut attrs)?;
        self.check_unique(kind, &attrs, Some(id))?;
        Self::normalize_members(kind, &mut attrs)?;
        let stored = self
            .table_mut(kind)
            .get_mut(id)
            .expect("checked present under the same lock");
        stored.attrs = attrs;
        stored.touch();
        Ok(())
    }

    /// PATCH (RFC 7644 §3.5.2): the operations apply to the resource as the client knows it,
    /// `id` and `meta` included so that a client echoing them unchanged is not refused; the
    /// result must then pass what a PUT of it would (schema, uniqueness, members), or nothing
    /// changes. The version moves only if the stored resource really changed (§3.5.2.1 lets a
    /// no-op PATCH leave `meta.lastModified` alone).
    pub(super) fn patch(
        &mut self,
        kind: Kind,
        id: &str,
        patch: &PatchRequest,
        base_url: &str,
    ) -> Result<(), ScimError> {
        let old = self
            .table(kind)
            .get(id)
            .ok_or_else(|| not_found(kind, id))?;
        let mut doc = old.attrs.clone();
        doc.insert("id".into(), Value::from(id));
        doc.insert("meta".into(), meta(kind, old, base_url));
        let mut doc = Value::Object(doc);
        if !patch.apply(&mut doc, &SchemaInfo::new(kind.def()))? {
            return Ok(());
        }
        let mut attrs = validate::document(kind.def(), &doc)?;
        self.check_unique(kind, &attrs, Some(id))?;
        Self::normalize_members(kind, &mut attrs)?;
        let stored = self
            .table_mut(kind)
            .get_mut(id)
            .expect("checked present under the same lock");
        if stored.attrs != attrs {
            stored.attrs = attrs;
            stored.touch();
        }
        Ok(())
    }

    /// DELETE (RFC 7644 §3.6). The resource also leaves every group it was a member of, so
    /// no group keeps a reference that no longer resolves.
    pub(super) fn delete(&mut self, kind: Kind, id: &str) -> Result<(), ScimError> {
        self.table_mut(kind)
            .remove(id)
            .ok_or_else(|| not_found(kind, id))?;
        for group in self.groups.rows.values_mut() {
            let Some(Value::Array(members)) = group.attrs.get_mut("members") else {
                continue;
            };
            let before = members.len();
            members.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
            if members.len() != before {
                if members.is_empty() {
                    group.attrs.remove("members");
                }
                group.touch();
            }
        }
        Ok(())
    }

    /// Uniqueness as the schema says it (RFC 7643 §2.2): `userName` is server-unique and
    /// compared case-insensitively (caseExact false). `externalId` is the client's identifier
    /// with `uniqueness: none` (RFC 7643 §3.1): an IdP may reuse one, and the store accepts it.
    fn check_unique(
        &self,
        kind: Kind,
        attrs: &Map<String, Value>,
        except: Option<&str>,
    ) -> Result<(), ScimError> {
        let schema = schema_def(kind.def().schema).expect("core schemas are bundled");
        let unique = schema
            .attributes
            .iter()
            .filter(|a| a.uniqueness != Uniqueness::None && !a.multi_valued);
        let rules = unique.map(|a| (a.name.as_str(), a.case_exact));
        for (name, case_exact) in rules {
            let Some(wanted) = attrs.get(name).and_then(Value::as_str) else {
                continue;
            };
            let same = |other: &str| {
                if case_exact {
                    other == wanted
                } else {
                    other.to_lowercase() == wanted.to_lowercase()
                }
            };
            let others = self
                .table(kind)
                .iter()
                .filter(|s| Some(s.id.as_str()) != except);
            if others
                .filter_map(|s| s.attrs.get(name).and_then(Value::as_str))
                .any(same)
            {
                let detail = format!("{name} is already used by another {}", kind.def().name);
                return Err(ScimError::with_type(409, ScimType::Uniqueness, detail));
            }
        }
        Ok(())
    }

    /// Group members (RFC 7643 §4.2): each needs a `value`, and a value is listed once. A value
    /// naming no stored resource is accepted as sent (lenient: the member may live elsewhere);
    /// `$ref`, `type` and `display` of stored members are derived when rendered.
    fn normalize_members(kind: Kind, attrs: &mut Map<String, Value>) -> Result<(), ScimError> {
        let Some(Value::Array(members)) = attrs.get_mut("members").filter(|_| kind == Kind::Group)
        else {
            return Ok(());
        };
        let mut seen = HashSet::new();
        for member in members.iter() {
            let value = member.get("value").and_then(Value::as_str);
            let value = value.ok_or_else(|| invalid("every member needs a \"value\""))?;
            seen.insert(value.to_owned());
        }
        members.retain(|m| {
            let value = m.get("value").and_then(Value::as_str).unwrap_or_default();
            seen.remove(value)
        });
        Ok(())
    }

    /// Which table holds `id`, if any.
    pub(super) fn kind_of(&self, id: &str) -> Option<Kind> {
        [Kind::User, Kind::Group]
            .into_iter()
            .find(|k| self.table(*k).get(id).is_some())
    }
}

/// Applies the PUT rules of `validate::carry_over` to the core schema and each extension.
fn carry_over_all(
    rt: &ResourceTypeDef,
    old: &Map<String, Value>,
    new: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    let core = schema_def(rt.schema).expect("core schemas are bundled");
    validate::carry_over(core, old, new)?;
    for ext in rt.extensions {
        let (Some(Value::Object(old_ext)), Some(schema)) = (old.get(*ext), schema_def(ext)) else {
            continue;
        };
        let mut new_ext = match new.remove(*ext) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        validate::carry_over(schema, old_ext, &mut new_ext)?;
        if !new_ext.is_empty() {
            new.insert((*ext).to_owned(), Value::Object(new_ext));
            // A carried-over extension must stay declared (RFC 7643 §3).
            if let Some(Value::Array(schemas)) = new.get_mut("schemas") {
                if !schemas.iter().any(|s| s == *ext) {
                    schemas.push(Value::from(*ext));
                }
            }
        }
    }
    Ok(())
}
