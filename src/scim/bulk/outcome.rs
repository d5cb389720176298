//! What the caller reports back for one performed operation, and what the BulkResponse takes
//! from it: the new resource's id, its location and version, or the error (RFC 7644 §3.7.3).

use serde_json::Value;

use crate::scim::error::ScimError;
use crate::scim::request::percent_decode;
use crate::scim::urn;

/// The answer to one performed operation, as a single SCIM request would have had it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OpOutcome {
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// The response body: the resource, a SCIM Error, or empty.
    pub body: Vec<u8>,
}

/// Leaves out the body, which may hold personal data.
impl std::fmt::Debug for OpOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpOutcome")
            .field("status", &self.status)
            .field("location", &self.location)
            .field("etag", &self.etag)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl OpOutcome {
    pub(super) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, if it is JSON.
    pub(super) fn body_json(&self) -> Option<Value> {
        if self.body.is_empty() {
            return None;
        }
        serde_json::from_slice(&self.body).ok()
    }

    /// The id a POST gave its resource: the body's `id`, else the last segment of `Location`.
    pub(super) fn created_id(&self, body: Option<&Value>) -> Option<String> {
        let from_body = body
            .and_then(|b| b.get("id"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        if let Some(id) = from_body {
            return Some(id.to_owned());
        }
        let location = self.location.as_deref()?;
        let segment = location.trim_end_matches('/').rsplit('/').next()?;
        percent_decode(segment)
            .filter(|id| !id.is_empty())
            .map(|id| id.into_owned())
    }

    /// The resource's URL: the `Location` header, else the body's `meta.location`.
    pub(super) fn location(&self, body: Option<&Value>) -> Option<String> {
        self.location.clone().or_else(|| meta(body, "location"))
    }

    /// The resource's version: the `ETag` header, else the body's `meta.version`.
    pub(super) fn version(&self, body: Option<&Value>) -> Option<String> {
        self.etag.clone().or_else(|| meta(body, "version"))
    }
}

fn meta(body: Option<&Value>, name: &str) -> Option<String> {
    let value = body?.get("meta")?.get(name)?.as_str()?;
    Some(value.to_owned())
}

/// The `response` of a failed operation: the SCIM Error it answered (RFC 7644 §3.7.3 "MUST
/// contain the detail error response as per Section 3.12"), or one made from its status when
/// the answer was not a SCIM Error (an upstream's HTML page, an empty body).
pub(super) fn error_document(status: u16, body: Option<Value>) -> Value {
    match body {
        Some(doc) if is_scim_error(&doc) => doc,
        _ => error_value(&ScimError::new(
            status,
            format!("the operation failed with HTTP status {status}"),
        )),
    }
}

pub(super) fn error_value(e: &ScimError) -> Value {
    serde_json::from_slice(&e.to_json()).expect("an error document is JSON")
}

fn is_scim_error(doc: &Value) -> bool {
    let schemas = doc.get("schemas").and_then(Value::as_array);
    schemas.is_some_and(|s| {
        s.iter()
            .filter_map(Value::as_str)
            .any(|u| u.eq_ignore_ascii_case(urn::ERROR))
    })
}
