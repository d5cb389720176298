//! Why the proxy could not fill a gap, typed where it happens; `error.rs` turns each into a
//! status and a `scimType` in one place.

use std::time::Duration;

use crate::scim::error::ScimError;
use crate::upstream::UpstreamError;

#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A refusal of the protocol core, already phrased as a SCIM Error (a bad filter, a PATCH
    /// that cannot apply, a malformed BulkRequest).
    #[error("{}", .0.detail)]
    Scim(ScimError),
    #[error("the request body is not valid JSON: {0}")]
    BadJson(#[source] serde_json::Error),
    #[error("the resource has changed since the version given in If-Match")]
    PreconditionFailed,
    #[error("a resource with this {attr} already exists")]
    Duplicate { attr: &'static str },
    #[error("the application could not be searched for a duplicate; try again")]
    DuplicateUnknown,
    #[error("more than {limit} resources match; narrow the filter to sort them")]
    TooManyToSort { limit: usize },
    #[error("the resources that match take more than {limit} MiB; narrow the filter to sort them")]
    TooLargeToSort { limit: usize },
    #[error("{collection} holds more than {limit} resources; too many to filter by scanning")]
    TooManyToScan {
        collection: &'static str,
        limit: usize,
    },
    /// The app answered the PUT of an emulated PATCH with success, but without the change.
    #[error("the application answered success but did not keep {0}: the PATCH is not complete, and sending it again will not help until the application stores it")]
    NotKept(String),
    #[error("the application's answer to {0} is not valid SCIM JSON")]
    Unreadable(&'static str),
    #[error("no such discovery document")]
    NoSuchDocument,
    #[error("{0} is not allowed on this endpoint")]
    ReadOnly(http::Method),
    #[error("the proxy's work on this request took longer than {}s", .0.as_secs())]
    Deadline(Duration),
}

impl EmulateError {
    /// A protocol-core refusal: a filter, PATCH, list or Bulk error.
    pub fn scim(e: impl Into<ScimError>) -> Self {
        Self::Scim(e.into())
    }
}
