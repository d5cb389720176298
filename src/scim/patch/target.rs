//! Writes at one PATCH path: an attribute, a sub-attribute, or the values of a multi-valued
//! attribute that a filter selects (RFC 7644 §3.5.2.1, §3.5.2.3).

use serde_json::{Map, Value};

use super::values::{
    append, at_most_one_primary, container_mut, enforce_primary, merge_into, remove_ci, set_ci,
    strip_nulls, value_described_by,
};
use super::{OpKind, PatchError};
use crate::scim::filter::{matches_each, AttributeInfo, Filter};
use crate::scim::path::{key_ci, AttrPath, PatchPath};

/// `add` or `replace` at `path`.
pub(super) fn set(
    res: &mut Value,
    path: &PatchPath,
    kind: OpKind,
    value: Value,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    let value = strip_nulls(value);
    if let Some(filter) = &path.filter {
        return set_filtered(res, path, filter, kind, value, info);
    }
    let attr = &path.attr;
    let container =
        container_mut(res, attr.urn.as_deref(), true)?.ok_or_else(|| no_container(attr))?;
    match &attr.sub {
        None => set_attr(container, &attr.name, kind, value, info.multi_valued(attr)),
        Some(sub) => set_sub(container, attr, sub, kind, value, info),
    }
}

/// What [`set`] would refuse at `path` in a resource that held nothing there: a value of the
/// wrong multiplicity, or more than one primary. With a filter there is nothing to refuse:
/// `add` would create the value the filter describes, `replace` would find none.
pub(super) fn judge(
    path: &PatchPath,
    value: &Value,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    let attr = &path.attr;
    if path.filter.is_some() || value.is_null() {
        return Ok(());
    }
    let (name, multi) = match &attr.sub {
        None => (&attr.name, info.multi_valued(attr)),
        Some(sub) => (sub, info.multi_valued(&attr.with_sub(sub))),
    };
    match (multi, value) {
        (Some(false), Value::Array(_)) => {
            Err(PatchError::InvalidValue(format!("{name} is single-valued")))
        }
        (_, Value::Array(items)) => at_most_one_primary(items),
        _ => Ok(()),
    }
}

fn no_container(attr: &AttrPath) -> PatchError {
    PatchError::NoTarget(format!(
        "the schema of {attr} holds no attributes in this resource"
    ))
}

/// Sets one attribute in `obj` by the rules of RFC 7644 §3.5.2.1 (add) and §3.5.2.3 (replace).
fn set_attr(
    obj: &mut Map<String, Value>,
    name: &str,
    kind: OpKind,
    value: Value,
    multi: Option<bool>,
) -> Result<(), PatchError> {
    if value.is_null() {
        // Null means unassigned (RFC 7643 §2.5): replace clears, add has nothing to add.
        if kind == OpKind::Replace {
            remove_ci(obj, name);
        }
        return Ok(());
    }
    let current = key_ci(obj, name)
        .cloned()
        .and_then(|k| obj.get_mut(&k))
        .filter(|v| !v.is_null());
    match current {
        // add to a multi-valued attribute appends (§3.5.2.1).
        Some(Value::Array(items)) if kind == OpKind::Add => {
            let written = append(items, into_vec(value))?;
            return enforce_primary(items, &written);
        }
        // A complex value keeps the sub-attributes not given (§3.5.2.3).
        Some(current @ Value::Object(_)) if value.is_object() => {
            return merge_into(current, value);
        }
        Some(Value::Array(_)) => return replace_all(obj, name, into_vec(value)),
        _ => {}
    }
    match (multi, value) {
        (Some(false), Value::Array(_)) => {
            Err(PatchError::InvalidValue(format!("{name} is single-valued")))
        }
        (Some(true), v) => replace_all(obj, name, into_vec(v)),
        (_, Value::Array(items)) => replace_all(obj, name, items),
        (_, v) => set_ci(obj, name, v),
    }
}

fn into_vec(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        single => vec![single],
    }
}

/// Replaces all values of a multi-valued attribute; none left means unassigned (RFC 7643 §2.5).
fn replace_all(
    obj: &mut Map<String, Value>,
    name: &str,
    mut items: Vec<Value>,
) -> Result<(), PatchError> {
    if items.is_empty() {
        remove_ci(obj, name);
        return Ok(());
    }
    let all: Vec<usize> = (0..items.len()).collect();
    enforce_primary(&mut items, &all)?;
    set_ci(obj, name, Value::Array(items))
}

/// `name.givenName`: a sub-attribute of a singular complex attribute, created if missing.
fn set_sub(
    container: &mut Map<String, Value>,
    attr: &AttrPath,
    sub: &str,
    kind: OpKind,
    value: Value,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    let multi = info.multi_valued(&attr.with_sub(sub));
    match key_ci(container, &attr.name)
        .cloned()
        .and_then(|k| container.get_mut(&k))
    {
        Some(Value::Object(parent)) => set_attr(parent, sub, kind, value, multi),
        Some(Value::Array(_)) => Err(PatchError::InvalidPath(format!(
            "{} is multi-valued: select its values with a filter, as in {}[type eq \"work\"].{sub}",
            attr.parent(),
            attr.parent()
        ))),
        None | Some(Value::Null) => {
            let mut parent = Map::new();
            set_attr(&mut parent, sub, kind, value, multi)?;
            if parent.is_empty() {
                return Ok(());
            }
            set_ci(container, &attr.name, Value::Object(parent))
        }
        Some(_) => Err(PatchError::InvalidPath(format!(
            "{} has no sub-attributes",
            attr.parent()
        ))),
    }
}

/// `emails[type eq "work"]` or `emails[type eq "work"].value`.
fn set_filtered(
    res: &mut Value,
    path: &PatchPath,
    filter: &Filter,
    kind: OpKind,
    value: Value,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    let attr = &path.attr;
    let no_match = || PatchError::NoTarget(format!("no value of {attr} matches the filter"));
    let container =
        container_mut(res, attr.urn.as_deref(), kind == OpKind::Add)?.ok_or_else(no_match)?;
    // add may create the attribute; one that exists but is not multi-valued is left alone.
    let missing = key_ci(container, &attr.name)
        .and_then(|k| container.get(k))
        .is_none_or(Value::is_null);
    if kind == OpKind::Add && missing {
        set_ci(container, &attr.name, Value::Array(Vec::new()))?;
    }
    let Some(Value::Array(items)) = key_ci(container, &attr.name)
        .cloned()
        .and_then(|k| container.get_mut(&k))
    else {
        return Err(no_match());
    };
    let hits = matching(items, filter, attr, info)?;
    if hits.is_empty() {
        // §3.5.2.3: replace with a filter that matches nothing is noTarget. For add, the
        // filter's `eq` conditions describe the value to create (§3.5.2.1).
        let mut created = value_described_by(filter)
            .filter(|_| kind == OpKind::Add)
            .map(Value::Object)
            .ok_or_else(no_match)?;
        write_element(&mut created, path.sub.as_deref(), kind, value)?;
        items.push(created);
        let last = items.len() - 1;
        return enforce_primary(items, &[last]);
    }
    for &i in &hits {
        if let Some(element) = items.get_mut(i) {
            write_element(element, path.sub.as_deref(), kind, value.clone())?;
        }
    }
    enforce_primary(items, &hits)
}

/// Writes into one selected value: its sub-attribute, or the whole value (replace, per
/// §3.5.2.3 "all matching record values SHALL be replaced") or its sub-attributes (add).
fn write_element(
    element: &mut Value,
    sub: Option<&str>,
    kind: OpKind,
    value: Value,
) -> Result<(), PatchError> {
    match (sub, element) {
        (Some(sub), Value::Object(fields)) if value.is_null() => {
            remove_ci(fields, sub);
        }
        (Some(sub), Value::Object(fields)) => set_ci(fields, sub, value)?,
        (Some(sub), _) => {
            return Err(PatchError::InvalidPath(format!(
                "the selected values have no sub-attribute {sub}"
            )))
        }
        (None, element) if kind == OpKind::Replace => *element = value,
        (None, element) => merge_into(element, value)?,
    }
    Ok(())
}

fn matching(
    items: &[Value],
    filter: &Filter,
    attr: &AttrPath,
    info: &dyn AttributeInfo,
) -> Result<Vec<usize>, PatchError> {
    let selected = matches_each(filter, items, attr, info)?;
    Ok(selected
        .into_iter()
        .enumerate()
        .filter_map(|(i, hit)| hit.then_some(i))
        .collect())
}
