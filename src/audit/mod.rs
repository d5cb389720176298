//! Stage 11, record, its audit half: one JSON line per change the proxy forwarded or carried
//! out (each Bulk operation too) and per refusal, chained by hash and sealed by keyed
//! checkpoints (`chain`), written by one thread (`writer`) before the IdP is answered.
//! `verify` and `grep` read the files back for `scimgate audit`.
//!
//! Back-pressure, never loss: a change is answered only once its line is in the file. While
//! the file cannot be written, changes are refused with 503 before they reach the app; a
//! change already made when a write fails is answered 503 too (its line is kept and written
//! when the file can be written again), so the IdP sends it again rather than believing it
//! done unrecorded.

mod chain;
pub mod grep;
pub mod line;
pub mod log;
pub mod verify;
mod writer;

use std::borrow::Cow;

use bytes::Bytes;
use http::{header, Method, Response};
use http_body_util::{BodyExt, Either, Full};
use serde_json::Value;

use crate::body::Body;
use crate::ctx::RequestCtx;
use crate::error::{self, ProxyError};
use crate::scim::request::{Endpoint, Target};
use line::{policy_passes, Event, Members};
pub use log::{AuditError, AuditLog};
pub use writer::{rotated, Unwritten};

/// The refusals that get a line: a credential, a limit, the attribute policy, the schema, and
/// the audit log itself. Malformed requests, throttled addresses and a full proxy are counted
/// in the metrics only: they come in floods that would bury the changes.
const AUDITED_REFUSALS: [&str; 5] = ["auth", "limits", "policy", "schema", "audit"];

/// Before a change reaches the app: refused while the audit file cannot be written.
pub fn admit(ctx: &RequestCtx) -> Result<(), AuditError> {
    match &ctx.snapshot.audit {
        Some(audit) if line::is_change(&ctx.method, ctx.target.as_ref()) && !audit.available() => {
            Err(AuditError::Unavailable)
        }
        _ => Ok(()),
    }
}

/// Writes the request's line, if it needs one, and answers once it is in the file. A change
/// whose line cannot be written is answered 503 instead of its answer.
pub async fn record(
    ctx: &RequestCtx,
    refusal: Option<&'static str>,
    response: Response<Body>,
) -> Response<Body> {
    let Some(audit) = ctx.snapshot.audit.as_deref() else {
        return response;
    };
    let change = refusal.is_none() && ctx.principal.is_some() && is_audited_change(ctx);
    let refused = refusal.filter(|k| AUDITED_REFUSALS.contains(k));
    if !change && refused.is_none() {
        return response;
    }
    let (response, subjects) = subjects(ctx, change, response).await;
    let lines = subjects
        .into_iter()
        .map(|s| event(ctx, refused, s))
        .collect();
    match audit.write(lines).await {
        Ok(()) => response,
        Err(e) if change => {
            tracing::error!(
                request_id = ctx.id.to_str().unwrap_or_default(),
                tenant = ctx.tenant_id(),
                error = %e,
                "a change is answered 503: its audit line is not in the file"
            );
            error::respond(&ProxyError::Audit(AuditError::NotWritten))
        }
        Err(_) => response,
    }
}

/// A create, replace, patch or delete, or a Bulk the app carries out itself. A Bulk the proxy
/// carries out has a line per operation instead.
fn is_audited_change(ctx: &RequestCtx) -> bool {
    let target = ctx.target.as_ref();
    let bulk_fanned_out = ctx.record.filled == Some("bulk");
    line::is_change(&ctx.method, target) && !bulk_fanned_out
}

/// What one line is about: the request, or one operation of a Bulk the app carried out.
struct Subject<'a> {
    method: Method,
    target: Option<Target<'static>>,
    body: Option<Cow<'a, Value>>,
    bulk_op: Option<usize>,
    /// A create's new id, from its answer.
    created: Option<String>,
    status: u16,
}

/// The lines a request needs: one, or one per operation of a Bulk the app carried out itself
/// (read from the BulkRequest and the app's BulkResponse, RFC 7644 §3.7).
async fn subjects(
    ctx: &RequestCtx,
    change: bool,
    response: Response<Body>,
) -> (Response<Body>, Vec<Subject<'_>>) {
    let target = ctx.target.as_ref();
    let native_bulk = change && target.is_some_and(|t| t.endpoint == Endpoint::Bulk);
    let body = request_body(ctx);
    let status = response.status().as_u16();
    if native_bulk && response.status().is_success() {
        if let Some(Value::Array(ops)) = body.as_deref().and_then(|b| ci(b, "Operations")) {
            let (response, answer) = read_whole(response).await;
            let answered = serde_json::from_slice::<Value>(&answer).ok();
            let answered = answered.as_ref().and_then(|a| ci(a, "Operations"));
            let subjects = ops
                .iter()
                .enumerate()
                .map(|(i, op)| bulk_subject(i, op, answered.and_then(|a| a.get(i)), status))
                .collect();
            return (response, subjects);
        }
    }
    let create = line::op_name(&ctx.method, target) == "create";
    let (response, created) = if create && response.status().is_success() {
        created_id(response).await
    } else {
        (response, None)
    };
    // A request refused before classification (a wrong credential) is named by its path.
    let target = ctx.target.clone().or_else(|| {
        ctx.tenant.as_ref()?;
        crate::scim::request::classify(ctx.path()).map(Target::into_owned)
    });
    let subject = Subject {
        method: ctx.method.clone(),
        target,
        body,
        bulk_op: ctx.record.bulk_op,
        created,
        status,
    };
    (response, vec![subject])
}

/// One operation of a BulkRequest, with its outcome in the BulkResponse when there is one.
fn bulk_subject(
    index: usize,
    op: &Value,
    outcome: Option<&Value>,
    status: u16,
) -> Subject<'static> {
    let method = text(Some(op), "method")
        .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
        .unwrap_or(Method::POST);
    let target = text(Some(op), "path")
        .and_then(crate::scim::request::classify)
        .map(Target::into_owned);
    let status = match outcome.and_then(|o| ci(o, "status")) {
        Some(Value::String(s)) => s.parse().unwrap_or(status),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(status),
        _ => status,
    };
    Subject {
        method,
        target,
        body: ci(op, "data").cloned().map(Cow::Owned),
        bulk_op: Some(index),
        created: line::created_id(text(outcome, "location"), None),
        status,
    }
}

fn text<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    v.and_then(|v| ci(v, key)).and_then(Value::as_str)
}

fn ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    crate::scim::path::get_ci(v.as_object()?, key)
}

/// The body as forwarded: as the stages left it, else its bytes.
fn request_body(ctx: &RequestCtx) -> Option<Cow<'_, Value>> {
    if ctx.body.is_empty() {
        return None;
    }
    match ctx.body.parsed() {
        Some(doc) => Some(Cow::Borrowed(doc)),
        None => serde_json::from_slice(ctx.body.raw()).ok().map(Cow::Owned),
    }
}

fn event(ctx: &RequestCtx, refusal: Option<&'static str>, s: Subject<'_>) -> String {
    let target = s.target.as_ref();
    let endpoint = target.map(|t| t.endpoint);
    let op = line::op_name(&s.method, target);
    let changes = match (endpoint, s.body.as_deref()) {
        (Some(e), Some(b)) if e != Endpoint::Bulk => line::changes(&s.method, e, b),
        _ => line::Changes::default(),
    };
    // A refusal's body may be half filtered: no value of it is logged.
    let values = match (&ctx.tenant, endpoint, refusal) {
        (Some(t), Some(e), None) if !t.audit_loggable.is_empty() => {
            line::values(&changes.written, |name, value| {
                t.audit_loggable
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(name))
                    && policy_passes(&t.policy, e, name, value)
            })
        }
        _ => Default::default(),
    };
    let id = target
        .and_then(|t| t.id.as_deref().map(str::to_owned))
        .or(s.created);
    let e = Event {
        time: crate::scim::now(),
        kind: if refusal.is_some() {
            "refusal"
        } else {
            "change"
        },
        tenant: ctx.tenant.as_ref().map(|t| &*t.id),
        principal: ctx.principal.as_ref().map(ToString::to_string),
        pack: ctx.record.pack.as_deref(),
        op,
        resource: endpoint.and_then(line::resource_name),
        id,
        external_id: changes.external_id,
        attributes: changes.attributes,
        values,
        members: if refusal.is_some() {
            Members::default()
        } else {
            changes.members
        },
        status: s.status,
        latency_ms: (ctx.started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        request_id: ctx.id.to_str().unwrap_or_default(),
        bulk_op: s.bulk_op,
        filled: ctx.record.filled,
        refusal,
        reason: refusal.and(ctx.record.error.as_deref()),
    };
    serde_json::to_string(&e).expect("an event always serializes")
}

/// A create's new id, from its answer's `Location`, else from its body (read whole for it).
async fn created_id(response: Response<Body>) -> (Response<Body>, Option<String>) {
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok());
    if let Some(id) = line::created_id(location, None) {
        return (response, Some(id));
    }
    let (response, bytes) = read_whole(response).await;
    let id = line::created_id(None, Some(&bytes));
    (response, id)
}

/// The answer's body read whole, and the answer to send with it. An answer that breaks off
/// while read is answered as a broken upstream answer.
async fn read_whole(response: Response<Body>) -> (Response<Body>, Bytes) {
    let (parts, body) = response.into_parts();
    match body.collect().await {
        Ok(bytes) => {
            let bytes = bytes.to_bytes();
            let full = Either::Right(Full::new(bytes.clone()));
            (Response::from_parts(parts, full), bytes)
        }
        Err(e) => {
            let e = crate::upstream::UpstreamError::Broken(e);
            (error::respond(&ProxyError::Upstream(e)), Bytes::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::line::withheld_by;
    use super::*;
    use crate::policy::Policy;

    fn policy(deny: &[&str]) -> Policy {
        let raw = crate::policy::RawAttributes {
            deny: deny.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        Policy::compile(&raw).unwrap()
    }

    #[test]
    fn a_value_the_policy_withholds_is_never_logged() {
        let p = policy(&[
            "title",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
        ]);
        let v = Value::String("x".into());
        assert!(policy_passes(
            &p,
            Endpoint::Users,
            "active",
            &Value::Bool(false)
        ));
        assert!(!policy_passes(&p, Endpoint::Users, "title", &v));
        let cost = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter";
        assert!(!policy_passes(&p, Endpoint::Users, cost, &v));
        assert!(withheld_by(&p, "TITLE"));
        assert!(!withheld_by(&p, "displayName"));
    }

    #[test]
    fn a_value_a_detector_recognises_is_never_logged() {
        let raw = crate::policy::RawAttributes {
            detect: vec![crate::policy::RawDetector::Builtin("us_ssn".into())],
            ..Default::default()
        };
        let p = Policy::compile(&raw).unwrap();
        let ssn = Value::String("123-45-6789".into());
        assert!(!policy_passes(&p, Endpoint::Users, "displayName", &ssn));
        let name = Value::String("Alice".into());
        assert!(policy_passes(&p, Endpoint::Users, "displayName", &name));
    }
}
