//! Stage 10, answer: every answer on its way back to the IdP, forwarded or composed, passes
//! here once. A compressed answer is decoded; what the app left undone in a success is done
//! (an empty list for a filter it answered 404, the projection asked for, `returned: never`
//! attributes dropped); only the headers that describe the answer stay; error answers become
//! SCIM Errors without the proxy's secrets in them; the media type is made SCIM's; the app's
//! own address becomes the proxy's, in headers and body. Success bodies the proxy need not read
//! stream through, searched for the app's address on the way.

pub mod decode;
pub mod errors;
pub mod project;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use serde_json::Value;

pub use errors::scim_error_body;

use crate::attribute_policy;
use crate::body::{self, Body};
use crate::config::Idp;
use crate::ctx::RequestCtx;
use crate::policy::Refusal;
use crate::rule_pack::{self, answer::AnswerTo, model::Answer, Pack};
use crate::scim::error::ScimError;
use crate::scim::json;
use crate::scim::list::{asks_for_more, asks_for_projection, ListParams, ListResponse};
use crate::scim::request::Endpoint;
use crate::upstream::headers;
use crate::upstream::relocate::{Public, Relocating};
use crate::upstream::target::Upstream;
use crate::upstream::{self, UpstreamError};

/// The largest upstream answer read to rework it (and the most a compressed one may decode to).
const MAX_ANSWER: usize = 32 << 20;

/// Streamed answers up to this length are read whole to replace the app's address, so that
/// their `Content-Length` stays exact; longer ones, and those of unknown length, are rewritten
/// as they stream.
const READ_WHOLE_UP_TO: u64 = 256 << 10;

pub async fn answer(
    ctx: &mut RequestCtx,
    response: Response<Body>,
) -> Result<Response<Body>, UpstreamError> {
    let response = decode::unencoded(ctx, response, MAX_ANSWER).await?;
    let mut response = finish_resources(ctx, response).await?;
    headers::keep_answer_headers(response.headers_mut());
    rewrite_location(ctx, &mut response);
    let status = response.status();
    let response = if status.is_client_error() || status.is_server_error() {
        let response = error_answer(ctx, response).await;
        if attribute_policy::has_outbound(ctx) {
            screen(ctx, response).await
        } else {
            response
        }
    } else {
        fix_media_type(response.headers_mut());
        response
    };
    relocate(ctx, response).await
}

/// An error answer as a SCIM Error; text holding the upstream credential is withheld, and the
/// log says so (without the text).
async fn error_answer(ctx: &RequestCtx, response: Response<Body>) -> Response<Body> {
    let status = response.status().as_u16();
    let (response, withheld) = errors::rewrite(response, &ctx.tenant().upstream.secrets()).await;
    if withheld {
        tracing::warn!(
            request_id = ctx.id.to_str().unwrap_or_default(),
            tenant = ctx.tenant_id(),
            status,
            "the application's error text held the upstream credential; the IdP gets a neutral detail"
        );
    }
    response
}

/// The app's base URL, wherever it is in the body, names the proxy instead (its `Location`
/// header is done in [`rewrite_location`]). Bodies without it pass unchanged and unparsed.
async fn relocate(
    ctx: &RequestCtx,
    response: Response<Body>,
) -> Result<Response<Body>, UpstreamError> {
    let Some(base) = ctx.tenant().upstream.base_pattern() else {
        return Ok(response);
    };
    let status = response.status();
    if ctx.method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(response);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body {
        Either::Right(held) => held
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default(),
        Either::Left(mut streamed) => {
            let length = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if length.is_none_or(|n| n > READ_WHOLE_UP_TO) {
                parts.headers.remove(header::CONTENT_LENGTH);
                let public = Public::new(&ctx.public_base());
                streamed.rewrite(Box::new(Relocating::new(base.clone(), public)));
                return Ok(Response::from_parts(parts, Either::Left(streamed)));
            }
            // Counted in the process's budget while it is read.
            let (bytes, _held) = ctx
                .snapshot
                .buffers
                .read(streamed, READ_WHOLE_UP_TO as usize)
                .await
                .map_err(UpstreamError::from)?;
            bytes
        }
    };
    if !base.occurs_in(&bytes) {
        // The common case: nothing to replace, and nothing built to replace it with.
        return Ok(Response::from_parts(parts, Either::Right(Full::new(bytes))));
    }
    let public = Public::new(&ctx.public_base());
    let bytes = match base.replace_all(&bytes, &public) {
        None => bytes,
        Some(replaced) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Bytes::from(replaced)
        }
    };
    Ok(Response::from_parts(parts, Either::Right(Full::new(bytes))))
}

/// What the app left undone in a successful answer: the response rules of the tenant's packs
/// (the app's first, then the IdP's), the projection the request asked for, and, from an app
/// without discovery documents (so not trusted to apply its schema's `returned` rules),
/// `returned: never` attributes such as `password` removed and its own address in
/// `meta.location` replaced. Projecting an answer already projected changes nothing.
async fn finish_resources(
    ctx: &mut RequestCtx,
    response: Response<Body>,
) -> Result<Response<Body>, UpstreamError> {
    let status = response.status();
    let target = ctx.target();
    // `/Me` answers the authenticated subject's own resource (RFC 7644 §3.11): a User.
    let resources = matches!(
        target.endpoint,
        Endpoint::Users | Endpoint::Groups | Endpoint::Root | Endpoint::Me
    );
    let listing = resources && ctx.method == Method::GET && ctx.answers_a_query();
    if status == StatusCode::NOT_FOUND && listing && asks_for_more(ctx.query()) {
        // A filter that matches nothing is an empty list, not a 404 (RFC 7644 §3.4.2; Entra
        // quarantines an app that answers 404 here).
        let empty = ListResponse {
            total_results: 0,
            start_index: 1,
            resources: Vec::new(),
        };
        return Ok(body::json(StatusCode::OK, &empty.to_value()));
    }
    if !status.is_success() || status == StatusCode::NO_CONTENT {
        return Ok(response);
    }
    let packs = answer_packs(ctx);
    let withhold = resources && attribute_policy::has_outbound(ctx);
    let finish = resources && (asks_for_projection(ctx.query()) || !trusted(ctx).await);
    if packs.is_empty() && !finish && !withhold {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    // Held until the answer is rewritten; what replaces it is the IdP's to read.
    let (bytes, _held) = ctx
        .snapshot
        .buffers
        .read(body, MAX_ANSWER)
        .await
        .map_err(UpstreamError::from)?;
    // A UTF-8 byte order mark is no JSON (RFC 8259 §8.1), but some frameworks write one.
    let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if packs.is_empty() && !finish {
        // Only the attribute policy reads this answer: what it may change is read, the rest
        // goes on as the app wrote it.
        let text = std::str::from_utf8(json).ok();
        match text.and_then(|t| attribute_policy::outbound_text(ctx, t)) {
            Some(Ok(None)) if json.len() == bytes.len() => {
                return Ok(Response::from_parts(parts, Either::Right(Full::new(bytes))));
            }
            Some(Ok(None)) => {
                let without_bom = bytes.slice(bytes.len() - json.len()..);
                return Ok(rewritten(parts, without_bom));
            }
            Some(Ok(Some(text))) => return Ok(rewritten(parts, Bytes::from(text))),
            Some(Err(refusal)) => {
                return Ok(match json::read(json) {
                    Some(mut doc) => refused(ctx, refusal, &mut doc),
                    None => unreadable(ctx),
                })
            }
            None => {}
        }
    }
    let Some(mut doc) = json::read(json) else {
        if (finish || withhold) && !json.trim_ascii().is_empty() {
            // Fail closed: what cannot be read cannot be checked for `password` or a
            // withheld value.
            return Ok(unreadable(ctx));
        }
        // Only response rules were to run: the IdP sees it as it came.
        return Ok(Response::from_parts(parts, Either::Right(Full::new(bytes))));
    };
    let public = ctx.public_base();
    let mut changed = false;
    if !packs.is_empty() {
        let paging = paging(ctx);
        let to = AnswerTo {
            method: &ctx.method,
            endpoint: ctx.target().endpoint,
            headers: &parts.headers,
            answer: Answer::to_request(
                status.as_u16(),
                &public,
                &ctx.method,
                ctx.target(),
                &paging,
            ),
            extensions: ctx.extensions(),
        };
        let fired = rule_pack::answer::normalize(&packs, &to, &mut doc);
        changed = !fired.is_empty();
        ctx.record.rules.extend(fired);
    }
    if withhold {
        match attribute_policy::outbound(ctx, &mut doc) {
            Ok(withheld) => changed |= withheld,
            Err(refusal) => return Ok(refused(ctx, refusal, &mut doc)),
        }
    }
    if finish {
        let endpoint = ctx.target().endpoint;
        doc = project::finish_answer(endpoint, ctx.query(), doc, ctx.answers_a_query());
        changed = true;
    }
    if !changed && json.len() == bytes.len() {
        return Ok(Response::from_parts(parts, Either::Right(Full::new(bytes))));
    }
    let body = Bytes::from(json::to_vec(&doc, bytes.len()));
    Ok(rewritten(parts, body))
}

/// An answer whose body the proxy wrote anew.
fn rewritten(mut parts: http::response::Parts, body: Bytes) -> Response<Body> {
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    Response::from_parts(parts, Either::Right(Full::new(body)))
}

/// 502 for a successful answer from a partial app that is not JSON: it may hold a
/// `returned: never` attribute the proxy could not remove.
fn unreadable(ctx: &RequestCtx) -> Response<Body> {
    tracing::warn!(
        request_id = ctx.id.to_str().unwrap_or_default(),
        tenant = ctx.tenant_id(),
        "the application's answer is not JSON; withheld, as it cannot be checked"
    );
    let e = ScimError::new(
        502,
        "the application's answer is withheld: it is not JSON, so it cannot be checked before it is passed on",
    );
    body::full(
        StatusCode::BAD_GATEWAY,
        crate::scim::MEDIA_TYPE,
        e.to_json(),
    )
}

/// An answer holding a value the outbound policy refuses to pass (`on_detect = "reject"`).
/// A read is refused with 502: the IdP must not see the value, and the app gave nothing else.
/// A write has happened at the app, so it is not reported as failed: the IdP gets the
/// resource's `id`, `schemas` and `meta` only.
fn refused(ctx: &RequestCtx, refusal: Refusal, doc: &mut Value) -> Response<Body> {
    tracing::warn!(
        request_id = ctx.id.to_str().unwrap_or_default(),
        tenant = ctx.tenant_id(),
        refusal = %refusal,
        "the application's answer holds a value the attribute policy refuses to pass"
    );
    let read = ctx.method == Method::GET || ctx.target().search;
    if read {
        let e = ScimError::new(
            502,
            format!("the application's answer is withheld: {refusal}"),
        );
        return body::full(
            StatusCode::BAD_GATEWAY,
            crate::scim::MEDIA_TYPE,
            e.to_json(),
        );
    }
    let kept: serde_json::Map<String, Value> = doc
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| {
                    ["id", "schemas", "meta"]
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(k))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let status = if ctx.method == Method::POST {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    body::json(status, &Value::Object(kept))
}

/// A SCIM Error whose `detail` holds a value the outbound policy recognises gets a neutral one.
async fn screen(ctx: &RequestCtx, response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Some(mut doc) = json::read(&bytes) else {
        return Response::from_parts(parts, Either::Right(Full::new(bytes)));
    };
    if !attribute_policy::screen_detail(ctx, &mut doc) {
        return Response::from_parts(parts, Either::Right(Full::new(bytes)));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = Bytes::from(json::to_vec(&doc, bytes.len()));
    Response::from_parts(parts, Either::Right(Full::new(body)))
}

/// The packs with response rules this answer goes through: the app's (`app_rules`), then
/// the IdP's (the one stage 6 ran, for `idp = "auto"` the one it detected).
fn answer_packs(ctx: &RequestCtx) -> Vec<Arc<Pack>> {
    let tenant = ctx.tenant();
    let mut packs: Vec<Arc<Pack>> = tenant
        .app_rules
        .iter()
        .filter(|p| p.answers)
        .cloned()
        .collect();
    let idp = match &tenant.idp {
        Some(Idp::Pack(pack)) => Some(pack.clone()),
        Some(Idp::Auto) => ctx
            .record
            .pack
            .as_deref()
            .and_then(|n| ctx.snapshot.packs.get(n)),
        None => None,
    };
    packs.extend(idp.filter(|p| p.answers));
    packs
}

/// The `startIndex` and `count` the request asked for, in its query or `.search` body.
fn paging(ctx: &mut RequestCtx) -> ListParams {
    if ctx.target().search {
        return match ctx.body.json() {
            Ok(body) => ListParams::from_search_body(body).unwrap_or_default(),
            Err(_) => ListParams::default(),
        };
    }
    ListParams::from_query(ctx.query()).unwrap_or_default()
}

/// Whether the app's answers can be passed on unread: the embedded store, or an app with its
/// own discovery documents. The app has already acted on the request, so not knowing its
/// capabilities now must not turn its answer into an error: it is then finished as for a
/// partial app.
async fn trusted(ctx: &mut RequestCtx) -> bool {
    if matches!(ctx.tenant().upstream, Upstream::Memory(_)) {
        return true;
    }
    upstream::capabilities(ctx).await.is_ok_and(|c| c.discovery)
}

/// `application/json` from a legacy app becomes `application/scim+json`: Entra's validator
/// aborts on the former (QUIRKS L3). The bytes are JSON either way.
fn fix_media_type(headers: &mut http::HeaderMap) {
    let is_plain_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if is_plain_json {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::scim::MEDIA_TYPE),
        );
    }
}

/// A `Location` naming the upstream names the proxy instead.
fn rewrite_location(ctx: &RequestCtx, response: &mut Response<Body>) {
    let Some(upstream_base) = ctx.tenant().upstream.base_url() else {
        return;
    };
    let Some(location) = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
    else {
        return;
    };
    if let Some(rest) = location.strip_prefix(upstream_base) {
        let public = format!("{}{rest}", ctx.public_base());
        if let Ok(v) = HeaderValue::try_from(public) {
            response.headers_mut().insert(header::LOCATION, v);
        }
    }
}

/// An answer read whole, as a Bulk operation's outcome (RFC 7644 §3.7.3).
pub async fn outcome(response: Response<Body>) -> crate::scim::bulk::OpOutcome {
    let (parts, body) = response.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    crate::scim::bulk::OpOutcome {
        status: parts.status.as_u16(),
        location: header(header::LOCATION),
        etag: header(header::ETAG),
        body,
    }
}
