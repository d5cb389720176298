//! One PATCH operation: path-less values split into per-attribute writes, whole-extension
//! paths, and the mutability rules (RFC 7643 §2.2) checked before anything is written.

use serde_json::{Map, Value};

use super::values::{container_mut, is_extension, remove_extension};
use super::{removal, target, OpKind, PatchError, PatchOperation};
use crate::scim::filter::{AttributeInfo, EqualsAny, Mutability};
use crate::scim::path::{self, get_ci, AttrPath, PatchPath};

pub(super) fn operation(
    res: &mut Value,
    op: &PatchOperation,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    if !res.is_object() {
        return Err(PatchError::NoTarget(
            "the resource is not a JSON object".into(),
        ));
    }
    match (&op.path, op.op) {
        // RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails … noTarget".
        (None, OpKind::Remove) => Err(no_path()),
        (None, kind) => each_attribute(given(op)?, &mut |path, v| {
            set(res, &path, kind, v.clone(), info)
        }),
        (Some(path), OpKind::Remove) => remove(res, path, info),
        (Some(path), kind) => set(res, path, kind, given(op)?.clone(), info),
    }
}

/// What [`operation`] would refuse of `op` on `res` before writing anything, without writing:
/// its shape, the mutability rules and, for attributes `res` does not hold, the shape of
/// the value (`res` is only read). What only the values a resource holds decide (which values
/// a filter selects, whether an immutable attribute already has one) is not judged.
pub(super) fn judge(
    res: &Value,
    op: &PatchOperation,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    match (&op.path, op.op) {
        (None, OpKind::Remove) => Err(no_path()),
        (None, _) => each_attribute(given(op)?, &mut |path, v| judge_set(res, &path, v, info)),
        (Some(path), OpKind::Remove) => match whole_extension(res, path) {
            Some(_) => Ok(()),
            None => may_remove(path, info),
        },
        (Some(path), _) => judge_set(res, path, given(op)?, info),
    }
}

fn no_path() -> PatchError {
    PatchError::NoTarget("remove requires a \"path\"".into())
}

fn given<'v>(op: &'v PatchOperation) -> Result<&'v Value, PatchError> {
    op.value
        .as_deref()
        .ok_or_else(|| PatchError::InvalidValue(format!("{} requires a \"value\"", op.op.as_str())))
}

/// Without a path the value is a set of attributes, each applied as if named by a path
/// (RFC 7644 §3.5.2.1, §3.5.2.3); extension attributes sit in an object keyed by the schema
/// URN (RFC 7643 §3.3). Dotted or URN-qualified keys are not attribute names and are refused.
fn each_attribute(
    value: &Value,
    write: &mut dyn FnMut(PatchPath, &Value) -> Result<(), PatchError>,
) -> Result<(), PatchError> {
    let Value::Object(fields) = value else {
        return Err(PatchError::InvalidValue(
            "without a \"path\", \"value\" must be an object of attributes".into(),
        ));
    };
    for (name, v) in fields {
        if name
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            let Value::Object(ext) = v else {
                return Err(PatchError::InvalidValue(format!(
                    "{name:.120} must hold an object of attributes"
                )));
            };
            each_extension_attribute(name, ext, write)?;
        } else {
            write(attribute(None, name)?, v)?;
        }
    }
    Ok(())
}

/// The path of attribute `name` of schema `urn` (the core schema's when `None`).
fn attribute(urn: Option<&str>, name: &str) -> Result<PatchPath, PatchError> {
    match AttrPath::parse(name) {
        Ok(attr) if attr.urn.is_none() && attr.sub.is_none() => Ok(PatchPath {
            attr: AttrPath {
                urn: urn.map(str::to_string),
                ..attr
            },
            filter: None,
            sub: None,
        }),
        _ => Err(PatchError::InvalidValue(format!(
            "{name:.120} is not an attribute name"
        ))),
    }
}

/// The attributes of extension `urn`, each written as if named by a path. A `schemas` member
/// naming only that extension is the object describing itself, as client libraries that model
/// extensions as resources (scim2-models) serialize it; it is not an attribute, and the
/// extension's URN reaches the resource's own `schemas` when the first attribute is written.
fn each_extension_attribute(
    urn: &str,
    attrs: &Map<String, Value>,
    write: &mut dyn FnMut(PatchPath, &Value) -> Result<(), PatchError>,
) -> Result<(), PatchError> {
    for (name, v) in attrs {
        if describes_extension(name, v, urn) {
            continue;
        }
        write(attribute(Some(urn), name)?, v)?;
    }
    Ok(())
}

/// Whether the member `name: v` of extension `urn`'s object is its `schemas` naming only
/// `urn`: the object describing itself (see [`each_extension_attribute`]), not an attribute.
pub fn describes_extension(name: &str, v: &Value, urn: &str) -> bool {
    name.eq_ignore_ascii_case("schemas")
        && v.as_array().is_some_and(|items| {
            items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
        })
}

/// The URN a path names if it is a whole extension object (`urn:…:enterprise:2.0:User`).
fn whole_extension(res: &Value, path: &PatchPath) -> Option<String> {
    let urn = path
        .filter
        .is_none()
        .then(|| path.attr.as_urn())
        .flatten()?;
    is_extension(res, &urn).then_some(urn)
}

fn set(
    res: &mut Value,
    path: &PatchPath,
    kind: OpKind,
    value: Value,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    if let Some(urn) = whole_extension(res, path) {
        let attrs = extension_object(&urn, &value)?;
        return each_extension_attribute(&urn, attrs, &mut |path, v| {
            set(res, &path, kind, v.clone(), info)
        });
    }
    if check_write(res, path, &value, info)? == Verdict::Unchanged {
        return Ok(());
    }
    target::set(res, path, kind, value, info)
}

/// What [`set`] would refuse before writing; see [`judge`].
fn judge_set(
    res: &Value,
    path: &PatchPath,
    value: &Value,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    if let Some(urn) = whole_extension(res, path) {
        let attrs = extension_object(&urn, value)?;
        return each_extension_attribute(&urn, attrs, &mut |path, v| {
            judge_set(res, &path, v, info)
        });
    }
    if check_write(res, path, value, info)? == Verdict::Unchanged {
        return Ok(());
    }
    target::judge(path, value, info)
}

fn extension_object<'v>(urn: &str, value: &'v Value) -> Result<&'v Map<String, Value>, PatchError> {
    value.as_object().ok_or_else(|| {
        PatchError::InvalidValue(format!("{urn} must be set to an object of attributes"))
    })
}

fn remove(res: &mut Value, path: &PatchPath, info: &dyn AttributeInfo) -> Result<(), PatchError> {
    if let Some(urn) = whole_extension(res, path) {
        if let Some(top) = res.as_object_mut() {
            remove_extension(top, &urn);
        }
        return Ok(());
    }
    may_remove(path, info)?;
    removal::remove(res, path, info)?;
    prune_extension(res, path);
    Ok(())
}

/// A run of `remove attr[name eq "…"]` operations, one per literal (see `runs`): what
/// `remove` of each in turn does, in one pass over the values. The checks depend only on the
/// path, so the first operation's hold for all.
pub(super) fn remove_each(
    res: &mut Value,
    path: &PatchPath,
    literals: &EqualsAny,
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    if !res.is_object() {
        return Err(PatchError::NoTarget(
            "the resource is not a JSON object".into(),
        ));
    }
    may_remove(path, info)?;
    removal::remove_matching(res, &path.attr, literals)?;
    prune_extension(res, path);
    Ok(())
}

fn may_remove(path: &PatchPath, info: &dyn AttributeInfo) -> Result<(), PatchError> {
    let target = path.target();
    if matches!(
        mutability(&target, info),
        Mutability::ReadOnly | Mutability::Immutable
    ) {
        return Err(PatchError::Mutability(format!(
            "{target} cannot be removed"
        )));
    }
    // RFC 7644 §3.5.2.3: a required attribute that becomes unassigned is a mutability error.
    if path.filter.is_none() && info.required(&target) {
        return Err(PatchError::Mutability(format!("{target} is required")));
    }
    Ok(())
}

/// An extension left without attributes is unassigned, and leaves `schemas` too.
fn prune_extension(res: &mut Value, path: &PatchPath) {
    let Some(urn) = path.attr.urn.as_deref() else {
        return;
    };
    let empty = !path::is_core_urn(res, urn)
        && matches!(container_mut(res, Some(urn), false), Ok(Some(c)) if c.is_empty());
    if let (true, Some(top)) = (empty, res.as_object_mut()) {
        remove_extension(top, urn);
    }
}

#[derive(PartialEq)]
enum Verdict {
    Write,
    /// A readOnly attribute given its current value: nothing to do (Okta repeats `id`).
    Unchanged,
}

/// RFC 7643 §2.2: readOnly attributes "SHALL NOT be modified"; immutable ones may be set
/// once. Writing a readOnly attribute's current value is a no-op rather than an error, so
/// a client echoing `id` back is not refused. Unassigning a required one is refused too.
fn check_write(
    res: &Value,
    path: &PatchPath,
    value: &Value,
    info: &dyn AttributeInfo,
) -> Result<Verdict, PatchError> {
    let target = path.target();
    let unassigns = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
    if unassigns && path.filter.is_none() && info.required(&target) {
        return Err(PatchError::Mutability(format!("{target} is required")));
    }
    let mutability = mutability(&target, info);
    if !matches!(mutability, Mutability::ReadOnly | Mutability::Immutable) {
        return Ok(Verdict::Write);
    }
    let current = path
        .filter
        .is_none()
        .then(|| current_value(res, &target))
        .flatten();
    match current {
        Some(current) if current == value => Ok(Verdict::Unchanged),
        None if mutability == Mutability::Immutable && path.filter.is_none() => Ok(Verdict::Write),
        _ => Err(PatchError::Mutability(format!(
            "{target} is {}",
            if mutability == Mutability::Immutable {
                "immutable"
            } else {
                "readOnly"
            }
        ))),
    }
}

/// A sub-attribute inherits its parent's restriction (`meta` makes `meta.version` readOnly).
fn mutability(target: &AttrPath, info: &dyn AttributeInfo) -> Mutability {
    let own = info.mutability(target);
    let parent = match target.sub {
        Some(_) => info.mutability(&target.parent()),
        None => own,
    };
    match (own, parent) {
        (Mutability::ReadOnly, _) | (_, Mutability::ReadOnly) => Mutability::ReadOnly,
        (Mutability::Immutable, _) | (_, Mutability::Immutable) => Mutability::Immutable,
        (own, _) => own,
    }
}

fn current_value<'a>(res: &'a Value, target: &AttrPath) -> Option<&'a Value> {
    let attr = path::attribute(res, target)?;
    match &target.sub {
        Some(sub) => attr.as_object().and_then(|o| get_ci(o, sub)),
        None => Some(attr),
    }
    .filter(|v| !v.is_null())
}
