//! The Bulk engine of RFC 7644 §3.7, without HTTP or I/O: it reads a BulkRequest, hands out its
//! operations one at a time with their `bulkId` references resolved, takes back each outcome,
//! and writes the BulkResponse. The memory store and the proxy's Bulk emulation both drive it,
//! each performing the operations its own way.
//!
//! Operations run in the order of the request. A reference to a bulkId whose POST failed,
//! comes later, or does not exist fails its operation with 409 without performing it: RFC 7644
//! §3.7.1 lets a service provider answer 409 to circular references rather than resolve them,
//! and a forward reference is the first half of one.

mod outcome;
mod parse;
mod refs;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_engine;
#[cfg(test)]
mod tests_memory;

use std::collections::{HashMap, HashSet, VecDeque};

use serde::Serialize;
use serde_json::Value;

use crate::scim::error::{ScimError, ScimType};
use crate::scim::request::Method;
use crate::scim::urn;
pub use outcome::OpOutcome;

/// What a service provider accepts in one BulkRequest (`bulk.maxOperations` and
/// `bulk.maxPayloadSize` of its ServiceProviderConfig, RFC 7643 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkLimits {
    pub max_operations: usize,
    pub max_payload_bytes: usize,
}

/// One operation to perform, as a single SCIM request would carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlannedOp {
    pub method: Method,
    /// Relative to the SCIM base ("/Users/2819c223"), with references replaced.
    pub path: String,
    /// The JSON body, with references replaced; `None` for DELETE.
    pub data: Option<Vec<u8>>,
    /// The operation's `version`: the ETag to send as `If-Match` (RFC 7644 §3.14).
    pub version: Option<String>,
    pub bulk_id: Option<String>,
}

/// Leaves out the data, which may hold passwords.
impl std::fmt::Debug for PlannedOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedOp")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("data_len", &self.data.as_ref().map(Vec::len))
            .field("version", &self.version)
            .field("bulk_id", &self.bulk_id)
            .finish()
    }
}

/// What became of a POST's bulkId.
enum Created {
    Id(String),
    /// The POST failed, or was never performed.
    Failed,
    /// The POST succeeded but its answer named no id.
    NoId,
}

/// One entry of the BulkResponse's `Operations` (RFC 7644 §3.7.3).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OpResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    bulk_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    /// A string in the response, as in every example of RFC 7644 §3.7.
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Value>,
}

/// One BulkRequest being run. Call [`next`](Self::next), perform the operation, give its
/// outcome to [`record`](Self::record), and repeat until `next` answers `None`; then send
/// [`response`](Self::response) with status 200.
pub struct BulkRun {
    pending_ops: VecDeque<parse::Operation>,
    /// The operation `next` handed out and `record` has not answered yet.
    in_flight: Option<PlannedOp>,
    declared: HashSet<String>,
    created: HashMap<String, Created>,
    results: Vec<OpResult>,
    errors: usize,
    fail_on_errors: Option<usize>,
    base_url: Option<String>,
}

/// Counts only: the operations' data may hold passwords.
impl std::fmt::Debug for BulkRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkRun")
            .field("pending", &self.pending_ops.len())
            .field("done", &self.results.len())
            .field("errors", &self.errors)
            .field("fail_on_errors", &self.fail_on_errors)
            .finish_non_exhaustive()
    }
}

impl BulkRun {
    /// Parses and checks a BulkRequest body. Over `max_payload_bytes` or `max_operations` is a
    /// 413 naming the limit (RFC 7644 §3.7.4); anything malformed is a 400, and then no
    /// operation runs at all.
    pub fn new(body: &[u8], limits: &BulkLimits) -> Result<Self, ScimError> {
        let request = parse::request(body, limits)?;
        Ok(Self {
            results: Vec::with_capacity(request.operations.len()),
            pending_ops: request.operations.into(),
            in_flight: None,
            declared: request.declared,
            created: HashMap::new(),
            errors: 0,
            fail_on_errors: request.fail_on_errors,
            base_url: None,
        })
    }

    /// The public base URL of the SCIM service ("https://host/scim/v2"), so that operations
    /// whose outcome carries no location still get one in the response, as RFC 7644 §3.7.3
    /// requires for all but failed POSTs.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The next operation to perform, its references replaced by the ids of earlier POSTs
    /// (RFC 7644 §3.7.2); `None` once every operation is done or `failOnErrors` is reached.
    /// Operations whose references cannot be resolved are failed here, without reaching the
    /// caller. Until [`record`](Self::record) is called, this returns the same operation.
    #[allow(
        clippy::should_implement_trait,
        reason = "not an Iterator: it repeats the operation in flight until `record`"
    )]
    pub fn next(&mut self) -> Option<PlannedOp> {
        if let Some(op) = &self.in_flight {
            return Some(op.clone());
        }
        while !self.stopped() {
            let op = self.pending_ops.pop_front()?;
            match self.unresolved(&op) {
                Some(error) => self.fail_unperformed(&op, &error),
                None => {
                    let planned = self.plan(op);
                    self.in_flight = Some(planned.clone());
                    return Some(planned);
                }
            }
        }
        None
    }

    /// Each operation answered so far, as its method and status: performed or failed
    /// without being performed.
    pub fn outcomes(&self) -> impl Iterator<Item = (&'static str, u16)> + '_ {
        self.results
            .iter()
            .map(|r| (r.method, r.status.parse().unwrap_or(500)))
    }

    /// Records the outcome of the operation `next` last returned. Without one in flight,
    /// there is nothing to record it against, and it is ignored.
    pub fn record(&mut self, outcome: OpOutcome) {
        let Some(op) = self.in_flight.take() else {
            return;
        };
        let ok = outcome.is_success();
        let body = outcome.body_json();
        if let (Method::Post, Some(bulk_id)) = (op.method, &op.bulk_id) {
            let created = match outcome.created_id(body.as_ref()) {
                Some(id) if ok => Created::Id(id),
                None if ok => Created::NoId,
                _ => Created::Failed,
            };
            self.created.insert(bulk_id.clone(), created);
        }
        let location = outcome
            .location(body.as_ref())
            .or_else(|| self.default_location(&op));
        self.results.push(OpResult {
            location: location.filter(|_| ok || op.method != Method::Post),
            method: op.method.as_str(),
            bulk_id: op.bulk_id,
            version: ok.then(|| outcome.version(body.as_ref())).flatten(),
            status: outcome.status.to_string(),
            response: (!ok).then(|| outcome::error_document(outcome.status, body)),
        });
        self.errors += usize::from(!ok);
    }

    /// The BulkResponse (RFC 7644 §3.7.3): one entry per operation performed or failed, in
    /// request order; operations after `failOnErrors` was reached are not listed.
    pub fn response(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Doc<'a> {
            schemas: [&'static str; 1],
            #[serde(rename = "Operations")]
            operations: &'a [OpResult],
        }
        let doc = Doc {
            schemas: [urn::BULK_RESPONSE],
            operations: &self.results,
        };
        serde_json::to_vec(&doc).expect("a BulkResponse always serializes")
    }

    fn stopped(&self) -> bool {
        self.fail_on_errors
            .is_some_and(|limit| self.errors >= limit)
    }

    /// Why `op` cannot run, if one of its references has no id to stand for.
    fn unresolved(&self, op: &parse::Operation) -> Option<ScimError> {
        let detail = op.refs.iter().find_map(|r| match self.created.get(r) {
            Some(Created::Id(_)) => None,
            Some(Created::Failed) => Some(format!("the POST with bulkId {r:?} failed")),
            Some(Created::NoId) => Some(format!(
                "the POST with bulkId {r:?} succeeded but its resource id is unknown"
            )),
            None if self.declared.contains(r) => Some(format!(
                "bulkId {r:?} is created by a later operation; forward and circular \
                 references are not resolved (RFC 7644 §3.7.1)"
            )),
            None => Some(format!("no POST in this request has bulkId {r:?}")),
        })?;
        // RFC 7644 §3.7.1 names 409 for references it cannot resolve; the reference is the
        // value at fault, hence invalidValue.
        Some(ScimError::with_type(409, ScimType::InvalidValue, detail))
    }

    /// Records `op` as failed with `error` without performing it.
    fn fail_unperformed(&mut self, op: &parse::Operation, error: &ScimError) {
        if let (Method::Post, Some(bulk_id)) = (op.method, &op.bulk_id) {
            self.created.insert(bulk_id.clone(), Created::Failed);
        }
        // A path still naming a bulkId has no resource to point at.
        let location = match op.method {
            Method::Post => None,
            _ if refs::in_path(&op.path) => None,
            _ => self.base_url.as_ref().map(|b| format!("{b}{}", op.path)),
        };
        self.results.push(OpResult {
            location,
            method: op.method.as_str(),
            bulk_id: op.bulk_id.clone(),
            version: None,
            status: error.status.to_string(),
            response: Some(outcome::error_value(error)),
        });
        self.errors += 1;
    }

    /// `op` with its references replaced; `unresolved` has checked that all have ids.
    fn plan(&self, op: parse::Operation) -> PlannedOp {
        let resolve = |bulk_id: &str| match self.created.get(bulk_id) {
            Some(Created::Id(id)) => Some(id.as_str()),
            _ => None,
        };
        let path = if op.refs.is_empty() {
            op.path
        } else {
            refs::substitute_path(&op.path, resolve)
        };
        let data = op.data.map(|mut data| {
            if !op.refs.is_empty() {
                refs::substitute(&mut data, resolve);
            }
            serde_json::to_vec(&data).expect("a JSON value always serializes")
        });
        PlannedOp {
            method: op.method,
            path,
            data,
            version: op.version,
            bulk_id: op.bulk_id,
        }
    }

    /// The base URL joined with the operation's path (and, for a POST, the new id).
    fn default_location(&self, op: &PlannedOp) -> Option<String> {
        let base = self.base_url.as_deref()?;
        if op.method != Method::Post {
            return Some(format!("{base}{}", op.path));
        }
        match op.bulk_id.as_ref().and_then(|b| self.created.get(b)) {
            Some(Created::Id(id)) => {
                Some(format!("{base}{}/{}", op.path, refs::encode_segment(id)))
            }
            _ => None,
        }
    }
}
