//! Stage 9, forward: carries the request to the tenant's upstream (a pooled HTTP(S) client, or
//! the embedded memory store) within the tenant's deadline, and classifies what went wrong.

mod body;
mod call;
mod client;
pub mod headers;

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, Uri, Version};
use http_body_util::{Either, Full};
use tokio::time::Instant;

pub use body::{BodyTimeout, BoxError, UpstreamBody};
pub use call::{Call, CallContext, Reply};
pub use client::{ClientError, Clients, HttpClient};
pub use headers::Forwarded;

use crate::config::{UpstreamConfig, UpstreamTarget};
use crate::response::Body;
use crate::scim::memory::MemoryStore;

/// Where one tenant's requests go.
// One per tenant, built once and never moved on the request path: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Upstream {
    Http(HttpUpstream),
    Memory(MemoryStore),
}

pub struct HttpUpstream {
    /// `scheme://authority/base-path`, no trailing slash: the request's path is appended.
    base: Box<str>,
    authority: http::uri::Authority,
    https: bool,
    client: HttpClient,
    credential: Option<HeaderValue>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpUpstream")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the application could not be reached")]
    Unavailable(#[source] BoxError),
    #[error("the application did not answer within {}s", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("the application broke off the exchange")]
    Broken(#[source] BoxError),
    #[error("the application did not finish its answer in time")]
    SlowBody,
    #[error("the request path cannot be sent upstream")]
    BadPath(#[source] http::uri::InvalidUri),
}

/// What the forward stage needs besides the request itself.
pub struct Outbound<'a> {
    /// The path below the tenant's base, with its query: `/Users?startIndex=1`.
    pub path_and_query: &'a str,
    pub ctx: &'a CallContext<'a>,
}

impl UpstreamError {
    /// An error met while reading an upstream body: the deadline, or a broken exchange.
    pub fn reading(e: BoxError) -> Self {
        if e.is::<BodyTimeout>() {
            Self::SlowBody
        } else {
            Self::Broken(e)
        }
    }
}

impl Upstream {
    pub fn build(cfg: &UpstreamConfig, clients: &mut Clients) -> Result<Self, ClientError> {
        let base = match &cfg.target {
            UpstreamTarget::Memory => return Ok(Self::memory()),
            UpstreamTarget::Http(uri) => uri,
        };
        Ok(Self::Http(HttpUpstream {
            base: base.to_string().trim_end_matches('/').into(),
            authority: base
                .authority()
                .expect("validated: an http(s) URL has an authority")
                .clone(),
            https: base.scheme_str() == Some("https"),
            client: clients.get(cfg.ca.as_deref(), cfg.connect_timeout)?,
            credential: cfg.credential.clone(),
            timeout: cfg.timeout,
        }))
    }

    pub fn memory() -> Self {
        Self::Memory(MemoryStore::new())
    }

    /// The upstream's base URL, to recognise its own `Location` headers.
    pub fn base_url(&self) -> Option<&str> {
        match self {
            Self::Http(up) => Some(&up.base),
            Self::Memory(_) => None,
        }
    }

    /// How long the proxy may work on one request for this tenant when it fills a gap with
    /// several upstream calls (a scan, a Bulk): ten upstream timeouts. Without a limit, a
    /// client that waits forever would keep a scan, and the locks it holds, going.
    pub fn gap_deadline(&self) -> Duration {
        match self {
            Self::Http(up) => up.timeout * 10,
            Self::Memory(_) => Duration::from_secs(300),
        }
    }

    /// `host:port` to probe for readiness; `None` for the in-process store, which is always up.
    pub fn probe_address(&self) -> Option<String> {
        let Self::Http(up) = self else { return None };
        let port = up
            .authority
            .port_u16()
            .unwrap_or(if up.https { 443 } else { 80 });
        Some(format!("{}:{port}", up.authority.host()))
    }

    pub async fn forward(
        &self,
        parts: http::request::Parts,
        body: Bytes,
        out: Outbound<'_>,
    ) -> Result<Response<Body>, UpstreamError> {
        match self {
            Self::Http(up) => up.forward(parts, body, out).await,
            Self::Memory(store) => Ok(memory_forward(store, &parts, body, &out)),
        }
    }
}

impl HttpUpstream {
    async fn forward(
        &self,
        mut parts: http::request::Parts,
        body: Bytes,
        out: Outbound<'_>,
    ) -> Result<Response<Body>, UpstreamError> {
        let uri = format!("{}{}", self.base, out.path_and_query);
        parts.uri = Uri::try_from(uri).map_err(UpstreamError::BadPath)?;
        // The client picks HTTP/1.1 or h2 per connection; the client side's version is not ours.
        parts.version = Version::HTTP_11;
        headers::prepare_request(
            &mut parts.headers,
            self.credential.as_ref(),
            out.ctx.forwarded,
        );
        let request = Request::from_parts(parts, Full::new(body));
        let deadline = Instant::now() + self.timeout;
        let response = self.send(request, deadline).await?;
        Ok(response.map(|b| Either::Left(UpstreamBody::new(b, deadline))))
    }

    /// Sends a request and waits for the head of the answer, at most until `deadline`.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<Response<hyper::body::Incoming>, UpstreamError> {
        tokio::time::timeout_at(deadline, self.client.request(request))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))?
            .map_err(|e| {
                if e.is_connect() {
                    UpstreamError::Unavailable(e.into())
                } else {
                    UpstreamError::Broken(e.into())
                }
            })
    }
}

/// Hands the request to the in-process store and turns its answer into an HTTP response.
fn memory_forward(
    store: &MemoryStore,
    parts: &http::request::Parts,
    body: Bytes,
    out: &Outbound<'_>,
) -> Response<Body> {
    let base_url = (out.ctx.public_base)();
    // Repeated header lines form one list (RFC 9110 §5.3). Bytes that are not text are kept,
    // garbled: an If-Match the store cannot read must fail, not be dropped.
    let list = |name: header::HeaderName| {
        let lines: Vec<_> = parts.headers.get_all(name).iter().collect();
        (!lines.is_empty()).then(|| {
            lines
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let (if_match, if_none_match) = (list(header::IF_MATCH), list(header::IF_NONE_MATCH));
    let ask = call::MemoryAsk {
        method: &parts.method,
        path_and_query: out.path_and_query,
        body: &body,
        base_url: &base_url,
        if_match: if_match.as_deref(),
        if_none_match: if_none_match.as_deref(),
    };
    let reply = call::memory_reply(store, &ask);
    let mut response = Response::new(Either::Right(Full::new(reply.body)));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}
