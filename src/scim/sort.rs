//! Ordering of resources by `sortBy`/`sortOrder` (RFC 7644 §3.4.2.3) with SCIM's rules:
//! strings by the attribute's case rule, dateTimes by instant, numbers numerically, resources
//! without a value last when ascending. Used by the memory store and by the proxy when it
//! sorts for an upstream that cannot.

use std::cmp::Ordering;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::discovery::{AttrType, SchemaInfo};
use super::error::{ScimError, ScimType};
use super::list::SortOrder;
use super::path::{self, get_ci, AttrPath};

/// A parsed `sortBy` and `sortOrder`.
#[derive(Clone, Debug)]
pub struct SortSpec {
    attr: AttrPath,
    descending: bool,
}

impl SortSpec {
    pub fn parse(sort_by: &str, order: Option<SortOrder>) -> Result<Self, ScimError> {
        let attr = AttrPath::parse(sort_by.trim())
            .map_err(|e| invalid(format!("sortBy is not an attribute path: {e}")))?;
        Ok(Self {
            attr,
            descending: order == Some(SortOrder::Descending),
        })
    }
}

/// Sorts `items` stably; `doc` gives each item's client representation and the schemas of
/// its resource type (`None`: it has no value to sort by).
pub fn sort<T>(
    items: &mut Vec<T>,
    spec: &SortSpec,
    doc: impl Fn(&T) -> Option<(&Value, SchemaInfo)>,
) -> Result<(), ScimError> {
    let mut keyed = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        let key = match doc(&item) {
            Some((d, info)) => sort_key(d, &spec.attr, &info)?,
            None => Key::Missing,
        };
        keyed.push((key, item));
    }
    // `sort_by` is stable, so equal keys keep their order in both directions.
    keyed.sort_by(|(a, _), (b, _)| {
        let o = a.cmp(b);
        if spec.descending {
            o.reverse()
        } else {
            o
        }
    });
    items.extend(keyed.into_iter().map(|(_, item)| item));
    Ok(())
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::with_type(400, ScimType::InvalidValue, detail)
}

/// A sort key with SCIM's ordering rules: strings folded to lower case unless caseExact,
/// dateTimes by instant, numbers numerically, and no value after every value.
#[derive(Debug)]
enum Key {
    Bool(bool),
    Num(f64),
    Time(OffsetDateTime),
    Str(String),
    Missing,
}

impl Key {
    fn rank(&self) -> u8 {
        match self {
            Key::Bool(_) => 0,
            Key::Num(_) => 1,
            Key::Time(_) => 2,
            Key::Str(_) => 3,
            Key::Missing => 4,
        }
    }

    fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Bool(a), Key::Bool(b)) => a.cmp(b),
            (Key::Num(a), Key::Num(b)) => a.total_cmp(b),
            (Key::Time(a), Key::Time(b)) => a.cmp(b),
            (Key::Str(a), Key::Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// The value `attr` sorts `doc` by. A multi-valued attribute sorts by its primary value, or
/// else its first; a complex multi-valued one by that value's `value` sub-attribute. A
/// singular complex attribute has no order of its own: the client must name a sub-attribute
/// (`name.givenName`), as RFC 7644 §3.4.2.3 requires. Undefined attributes have no value.
fn sort_key(doc: &Value, attr: &AttrPath, info: &SchemaInfo) -> Result<Key, ScimError> {
    let Some(def) = info.def(attr) else {
        return Ok(Key::Missing);
    };
    let (def, sub) = match (&attr.sub, def.kind) {
        (None, AttrType::Complex) if !def.multi_valued => {
            return Err(invalid(format!(
                "sortBy {attr} is complex: name one of its sub-attributes"
            )));
        }
        (None, AttrType::Complex) => (def.sub_attribute("value"), Some("value")),
        (sub, _) => (Some(def), sub.as_deref()),
    };
    let Some(def) = def else {
        return Ok(Key::Missing);
    };
    let value = path::attribute(doc, attr).and_then(|raw| match raw {
        Value::Array(items) => primary_or_first(items),
        single => Some(single),
    });
    let value = match (sub, value) {
        (Some(sub), Some(Value::Object(o))) => get_ci(o, sub),
        (_, v) => v,
    };
    Ok(match value {
        Some(Value::Bool(b)) => Key::Bool(*b),
        Some(Value::Number(n)) => n.as_f64().map_or(Key::Missing, Key::Num),
        Some(Value::String(s)) if def.kind == AttrType::DateTime => {
            OffsetDateTime::parse(s, &Rfc3339).map_or_else(|_| Key::Str(s.clone()), Key::Time)
        }
        Some(Value::String(s)) if def.case_exact => Key::Str(s.clone()),
        Some(Value::String(s)) => Key::Str(s.to_lowercase()),
        _ => Key::Missing,
    })
}

/// RFC 7643 §2.4: the value marked `"primary": true`, else the first.
fn primary_or_first(items: &[Value]) -> Option<&Value> {
    items
        .iter()
        .find(|v| v.get("primary") == Some(&Value::Bool(true)))
        .or_else(|| items.first())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::discovery::USER;

    fn key(doc: &Value, attr: &str) -> Key {
        let attr = AttrPath::parse(attr).expect("valid path");
        sort_key(doc, &attr, &SchemaInfo::new(&USER)).expect("sortable")
    }

    #[test]
    fn multi_valued_attributes_sort_by_their_primary_or_first_value() {
        let doc = json!({"emails": [{"value": "B@x"}, {"value": "a@x", "primary": true}]});
        assert!(matches!(key(&doc, "emails"), Key::Str(s) if s == "a@x"));
        assert!(matches!(key(&doc, "emails.value"), Key::Str(s) if s == "a@x"));
        let doc = json!({"emails": [{"value": "B@x"}, {"value": "a@x"}]});
        assert!(matches!(key(&doc, "emails.value"), Key::Str(s) if s == "b@x"));
    }

    #[test]
    fn case_exact_strings_keep_their_case_and_date_times_compare_as_instants() {
        let doc = json!({"externalId": "AbC", "meta": {"created": "2024-01-01T00:00:00.5Z"}});
        assert!(matches!(key(&doc, "externalId"), Key::Str(s) if s == "AbC"));
        let late = key(&doc, "meta.created");
        let early = key(
            &json!({"meta": {"created": "2024-01-01T00:00:00.123Z"}}),
            "meta.created",
        );
        assert_eq!(early.cmp(&late), Ordering::Less);
    }

    #[test]
    fn missing_values_sort_after_every_value() {
        assert_eq!(Key::Missing.cmp(&Key::Str("zzz".into())), Ordering::Greater);
        assert!(matches!(key(&json!({}), "title"), Key::Missing));
        assert!(matches!(
            key(&json!({"title": "x"}), "shoeSize"),
            Key::Missing
        ));
    }

    #[test]
    fn singular_complex_attributes_need_a_sub_attribute() {
        let attr = AttrPath::parse("name").expect("valid path");
        let e = sort_key(&json!({}), &attr, &SchemaInfo::new(&USER)).expect_err("complex");
        assert_eq!(e.status, 400);
    }
}
