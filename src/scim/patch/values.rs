//! Value-level helpers for PATCH: finding and creating schema containers, merging complex
//! values, appending to multi-valued attributes without duplicates, and the `primary` rule.

use serde_json::{Map, Value};

use super::same::{same_value, SameValues};
use super::{PatchError, MAX_MEMBERS};
use crate::scim::filter::{CompValue, Filter};
use crate::scim::path::{get_ci, is_core_urn, key_ci};
use crate::scim::urn;

/// The container of schema `urn` (the resource itself for none or the core URN), creating
/// the extension object and listing it in `schemas` when `create` (RFC 7643 §3).
pub(super) fn container_mut<'a>(
    res: &'a mut Value,
    urn: Option<&str>,
    create: bool,
) -> Result<Option<&'a mut Map<String, Value>>, PatchError> {
    let Some(urn) = urn else {
        return Ok(res.as_object_mut());
    };
    let is_core = is_core_urn(res, urn);
    let Some(top) = res.as_object_mut() else {
        return Ok(None);
    };
    let key = match key_ci(top, urn).cloned() {
        Some(key) => key,
        None if is_core => return Ok(Some(top)),
        None if create => {
            room_for(top, urn)?;
            add_schema(top, urn);
            top.insert(urn.to_string(), Value::Object(Map::new()));
            urn.to_string()
        }
        None => return Ok(None),
    };
    Ok(top.get_mut(&key).and_then(Value::as_object_mut))
}

/// The container of schema `urn`, as [`container_mut`] finds it without creating it.
pub(super) fn container<'a>(res: &'a Value, urn: Option<&str>) -> Option<&'a Map<String, Value>> {
    let top = res.as_object()?;
    let Some(urn) = urn else {
        return Some(top);
    };
    match key_ci(top, urn) {
        Some(key) => top.get(key)?.as_object(),
        None => is_core_urn(res, urn).then_some(top),
    }
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
pub(super) fn set_ci(
    obj: &mut Map<String, Value>,
    name: &str,
    value: Value,
) -> Result<(), PatchError> {
    let key = match key_ci(obj, name) {
        Some(key) => key.clone(),
        None => {
            room_for(obj, name)?;
            name.to_string()
        }
    };
    obj.insert(key, value);
    Ok(())
}

/// A name not yet in `obj` is found by comparing it with every member ignoring case, so an
/// object that a request could grow without bound would make that quadratic ([`MAX_MEMBERS`]).
fn room_for(obj: &Map<String, Value>, name: &str) -> Result<(), PatchError> {
    if obj.len() < MAX_MEMBERS {
        return Ok(());
    }
    Err(PatchError::TooLarge(format!(
        "adding {name:.120} would give one object of the resource more than {MAX_MEMBERS} \
         members, the most a PATCH may leave in one"
    )))
}

pub(super) fn remove_ci(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = key_ci(obj, name).cloned()?;
    obj.remove(&key)
}

/// Merges sub-attributes into a complex value: given ones replace, others stay, null ones
/// are removed (RFC 7644 §3.5.2.3, RFC 7643 §2.5).
pub(super) fn merge_into(target: &mut Value, incoming: Value) -> Result<(), PatchError> {
    match (target, incoming) {
        (Value::Object(target), Value::Object(incoming)) => {
            for (name, value) in incoming {
                if value.is_null() {
                    remove_ci(target, &name);
                } else {
                    set_ci(target, &name, value)?;
                }
            }
        }
        (target, incoming) => *target = incoming,
    }
    Ok(())
}

/// Up to this many added values, comparing each with every value costs less than filing
/// them all: filing takes about five comparisons' time (`benches/core.rs`, group "patch").
const SCAN_UP_TO: usize = 4;

/// Appends values to a multi-valued attribute; a value already present (the first that
/// [`same_value`] holds for, including values appended just before) is merged into instead of
/// being added twice (RFC 7644 §3.5.2.1). Returns the indices written.
pub(super) fn append(
    items: &mut Vec<Value>,
    incoming: Vec<Value>,
) -> Result<Vec<usize>, PatchError> {
    if incoming.len() <= SCAN_UP_TO {
        append_by_scan(items, incoming)
    } else {
        append_indexed(items, incoming)
    }
}

/// [`append`], comparing each added value with the values before it: O(N·K).
pub(super) fn append_by_scan(
    items: &mut Vec<Value>,
    incoming: Vec<Value>,
) -> Result<Vec<usize>, PatchError> {
    let mut written = Vec::with_capacity(incoming.len());
    for value in incoming {
        let at = match items.iter().position(|e| same_value(e, &value)) {
            Some(i) => {
                if let Some(existing) = items.get_mut(i) {
                    merge_into(existing, value)?;
                }
                i
            }
            None => {
                items.push(value);
                items.len() - 1
            }
        };
        written.push(at);
    }
    Ok(written)
}

/// [`append`], finding the values before an added one by hashing: O((N + K) log N).
pub(super) fn append_indexed(
    items: &mut Vec<Value>,
    incoming: Vec<Value>,
) -> Result<Vec<usize>, PatchError> {
    let mut index = SameValues::new(items, incoming.len());
    let mut written = Vec::with_capacity(incoming.len());
    for value in incoming {
        let at = match index.first_same(items, &value) {
            Some(i) => {
                if let Some(existing) = items.get_mut(i) {
                    // A merge may give the value a `type` it lacked: it is filed again.
                    index.remove(i, existing);
                    merge_into(existing, value)?;
                    index.insert(i, existing);
                }
                i
            }
            None => {
                index.insert(items.len(), &value);
                items.push(value);
                items.len() - 1
            }
        };
        written.push(at);
    }
    Ok(written)
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
        _ => return Err(two_primaries()),
    };
    for (i, item) in items.iter_mut().enumerate() {
        if let (true, Value::Object(fields)) = (i != winner, item) {
            if get_ci(fields, "primary") == Some(&Value::Bool(true)) {
                set_ci(fields, "primary", Value::Bool(false))?;
            }
        }
    }
    Ok(())
}

/// What [`enforce_primary`] refuses of values written together, without writing them.
pub(super) fn at_most_one_primary(items: &[Value]) -> Result<(), PatchError> {
    match items.iter().filter(|v| is_primary(v)).nth(1) {
        Some(_) => Err(two_primaries()),
        None => Ok(()),
    }
}

fn two_primaries() -> PatchError {
    PatchError::InvalidValue("more than one value is marked primary".into())
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
