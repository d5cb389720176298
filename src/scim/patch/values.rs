//! Value-level helpers for PATCH: finding and creating schema containers, merging complex
//! values, appending to multi-valued attributes without duplicates, and the `primary` rule.

use serde_json::{Map, Value};

use super::PatchError;
use crate::scim::filter::{CompValue, Filter};
use crate::scim::path::{get_ci, is_core_urn, key_ci};
use crate::scim::urn;

/// The container of schema `urn` (the resource itself for none or the core URN), creating
/// the extension object and listing it in `schemas` when `create` (RFC 7643 §3).
pub(super) fn container_mut<'a>(
    res: &'a mut Value,
    urn: Option<&str>,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    let Some(urn) = urn else {
        return res.as_object_mut();
    };
    let is_core = is_core_urn(res, urn);
    let top = res.as_object_mut()?;
    let key = match key_ci(top, urn).cloned() {
        Some(key) => key,
        None if is_core => return Some(top),
        None if create => {
            add_schema(top, urn);
            top.insert(urn.to_string(), Value::Object(Map::new()));
            urn.to_string()
        }
        None => return None,
    };
    top.get_mut(&key)?.as_object_mut()
}

/// Whether `urn` is an extension schema of this resource: present, listed in `schemas`, the
/// enterprise User extension (RFC 7643 §4.3), or a new URN ending in the resource type, as
/// extension URNs conventionally do (`urn:…:MyExt:2.0:User`); never the core schema.
pub(super) fn is_extension(res: &Value, urn: &str) -> bool {
    let Some(top) = res.as_object().filter(|_| !is_core_urn(res, urn)) else {
        return false;
    };
    let listed = get_ci(top, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)))
        });
    let resource_type = get_ci(top, "schemas")
        .and_then(|s| s.get(0))
        .and_then(Value::as_str)
        .and_then(|core| core.rsplit(':').next());
    let names_type = resource_type.is_some_and(|t| {
        urn.rsplit(':')
            .next()
            .is_some_and(|l| l.eq_ignore_ascii_case(t))
    });
    listed
        || names_type
        || key_ci(top, urn).is_some()
        || urn.eq_ignore_ascii_case(urn::ENTERPRISE_USER)
}

fn add_schema(top: &mut Map<String, Value>, urn: &str) {
    let key = key_ci(top, "schemas")
        .cloned()
        .unwrap_or_else(|| "schemas".into());
    if let Value::Array(schemas) = top.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
        if !schemas
            .iter()
            .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)))
        {
            schemas.push(Value::from(urn));
        }
    }
}

/// Drops an extension object and its `schemas` entry (after its last attribute went).
pub(super) fn remove_extension(top: &mut Map<String, Value>, urn: &str) {
    if let Some(key) = key_ci(top, urn).cloned() {
        top.remove(&key);
    }
    if let Some(Value::Array(schemas)) = key_ci(top, "schemas")
        .cloned()
        .and_then(|k| top.get_mut(&k))
    {
        schemas.retain(|u| !u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)));
    }
}

/// Null means unassigned (RFC 7643 §2.5), so nulls in incoming complex values are not stored.
pub(super) fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(fields) => {
            Value::Object(fields.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|v| !v.is_null())
                .map(strip_nulls)
                .collect(),
        ),
        other => other,
    }
}

/// Sets `obj[name]`, reusing the key's existing spelling since names are case-insensitive.
pub(super) fn set_ci(obj: &mut Map<String, Value>, name: &str, value: Value) {
    let key = key_ci(obj, name)
        .cloned()
        .unwrap_or_else(|| name.to_string());
    obj.insert(key, value);
}

pub(super) fn remove_ci(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = key_ci(obj, name).cloned()?;
    obj.remove(&key)
}

/// Merges sub-attributes into a complex value: given ones replace, others stay, null ones
/// are removed (RFC 7644 §3.5.2.3, RFC 7643 §2.5).
pub(super) fn merge_into(target: &mut Value, incoming: Value) {
    match (target, incoming) {
        (Value::Object(target), Value::Object(incoming)) => {
            for (name, value) in incoming {
                if value.is_null() {
                    remove_ci(target, &name);
                } else {
                    set_ci(target, &name, value);
                }
            }
        }
        (target, incoming) => *target = incoming,
    }
}

/// Appends values to a multi-valued attribute; a value already present is merged into the
/// existing one instead of being added twice (RFC 7644 §3.5.2.1). Returns the indices written.
pub(super) fn append(items: &mut Vec<Value>, incoming: Vec<Value>) -> Vec<usize> {
    let mut written = Vec::with_capacity(incoming.len());
    for value in incoming {
        match items
            .iter()
            .position(|existing| same_value(existing, &value))
        {
            Some(i) => {
                if let Some(existing) = items.get_mut(i) {
                    merge_into(existing, value);
                }
                written.push(i);
            }
            None => {
                items.push(value);
                written.push(items.len() - 1);
            }
        }
    }
    written
}

/// Two values are the same if equal, or if complex with equal `value`s and compatible
/// `type`s: Okta and Entra add `{"value": id}` members that are already present with a
/// `display` or `type`.
fn same_value(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return false;
    };
    let same_type = match (get_ci(a, "type"), get_ci(b, "type")) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.eq_ignore_ascii_case(y),
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    matches!((get_ci(a, "value"), get_ci(b, "value")), (Some(x), Some(y)) if x == y) && same_type
}

/// RFC 7644 §3.5.2: setting `primary` true on a value clears it on the others; RFC 7643
/// §2.4: at most one value may be primary, so writing two primaries is `invalidValue`.
pub(super) fn enforce_primary(items: &mut [Value], written: &[usize]) -> Result<(), PatchError> {
    let mut winners: Vec<usize> = written
        .iter()
        .copied()
        .filter(|&i| items.get(i).is_some_and(is_primary))
        .collect();
    winners.sort_unstable();
    winners.dedup();
    let winner = match winners.as_slice() {
        [] => return Ok(()),
        [one] => *one,
        _ => {
            return Err(PatchError::InvalidValue(
                "more than one value is marked primary".into(),
            ))
        }
    };
    for (i, item) in items.iter_mut().enumerate() {
        if let (true, Value::Object(fields)) = (i != winner, item) {
            if get_ci(fields, "primary") == Some(&Value::Bool(true)) {
                set_ci(fields, "primary", Value::Bool(false));
            }
        }
    }
    Ok(())
}

fn is_primary(v: &Value) -> bool {
    v.as_object().and_then(|o| get_ci(o, "primary")) == Some(&Value::Bool(true))
}

/// The value a filter of `eq` conditions describes (`type eq "work"` → `{"type": "work"}`),
/// so that `add` to `emails[type eq "work"].value` can create the missing value
/// (RFC 7644 §3.5.2.1: "If the target location does not exist, the attribute and value are
/// added"). Any other filter describes no single value.
pub(super) fn value_described_by(filter: &Filter) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare {
            attr,
            op: crate::scim::filter::CompareOp::Eq,
            value,
        } if attr.sub.is_none() => {
            let value = match value {
                CompValue::Str(s) => Value::from(s.as_str()),
                CompValue::Num(n) => Value::Number(n.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Null => return None,
            };
            Some(Map::from_iter([(attr.name.clone(), value)]))
        }
        Filter::And(items) => items.iter().try_fold(Map::new(), |mut acc, item| {
            acc.extend(value_described_by(item)?);
            Some(acc)
        }),
        _ => None,
    }
}
