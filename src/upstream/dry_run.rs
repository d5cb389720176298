//! Test mode, where requests leave for the app: a write (POST, PUT, PATCH, DELETE) is recorded
//! in the tenant's test-mode record (method, path, headers without credentials, body) and
//! answered as the app would have answered it; nothing of it reaches the app. Reads, and a
//! query sent as a POST to `.search`, still go to the app.
//!
//! Why here, and why it is enough: every request the proxy sends an app leaves through one of
//! two functions of this module's parent, `forward` (the IdP's request) and `send` (the calls
//! made while filling a gap: the PUT of an emulated PATCH, the PATCH or PUT of a soft delete,
//! a create checked for duplicates, each operation of a Bulk the proxy carries out). Both ask
//! [`applies`] first. Nothing else can reach the app: the client's `HttpUpstream::send` and
//! the memory store's `call::memory_reply` are private to `upstream`, and the one path around
//! the check, `upstream::read`, sends only GETs (the read of the resource a PATCH is answered
//! with). A Bulk is always split in test mode (`emulate::bulk::plan`), so each operation
//! comes here on its own. Stages 1–7 have run by then, and the app packs have adapted a gap
//! filler's call, so what is recorded is what the app would have been sent.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{Either, Full};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::headers;
use super::{Call, Reply, UpstreamError};
use crate::body::Body;
use crate::control::TestRequest;
use crate::ctx::RequestCtx;
use crate::scim::discovery::{SchemaInfo, GROUP, USER};
use crate::scim::error::ScimError;
use crate::scim::patch::PatchRequest;
use crate::scim::MEDIA_TYPE;

/// Whether this request to the app is a write of a tenant in test mode. One atomic load for
/// a tenant that is not.
pub(super) fn applies(ctx: &RequestCtx, method: &Method, path_and_query: &str) -> bool {
    ctx.tenant().control.test_mode() && writes(method, path_and_query)
}

/// POST (but not to `.search`, RFC 7644 §3.4.3), PUT, PATCH, DELETE.
fn writes(method: &Method, path_and_query: &str) -> bool {
    let path = path_of(path_and_query);
    let search = path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.eq_ignore_ascii_case(".search"));
    match *method {
        Method::POST => !search,
        Method::PUT | Method::PATCH | Method::DELETE => true,
        _ => false,
    }
}

fn path_of(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or_default()
}

/// The IdP's request, kept from the app and answered in its place.
pub(super) async fn forward(ctx: &RequestCtx) -> Result<Response<Body>, UpstreamError> {
    let sent = headers::for_upstream(&ctx.headers, None, &super::forwarded(ctx, &ctx.headers));
    let pq = ctx.path_and_query();
    let reply = answer(ctx, &ctx.method, pq, &sent, ctx.body.to_bytes()).await?;
    let mut response = Response::new(Either::Right(Full::new(reply.body)));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    Ok(response)
}

/// A call made while filling a gap, kept from the app and answered in its place.
pub(super) async fn send(ctx: &RequestCtx, call: Call<'_>) -> Result<Reply, UpstreamError> {
    // The headers `HttpUpstream::call` would send, but the credential.
    let mut sent = HeaderMap::new();
    sent.insert(header::ACCEPT, HeaderValue::from_static(MEDIA_TYPE));
    if !call.body.is_empty() {
        sent.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    }
    if let Some(tag) = call.if_match.and_then(|t| HeaderValue::from_str(t).ok()) {
        sent.insert(header::IF_MATCH, tag);
    }
    headers::prepare_request(&mut sent, None, &super::forwarded(ctx, &ctx.headers));
    answer(ctx, &call.method, call.path_and_query, &sent, call.body).await
}

async fn answer(
    ctx: &RequestCtx,
    method: &Method,
    path_and_query: &str,
    sent: &HeaderMap,
    body: Bytes,
) -> Result<Reply, UpstreamError> {
    ctx.tenant().control.record_test_request(TestRequest {
        at: SystemTime::now(),
        request_id: ctx.id.to_str().unwrap_or_default().to_owned(),
        method: method.clone(),
        path: path_and_query.to_owned(),
        headers: without_credentials(sent),
        body: (!body.is_empty()).then(|| {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        }),
    });
    let path = path_of(path_and_query);
    // A PATCH is answered with the resource as the app holds it, patched: reads still reach
    // the app.
    let current = match *method {
        Method::PATCH => Some(super::read(ctx, path).await?),
        _ => None,
    };
    let now = OffsetDateTime::now_utc();
    let id = uuid::Uuid::new_v4().to_string();
    Ok(would_answer(
        method,
        path,
        &body,
        current,
        &ctx.public_base(),
        (now, &id),
    ))
}

/// The headers as recorded: no credential of any kind, whatever the app would have been sent.
fn without_credentials(sent: &HeaderMap) -> Vec<(String, String)> {
    let secret = [
        header::AUTHORIZATION,
        header::PROXY_AUTHORIZATION,
        header::COOKIE,
    ];
    sent.iter()
        .filter(|(name, value)| !secret.contains(name) && !value.is_sensitive())
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), text)
        })
        .collect()
}

/// What the app would have answered a write, without it: a POST creates (201, a new `id`,
/// `meta`, `Location`), a PUT replaces (200), a PATCH applies the proxy's PATCH engine to
/// `current` (the app's answer to a GET of the resource: 200, or that answer when it is not a
/// success), a DELETE is done (204). `stamp` is the time and the id a create gets.
fn would_answer(
    method: &Method,
    path: &str,
    body: &[u8],
    current: Option<Reply>,
    base: &str,
    stamp: (OffsetDateTime, &str),
) -> Reply {
    let (now, new_id) = stamp;
    if *method == Method::DELETE {
        return reply(StatusCode::NO_CONTENT, None, Bytes::new());
    }
    let (status, doc, location) = match (method, current) {
        (&Method::PATCH, Some(current)) if !current.status.is_success() => return current,
        (&Method::PATCH, current) => {
            let bytes = current.map(|c| c.body).unwrap_or_default();
            let Ok(resource) = object(&bytes) else {
                return failure(ScimError::new(
                    502,
                    "the app's resource is not a JSON object",
                ));
            };
            match patched(path, body, resource) {
                Ok(doc) => (StatusCode::OK, doc, format!("{base}{path}")),
                Err(e) => return failure(e),
            }
        }
        (&Method::POST, _) => match object(body) {
            Ok(mut doc) => {
                doc.insert("id".into(), Value::String(new_id.to_owned()));
                let at = format!("{base}{}/{new_id}", path.trim_end_matches('/'));
                (StatusCode::CREATED, doc, at)
            }
            Err(e) => return failure(e),
        },
        _ => match object(body) {
            Ok(mut doc) => {
                if let Some(id) = path.rsplit('/').next().filter(|id| !id.is_empty()) {
                    doc.insert("id".into(), Value::String(id.to_owned()));
                }
                (StatusCode::OK, doc, format!("{base}{path}"))
            }
            Err(e) => return failure(e),
        },
    };
    let mut doc = doc;
    let created = status == StatusCode::CREATED;
    stamp_meta(&mut doc, path, &location, now, created);
    let location = created.then_some(location);
    let bytes = serde_json::to_vec(&doc).expect("a JSON value always serializes");
    reply(status, location.as_deref(), Bytes::from(bytes))
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, ScimError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(doc)) => Ok(doc),
        _ => Err(ScimError::new(400, "the body is not a JSON object")),
    }
}

/// Applies a PATCH body to `resource` as the proxy's PATCH engine does for an app without it.
fn patched(
    path: &str,
    body: &[u8],
    resource: Map<String, Value>,
) -> Result<Map<String, Value>, ScimError> {
    let rt = match resource_type(path) {
        Some("Group") => &GROUP,
        _ => &USER,
    };
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| ScimError::new(400, "the PATCH body is not JSON"))?;
    let patch = PatchRequest::from_json(&request).map_err(ScimError::from)?;
    let mut resource = Value::Object(resource);
    patch
        .apply(&mut resource, &SchemaInfo::new(rt))
        .map_err(ScimError::from)?;
    match resource {
        Value::Object(doc) => Ok(doc),
        _ => Err(ScimError::new(
            502,
            "the patched resource is not a JSON object",
        )),
    }
}

/// `meta` as an app sets it (RFC 7643 §3.1): the resource type, the times, the location.
fn stamp_meta(
    doc: &mut Map<String, Value>,
    path: &str,
    location: &str,
    now: OffsetDateTime,
    created: bool,
) {
    let now = now.format(&Rfc3339).unwrap_or_default();
    let meta = doc.entry("meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let Value::Object(meta) = meta else { return };
    if let Some(rt) = resource_type(path) {
        meta.insert("resourceType".into(), Value::String(rt.into()));
    }
    if created || !meta.contains_key("created") {
        meta.insert("created".into(), Value::String(now.clone()));
    }
    meta.insert("lastModified".into(), Value::String(now));
    meta.insert("location".into(), Value::String(location.to_owned()));
}

/// `User` for a path under `/Users`, `Group` under `/Groups`.
fn resource_type(path: &str) -> Option<&'static str> {
    let first = path.trim_start_matches('/').split('/').next()?;
    if first.eq_ignore_ascii_case("Users") {
        Some("User")
    } else if first.eq_ignore_ascii_case("Groups") {
        Some("Group")
    } else {
        None
    }
}

fn reply(status: StatusCode, location: Option<&str>, body: Bytes) -> Reply {
    let mut headers = HeaderMap::new();
    if !body.is_empty() {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    }
    if let Some(at) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, at);
    }
    Reply {
        status,
        headers,
        body,
        held: None,
    }
}

fn failure(e: ScimError) -> Reply {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    reply(status, None, Bytes::from(e.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://proxy.test/acme";

    fn stamp() -> (OffsetDateTime, &'static str) {
        (OffsetDateTime::UNIX_EPOCH, "new-id")
    }

    fn doc(r: &Reply) -> Value {
        serde_json::from_slice(&r.body).expect("JSON")
    }

    #[test]
    fn reads_and_searches_are_not_writes() {
        assert!(!writes(&Method::GET, "/Users/1"));
        assert!(!writes(&Method::POST, "/Users/.search?x=1"));
        assert!(!writes(&Method::POST, "/.search"));
        assert!(writes(&Method::POST, "/Users"));
        assert!(writes(&Method::POST, "/Bulk"));
        assert!(writes(&Method::PATCH, "/Groups/g"));
        assert!(writes(&Method::DELETE, "/Users/1"));
    }

    #[test]
    fn a_create_gets_an_id_meta_and_a_location_under_the_proxys_base() {
        let body = br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}"#;
        let r = would_answer(&Method::POST, "/Users", body, None, BASE, stamp());
        assert_eq!(r.status, 201);
        let at = "https://proxy.test/acme/Users/new-id";
        assert_eq!(r.headers[header::LOCATION], at);
        let d = doc(&r);
        assert_eq!(
            (d["id"].as_str(), d["userName"].as_str()),
            (Some("new-id"), Some("a"))
        );
        assert_eq!(d["meta"]["location"], at);
        assert_eq!(d["meta"]["resourceType"], "User");
        assert_eq!(d["meta"]["created"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_replace_keeps_the_paths_id() {
        let body = br#"{"id":"other","displayName":"G"}"#;
        let r = would_answer(&Method::PUT, "/Groups/g1", body, None, BASE, stamp());
        assert_eq!(r.status, 200);
        let d = doc(&r);
        assert_eq!(d["id"], "g1");
        assert_eq!(d["meta"]["resourceType"], "Group");
        assert!(r.headers.get(header::LOCATION).is_none());
    }

    #[test]
    fn a_patch_is_applied_to_the_apps_resource() {
        let current = reply(
            StatusCode::OK,
            None,
            Bytes::from_static(br#"{"id":"1","userName":"a","active":true}"#),
        );
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}"#;
        let r = would_answer(
            &Method::PATCH,
            "/Users/1",
            body,
            Some(current),
            BASE,
            stamp(),
        );
        assert_eq!(r.status, 200);
        let d = doc(&r);
        assert_eq!(
            (d["active"].as_bool(), d["userName"].as_str()),
            (Some(false), Some("a"))
        );
    }

    #[test]
    fn a_patch_of_what_the_app_does_not_have_gets_the_apps_answer() {
        let missing = reply(StatusCode::NOT_FOUND, None, Bytes::from_static(b"{}"));
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"title","value":"x"}]}"#;
        let r = would_answer(
            &Method::PATCH,
            "/Users/9",
            body,
            Some(missing),
            BASE,
            stamp(),
        );
        assert_eq!(r.status, 404);
    }

    #[test]
    fn a_patch_the_engine_refuses_is_a_scim_error() {
        let current = reply(StatusCode::OK, None, Bytes::from_static(br#"{"id":"1"}"#));
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"jump"}]}"#;
        let r = would_answer(
            &Method::PATCH,
            "/Users/1",
            body,
            Some(current),
            BASE,
            stamp(),
        );
        assert_eq!(r.status, 400);
        assert_eq!(doc(&r)["status"], "400");
    }

    #[test]
    fn a_delete_is_204_without_a_body() {
        let r = would_answer(&Method::DELETE, "/Users/1", b"", None, BASE, stamp());
        assert_eq!((r.status, r.body.len()), (StatusCode::NO_CONTENT, 0));
    }

    #[test]
    fn recorded_headers_carry_no_credential() {
        let mut sent = HeaderMap::new();
        sent.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        sent.insert(header::COOKIE, HeaderValue::from_static("session=1"));
        let mut marked = HeaderValue::from_static("k");
        marked.set_sensitive(true);
        sent.insert("x-api-key", marked);
        sent.insert(header::ACCEPT, HeaderValue::from_static(MEDIA_TYPE));
        let kept = without_credentials(&sent);
        assert_eq!(kept, [("accept".to_owned(), MEDIA_TYPE.to_owned())]);
    }
}
