//! Removals at one PATCH path (RFC 7644 §3.5.2.2): an attribute, a sub-attribute, or the
//! values of a multi-valued attribute that a filter selects.

use serde_json::Value;

use super::values::{container_mut, remove_ci};
use super::PatchError;
use crate::scim::filter::{matches_each, matches_value, AttributeInfo, EqualsAny, Filter};
use crate::scim::path::{key_ci, AttrPath, PatchPath};

/// `remove` at `path` (RFC 7644 §3.5.2.2). Removing what is not there succeeds: the
/// resource already is as asked, and IdPs treat a 400 as a permanent failure.
pub(super) fn remove(
    res: &mut Value,
    path: &PatchPath,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    let attr = &path.attr;
    let Some(container) = container_mut(res, attr.urn.as_deref(), false)? else {
        return Ok(());
    };
    let Some(key) = key_ci(container, &attr.name).cloned() else {
        return Ok(());
    };
    match (&path.filter, attr.sub.as_deref().or(path.sub.as_deref())) {
        (None, None) => {
            container.remove(&key);
        }
        (filter, sub) => {
            let Some(current) = container.get_mut(&key) else {
                return Ok(());
            };
            remove_within(current, filter.as_ref(), sub, attr, info)?;
            let now_empty = match container.get(&key) {
                Some(Value::Array(items)) => items.is_empty(),
                Some(Value::Object(fields)) => fields.is_empty(),
                other => other.is_none_or(Value::is_null),
            };
            if now_empty {
                container.remove(&key);
            }
        }
    }
    Ok(())
}

/// Removes the selected values (all, or those the filter matches), or only their `sub`.
/// Without a filter, a sub-attribute of a multi-valued attribute goes from every value.
fn remove_within(
    current: &mut Value,
    filter: Option<&Filter>,
    sub: Option<&str>,
    attr: &AttrPath,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    // A value filter on a singular complex attribute (Entra clears a manager with
    // `manager[value eq "…"]`): it selects the value or nothing, and selecting nothing is
    // noTarget, never a success that changed nothing.
    if let (Some(f), true) = (filter, current.is_object()) {
        if !matches_value(f, current, attr, info)? {
            return Err(PatchError::NoTarget(format!(
                "{attr} does not match the filter"
            )));
        }
        match (sub, &mut *current) {
            (Some(sub), Value::Object(fields)) => {
                remove_ci(fields, sub);
            }
            _ => *current = Value::Null,
        }
        return Ok(());
    }
    match (current, filter) {
        (Value::Object(fields), None) => {
            if let Some(sub) = sub {
                remove_ci(fields, sub);
            }
        }
        (Value::Array(items), filter) => {
            let selected = match filter {
                Some(f) => selected(items, f, attr, info)?,
                None => vec![true; items.len()],
            };
            match sub {
                Some(sub) => {
                    for (item, _) in items.iter_mut().zip(&selected).filter(|(_, s)| **s) {
                        if let Value::Object(fields) = item {
                            remove_ci(fields, sub);
                        }
                    }
                }
                None => {
                    let mut selected = selected.into_iter();
                    items.retain(|_| !selected.next().unwrap_or(false));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether each value of `items` matches the filter, in order.
fn selected(
    items: &[Value],
    filter: &Filter,
    attr: &AttrPath,
    info: &dyn AttributeInfo,
) -> Result<Vec<bool>, PatchError> {
    Ok(matches_each(filter, items, attr, info)?)
}

/// Removes the values of the multi-valued attribute `attr` that `literals` matches, and the
/// attribute once none is left: what `remove` of each `attr[name eq "…"]` in turn leaves.
pub(super) fn remove_matching(
    res: &mut Value,
    attr: &AttrPath,
    literals: &EqualsAny,
) -> Result<(), PatchError> {
    let Some(container) = container_mut(res, attr.urn.as_deref(), false)? else {
        return Ok(());
    };
    let Some(key) = key_ci(container, &attr.name).cloned() else {
        return Ok(());
    };
    if let Some(Value::Array(items)) = container.get_mut(&key) {
        items.retain(|item| !literals.matches(item));
        if items.is_empty() {
            container.remove(&key);
        }
    }
    Ok(())
}
