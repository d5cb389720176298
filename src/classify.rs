//! Stage 5, classify: what the request names (RFC 7644 §3.2), refused early when it names
//! nothing SCIM serves or could reach outside the tenant's base; then its body, read within
//! the size and time limits and checked to be JSON no deeper than the guard allows.

use bytes::Bytes;
use http::header;
use http::Method;
use http_body::Body as _;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::body::BoxError;
use crate::ctx::{ReqBody, RequestCtx};
use crate::listener::http::{MAX_HEADER_BYTES, MAX_HEADER_COUNT, MAX_URI_BYTES};
use crate::scim::error::ScimError;
use crate::scim::json::{self, JsonError};
use crate::scim::list::{asks_for_projection, ListParams};
use crate::scim::request::{self, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error("the request has more than {MAX_HEADER_COUNT} header fields, or more than {MAX_HEADER_BYTES} bytes of them")]
    HeadersTooLarge,
    #[error("the request target is longer than {MAX_URI_BYTES} bytes")]
    UriTooLong,
    #[error("the request body must be application/scim+json or application/json, not {0}")]
    MediaType(String),
    #[error("{0} is not a SCIM method")]
    MethodNotAllowed(Method),
    #[error("the request path has segments that could reach outside the tenant's SCIM base ('.', '..', ';', '\\' or an encoded slash)")]
    UnsafePath,
    #[error("there is no SCIM endpoint at this path")]
    NoEndpoint,
    #[error("a Bulk operation cannot itself be a Bulk request")]
    BulkInBulk,
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("the request body could not be read")]
    BodyRead(#[source] BoxError),
    #[error(transparent)]
    InvalidJson(#[from] JsonError),
    /// A query parameter SCIM defines with a value it cannot have (`attributes` naming a
    /// filter, `count` not a number).
    #[error("{}", .0.detail)]
    Query(ScimError),
}

/// Only SCIM's methods and endpoints go on (TRACE would echo the upstream credential the proxy
/// adds), and only paths no server can resolve outside the upstream's base (RFC 3986 §5.2.4
/// dot segments, encoded slashes, `;` parameters).
pub fn target(ctx: &mut RequestCtx) -> Result<(), ClassifyError> {
    if !matches!(
        ctx.method,
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return Err(ClassifyError::MethodNotAllowed(ctx.method.clone()));
    }
    let path = ctx.path();
    if !request::is_safe_path(path) {
        return Err(ClassifyError::UnsafePath);
    }
    let target = request::classify(path)
        .ok_or(ClassifyError::NoEndpoint)?
        .into_owned();
    canonical_spelling(ctx, target.endpoint);
    if target.endpoint == Endpoint::Bulk && ctx.record.bulk_op.is_some() {
        return Err(ClassifyError::BulkInBulk);
    }
    ctx.target = Some(target);
    // `attributes`/`excludedAttributes` are checked here for every request, so that one naming
    // a filter is refused whether or not the proxy reads the answer (RFC 7644 §3.4.2.5).
    if asks_for_projection(ctx.query()) {
        ListParams::from_query(ctx.query()).map_err(ClassifyError::Query)?;
    }
    Ok(())
}

/// `/users` reaches the app as `/Users`: the app gets the spelling RFC 7644 §3.2 uses.
fn canonical_spelling(ctx: &mut RequestCtx, endpoint: Endpoint) {
    let Some(canonical) = endpoint.segment() else {
        return;
    };
    let path = ctx.path();
    let rest = path.strip_prefix('/').unwrap_or(path);
    let given = rest.split('/').next().unwrap_or_default();
    if given == canonical {
        return;
    }
    let at = ctx.prefix_len + (path.len() - rest.len());
    let pq = ctx.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let rewritten = format!("{}{canonical}{}", &pq[..at], &pq[at + given.len()..]);
    ctx.set_path_and_query(&rewritten);
}

/// What the request's head alone says is too much: refused before anything else reads it.
pub fn head(ctx: &RequestCtx) -> Result<(), ClassifyError> {
    if ctx.uri.path_and_query().map_or(0, |pq| pq.as_str().len()) > MAX_URI_BYTES {
        return Err(ClassifyError::UriTooLong);
    }
    let headers = &ctx.headers;
    if headers.len() > MAX_HEADER_COUNT {
        return Err(ClassifyError::HeadersTooLarge);
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(ClassifyError::HeadersTooLarge);
    }
    Ok(())
}

/// Reads the body whole, within the size limit and the read timeout, and checks it is JSON.
/// SCIM bodies are small JSON documents that later stages parse; the bytes are kept as they
/// came.
pub async fn body(ctx: &mut RequestCtx, body: Incoming) -> Result<(), ClassifyError> {
    let bytes = read(ctx, body).await?;
    ctx.body = if !bytes.is_empty() && ctx.tenant().reads_bodies() {
        let doc = json::parse(&bytes)?;
        ReqBody::with_json(bytes, doc)
    } else {
        check(&bytes)?;
        ReqBody::new(bytes)
    };
    Ok(())
}

/// A body says it is JSON (RFC 7644 §3.1: `application/scim+json`; `application/json` is
/// what many clients send), or says nothing. Anything else is refused before it is read.
fn media_type(headers: &http::HeaderMap) -> Result<(), ClassifyError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value.to_str().unwrap_or_default();
    let essence = essence.split(';').next().unwrap_or_default().trim();
    let json = ["application/scim+json", "application/json"]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t));
    if json {
        return Ok(());
    }
    let shown: String = essence
        .chars()
        .take(64)
        .filter(|c| !c.is_control())
        .collect();
    Err(ClassifyError::MediaType(if shown.is_empty() {
        "an empty or unreadable Content-Type".to_owned()
    } else {
        shown
    }))
}

/// The JSON guard, for a body that arrived by other means (a Bulk operation's data).
pub fn check(bytes: &[u8]) -> Result<(), ClassifyError> {
    if !bytes.is_empty() {
        json::check(bytes)?;
    }
    Ok(())
}

async fn read(ctx: &RequestCtx, body: Incoming) -> Result<Bytes, ClassifyError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    media_type(&ctx.headers)?;
    let limit = ctx.snapshot.server.max_body_bytes;
    let declared = ctx
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ClassifyError::BodyTooLarge { limit });
    }
    let timeout = ctx.snapshot.server.read_timeout;
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| ClassifyError::BodyTimeout)?;
    match collected {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ClassifyError::BodyTooLarge { limit }),
        Err(e) => Err(ClassifyError::BodyRead(e)),
    }
}
