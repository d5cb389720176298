//! Picks and orders the resources a list or search returns: `filter` (RFC 7644 §3.4.2.2),
//! then `sortBy`/`sortOrder` (§3.4.2.3), evaluated on each resource as clients see it, with
//! the attribute characteristics of its resource type's schemas.

use std::cmp::Ordering;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::invalid;
use super::render::render;
use super::store::{Kind, Stored, Tables};
use crate::scim::discovery::{AttrType, SchemaInfo};
use crate::scim::error::ScimError;
use crate::scim::filter::{self, Filter};
use crate::scim::list::{ListParams, SortOrder};
use crate::scim::path::{self, get_ci, AttrPath};

/// One resource of a list. `doc` is its rendered representation, kept when filtering or
/// sorting needed it so the page does not render it twice.
pub(super) struct Row<'t> {
    pub kind: Kind,
    pub stored: &'t Stored,
    pub doc: Option<Value>,
}

/// The resources of `kinds` that match the filter, in sort order (creation order without
/// `sortBy`, and for ties: the sort is stable). A filter that does not parse, or that orders
/// a boolean or complex attribute, is a 400 `invalidFilter`.
pub(super) fn select<'t>(
    tables: &'t Tables,
    kinds: &[Kind],
    params: &ListParams,
    base_url: &str,
) -> Result<Vec<Row<'t>>, ScimError> {
    let filter = params.filter.as_deref().map(filter::parse).transpose()?;
    let sort_by = params.sort_by.as_deref().map(sort_path).transpose()?;
    let rendered = filter.is_some() || sort_by.is_some();
    let mut rows = Vec::new();
    for &kind in kinds {
        let info = SchemaInfo::new(kind.def());
        let filter = filter.as_ref().map(|f| unknown_is_false(f, &info, None));
        for stored in tables.table(kind).iter() {
            let doc = rendered.then(|| render(tables, kind, stored, base_url));
            if let (Some(filter), Some(doc)) = (&filter, &doc) {
                if !filter::matches(filter, doc, &info)? {
                    continue;
                }
            }
            rows.push(Row { kind, stored, doc });
        }
    }
    if let Some(attr) = sort_by {
        let descending = params.sort_order == Some(SortOrder::Descending);
        sort(&mut rows, &attr, descending)?;
    }
    Ok(rows)
}

/// RFC 7644 §3.4.2.2 lets a service provider either refuse a filter naming an attribute its
/// schemas do not define or evaluate it; this store evaluates such a comparison or presence
/// test as false, whatever the operator (`shoeSize ne 1` matches nothing), while `not`, `and`
/// and `or` around it work as usual. It is done by turning the test into `pr`: stored
/// resources passed validation, so they hold no attribute the schema does not define.
fn unknown_is_false(f: &Filter, info: &SchemaInfo, parent: Option<&AttrPath>) -> Filter {
    let known = |attr: &AttrPath| {
        let attr = match parent {
            Some(p) => p.with_sub(&attr.name),
            None => attr.clone(),
        };
        info.def(&attr).is_some()
    };
    let each = |items: &[Filter]| -> Vec<Filter> {
        items
            .iter()
            .map(|i| unknown_is_false(i, info, parent))
            .collect()
    };
    match f {
        Filter::Compare { attr, .. } if !known(attr) => Filter::Present(attr.clone()),
        Filter::ValuePath { attr, .. } if !known(attr) => Filter::Present(attr.clone()),
        Filter::ValuePath { attr, filter } => Filter::ValuePath {
            attr: attr.clone(),
            filter: Box::new(unknown_is_false(filter, info, Some(attr))),
        },
        Filter::Not(inner) => Filter::Not(Box::new(unknown_is_false(inner, info, parent))),
        Filter::And(items) => Filter::And(each(items)),
        Filter::Or(items) => Filter::Or(each(items)),
        other => other.clone(),
    }
}

fn sort_path(text: &str) -> Result<AttrPath, ScimError> {
    AttrPath::parse(text.trim())
        .map_err(|e| invalid(format!("sortBy is not an attribute path: {e}")))
}

/// RFC 7644 §3.4.2.3: by the attribute's value, ascending unless asked otherwise; resources
/// without a value come last when ascending and first when descending.
fn sort(rows: &mut Vec<Row<'_>>, attr: &AttrPath, descending: bool) -> Result<(), ScimError> {
    let mut keyed = Vec::with_capacity(rows.len());
    for row in rows.drain(..) {
        let key = match &row.doc {
            Some(doc) => sort_key(doc, attr, &SchemaInfo::new(row.kind.def()))?,
            None => Key::Missing,
        };
        keyed.push((key, row));
    }
    // `sort_by` is stable, so equal keys keep creation order in both directions.
    keyed.sort_by(|(a, _), (b, _)| {
        let o = a.cmp(b);
        if descending {
            o.reverse()
        } else {
            o
        }
    });
    rows.extend(keyed.into_iter().map(|(_, row)| row));
    Ok(())
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
