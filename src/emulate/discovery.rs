//! Discovery for an upstream without it (RFC 7644 §4): /ServiceProviderConfig, /Schemas and
//! /ResourceTypes answered by the proxy, announcing what the proxy now provides on top of
//! the upstream. An upstream with its own ServiceProviderConfig has it amended, not replaced.

use http::{Response, StatusCode};
use serde_json::Value;

use super::{call, get, json, unreadable, Capabilities, Request};
use crate::error::ProxyError;
use crate::response::Body;
use crate::scim::discovery::{self as docs, AuthenticationScheme};
use crate::scim::error::ScimError;
use crate::scim::list::{ListResponse, MAX_COUNT};
use crate::scim::request::Endpoint;
use crate::tenant::Tenant;

pub async fn answer(
    tenant: &Tenant,
    req: &Request<'_>,
    caps: &Capabilities,
) -> Result<Option<Response<Body>>, ProxyError> {
    if *req.method != http::Method::GET {
        // Discovery documents are read-only (RFC 7644 §4).
        if caps.discovery {
            return Ok(None);
        }
        return Err(ProxyError::Scim(ScimError::new(
            405,
            format!("{} is not allowed on this endpoint", req.method),
        )));
    }
    let base = (req.ctx.public_base)();
    let id = req.target.id.as_deref();
    match req.target.endpoint {
        Endpoint::ServiceProviderConfig if caps.discovery => {
            let reply = call(tenant, req, get(req.path)).await?;
            if !reply.status.is_success() {
                return Ok(Some(super::relay(reply)));
            }
            let mut doc: Value = serde_json::from_slice(&reply.body)
                .map_err(|_| unreadable("/ServiceProviderConfig"))?;
            announce(&mut doc, caps);
            Ok(Some(json(StatusCode::OK, &doc)))
        }
        Endpoint::ServiceProviderConfig => Ok(Some(json(
            StatusCode::OK,
            &docs::service_provider_config(&provided(caps), &base),
        ))),
        _ if caps.discovery => Ok(None),
        Endpoint::Schemas => Ok(Some(one_or_all(
            id.map(|urn| docs::schema(urn, &base)),
            || docs::schemas(&base),
        )?)),
        _ => Ok(Some(one_or_all(
            id.map(|n| docs::resource_type(n, &base)),
            || docs::resource_types(&base),
        )?)),
    }
}

/// What the proxy and upstream together provide.
fn provided(caps: &Capabilities) -> docs::Capabilities {
    docs::Capabilities {
        patch: true,
        filter: true,
        max_results: MAX_COUNT,
        sort: true,
        etag: caps.etag,
        change_password: false,
        bulk: true,
        bulk_max_operations: super::bulk::MAX_OPERATIONS as u32,
        bulk_max_payload_size: super::bulk::MAX_PAYLOAD_BYTES as u64,
        authentication_schemes: vec![AuthenticationScheme::oauth_bearer_token()],
    }
}

/// Marks in the upstream's own document what the proxy adds.
fn announce(doc: &mut Value, caps: &Capabilities) {
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
    if !caps.bulk {
        if let Some(bulk) = doc.get_mut("bulk").and_then(Value::as_object_mut) {
            bulk.insert(
                "maxOperations".into(),
                Value::from(super::bulk::MAX_OPERATIONS),
            );
            bulk.insert(
                "maxPayloadSize".into(),
                Value::from(super::bulk::MAX_PAYLOAD_BYTES),
            );
        }
    }
}

fn one_or_all(
    one: Option<Option<Value>>,
    all: impl FnOnce() -> Vec<Value>,
) -> Result<Response<Body>, ProxyError> {
    match one {
        Some(Some(doc)) => Ok(json(StatusCode::OK, &doc)),
        Some(None) => Err(ProxyError::Scim(ScimError::new(
            404,
            "no such discovery document",
        ))),
        None => {
            let resources = all();
            let list = ListResponse {
                total_results: resources.len(),
                start_index: 1,
                resources,
            };
            Ok(json(StatusCode::OK, &list.to_value()))
        }
    }
}
