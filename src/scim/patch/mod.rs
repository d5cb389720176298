//! PATCH (RFC 7644 §3.5.2): parse a PatchOp message and apply its operations to a JSON
//! resource, all or nothing, with the error `scimType`s of RFC 7644 §3.12.
//!
//! The work is bounded and close to linear, since it runs on an async worker (and in the
//! memory store under its write lock): a request carries at most [`MAX_OPERATIONS`]
//! operations of at most [`MAX_VALUES`] values each, duplicates are found through hash maps
//! (`same`), and runs of member removals take one pass (`runs`). What remains is a pass over
//! an attribute's values for some operations, and those passes together examine at most
//! [`MAX_EXAMINED`] values (`budget`).

mod apply;
mod budget;
mod kept;
mod removal;
mod runs;
mod same;
mod target;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_idp;
#[cfg(test)]
mod tests_judge;
#[cfg(test)]
mod tests_large;

use std::borrow::Cow;

use serde_json::Value;

pub use apply::describes_extension;
use budget::Budget;
pub use kept::not_kept;

use super::error::{ScimError, ScimType};
use super::filter::{AttributeInfo, FilterError};
use super::path::{get_ci, PatchPath, PathError};
use super::urn;

/// The most operations one PATCH may carry. Each operation may cost a pass over the values of
/// the attribute it names, so this bounds the work per request for a resource of a given size.
/// IdPs send far fewer: Entra batches group member changes a few hundred at most per request,
/// Okta one `remove` per member alongside one `add` for all, and servers they provision set
/// lower caps still (AWS IAM Identity Center 100 membership changes, IBM Verify 2,500). An
/// Entra value-array remove counts one operation per member, as the rule packs split it.
pub const MAX_OPERATIONS: usize = 1_000;

/// The most values one operation may write: the elements of a multi-valued attribute (a group
/// member is one value, whatever its sub-attributes), and the attributes of a path-less or
/// extension object. Ten times the largest member batches IdPs are known to send; a larger
/// change is split across requests, as IdPs already do.
pub const MAX_VALUES: usize = 10_000;

/// The most values of the resource one PATCH may examine: each operation on a multi-valued
/// attribute counts the values the attribute holds (times the comparisons in its filter), since
/// it may look at each; a run of member removals counts one pass. That is 100 passes over a
/// group of 20,000, or a run of removals and an add (Okta's shape) on a group of a million.
pub const MAX_EXAMINED: usize = 2_000_000;

/// The most members an object of the resource may have after a PATCH. Attribute names are
/// matched ignoring case (RFC 7643 §2.1), which for a name not yet present means comparing it
/// with every member, so objects a request could grow without bound would make that quadratic.
/// No SCIM schema comes near: a User has about 25 attributes, a complex attribute under 10.
pub const MAX_MEMBERS: usize = 1_000;

/// The `op` of a PATCH operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

impl OpKind {
    /// Accepts any case: Entra sends "Add"/"Replace"/"Remove" (RFC 7644 §3.5.2 names the
    /// values but does not make them case-sensitive; RFC 7643 §2.1 treats names that way).
    pub fn parse(op: &str) -> Option<Self> {
        [Self::Add, Self::Remove, Self::Replace]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(op))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

/// One element of `Operations`. Its value is borrowed from the parsed body: applying an
/// operation copies what it writes, so parsing need not copy it first.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOperation<'a> {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Cow<'a, Value>>,
}

/// A parsed `urn:ietf:params:scim:api:messages:2.0:PatchOp` message.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchRequest<'a> {
    pub operations: Vec<PatchOperation<'a>>,
}

/// Why a PATCH was refused; each variant but `TooLarge` is one `scimType` of RFC 7644 §3.12 and
/// answers 400. Details name paths and operation numbers, never attribute values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// Past one of the bounds above: 413, as RFC 7644 §3.7.4 answers a Bulk request past
    /// `maxOperations`, with the bound in the detail and, as in its example, no `scimType`.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    InvalidSyntax(String),
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    NoTarget(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    Mutability(String),
}

impl PatchError {
    /// The `scimType` of a 400. `TooLarge` is a 413 that carries none; `tooMany` is the
    /// nearest keyword for callers that want one anyway.
    pub fn scim_type(&self) -> ScimType {
        match self {
            Self::TooLarge(_) => ScimType::TooMany,
            Self::InvalidSyntax(_) => ScimType::InvalidSyntax,
            Self::InvalidPath(_) => ScimType::InvalidPath,
            Self::InvalidFilter(_) => ScimType::InvalidFilter,
            Self::NoTarget(_) => ScimType::NoTarget,
            Self::InvalidValue(_) => ScimType::InvalidValue,
            Self::Mutability(_) => ScimType::Mutability,
        }
    }

    /// Prefixes the detail with the (1-based) number of the failing operation.
    fn in_operation(self, index: usize) -> Self {
        let prefix = |d: String| format!("Operations[{index}]: {d}");
        match self {
            Self::TooLarge(d) => Self::TooLarge(prefix(d)),
            Self::InvalidSyntax(d) => Self::InvalidSyntax(prefix(d)),
            Self::InvalidPath(d) => Self::InvalidPath(prefix(d)),
            Self::InvalidFilter(d) => Self::InvalidFilter(prefix(d)),
            Self::NoTarget(d) => Self::NoTarget(prefix(d)),
            Self::InvalidValue(d) => Self::InvalidValue(prefix(d)),
            Self::Mutability(d) => Self::Mutability(prefix(d)),
        }
    }
}

impl From<PathError> for PatchError {
    fn from(e: PathError) -> Self {
        Self::InvalidPath(e.to_string())
    }
}

impl From<FilterError> for PatchError {
    fn from(e: FilterError) -> Self {
        Self::InvalidFilter(e.to_string())
    }
}

impl From<PatchError> for ScimError {
    fn from(e: PatchError) -> Self {
        match e {
            PatchError::TooLarge(detail) => ScimError::new(413, detail),
            e => ScimError::with_type(400, e.scim_type(), e.to_string()),
        }
    }
}

impl<'a> PatchRequest<'a> {
    /// Reads a PatchOp body: `schemas` must name the PatchOp URN and `Operations` must hold
    /// one or more operations (RFC 7644 §3.5.2), within the bounds above. Member names are
    /// matched ignoring case.
    pub fn from_json(body: &'a Value) -> Result<Self, PatchError> {
        let syntax = |m: &str| PatchError::InvalidSyntax(m.to_string());
        let body = body
            .as_object()
            .ok_or_else(|| syntax("the PATCH body must be a JSON object"))?;
        let names_patch_op = get_ci(body, "schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter().any(|u| {
                    u.as_str()
                        .is_some_and(|u| u.eq_ignore_ascii_case(urn::PATCH_OP))
                })
            });
        if !names_patch_op {
            return Err(syntax(
                "\"schemas\" must contain urn:ietf:params:scim:api:messages:2.0:PatchOp",
            ));
        }
        let ops = get_ci(body, "Operations")
            .and_then(Value::as_array)
            .filter(|ops| !ops.is_empty())
            .ok_or_else(|| syntax("\"Operations\" must be an array of one or more operations"))?;
        if ops.len() > MAX_OPERATIONS {
            return Err(PatchError::TooLarge(format!(
                "the request has {} operations; a PATCH may carry at most {MAX_OPERATIONS}, \
                 so a larger change must be split across requests",
                ops.len()
            )));
        }
        let operations = ops
            .iter()
            .enumerate()
            .map(|(i, op)| parse_operation(op).map_err(|e| e.in_operation(i + 1)))
            .collect::<Result<_, _>>()?;
        Ok(Self { operations })
    }

    /// The same request owning its values, to outlive the body it was parsed from.
    pub fn into_owned(self) -> PatchRequest<'static> {
        let operations = self.operations.into_iter().map(|op| PatchOperation {
            op: op.op,
            path: op.path,
            value: op.value.map(|v| Cow::Owned(v.into_owned())),
        });
        PatchRequest {
            operations: operations.collect(),
        }
    }

    /// Applies the operations in order, each to the result of the one before, to `resource`,
    /// which is changed only if all succeed (RFC 7644 §3.5.2). Returns whether anything
    /// changed, so a no-op PATCH need not bump `meta.lastModified` (RFC 7644 §3.5.2.1).
    pub fn apply(
        &self,
        resource: &mut Value,
        info: &dyn AttributeInfo,
    ) -> Result<bool, PatchError> {
        self.run(resource, info, false)
    }

    /// As [`Self::apply`], for judging the request against a made-up resource: an operation
    /// with a `path` whose target is not there (`noTarget`: a filter that selects nothing, a
    /// remove of an absent attribute) is passed over, since what the real resource holds is
    /// unknown, and the operations after it are still judged.
    pub fn apply_where_found(
        &self,
        resource: &mut Value,
        info: &dyn AttributeInfo,
    ) -> Result<bool, PatchError> {
        self.run(resource, info, true)
    }

    /// What [`Self::apply_where_found`] would refuse on a resource that holds none of the
    /// attributes the operations name, found without writing: each operation's shape, the
    /// mutability rules (RFC 7643 §2.2) and its value's multiplicity. Each operation is judged
    /// on its own, so what only a resource's values decide (what a filter selects, whether an
    /// immutable attribute is already set) is left to whoever applies the request.
    pub fn judge(&self, resource: &Value, info: &dyn AttributeInfo) -> Result<(), PatchError> {
        self.operations.iter().enumerate().try_for_each(|(i, op)| {
            apply::judge(resource, op, info).map_err(|e| e.in_operation(i + 1))
        })
    }

    fn run(
        &self,
        resource: &mut Value,
        info: &dyn AttributeInfo,
        pass_over_missing: bool,
    ) -> Result<bool, PatchError> {
        let mut work = resource.clone();
        let mut budget = Budget::new();
        let mut next = 0;
        while next < self.operations.len() {
            let ops = &self.operations[next..];
            let applied =
                budget
                    .charge(&work, &ops[0])
                    .and_then(|()| match runs::run_len(&work, ops) {
                        0 => apply::operation(&mut work, &ops[0], info).map(|()| 1),
                        run => runs::apply_run(&mut work, &ops[..run], info).map(|()| run),
                    });
            next += match applied {
                Ok(n) => n,
                Err(PatchError::NoTarget(_)) if pass_over_missing && ops[0].path.is_some() => 1,
                Err(e) => return Err(e.in_operation(next + 1)),
            };
        }
        let changed = work != *resource;
        if changed {
            *resource = work;
        }
        Ok(changed)
    }
}

fn parse_operation(op: &Value) -> Result<PatchOperation<'_>, PatchError> {
    let syntax = |m: &str| PatchError::InvalidSyntax(m.to_string());
    let op = op
        .as_object()
        .ok_or_else(|| syntax("an operation must be a JSON object"))?;
    let kind = get_ci(op, "op")
        .and_then(Value::as_str)
        .and_then(OpKind::parse)
        .ok_or_else(|| syntax("\"op\" must be \"add\", \"remove\" or \"replace\""))?;
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(PatchPath::parse(p)?),
        Some(_) => return Err(PatchError::InvalidPath("\"path\" must be a string".into())),
    };
    let value = get_ci(op, "value").map(Cow::Borrowed);
    let count = value.as_deref().map_or(0, values_in);
    if count > MAX_VALUES {
        return Err(PatchError::TooLarge(format!(
            "\"value\" holds {count} values; an operation may write at most {MAX_VALUES}, so a \
             larger change must be split across requests"
        )));
    }
    match (kind, value.as_deref()) {
        // A value on remove is not RFC 7644 §3.5.2.2; ignoring it would turn "remove these
        // members" into "remove all members", so it is refused instead.
        (OpKind::Remove, Some(v)) if !v.is_null() => Err(syntax(
            "remove takes no \"value\"; select values with a filter in \"path\"",
        )),
        (OpKind::Add | OpKind::Replace, None) => Err(PatchError::InvalidValue(format!(
            "{} requires a \"value\"",
            kind.as_str()
        ))),
        _ => Ok(PatchOperation {
            op: kind,
            path,
            value,
        }),
    }
}

/// The values an operation writes, as [`MAX_VALUES`] counts them: each element of an array,
/// and each member of an object (counting the values of a member that holds an array or
/// object instead, so an extension object counts its attributes).
fn values_in(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.len(),
        Value::Object(fields) => fields.values().map(|v| values_in(v).max(1)).sum(),
        _ => 1,
    }
}
