//! PATCH for an upstream without it (RFC 7644 §3.5.2 applied by the proxy): read the resource,
//! apply the operations, write it back with PUT. One resource's emulated PATCHes are
//! serialized, and with ETags the PUT is conditional, so no concurrent update is lost.

use bytes::Bytes;
use http::{header, Method, Response, StatusCode};
use serde_json::{json, Value};

use super::{call, get, json, parse_body, relay, unreadable, Capabilities, Request};
use crate::error::ProxyError;
use crate::response::Body;
use crate::scim::discovery::{SchemaInfo, GROUP, USER};
use crate::scim::error::ScimError;
use crate::scim::patch::PatchRequest;
use crate::scim::request::Endpoint;
use crate::scim::urn;
use crate::tenant::Tenant;
use crate::upstream::{Call, Reply};

/// How often a conditional PUT is retried when someone else changed the resource meanwhile.
const MAX_ATTEMPTS: usize = 3;

pub async fn via_put(
    tenant: &Tenant,
    req: &Request<'_>,
    caps: &Capabilities,
) -> Result<Response<Body>, ProxyError> {
    let patch =
        PatchRequest::from_json(&parse_body(req.body)?).map_err(|e| ProxyError::Scim(e.into()))?;
    let written = apply(tenant, req, caps, &patch).await?;
    match written.status() {
        StatusCode::NO_CONTENT => readback(tenant, req).await,
        _ => Ok(written),
    }
}

/// The upstream does PATCH, but may answer 204; when the IdP asked for attributes it
/// wants the resource (RFC 7644 §3.5.2), so it is read back.
pub async fn native_with_readback(
    tenant: &Tenant,
    req: &Request<'_>,
) -> Result<Option<Response<Body>>, ProxyError> {
    if !super::list::asks_for_projection(req.query) {
        return Ok(None);
    }
    let path = match req.query {
        Some(q) => format!("{}?{q}", req.path),
        None => req.path.to_owned(),
    };
    let patch = Call {
        method: Method::PATCH,
        path_and_query: &path,
        body: req.body.clone(),
        if_match: req.if_match,
    };
    let patched = call(tenant, req, patch).await?;
    if patched.status != StatusCode::NO_CONTENT {
        return Ok(Some(relay(patched)));
    }
    Ok(Some(readback(tenant, req).await?))
}

/// Soft delete: DELETE of a User becomes `active: false` (RFC 7643 §4.1.1), answered 204 as
/// the DELETE the IdP sent.
pub async fn deactivate(
    tenant: &Tenant,
    req: &Request<'_>,
    caps: &Capabilities,
) -> Result<Response<Body>, ProxyError> {
    let op = json!({
        "schemas": [urn::PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    let written = if caps.patch {
        let body = Bytes::from(op.to_string());
        relay(
            call(
                tenant,
                req,
                Call {
                    method: Method::PATCH,
                    path_and_query: req.path,
                    body,
                    if_match: req.if_match,
                },
            )
            .await?,
        )
    } else {
        let patch = PatchRequest::from_json(&op).map_err(|e| ProxyError::Scim(e.into()))?;
        apply(tenant, req, caps, &patch).await?
    };
    if !written.status().is_success() {
        return Ok(written);
    }
    let mut gone = Response::new(http_body_util::Either::Right(http_body_util::Full::new(
        Bytes::new(),
    )));
    *gone.status_mut() = StatusCode::NO_CONTENT;
    Ok(gone)
}

/// GET, apply, conditional PUT, under the resource's lock.
async fn apply(
    tenant: &Tenant,
    req: &Request<'_>,
    caps: &Capabilities,
    patch: &PatchRequest,
) -> Result<Response<Body>, ProxyError> {
    let info = SchemaInfo::new(match req.target.endpoint {
        Endpoint::Groups => &GROUP,
        _ => &USER,
    });
    // Keyed by resource, not by path text: `/Users/a%62` and `/Users/ab` are one resource.
    let key = format!(
        "{:?}/{}",
        req.target.endpoint,
        req.target.id.as_deref().unwrap_or_default()
    );
    let lock = tenant.gaps.lock(&key);
    let _held = lock.lock().await;
    let mut attempt = 1;
    loop {
        let current = call(tenant, req, get(req.path)).await?;
        if !current.status.is_success() {
            return Ok(relay(current));
        }
        let mut resource: Value =
            serde_json::from_slice(&current.body).map_err(|_| unreadable("a GET"))?;
        let version = etag_of(&current, &resource);
        if let Some(wanted) = req.if_match {
            if !version_matches(wanted, version.as_deref()) {
                let e = ScimError::new(
                    412,
                    "the resource has changed since the version given in If-Match",
                );
                return Err(ProxyError::Scim(e));
            }
        }
        let etag = if caps.etag { version } else { None };
        let changed = patch
            .apply(&mut resource, &info)
            .map_err(|e| ProxyError::Scim(e.into()))?;
        if !changed {
            return Ok(json(
                StatusCode::OK,
                &super::project_by_query(req, resource),
            ));
        }
        let body =
            Bytes::from(serde_json::to_vec(&resource).expect("a JSON value always serializes"));
        let put = Call {
            method: Method::PUT,
            path_and_query: req.path,
            body,
            if_match: etag.as_deref(),
        };
        let written = call(tenant, req, put).await?;
        if written.status == StatusCode::PRECONDITION_FAILED
            && etag.is_some()
            && attempt < MAX_ATTEMPTS
        {
            attempt += 1;
            continue;
        }
        // The proxy answers for the PATCH: what it returns gets the PATCH's projection.
        if written.status == StatusCode::OK {
            let doc: Value =
                serde_json::from_slice(&written.body).map_err(|_| unreadable("a PUT"))?;
            return Ok(json(StatusCode::OK, &super::project_by_query(req, doc)));
        }
        return Ok(relay(written));
    }
}

/// RFC 9110 §13.1.1 with weak comparison, as RFC 7644 §3.14 versions are weak tags.
fn version_matches(wanted: &str, current: Option<&str>) -> bool {
    let weak = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    match current {
        _ if wanted.trim() == "*" => true,
        Some(current) => wanted.split(',').any(|w| weak(w) == weak(current)),
        None => false,
    }
}

/// The version to make the PUT conditional on: the ETag header, else `meta.version`
/// (RFC 7644 §3.14).
fn etag_of(reply: &Reply, resource: &Value) -> Option<String> {
    let header = reply
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok());
    let meta = resource.pointer("/meta/version").and_then(Value::as_str);
    header.or(meta).map(str::to_owned)
}

async fn readback(tenant: &Tenant, req: &Request<'_>) -> Result<Response<Body>, ProxyError> {
    let path = match req.query {
        Some(q) => format!("{}?{q}", req.path),
        None => req.path.to_owned(),
    };
    Ok(relay(call(tenant, req, get(&path)).await?))
}
