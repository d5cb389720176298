//! The admin API, JSON under `/api/`, for the operator: each tenant's status, pause and
//! resume of its writes, test mode, its last requests, the writes test mode kept from the
//! app, and a reload of the configuration file. Every route takes the admin token
//! (`Authorization: Bearer …`, its SHA-256 in `admin.token_sha256`), checked as tenant tokens
//! are; without a configured token the API is off and says how to turn it on.
//!
//! | route | does |
//! | --- | --- |
//! | `GET /api/tenants` | every tenant's status |
//! | `GET /api/tenants/{id}` | one tenant's status |
//! | `POST /api/tenants/{id}/pause`, `…/resume` | refuse writes with 503, or take them again |
//! | `PUT` (or `POST`) `/api/tenants/{id}/test-mode` `{"on": bool}` | writes are recorded and answered, not sent |
//! | `GET /api/tenants/{id}/requests` | the request log, newest first |
//! | `GET`, `DELETE /api/tenants/{id}/test-requests` | the writes test mode kept, newest first; forget them |
//! | `POST /api/reload` | read the configuration file again, as SIGHUP does |

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::reply;
use crate::auth::bearer::{self, Credential};
use crate::config::BearerToken;
use crate::control::{LoggedRequest, Status, TestRequest};
use crate::runtime::Runtime;
use crate::tenant::table::Tenant;

/// The largest request body the API reads (`{"on": true}`).
const MAX_BODY: usize = 4096;

pub(super) async fn handle(
    rt: &Arc<Runtime>,
    config_path: &Arc<Path>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let authorization = req.headers().get(header::AUTHORIZATION);
    let stored = rt.snapshot().admin.token_sha256;
    if let Err(refused) = authorize(stored.as_ref(), authorization.map(|v| v.as_bytes())) {
        return refused.response();
    }
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["api", "tenants"]) => list(rt),
        (_, ["api", "tenants"]) => not_allowed("GET"),
        (_, ["api", "tenants", id, rest @ ..]) => {
            let snapshot = rt.snapshot();
            let Some(tenant) = snapshot.tenants.get(id) else {
                let msg = format!("no tenant \"{id}\" is configured");
                return reply(StatusCode::NOT_FOUND, &json!({"error": msg}));
            };
            tenant_route(tenant, &method, rest, req).await
        }
        (&Method::POST, ["api", "reload"]) => reload(rt, config_path).await,
        (_, ["api", "reload"]) => not_allowed("POST"),
        _ => reply(
            StatusCode::NOT_FOUND,
            &json!({"error": "not found; the admin API has /api/tenants, /api/tenants/{id}[/pause|/resume|/test-mode|/requests|/test-requests] and /api/reload"}),
        ),
    }
}

async fn tenant_route(
    tenant: &Tenant,
    method: &Method,
    rest: &[&str],
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let control = &tenant.control;
    match (method, rest) {
        (&Method::GET, []) => reply(StatusCode::OK, &status_json(tenant)),
        (_, []) => not_allowed("GET"),
        (&Method::POST, ["pause"]) => {
            if !control.set_paused(true) {
                tracing::warn!(tenant = %tenant.id, "tenant paused by the admin API: its writes are refused with 503 until it is resumed");
            }
            reply(StatusCode::OK, &status_json(tenant))
        }
        (&Method::POST, ["resume"]) => {
            if control.set_paused(false) {
                tracing::info!(tenant = %tenant.id, "tenant resumed by the admin API");
            }
            reply(StatusCode::OK, &status_json(tenant))
        }
        (&Method::PUT | &Method::POST, ["test-mode"]) => match switch(req).await {
            Ok(on) => {
                if control.set_test_mode(on) != on {
                    tracing::warn!(tenant = %tenant.id, on, "test mode switched by the admin API: while on, writes are recorded and answered by the proxy, and do not reach the app");
                }
                reply(StatusCode::OK, &status_json(tenant))
            }
            Err(e) => reply(StatusCode::BAD_REQUEST, &json!({"error": e})),
        },
        (&Method::GET, ["requests"]) => {
            let log: Vec<Value> = control.requests().iter().map(logged_json).collect();
            reply(
                StatusCode::OK,
                &json!({"tenant": &*tenant.id, "requests": log}),
            )
        }
        (&Method::GET, ["test-requests"]) => {
            let kept: Vec<Value> = control.test_requests().iter().map(test_json).collect();
            let body =
                json!({"tenant": &*tenant.id, "test_mode": control.test_mode(), "requests": kept});
            reply(StatusCode::OK, &body)
        }
        (&Method::DELETE, ["test-requests"]) => {
            let forgotten = control.clear_test_requests();
            reply(
                StatusCode::OK,
                &json!({"tenant": &*tenant.id, "forgotten": forgotten}),
            )
        }
        (_, ["pause"] | ["resume"]) => not_allowed("POST"),
        (_, ["test-mode"]) => not_allowed("PUT, POST"),
        (_, ["requests"]) => not_allowed("GET"),
        (_, ["test-requests"]) => not_allowed("GET, DELETE"),
        _ => reply(
            StatusCode::NOT_FOUND,
            &json!({"error": "not found; a tenant has /pause, /resume, /test-mode, /requests and /test-requests"}),
        ),
    }
}

/// `{"on": true}` or `{"on": false}`.
async fn switch(req: Request<Incoming>) -> Result<bool, String> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|_| "expected a JSON body: {\"on\": true} or {\"on\": false}".to_owned())?;
    doc.get("on")
        .and_then(Value::as_bool)
        .ok_or_else(|| "expected {\"on\": true} or {\"on\": false}".to_owned())
}

fn list(rt: &Runtime) -> Response<Full<Bytes>> {
    let snapshot = rt.snapshot();
    let mut tenants: Vec<&Arc<Tenant>> = snapshot.tenants.iter().collect();
    tenants.sort_by(|a, b| a.id.cmp(&b.id));
    let all: Vec<Value> = tenants.iter().map(|t| status_json(t)).collect();
    reply(StatusCode::OK, &json!({"tenants": all}))
}

/// The same reload SIGHUP does, on the blocking pool: it reads files.
async fn reload(rt: &Arc<Runtime>, config_path: &Arc<Path>) -> Response<Full<Bytes>> {
    let (rt, path) = (rt.clone(), config_path.clone());
    let done = tokio::task::spawn_blocking(move || rt.reload_file(&path)).await;
    match done {
        Ok(Ok(done)) => reply(
            StatusCode::OK,
            &json!({
                "status": "reloaded",
                "tenants": done.tenants,
                "added": done.added,
                "removed": done.removed,
                "ignored_until_restart": done.ignored,
            }),
        ),
        Ok(Err(refused)) => reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({
                "status": "refused",
                "detail": "the configuration file is not valid; the running configuration keeps serving",
                "errors": refused.problems,
            }),
        ),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": format!("the reload did not finish: {e}")}),
        ),
    }
}

fn status_json(tenant: &Tenant) -> Value {
    let Status {
        paused,
        test_mode,
        counts,
        last_request,
        last_success,
        pack,
    } = tenant.control.status();
    json!({
        "id": &*tenant.id,
        "upstream": tenant.upstream.base_url().map_or("memory:".into(), without_userinfo),
        "paused": paused,
        "test_mode": test_mode,
        "requests": {
            "total": counts.requests,
            "succeeded": counts.succeeded,
            "client_errors": counts.client_errors,
            "server_errors": counts.server_errors,
        },
        "error_rate": counts.error_rate(),
        "last_request": last_request.map(timestamp),
        "last_success": last_success.map(timestamp),
        "idp_pack": pack.as_deref(),
        "breaker": tenant.upstream.breaker_state(),
    })
}

/// The app's base URL without any `user:password@` it may carry.
fn without_userinfo(base: &str) -> String {
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            let host = rest[..end].rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}{}", &rest[end..])
        }
        None => base.to_owned(),
    }
}

fn logged_json(r: &LoggedRequest) -> Value {
    json!({
        "time": timestamp(r.at),
        "request_id": r.request_id.to_str().unwrap_or_default(),
        "method": r.method.as_str(),
        "path": r.path,
        "status": r.status,
        "latency_ms": r.latency_ms,
        "idp_pack": r.pack.as_deref(),
        "rules": r.rules.iter().map(|r| &**r).collect::<Vec<&str>>(),
        "filled": r.filled,
        "bulk_op": r.bulk_op,
        "error": r.error,
    })
}

fn test_json(r: &TestRequest) -> Value {
    let mut headers = serde_json::Map::new();
    for (name, value) in &r.headers {
        match headers.get_mut(name) {
            Some(Value::String(prior)) => {
                prior.push_str(", ");
                prior.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    json!({
        "time": timestamp(r.at),
        "request_id": r.request_id,
        "method": r.method.as_str(),
        "path": r.path,
        "headers": headers,
        "body": r.body,
    })
}

fn timestamp(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = reply(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": format!("method not allowed; use {allow}")}),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// Why a request to the API was refused.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// No `admin.token_sha256`: the API is off.
    Off,
    Missing,
    Wrong,
}

impl Refused {
    fn response(&self) -> Response<Full<Bytes>> {
        let (status, error) = match self {
            Refused::Off => (
                StatusCode::FORBIDDEN,
                "the admin API is off: set admin.token_sha256 to the SHA-256 of a token (`scimgate token new` makes both) and reload or restart",
            ),
            Refused::Missing => (
                StatusCode::UNAUTHORIZED,
                "the admin API needs the admin token: Authorization: Bearer <token>",
            ),
            Refused::Wrong => (
                StatusCode::UNAUTHORIZED,
                "the admin token is not valid",
            ),
        };
        let mut r = reply(status, &json!({"error": error}));
        if *self != Refused::Off {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimgate-admin\""),
            );
        }
        r
    }
}

/// Checks the admin token as a tenant's bearer token is checked: its SHA-256 compared in
/// constant time with the configured one.
fn authorize(stored: Option<&[u8; 32]>, authorization: Option<&[u8]>) -> Result<(), Refused> {
    let Some(stored) = stored else {
        return Err(Refused::Off);
    };
    let Credential::Bearer(token) = Credential::parse(authorization) else {
        return Err(Refused::Missing);
    };
    let admin = [BearerToken {
        sha256: *stored,
        label: "admin".into(),
        not_after: None,
    }];
    bearer::check(&admin, token, OffsetDateTime::now_utc())
        .map(drop)
        .map_err(|_| Refused::Wrong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn stored(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    #[test]
    fn the_api_is_off_without_a_configured_token() {
        assert_eq!(authorize(None, Some(b"Bearer x")), Err(Refused::Off));
        assert_eq!(Refused::Off.response().status(), 403);
    }

    #[test]
    fn a_missing_or_wrong_token_is_refused_and_the_right_one_accepted() {
        let hash = stored("s3cret");
        assert_eq!(authorize(Some(&hash), None), Err(Refused::Missing));
        assert_eq!(
            authorize(Some(&hash), Some(b"Basic eDp5")),
            Err(Refused::Missing)
        );
        assert_eq!(
            authorize(Some(&hash), Some(b"Bearer nope")),
            Err(Refused::Wrong)
        );
        assert_eq!(authorize(Some(&hash), Some(b"Bearer s3cret")), Ok(()));
        let r = Refused::Wrong.response();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[test]
    fn the_apps_address_is_shown_without_credentials() {
        let shown = without_userinfo("https://u:p@app.test:8443/scim/v2");
        assert_eq!(shown, "https://app.test:8443/scim/v2");
        assert_eq!(without_userinfo("http://app.test"), "http://app.test");
    }

    #[test]
    fn recorded_headers_repeated_are_joined() {
        let r = TestRequest {
            at: SystemTime::UNIX_EPOCH,
            request_id: "r1".into(),
            method: Method::POST,
            path: "/Users".into(),
            headers: vec![("accept".into(), "a".into()), ("accept".into(), "b".into())],
            body: None,
        };
        let doc = test_json(&r);
        assert_eq!(doc["headers"]["accept"], "a, b");
        assert_eq!(doc["time"], "1970-01-01T00:00:00Z");
    }
}
