//! Stage 10, answer: every answer on its way back to the IdP, forwarded or composed, passes
//! here once. What the app left undone in a success is done (an empty list for a filter it
//! answered 404, the projection asked for, `returned: never` attributes dropped, its own
//! address replaced by the proxy's); hop-by-hop headers go; error answers become SCIM Errors;
//! the media type is made SCIM's. Success bodies the proxy need not read stream through.

pub mod errors;
pub mod project;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use serde_json::Value;

pub use errors::scim_error_body;

use crate::body::{self, Body};
use crate::ctx::RequestCtx;
use crate::scim::list::{asks_for_more, asks_for_projection, ListResponse};
use crate::scim::request::Endpoint;
use crate::upstream::headers;
use crate::upstream::target::Upstream;
use crate::upstream::{self, UpstreamError};
use project::Relocation;

/// The largest upstream answer read to rework it.
const MAX_ANSWER: usize = 32 << 20;

pub async fn answer(
    ctx: &mut RequestCtx,
    response: Response<Body>,
) -> Result<Response<Body>, UpstreamError> {
    let mut response = finish_resources(ctx, response).await?;
    headers::strip_hop_by_hop(response.headers_mut());
    rewrite_location(ctx, &mut response);
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        return Ok(errors::rewrite(response).await);
    }
    fix_media_type(response.headers_mut());
    Ok(response)
}

/// What the app left undone in a successful answer: the projection the request asked for,
/// and, from an app without discovery documents (so not trusted to apply its schema's
/// `returned` rules), `returned: never` attributes such as `password` removed and its own
/// address in `meta.location` replaced. Projecting an answer already projected changes nothing.
async fn finish_resources(
    ctx: &mut RequestCtx,
    response: Response<Body>,
) -> Result<Response<Body>, UpstreamError> {
    let status = response.status();
    let target = ctx.target();
    let resources = matches!(
        target.endpoint,
        Endpoint::Users | Endpoint::Groups | Endpoint::Root
    );
    let listing = resources && target.id.is_none() && ctx.method == Method::GET;
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
    if !status.is_success() || status == StatusCode::NO_CONTENT || !resources {
        return Ok(response);
    }
    if !asks_for_projection(ctx.query()) && trusted(ctx).await {
        return Ok(response);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map_err(UpstreamError::reading)?
        .to_bytes();
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(doc) => {
            let public = ctx.public_base();
            let tenant = ctx.tenant();
            let relocation = tenant.upstream.base_url().map(|upstream| Relocation {
                upstream,
                public: &public,
            });
            let endpoint = ctx.target().endpoint;
            let doc = project::finish_answer(endpoint, ctx.query(), relocation.as_ref(), doc);
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::CONTENT_ENCODING);
            Bytes::from(serde_json::to_vec(&doc).expect("a JSON value always serializes"))
        }
        // Not JSON: the IdP sees it as it came.
        Err(_) => bytes,
    };
    Ok(Response::from_parts(parts, Either::Right(Full::new(body))))
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
