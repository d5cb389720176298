//! PATCH for an upstream without it (RFC 7644 §3.5.2 applied by the proxy): read the resource,
//! apply the operations, write it back with PUT. One resource's emulated PATCHes are
//! serialized by a lock on the resource in the app, shared by every tenant that fronts it, and
//! with ETags the PUT is conditional, so no concurrent update is lost.

use bytes::Bytes;
use http::{header, Method, Response, StatusCode};
use serde_json::{json, Value};

use super::error::EmulateError;
use super::reply::{body_json, relay};
use super::unique;
use crate::body::{self, Body};
use crate::ctx::{Flow, RequestCtx};
use crate::limit;
use crate::response::project::project_by_query;
use crate::rule_pack::schema;
use crate::scim::discovery::{Extensions, SchemaInfo, GROUP, USER};
use crate::scim::list::asks_for_projection;
use crate::scim::patch::{not_kept, PatchRequest};
use crate::scim::request::Endpoint;
use crate::scim::urn;
use crate::upstream::caps::Capabilities;
use crate::upstream::{self, Call, Reply};

/// How often a conditional PUT is retried when someone else changed the resource meanwhile.
const MAX_ATTEMPTS: usize = 3;

pub async fn via_put(
    ctx: &mut RequestCtx,
    caps: &Capabilities,
) -> Result<Response<Body>, EmulateError> {
    let rt = match ctx.target().endpoint {
        Endpoint::Groups => &GROUP,
        _ => &USER,
    };
    let ext = ctx.extensions.clone();
    let body = body_json(ctx)?;
    // The proxy writes the PUT, so what it writes is held to the schema as the memory store
    // holds a PATCH: value types, paths and sub-attributes (`"active": "True"`,
    // `members: ["id"]`, `members[].displayName` are refused, not written). Extensions
    // neither bundled nor described by the app's schemas are the app's to judge.
    schema::check_written(rt, body, ext.as_deref().unwrap_or(Extensions::none()))
        .map_err(EmulateError::Scim)?;
    // Owned: the request's body is borrowed again while the PATCH is carried out.
    let patch = PatchRequest::from_json(body)
        .map_err(EmulateError::scim)?
        .into_owned();
    apply(ctx, caps, &patch).await
}

/// The upstream does PATCH. A PATCH that gives a `userName` or `externalId`, to an upstream
/// that does not keep them unique, is sent while the values are claimed and under the
/// resource's lock, as a PUT would be. An upstream may answer 204; when the IdP asked for
/// attributes it wants the resource (RFC 7644 §3.5.2), so it is read back.
pub async fn native(ctx: &mut RequestCtx, caps: &Capabilities) -> Result<Flow, EmulateError> {
    // A body that is no PatchOp is the app's to refuse.
    let unique = match caps.uniqueness {
        true => None,
        false => body_json(ctx)
            .ok()
            .and_then(|body| PatchRequest::from_json(body).ok())
            .and_then(|patch| unique::set_by_patch(&patch)),
    };
    let readback_wanted = asks_for_projection(ctx.query());
    let Some(values) = unique else {
        if !readback_wanted {
            return Ok(Flow::Next);
        }
        return Ok(Flow::Respond(send_native(ctx, true).await?));
    };
    let id = ctx.target().id.clone().unwrap_or_default();
    let lock = ctx.resource_lock();
    let _resource = lock.lock().await;
    let _claimed = unique::claim(ctx, caps, &values, Some(&id)).await?;
    Ok(Flow::Respond(send_native(ctx, readback_wanted).await?))
}

async fn send_native(
    ctx: &RequestCtx,
    readback_wanted: bool,
) -> Result<Response<Body>, EmulateError> {
    let patch = Call {
        method: Method::PATCH,
        path_and_query: ctx.path_and_query(),
        body: ctx.body.to_bytes(),
        if_match: ctx.if_match(),
    };
    let patched = upstream::call(ctx, patch).await?;
    if patched.status != StatusCode::NO_CONTENT || !readback_wanted {
        return Ok(relay(patched));
    }
    readback(ctx).await
}

/// Soft delete: DELETE of a User becomes `active: false` (RFC 7643 §4.1.1), answered 204 as
/// the DELETE the IdP sent.
pub async fn deactivate(
    ctx: &mut RequestCtx,
    caps: &Capabilities,
) -> Result<Response<Body>, EmulateError> {
    let op = json!({
        "schemas": [urn::PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    let written = if caps.patch {
        let call = Call {
            method: Method::PATCH,
            path_and_query: ctx.path(),
            body: Bytes::from(op.to_string()),
            if_match: ctx.if_match(),
        };
        relay(upstream::call(ctx, call).await?)
    } else {
        let patch = PatchRequest::from_json(&op).map_err(EmulateError::scim)?;
        apply(ctx, caps, &patch).await?
    };
    if !written.status().is_success() {
        return Ok(written);
    }
    Ok(body::empty(StatusCode::NO_CONTENT))
}

/// GET, apply, conditional PUT, under the resource's lock.
async fn apply(
    ctx: &RequestCtx,
    caps: &Capabilities,
    patch: &PatchRequest<'_>,
) -> Result<Response<Body>, EmulateError> {
    let target = ctx.target();
    let rt = match target.endpoint {
        Endpoint::Groups => &GROUP,
        _ => &USER,
    };
    let info = SchemaInfo::new(rt);
    let lock = ctx.resource_lock();
    let _held = lock.lock().await;
    let mut attempt = 1;
    loop {
        let current = upstream::call(ctx, Call::get(ctx.path())).await?;
        if !current.status.is_success() {
            return Ok(relay(current));
        }
        let mut resource: Value =
            serde_json::from_slice(&current.body).map_err(|_| EmulateError::Unreadable("a GET"))?;
        let version = etag_of(&current, &resource);
        if let Some(wanted) = ctx.if_match() {
            if !version_matches(wanted, version.as_deref()) {
                return Err(EmulateError::PreconditionFailed);
            }
        }
        let etag = if caps.etag { version } else { None };
        let unique_before = (!caps.uniqueness).then(|| unique::values(&resource));
        let before = resource.clone();
        let long = current.body.len() + ctx.body.raw().len() > limit::LARGE;
        let changed = if long {
            let patch = patch.clone().into_owned();
            let (changed, applied) = limit::off_worker(move || {
                let changed = patch.apply(&mut resource, &info);
                (changed, resource)
            })
            .await;
            resource = applied;
            changed
        } else {
            patch.apply(&mut resource, &info)
        };
        let changed = changed.map_err(EmulateError::scim)?;
        if !changed {
            let doc = project_by_query(target.endpoint, ctx.query(), resource);
            return Ok(body::json(StatusCode::OK, &doc));
        }
        // A PATCH that renames the resource may not take a value another one holds.
        let _claimed = match unique_before {
            Some(before) if before != unique::values(&resource) => {
                let id = target.id.as_deref();
                Some(unique::claim(ctx, caps, &resource, id).await?)
            }
            _ => None,
        };
        let put = Call {
            method: Method::PUT,
            path_and_query: ctx.path(),
            body: Bytes::from(
                serde_json::to_vec(&resource).expect("a JSON value always serializes"),
            ),
            if_match: etag.as_deref(),
        };
        let written = upstream::call(ctx, put).await?;
        if written.status == StatusCode::PRECONDITION_FAILED
            && etag.is_some()
            && attempt < MAX_ATTEMPTS
        {
            attempt += 1;
            continue;
        }
        if !written.status.is_success() {
            return Ok(relay(written));
        }
        // What the app now holds: its answer to the PUT, else (204, or no body) a read-back.
        let answered: Value = if written.body.is_empty() {
            let back = upstream::call(ctx, Call::get(ctx.path())).await?;
            if !back.status.is_success() {
                return Ok(relay(back));
            }
            serde_json::from_slice(&back.body).map_err(|_| EmulateError::Unreadable("a GET"))?
        } else {
            serde_json::from_slice(&written.body).map_err(|_| EmulateError::Unreadable("a PUT"))?
        };
        // A 2xx is not a change: an app may drop what it does not store.
        let lost = not_kept(rt.name, patch, &before, &resource, &answered);
        if !lost.is_empty() {
            tracing::warn!(
                request_id = ctx.id.to_str().unwrap_or_default(),
                tenant = ctx.tenant_id(),
                attributes = %lost.join(", "),
                "the application answered the PUT of an emulated PATCH with success but did not keep what it changed"
            );
            return Err(EmulateError::NotKept(lost.join(", ")));
        }
        // The proxy answers for the PATCH: what it returns gets the PATCH's projection.
        let doc = project_by_query(target.endpoint, ctx.query(), answered);
        return Ok(body::json(StatusCode::OK, &doc));
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

async fn readback(ctx: &RequestCtx) -> Result<Response<Body>, EmulateError> {
    Ok(relay(
        upstream::call(ctx, Call::get(ctx.path_and_query())).await?,
    ))
}
