//! Reads and checks a BulkRequest (RFC 7644 §3.7): the size limit of §3.7.4 before anything is
//! parsed, then the shape of every operation, so that nothing runs from a request that is
//! wrong anywhere. Member names are matched ignoring case, as everywhere in SCIM.
//!
//! Missing or mistyped members are `invalidSyntax`; well-formed but unacceptable values
//! (method GET, a POST without bulkId, a repeated bulkId) are `invalidValue`, which RFC 7644
//! §3.12 describes as "a required value was missing, or the value specified was not
//! compatible with the operation".

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{refs, BulkLimits};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::json;
use crate::scim::path::{get_ci, key_ci};
use crate::scim::request::Method;
use crate::scim::urn;

/// A checked BulkRequest.
pub(super) struct Request {
    pub(super) fail_on_errors: Option<usize>,
    pub(super) operations: Vec<Operation>,
    /// The bulkIds of every POST, to tell a reference to a later POST from a dangling one.
    pub(super) declared: HashSet<String>,
}

/// One checked operation.
pub(super) struct Operation {
    pub(super) method: Method,
    /// Without trailing slash; may still hold `bulkId:` segments.
    pub(super) path: String,
    pub(super) bulk_id: Option<String>,
    pub(super) version: Option<String>,
    /// `None` for DELETE, whose data, if sent, is not forwarded.
    pub(super) data: Option<Value>,
    /// Every bulkId the path and data refer to (RFC 7644 §3.7.2).
    pub(super) refs: Vec<String>,
}

pub(super) fn request(body: &[u8], limits: &BulkLimits) -> Result<Request, ScimError> {
    // RFC 7644 §3.7.4: the limit is checked on the bytes, before any parsing.
    if body.len() > limits.max_payload_bytes {
        return Err(too_large(format!(
            "The size of the bulk operation exceeds the maxPayloadSize ({}).",
            limits.max_payload_bytes
        )));
    }
    json::check(body).map_err(|e| syntax(e.to_string()))?;
    let mut doc: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| syntax("the BulkRequest must be a JSON object"))?;
    check_schemas(&doc)?;
    let ops = match key_ci(&doc, "Operations")
        .cloned()
        .and_then(|k| doc.remove(&k))
    {
        Some(Value::Array(ops)) => ops,
        _ => return Err(syntax("\"Operations\" must be an array of operations")),
    };
    if ops.len() > limits.max_operations {
        return Err(too_large(format!(
            "The number of operations exceeds the maxOperations ({}).",
            limits.max_operations
        )));
    }
    let fail_on_errors = fail_on_errors(&doc)?;
    let operations = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| operation(op).map_err(|e| in_operation(e, i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let declared = unique_bulk_ids(&operations)?;
    Ok(Request {
        fail_on_errors,
        operations,
        declared,
    })
}

fn check_schemas(doc: &Map<String, Value>) -> Result<(), ScimError> {
    let names_bulk = get_ci(doc, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(urn::BULK_REQUEST))
            })
        });
    if names_bulk {
        Ok(())
    } else {
        Err(syntax(format!(
            "\"schemas\" must contain {}",
            urn::BULK_REQUEST
        )))
    }
}

/// `failOnErrors` (RFC 7644 §3.7): absent means "perform every operation".
fn fail_on_errors(doc: &Map<String, Value>) -> Result<Option<usize>, ScimError> {
    match get_ci(doc, "failOnErrors") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|n| *n >= 1)
            .map(|n| Some(usize::try_from(n).unwrap_or(usize::MAX)))
            .ok_or_else(|| invalid("\"failOnErrors\" must be a positive integer")),
        Some(_) => Err(syntax("\"failOnErrors\" must be an integer")),
    }
}

fn operation(op: Value) -> Result<Operation, ScimError> {
    let Value::Object(mut op) = op else {
        return Err(syntax("an operation must be a JSON object"));
    };
    let method = method(&op)?;
    let path = path(method, required_str(&op, "path")?)?;
    let bulk_id = optional_str(&op, "bulkId")?;
    if method == Method::Post && bulk_id.is_none() {
        return Err(invalid("a POST needs a \"bulkId\" (RFC 7644 §3.7)"));
    }
    if bulk_id.as_deref() == Some("") {
        return Err(invalid("\"bulkId\" must not be empty"));
    }
    let version = optional_str(&op, "version")?;
    let data = match (method, key_ci(&op, "data").cloned()) {
        (Method::Delete, _) => None,
        (_, Some(key)) => match op.remove(&key) {
            Some(data @ Value::Object(_)) => Some(data),
            _ => return Err(syntax("\"data\" must be a JSON object")),
        },
        (_, None) => return Err(invalid(format!("a {} needs \"data\"", method.as_str()))),
    };
    let refs = refs::collect(&path, data.as_ref());
    Ok(Operation {
        method,
        path,
        bulk_id,
        version,
        data,
        refs,
    })
}

fn method(op: &Map<String, Value>) -> Result<Method, ScimError> {
    let name = required_str(op, "method")?;
    match Method::parse(&name.to_ascii_uppercase()) {
        Some(m @ (Method::Post | Method::Put | Method::Patch | Method::Delete)) => Ok(m),
        _ => Err(invalid(format!(
            "\"method\" must be POST, PUT, PATCH or DELETE, not {name:?}"
        ))),
    }
}

/// A path relative to the SCIM base: `/{type}` for POST, `/{type}/{id}` for the others
/// (RFC 7644 §3.7). Dot segments, queries and `/Bulk` itself are refused, since the proxy
/// sends the path on to an upstream as it is.
fn path(method: Method, raw: String) -> Result<String, ScimError> {
    let trimmed = raw.strip_suffix('/').unwrap_or(&raw);
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Err(invalid("\"path\" must start with \"/\""));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let bad_segment = |s: &&str| s.is_empty() || matches!(*s, "." | ".." | ".search");
    let bad_char = |c: char| c.is_control() || matches!(c, '?' | '#' | '\\');
    let wanted = if method == Method::Post { 1 } else { 2 };
    let unsafe_path = !crate::scim::request::is_safe_path(&raw);
    if segments.iter().any(bad_segment) || rest.contains(bad_char) || unsafe_path {
        Err(invalid(format!("{raw:?} is not a resource path")))
    } else if segments[0].eq_ignore_ascii_case("Bulk") {
        Err(invalid("a bulk operation cannot target /Bulk"))
    } else if segments.len() != wanted {
        Err(invalid(match method {
            Method::Post => "a POST path must name a resource type, such as \"/Users\"",
            _ => "the path must name one resource, such as \"/Users/{id}\"",
        }))
    } else {
        Ok(trimmed.to_owned())
    }
}

/// RFC 7644 §3.7: a bulkId is "unique within a bulk request".
fn unique_bulk_ids(operations: &[Operation]) -> Result<HashSet<String>, ScimError> {
    let mut all = HashSet::new();
    for id in operations.iter().filter_map(|op| op.bulk_id.as_deref()) {
        if !all.insert(id) {
            return Err(invalid(format!(
                "bulkId {id:?} is used twice; bulkIds must be unique within a request"
            )));
        }
    }
    Ok(operations
        .iter()
        .filter(|op| op.method == Method::Post)
        .filter_map(|op| op.bulk_id.clone())
        .collect())
}

fn required_str(op: &Map<String, Value>, name: &str) -> Result<String, ScimError> {
    optional_str(op, name)?.ok_or_else(|| syntax(format!("{name:?} is required")))
}

fn optional_str(op: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimError> {
    match get_ci(op, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(syntax(format!("{name:?} must be a string"))),
    }
}

fn in_operation(e: ScimError, index: usize) -> ScimError {
    ScimError {
        detail: format!("Operations[{index}]: {}", e.detail),
        ..e
    }
}

fn too_large(detail: String) -> ScimError {
    // RFC 7644 §3.7.4: 413, with the limit named in the detail; its example has no scimType.
    ScimError::new(413, detail)
}

fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::with_type(400, ScimType::InvalidSyntax, detail)
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::with_type(400, ScimType::InvalidValue, detail)
}
