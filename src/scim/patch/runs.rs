//! Runs of `remove attr[name eq "…"]`: Okta removes group members with one such operation
//! per member, and Entra's legacy value-array remove becomes the same once the rule packs have
//! split it. Applied one by one, each scans every member: removing K of N costs O(N·K). A run
//! on one attribute is applied in one pass instead, with the same result: each operation
//! removes the values its filter matches, so the run removes those any of them matches.

use serde_json::Value;

use super::values::container;
use super::{apply, OpKind, PatchError, PatchOperation};
use crate::scim::filter::{AttributeInfo, EqualsAny};
use crate::scim::path::{key_ci, AttrPath};

/// How many operations from the start of `ops` form a run: removals by `name eq "<string>"`
/// on one multi-valued attribute, with the same `name` and no sub-attribute, while the
/// attribute holds an array (on a singular value such a filter means something else). Fewer
/// than two is no run.
pub(super) fn run_len(res: &Value, ops: &[PatchOperation]) -> usize {
    let Some((attr, name)) = ops.first().and_then(removal) else {
        return 0;
    };
    let holds_array = container(res, attr.urn.as_deref())
        .and_then(|c| c.get(key_ci(c, &attr.name)?))
        .is_some_and(Value::is_array);
    if !holds_array {
        return 0;
    }
    let len = ops
        .iter()
        .take_while(|op| removal(op).is_some_and(|(a, n)| a == attr && n == name))
        .count();
    if len < 2 {
        return 0;
    }
    len
}

/// Applies a run that [`run_len`] found.
pub(super) fn apply_run(
    res: &mut Value,
    run: &[PatchOperation],
    info: &dyn AttributeInfo,
) -> Result<(), PatchError> {
    let first = run.first();
    let (Some(path), Some((name, _))) =
        (first.and_then(|op| op.path.as_ref()), first.and_then(term))
    else {
        return Ok(());
    };
    let literals = run.iter().filter_map(term).map(|(_, literal)| literal);
    let literals = EqualsAny::new(&path.attr, name, literals, info);
    apply::remove_each(res, path, &literals, info)
}

/// The attribute and the filter's name of a removal that can be part of a run.
fn removal<'o>(op: &'o PatchOperation<'_>) -> Option<(&'o AttrPath, &'o AttrPath)> {
    let path = op.path.as_ref()?;
    let (name, _) = term(op)?;
    Some((&path.attr, name))
}

/// The filter's name and literal, if `op` is a removal that can be part of a run.
fn term<'o>(op: &'o PatchOperation<'_>) -> Option<(&'o AttrPath, &'o str)> {
    let path = op.path.as_ref()?;
    let plain = op.op == OpKind::Remove && path.attr.sub.is_none() && path.sub.is_none();
    plain
        .then(|| EqualsAny::term(path.filter.as_ref()?))
        .flatten()
}
