//! Schemas beyond the bundled ones (RFC 7643 §7): an application's own extensions, as its
//! `/Schemas` announces them or as schema files a tenant names. The schema check and the
//! builtins that type values by schema read them beside the bundled schemas, which always win:
//! an application cannot redefine `urn:…:core:2.0:User`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::attributes::{schema_def, AttributeDef, SchemaDef};
use crate::scim::path::get_ci;

/// At most this many schemas are kept from one document: an app announcing more is not
/// describing extensions.
const MAX_SCHEMAS: usize = 100;

/// Extension schemas by URN. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Extensions {
    schemas: Vec<Arc<SchemaDef>>,
}

impl Extensions {
    /// None at all.
    pub fn none() -> &'static Extensions {
        static NONE: Extensions = Extensions {
            schemas: Vec::new(),
        };
        &NONE
    }

    /// The schemas in a document: one Schema resource, an array of them, or a ListResponse of
    /// them (what `GET /Schemas` answers). Bundled URNs are skipped; an entry that is not a
    /// schema is an error naming it.
    pub fn from_document(doc: &Value) -> Result<Self, String> {
        let items: Vec<&Value> = match doc {
            Value::Array(items) => items.iter().collect(),
            Value::Object(obj) => match get_ci(obj, "Resources") {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(_) => return Err("\"Resources\" must be an array of schemas".into()),
                None => vec![doc],
            },
            _ => return Err("a schema document must be a JSON object or array".into()),
        };
        if items.len() > MAX_SCHEMAS {
            return Err(format!(
                "{} schemas; at most {MAX_SCHEMAS} are read",
                items.len()
            ));
        }
        let mut out = Self::default();
        for (i, item) in items.into_iter().enumerate() {
            let def = SchemaDef::deserialize(item)
                .map_err(|e| format!("schema {}: not an RFC 7643 §7 schema: {e}", i + 1))?;
            if schema_def(&def.id).is_none() && out.schema(&def.id).is_none() {
                out.schemas.push(Arc::new(def));
            }
        }
        Ok(out)
    }

    /// These schemas, then those of `other` that these do not define.
    pub fn and(&self, other: &Extensions) -> Extensions {
        let mut out = self.clone();
        for s in &other.schemas {
            if out.schema(&s.id).is_none() {
                out.schemas.push(s.clone());
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }

    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    pub fn urns(&self) -> impl Iterator<Item = &str> {
        self.schemas.iter().map(|s| s.id.as_str())
    }

    /// The schema with this URN, in any case.
    pub fn schema(&self, urn: &str) -> Option<&SchemaDef> {
        self.schemas
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
            .map(|s| &**s)
    }

    /// The schema whose URN `path` starts with (`urn:…:2.0:User:costCenter.x`), and the rest
    /// of the path after its colon.
    pub fn split<'p>(&self, path: &'p str) -> Option<(&SchemaDef, &'p str)> {
        self.schemas.iter().find_map(|s| {
            let rest = path
                .get(..s.id.len())
                .filter(|p| p.eq_ignore_ascii_case(&s.id))
                .and_then(|_| path[s.id.len()..].strip_prefix(':'))?;
            Some((&**s, rest))
        })
    }

    /// An attribute named with its schema's URN, with or without a sub-attribute:
    /// `urn:…:CustomExtension:2.0:User:costCenter`, `…:User:badge.number`.
    pub fn attribute(&self, path: &str) -> Option<&AttributeDef> {
        let (schema, rest) = self.split(path)?;
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (rest, None),
        };
        let top = schema.attribute(name)?;
        match sub {
            Some(sub) => top.sub_attribute(sub),
            None => Some(top),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::discovery::AttrType;
    use serde_json::json;

    const URN: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

    fn custom() -> Value {
        json!({
            "id": URN, "name": "CustomExtension", "description": "an app's own attributes",
            "attributes": [
                {"name": "isContractor", "type": "boolean", "multiValued": false},
                {"name": "badge", "type": "complex", "multiValued": false,
                 "subAttributes": [{"name": "number", "type": "integer"}]}
            ],
            "meta": {"resourceType": "Schema", "location": "/v2/Schemas/x"}
        })
    }

    #[test]
    fn a_list_response_of_schemas_is_read_and_bundled_urns_are_skipped() {
        let doc = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 2,
            "Resources": [
                {"id": "urn:ietf:params:scim:schemas:core:2.0:User", "name": "User",
                 "attributes": [{"name": "userName", "type": "string"}]},
                custom()
            ]
        });
        let ext = Extensions::from_document(&doc).expect("schemas");
        assert_eq!(ext.urns().collect::<Vec<_>>(), [URN]);
        let lower = format!("{}:ISCONTRACTOR", URN.to_lowercase());
        assert_eq!(
            ext.attribute(&lower).map(|d| d.kind),
            Some(AttrType::Boolean)
        );
        let sub = format!("{URN}:badge.number");
        assert_eq!(ext.attribute(&sub).map(|d| d.kind), Some(AttrType::Integer));
        assert!(ext.attribute(&format!("{URN}:unknown")).is_none());
        assert!(ext.attribute("urn:other:2.0:User:isContractor").is_none());
    }

    #[test]
    fn one_schema_or_an_array_is_read_too_and_a_non_schema_is_named() {
        let one = Extensions::from_document(&custom()).expect("one");
        assert_eq!(one.len(), 1);
        let array = Extensions::from_document(&json!([custom(), custom()])).expect("array");
        assert_eq!(array.len(), 1, "a URN twice is kept once");
        let err = Extensions::from_document(&json!([custom(), {"name": "x"}])).unwrap_err();
        assert!(err.starts_with("schema 2:"), "{err}");
        assert!(Extensions::from_document(&json!("x")).is_err());
    }

    #[test]
    fn the_first_definition_of_a_urn_wins_when_merged() {
        let mine = Extensions::from_document(&custom()).expect("mine");
        let mut other = custom();
        other["attributes"][0]["type"] = json!("string");
        let theirs = Extensions::from_document(&other).expect("theirs");
        let both = mine.and(&theirs);
        assert_eq!(both.len(), 1);
        let path = format!("{URN}:isContractor");
        assert_eq!(
            both.attribute(&path).map(|d| d.kind),
            Some(AttrType::Boolean)
        );
    }
}
