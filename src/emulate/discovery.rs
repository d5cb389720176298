//! Discovery for an upstream without it (RFC 7644 §4): /ServiceProviderConfig, /Schemas and
//! /ResourceTypes answered by the proxy, announcing what the proxy now provides on top of
//! the upstream. An upstream with its own ServiceProviderConfig has it amended, not replaced.

use http::{Method, Response, StatusCode};
use serde_json::Value;

use super::bulk::{MAX_OPERATIONS, MAX_PAYLOAD_BYTES};
use super::error::EmulateError;
use super::reply::relay;
use crate::body::{self, Body};
use crate::ctx::{Flow, RequestCtx};
use crate::scim::discovery::{self as docs, AuthenticationScheme};
use crate::scim::list::{ListResponse, MAX_COUNT};
use crate::scim::request::Endpoint;
use crate::upstream::caps::Capabilities;
use crate::upstream::{self, Call};

pub async fn answer(ctx: &RequestCtx, caps: &Capabilities) -> Result<Flow, EmulateError> {
    if ctx.method != Method::GET {
        // Discovery documents are read-only (RFC 7644 §4).
        if caps.discovery {
            return Ok(Flow::Next);
        }
        return Err(EmulateError::ReadOnly(ctx.method.clone()));
    }
    let base = ctx.public_base();
    let target = ctx.target();
    let id = target.id.as_deref();
    let answer = match target.endpoint {
        Endpoint::ServiceProviderConfig if caps.discovery => {
            let reply = upstream::call(ctx, Call::get(ctx.path())).await?;
            if !reply.status.is_success() {
                return Ok(Flow::Respond(relay(reply)));
            }
            let mut doc: Value = serde_json::from_slice(&reply.body)
                .map_err(|_| EmulateError::Unreadable("/ServiceProviderConfig"))?;
            announce(&mut doc, caps, ctx);
            body::json(StatusCode::OK, &doc)
        }
        Endpoint::ServiceProviderConfig => body::json(
            StatusCode::OK,
            &docs::service_provider_config(&provided(caps, ctx), &base),
        ),
        _ if caps.discovery => return Ok(Flow::Next),
        Endpoint::Schemas => one_or_all(id.map(|urn| docs::schema(urn, &base)), || {
            docs::schemas(&base)
        })?,
        _ => one_or_all(id.map(|n| docs::resource_type(n, &base)), || {
            docs::resource_types(&base)
        })?,
    };
    Ok(Flow::Respond(answer))
}

/// What the proxy and upstream together provide.
fn provided(caps: &Capabilities, ctx: &RequestCtx) -> docs::Capabilities {
    docs::Capabilities {
        patch: true,
        filter: true,
        max_results: MAX_COUNT,
        sort: true,
        etag: caps.etag,
        change_password: false,
        bulk: true,
        bulk_max_operations: MAX_OPERATIONS as u32,
        bulk_max_payload_size: MAX_PAYLOAD_BYTES as u64,
        authentication_schemes: announced_schemes(ctx),
    }
}

/// The IdP authenticates to the proxy, not to the app: what the tenant accepts is what counts.
fn announced_schemes(ctx: &RequestCtx) -> Vec<AuthenticationScheme> {
    let tenant = ctx.tenant();
    crate::auth::announce::schemes(&tenant.auth, &tenant.schemes)
}

/// Marks in the upstream's own document what the proxy adds, and puts the tenant's
/// authentication schemes in place of the app's (which only the proxy ever uses).
fn announce(doc: &mut Value, caps: &Capabilities, ctx: &RequestCtx) {
    for key in ["patch", "filter", "sort", "bulk"] {
        if let Some(section) = doc.get_mut(key).and_then(Value::as_object_mut) {
            section.insert("supported".into(), Value::Bool(true));
        } else if let Some(map) = doc.as_object_mut() {
            map.insert(key.into(), serde_json::json!({"supported": true}));
        }
    }
    if let Some(filter) = doc.get_mut("filter").and_then(Value::as_object_mut) {
        filter.entry("maxResults").or_insert(Value::from(MAX_COUNT));
    }
    if let Some(map) = doc.as_object_mut() {
        let schemes = serde_json::to_value(announced_schemes(ctx))
            .expect("strings and booleans always serialize");
        map.insert("authenticationSchemes".into(), schemes);
    }
    if !caps.bulk {
        if let Some(bulk) = doc.get_mut("bulk").and_then(Value::as_object_mut) {
            bulk.insert("maxOperations".into(), Value::from(MAX_OPERATIONS));
            bulk.insert("maxPayloadSize".into(), Value::from(MAX_PAYLOAD_BYTES));
        }
    }
}

fn one_or_all(
    one: Option<Option<Value>>,
    all: impl FnOnce() -> Vec<Value>,
) -> Result<Response<Body>, EmulateError> {
    match one {
        Some(Some(doc)) => Ok(body::json(StatusCode::OK, &doc)),
        Some(None) => Err(EmulateError::NoSuchDocument),
        None => {
            let resources = all();
            let list = ListResponse {
                total_results: resources.len(),
                start_index: 1,
                resources,
            };
            Ok(body::json(StatusCode::OK, &list.to_value()))
        }
    }
}
