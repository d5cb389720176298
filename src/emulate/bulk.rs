//! Bulk for an upstream without it (RFC 7644 §3.7): the protocol core plans the operations
//! and resolves `bulkId` references; each one is carried out here as if it had come on its
//! own, so it gets the same gap-filling (PATCH, uniqueness, soft delete) a single request gets.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;

use super::{json_bytes, Capabilities, Request};
use crate::error::{self, ProxyError};
use crate::response::{self, Body};
use crate::scim::bulk::{BulkLimits, BulkRun, OpOutcome, PlannedOp};
use crate::scim::error::ScimError;
use crate::scim::request::classify;
use crate::tenant::Tenant;
use crate::upstream::Call;

/// Announced in the ServiceProviderConfig and enforced here.
pub const MAX_OPERATIONS: usize = 1000;
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

pub async fn run(
    tenant: &Tenant,
    req: &Request<'_>,
    _caps: &Capabilities,
) -> Result<Response<Body>, ProxyError> {
    let limits = BulkLimits {
        max_operations: MAX_OPERATIONS,
        max_payload_bytes: MAX_PAYLOAD_BYTES,
    };
    let mut run = BulkRun::new(req.body, &limits)
        .map_err(ProxyError::Scim)?
        .with_base_url((req.ctx.public_base)());
    while let Some(op) = run.next() {
        let outcome = perform(tenant, req, &op).await;
        run.record(outcome);
    }
    Ok(json_bytes(StatusCode::OK, run.response()))
}

/// One operation, answered as a request of its own would be; failures become its outcome.
async fn perform(tenant: &Tenant, req: &Request<'_>, op: &PlannedOp) -> OpOutcome {
    let method = Method::from_bytes(op.method.as_str().as_bytes()).unwrap_or(Method::POST);
    let body = Bytes::from(op.data.clone().unwrap_or_default());
    let Some(target) = classify(&op.path) else {
        let missing = ProxyError::Scim(ScimError::new(404, "no such endpoint"));
        return outcome(tenant, req, error::respond(&missing)).await;
    };
    let sub = Request {
        method: &method,
        target: &target,
        path: &op.path,
        query: None,
        body: &body,
        if_match: op.version.as_deref(),
        ctx: req.ctx,
    };
    // Boxed: a Bulk operation goes back through the stage that is running the Bulk.
    let answer = match Box::pin(super::fill(tenant, &sub)).await {
        Ok(Some(response)) => Ok(response),
        Ok(None) => {
            let call = Call {
                method: method.clone(),
                path_and_query: &op.path,
                body: body.clone(),
                if_match: sub.if_match,
            };
            tenant
                .upstream
                .call(call, req.ctx)
                .await
                .map(super::relay)
                .map_err(ProxyError::from)
        }
        Err(e) => Err(e),
    };
    let response = match answer {
        Ok(response) => response,
        Err(e) => error::respond(&e),
    };
    outcome(tenant, req, response).await
}

async fn outcome(tenant: &Tenant, req: &Request<'_>, response: Response<Body>) -> OpOutcome {
    // The upstream's own Location must not reach the IdP, in a BulkResponse either.
    let answer = response::Answer {
        upstream_base: tenant.upstream.base_url(),
        public_base: req.ctx.public_base,
    };
    let (parts, body) = response::answer(response, answer).await.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    OpOutcome {
        status: parts.status.as_u16(),
        location: header(http::header::LOCATION),
        etag: header(http::header::ETAG),
        body,
    }
}
