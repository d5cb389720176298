//! The policy over a PatchOp body (RFC 7644 §3.5.2), operation by operation: one that touches a
//! withheld attribute goes, values are cut like a resource's, and a value filter that tests a
//! withheld attribute refuses the request.

use serde_json::Value;

use super::filter;
use super::select::{Loc, Verdict};
use super::walk::Walk;
use super::{Reason, Refusal};
use crate::scim::path::{key_ci, PatchPath};

/// Walks `Operations`, removing the operations that lose their meaning. Anything that is not a
/// PatchOp shape is left for the PATCH parser to refuse.
pub fn apply(walk: &mut Walk<'_>, body: &mut Value) -> Result<(), Refusal> {
    let Some(body) = body.as_object_mut() else {
        return Ok(());
    };
    let Some(key) = key_ci(body, "Operations").cloned() else {
        return Ok(());
    };
    let Some(Value::Array(ops)) = body.get_mut(&key) else {
        return Ok(());
    };
    let before = ops.len();
    let mut keep = Vec::with_capacity(before);
    for (i, op) in ops.iter_mut().enumerate() {
        keep.push(operation(walk, op).map_err(|r| r.in_operation(i + 1))?);
    }
    let mut keep = keep.into_iter();
    ops.retain(|_| keep.next().unwrap_or(true));
    walk.out.no_operations_left = before > 0 && ops.is_empty();
    Ok(())
}

/// One operation. Returns whether it stays.
fn operation(walk: &mut Walk<'_>, op: &mut Value) -> Result<bool, Refusal> {
    let Some(op) = op.as_object_mut() else {
        return Ok(true);
    };
    let path = match key_ci(op, "path").map(|k| &op[k]) {
        None | Some(Value::Null) => None,
        // The text is not echoed: an unreadable filter may hold a value.
        Some(Value::String(p)) => {
            Some(PatchPath::parse(p).map_err(|_| Refusal::new("path", Reason::UnreadablePath))?)
        }
        Some(_) => return Err(Refusal::new("path", Reason::UnreadablePath)),
    };
    let value_key = key_ci(op, "value").cloned();
    let value = value_key.and_then(|k| op.get_mut(&k));
    match path {
        None => without_path(walk, value),
        Some(path) => with_path(walk, &path, value),
    }
}

/// A value without path is a partial resource whose keys may be paths of their own
/// (`"name.givenName"`, `"urn:…:enterprise:2.0:User:employeeNumber"`), as Entra sends.
fn without_path(walk: &mut Walk<'_>, value: Option<&mut Value>) -> Result<bool, Refusal> {
    match value {
        Some(Value::Object(obj)) => Ok(!walk.members(obj, &[])?),
        _ => Ok(true),
    }
}

fn with_path(
    walk: &mut Walk<'_>,
    path: &PatchPath,
    value: Option<&mut Value>,
) -> Result<bool, Refusal> {
    // A path naming a whole extension (`urn:…:enterprise:2.0:User`), as some clients write.
    if let Some(urn) = path
        .attr
        .as_urn()
        .filter(|u| path.filter.is_none() && walk.rt.has_schema(u))
    {
        return match value {
            Some(v) => walk.extension(&urn, v),
            None if walk.rules.lists.extension(&urn) == Some(false) => {
                walk.note_dropped(urn);
                Ok(false)
            }
            None => Ok(true),
        };
    }
    let target = path.target();
    let loc = Loc::of(&target);
    if walk.rules.lists.judge(walk.rt, &loc) == Verdict::Drop {
        walk.note_dropped(loc.path());
        return Ok(false);
    }
    if let Some(f) = &path.filter {
        filter::check_value_filter(&walk.rules.lists, walk.rt, &path.attr, f)?;
    }
    match value {
        Some(v) => walk.attribute(loc, v),
        None => Ok(true),
    }
}
