//! PATCH (RFC 7644 §3.5.2): parse a PatchOp message and apply its operations to a JSON
//! resource, all or nothing, with the error `scimType`s of RFC 7644 §3.12.

mod apply;
mod target;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_idp;

use serde_json::Value;

use super::error::{ScimError, ScimType};
use super::filter::{AttributeInfo, FilterError};
use super::path::{get_ci, PatchPath, PathError};
use super::urn;

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

/// One element of `Operations`.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOperation {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// A parsed `urn:ietf:params:scim:api:messages:2.0:PatchOp` message.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

/// Why a PATCH was refused; each variant is one `scimType` of RFC 7644 §3.12 and answers 400.
/// Details name paths and operation numbers, never attribute values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
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
    pub fn scim_type(&self) -> ScimType {
        match self {
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
        ScimError::with_type(400, e.scim_type(), e.to_string())
    }
}

impl PatchRequest {
    /// Reads a PatchOp body: `schemas` must name the PatchOp URN and `Operations` must hold
    /// one or more operations (RFC 7644 §3.5.2). Member names are matched ignoring case.
    pub fn from_json(body: &Value) -> Result<Self, PatchError> {
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
        let operations = ops
            .iter()
            .enumerate()
            .map(|(i, op)| parse_operation(op).map_err(|e| e.in_operation(i + 1)))
            .collect::<Result<_, _>>()?;
        Ok(Self { operations })
    }

    /// Applies the operations in order, each to the result of the one before, to `resource`,
    /// which is changed only if all succeed (RFC 7644 §3.5.2). Returns whether anything
    /// changed, so a no-op PATCH need not bump `meta.lastModified` (RFC 7644 §3.5.2.1).
    pub fn apply(
        &self,
        resource: &mut Value,
        info: &dyn AttributeInfo,
    ) -> Result<bool, PatchError> {
        let mut work = resource.clone();
        for (i, op) in self.operations.iter().enumerate() {
            apply::operation(&mut work, op, info).map_err(|e| e.in_operation(i + 1))?;
        }
        let changed = work != *resource;
        if changed {
            *resource = work;
        }
        Ok(changed)
    }
}

fn parse_operation(op: &Value) -> Result<PatchOperation, PatchError> {
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
    let value = get_ci(op, "value").cloned();
    match (kind, &value) {
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
