//! The request's way through the proxy, in order: the one place the stages are called. Each
//! stage either hands the request on or answers with a SCIM Error; nothing goes back a stage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body::Body as _;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use time::OffsetDateTime;

use crate::error::{self, ProxyError};
use crate::listener::ConnInfo;
use crate::response::{self, Answer, Body};
use crate::tenant::Tenants;
use crate::upstream::headers::X_REQUEST_ID;
use crate::upstream::{CallContext, Forwarded, Outbound};
use crate::{auth, emulate, scim};

/// Everything a request needs that outlives it: the routed tenants and the request limits.
#[derive(Debug)]
pub struct Proxy {
    pub tenants: Tenants,
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
}

/// Runs one request through the stages and logs it; never fails, since every failure is
/// itself an answer.
pub async fn handle(proxy: &Proxy, conn: &ConnInfo, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let request_id = request_id(req.headers());
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut tenant: Option<Arc<str>> = None;
    let mut response = match run(proxy, conn, req, &uri, &request_id, &mut tenant).await {
        Ok(response) => response,
        Err(e) => {
            if e.is_server_side() {
                tracing::warn!(
                    request_id = request_id.to_str().unwrap_or_default(),
                    tenant = tenant.as_deref().unwrap_or("-"),
                    error = %e,
                    cause = causes(&e),
                    "request failed"
                );
            }
            error::respond(&e)
        }
    };
    response
        .headers_mut()
        .insert(X_REQUEST_ID, request_id.clone());
    // The path only: a query can carry filter values such as e-mail addresses.
    tracing::info!(
        request_id = request_id.to_str().unwrap_or_default(),
        tenant = tenant.as_deref().unwrap_or("-"),
        method = %method,
        path = uri.path(),
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

async fn run(
    proxy: &Proxy,
    conn: &ConnInfo,
    req: Request<Incoming>,
    uri: &Uri,
    request_id: &HeaderValue,
    tenant_id: &mut Option<Arc<str>>,
) -> Result<Response<Body>, ProxyError> {
    if conn.overloaded {
        return Err(ProxyError::Overloaded);
    }
    let (parts, body) = req.into_parts();
    let host_header = parts.headers.get(header::HOST).cloned();
    let host = uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| host_header.as_ref()?.to_str().ok());

    // 2. route. Before authentication: the tenant decides which credentials count.
    let routed = proxy.tenants.route(host, conn.sni(), uri.path())?;
    let (tenant, prefix_len) = (routed.tenant, routed.prefix_len);
    *tenant_id = Some(tenant.id.clone());

    // 3. authenticate. Before the body is read: an unknown caller costs no more than headers.
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    auth::authenticate(
        &tenant.auth,
        authorization,
        conn.peer(),
        OffsetDateTime::now_utc(),
    )?;

    // 5. classify. Only SCIM's methods and endpoints go on (TRACE would echo the upstream
    // credential the proxy adds), and only paths no server can resolve outside the upstream's
    // base (RFC 3986 §5.2.4 dot segments, encoded slashes, `;` parameters).
    if !matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return Err(ProxyError::MethodNotAllowed(parts.method.clone()));
    }
    let rest = &uri.path()[prefix_len..];
    if !scim::request::is_safe_path(rest) {
        return Err(ProxyError::UnsafePath);
    }
    let target = scim::request::classify(rest).ok_or(ProxyError::NoEndpoint)?;
    let body = read_body(body, &parts.headers, proxy).await?;
    if !body.is_empty() {
        scim::json::check(&body)?;
    }

    let public_base = || public_base(conn, host, &uri.path()[..prefix_len]);
    let forwarded = Forwarded {
        client_ip: conn.remote.ip(),
        https: conn.tls.is_some(),
        host: host_header
            .clone()
            .or_else(|| HeaderValue::from_str(host?).ok()),
        tenant: &tenant.id,
        request_id,
    };
    let ctx = CallContext {
        forwarded: &forwarded,
        public_base: &public_base,
    };
    let answer = Answer {
        upstream_base: tenant.upstream.base_url(),
        public_base: &public_base,
    };

    // 8. fill gaps: what the upstream cannot do is answered here, with its help.
    let method = parts.method.clone();
    let if_match = parts.headers.get(header::IF_MATCH).cloned();
    let gap = emulate::Request {
        method: &method,
        target: &target,
        path: rest,
        query: uri.query(),
        body: &body,
        if_match: if_match.as_ref().and_then(|v| v.to_str().ok()),
        ctx: &ctx,
    };
    if let Some(response) = emulate::fill(tenant, &gap).await? {
        // Answers relayed from the upstream get the same finishing as forwarded ones.
        let response = emulate::finish(tenant, &gap, response).await?;
        return Ok(response::answer(response, answer).await);
    }

    // 9. forward, then 10. answer (after what the upstream left undone in its answer).
    let path_and_query = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let out = Outbound {
        path_and_query: &path_and_query,
        ctx: &ctx,
    };
    let response = tenant.upstream.forward(parts, body.clone(), out).await?;
    let response = emulate::finish(tenant, &gap, response).await?;
    Ok(response::answer(response, answer).await)
}

/// The chain of causes under an error, for the log: "client error (Connect): tcp connect
/// error: Connection refused".
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut next = e.source();
    while let Some(cause) = next {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// Reads a request body whole, within the size limit and the read timeout. SCIM bodies are
/// small JSON documents that later stages parse; the bytes are forwarded as they came.
async fn read_body(
    body: Incoming,
    headers: &HeaderMap,
    proxy: &Proxy,
) -> Result<Bytes, ProxyError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let limit = proxy.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let collected = tokio::time::timeout(proxy.read_timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| ProxyError::BodyTimeout)?;
    match collected {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ProxyError::BodyTooLarge { limit }),
        Err(e) => Err(ProxyError::BodyRead(e)),
    }
}

/// The tenant's SCIM base as the IdP sees it, for `meta.location` and `Location`.
fn public_base(conn: &ConnInfo, host: Option<&str>, prefix: &str) -> String {
    let scheme = if conn.tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{}{prefix}", host.unwrap_or("localhost"))
}

/// The caller's `X-Request-Id` when it is a sane token, else a fresh one: a per-process random
/// prefix and a counter, unique without a syscall per request.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(given) = headers.get(X_REQUEST_ID) {
        let bytes = given.as_bytes();
        if (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic()) {
            return given.clone();
        }
    }
    static SEED: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(|| {
        let mut b = [0u8; 4];
        // Without randomness, ids are still unique within the process.
        let _ = getrandom::fill(&mut b);
        u32::from_ne_bytes(b)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    HeaderValue::try_from(format!("{seed:08x}-{n:012x}"))
        .expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_is_kept_when_sane_and_made_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("has space"));
        let made = request_id(&h);
        assert_ne!(made, "has space");
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
        assert_eq!(made.len(), 21);
    }
}
