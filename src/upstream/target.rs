//! Where one tenant's requests go: pooled connections to an app's SCIM base URL, or the
//! embedded memory store. Built with each configuration snapshot; the store's data and the
//! client pools outlive it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::Error as ClientFailure;
use tokio::time::Instant;

use super::breaker::{Breaker, Change};
use super::client::{ClientError, Clients, UpstreamClient};
use super::error::UpstreamError;
use super::pool::{Failure, Pool, Stream};
use super::relocate::BaseUrl;
use crate::config::{self, UpstreamConfig, UpstreamTarget};
use crate::scim::memory::MemoryStore;

// One per tenant and snapshot, never moved on the request path: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Upstream {
    Http(HttpUpstream),
    Memory(Arc<MemoryStore>),
}

pub struct HttpUpstream {
    /// The tenant this is the upstream of, for the log.
    tenant: Arc<str>,
    /// `scheme://authority/base-path`, no trailing slash: the request's path is appended.
    pub(super) base: Box<str>,
    /// Where the base path starts in `base`.
    path_at: usize,
    /// `base` as byte patterns, to find it in answers.
    base_pattern: Arc<BaseUrl>,
    authority: http::uri::Authority,
    route: Route,
    /// The tenant's lasting breaker and how it is set; `None` when it is off.
    breaker: Option<(Arc<Breaker>, config::Breaker)>,
    pub(super) credential: Option<HeaderValue>,
    pub(super) timeout: Duration,
}

impl std::fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpUpstream")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// `breaker` and `store` are the tenant's lasting ones; the store is used when the
    /// configuration names it.
    pub fn build(
        tenant: &Arc<str>,
        cfg: &UpstreamConfig,
        clients: &mut Clients,
        breaker: &Arc<Breaker>,
        store: impl FnOnce() -> Arc<MemoryStore>,
    ) -> Result<Self, ClientError> {
        let base = match &cfg.target {
            UpstreamTarget::Memory => return Ok(Self::Memory(store())),
            UpstreamTarget::Http(uri) => uri,
        };
        let base_text: Box<str> = base.to_string().trim_end_matches('/').into();
        Ok(Self::Http(HttpUpstream {
            tenant: tenant.clone(),
            base_pattern: Arc::new(BaseUrl::new(&base_text)),
            path_at: base_text.len() - base.path().trim_end_matches('/').len(),
            base: base_text,
            authority: base
                .authority()
                .expect("validated: an http(s) URL has an authority")
                .clone(),
            route: match base.scheme_str() {
                Some("https") => Route::Tls(Box::new(clients.get(
                    cfg.ca.as_deref(),
                    cfg.connect_timeout,
                    cfg.pool_idle_timeout,
                )?)),
                _ => Route::Plain(clients.plain(base, cfg.connect_timeout, cfg.pool_idle_timeout)),
            },
            breaker: cfg.breaker.map(|b| (breaker.clone(), b)),
            credential: cfg.credential.clone(),
            timeout: cfg.timeout,
        }))
    }

    /// The upstream's base URL, to recognise its own `Location` headers and `meta.location`s.
    pub fn base_url(&self) -> Option<&str> {
        match self {
            Self::Http(up) => Some(&up.base),
            Self::Memory(_) => None,
        }
    }

    /// The upstream's base URL as byte patterns, to find it anywhere in an answer's body.
    pub fn base_pattern(&self) -> Option<&Arc<BaseUrl>> {
        match self {
            Self::Http(up) => Some(&up.base_pattern),
            Self::Memory(_) => None,
        }
    }

    /// What the proxy holds that the app knows and the IdP must never see: the token the
    /// proxy presents upstream (without its `Bearer ` scheme).
    pub fn secrets(&self) -> Vec<&[u8]> {
        let Self::Http(up) = self else {
            return Vec::new();
        };
        up.credential
            .iter()
            .map(|c| {
                let c = c.as_bytes();
                c.strip_prefix(b"Bearer ").unwrap_or(c).trim_ascii()
            })
            .filter(|c| !c.is_empty())
            .collect()
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

    /// The circuit breaker's state (see [`Breaker::state_name`]); `off` when the tenant
    /// turned it off, `none` for the in-process store, which has none.
    pub fn breaker_state(&self) -> &'static str {
        match self {
            Self::Memory(_) => "none",
            Self::Http(HttpUpstream { breaker: None, .. }) => "off",
            Self::Http(HttpUpstream {
                breaker: Some((breaker, _)),
                ..
            }) => breaker.state_name(Instant::now()),
        }
    }

    /// `host:port` to probe for readiness; `None` for the in-process store, which is always up.
    pub fn probe_address(&self) -> Option<String> {
        let Self::Http(up) = self else { return None };
        let port = up
            .authority
            .port_u16()
            .unwrap_or(if matches!(up.route, Route::Tls(_)) {
                443
            } else {
                80
            });
        Some(format!("{}:{port}", up.authority.host()))
    }
}

impl HttpUpstream {
    /// The app's URI for a request's path and query, relative to the SCIM base: absolute for
    /// hyper-util's client, which reads the host from it; only the path and query for a
    /// [`Pool`], which knows its host (and so parses less).
    pub(super) fn uri(&self, path_and_query: &str) -> Result<http::Uri, UpstreamError> {
        let uri = match self.route {
            Route::Tls(_) => http::Uri::try_from([&*self.base, path_and_query].concat()),
            Route::Plain(_) => {
                let path = match [&self.base[self.path_at..], path_and_query].concat() {
                    p if p.is_empty() => "/".to_owned(),
                    p => p,
                };
                PathAndQuery::try_from(path).map(http::Uri::from)
            }
        };
        uri.map_err(UpstreamError::BadPath)
    }

    /// Sends the request `make` builds and waits for the head of the answer, at most until
    /// `deadline`, unless the breaker says the app is left alone for now. `make` is called a
    /// second time only for a retry: see [`HttpUpstream::exchange`].
    pub(super) async fn send(
        &self,
        make: impl Fn() -> Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<Response<Stream>, UpstreamError> {
        let Some((breaker, settings)) = &self.breaker else {
            return self.exchange(make, deadline).await;
        };
        let (pass, change) = breaker
            .admit(Instant::now())
            .map_err(UpstreamError::CircuitOpen)?;
        self.log(change, settings);
        let result = self.exchange(make, deadline).await;
        let down = matches!(
            result,
            Err(UpstreamError::Unavailable(_) | UpstreamError::Timeout(_))
        );
        let change = breaker.record(pass, down, settings, Instant::now());
        self.log(change, settings);
        result
    }

    /// One request, and one retry on a fresh connection when a pooled connection failed in a
    /// way that shows the app did not act on the request: the connection was found closed
    /// before the request was written (any method), or it closed or was reset before any byte
    /// of the answer (GET, HEAD, PUT and DELETE only, which may be repeated, RFC 9110 §9.2.2):
    /// an app closing a connection that sat idle as the request went out. A connect failure
    /// is not retried: it already was a fresh connection.
    async fn exchange(
        &self,
        make: impl Fn() -> Request<Full<Bytes>>,
        deadline: Instant,
    ) -> Result<Response<Stream>, UpstreamError> {
        let request = make();
        let idempotent = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        let first = tokio::time::timeout_at(deadline, self.route.send(request, true))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))?;
        let e = match first {
            Ok(response) => return Ok(response),
            Err(e) if !e.unsent(idempotent) => return Err(e.into()),
            Err(e) => e,
        };
        tracing::debug!(tenant = %self.tenant, error = %e, "a pooled connection to the app failed before the answer began; sending again on a fresh one");
        tokio::time::timeout_at(deadline, self.route.send(make(), false))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))?
            .map_err(UpstreamError::from)
    }

    fn log(&self, change: Option<Change>, s: &config::Breaker) {
        let (tenant, upstream) = (&*self.tenant, &*self.base);
        let cool_down_s = s.cool_down.as_secs_f64();
        match change {
            None => {}
            Some(Change::Opened { failures }) => tracing::warn!(
                tenant, upstream, failures, cool_down_s,
                "circuit breaker open: the app failed to connect or answer in time repeatedly; requests are answered 503 until the cool-down ends"
            ),
            Some(Change::Probing) => tracing::info!(
                tenant, upstream,
                "circuit breaker half-open: one request goes through to try the app"
            ),
            Some(Change::Reopened) => tracing::warn!(
                tenant, upstream, cool_down_s,
                "circuit breaker open again: the trial request failed"
            ),
            Some(Change::Closed) => tracing::info!(
                tenant, upstream,
                "circuit breaker closed: the app answers again"
            ),
        }
    }
}

/// How requests reach an app: see [`super::client`].
enum Route {
    Plain(Arc<Pool>),
    Tls(Box<UpstreamClient>),
}

impl Route {
    /// On a pooled connection, or on a fresh one when `reuse` is false.
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        reuse: bool,
    ) -> Result<Response<Stream>, SendError> {
        match self {
            Self::Plain(pool) => pool.send(request, reuse).await.map_err(SendError::Plain),
            Self::Tls(client) => {
                let client = if reuse {
                    client.pooled()
                } else {
                    &client.fresh
                };
                match client.request(request).await {
                    Ok(response) => Ok(response.map(Stream::of)),
                    Err(e) => Err(SendError::Tls(e)),
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error(transparent)]
    Plain(Failure),
    #[error(transparent)]
    Tls(ClientFailure),
}

impl SendError {
    /// Whether the app is known not to have acted on the request (see
    /// [`HttpUpstream::exchange`]).
    fn unsent(&self, idempotent: bool) -> bool {
        match self {
            Self::Plain(Failure::Connect(_)) => false,
            Self::Plain(Failure::Exchange(e)) => e.unanswered(idempotent),
            Self::Tls(e) if e.is_connect() => false,
            Self::Tls(e) => std::error::Error::source(e)
                .and_then(|s| s.downcast_ref::<hyper::Error>())
                .is_some_and(|e| unanswered(e, idempotent)),
        }
    }
}

impl From<SendError> for UpstreamError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Plain(Failure::Connect(e)) => Self::Unavailable(e),
            SendError::Plain(Failure::Exchange(e)) => Self::Broken(e.into()),
            SendError::Tls(e) if e.is_connect() => Self::Unavailable(e.into()),
            SendError::Tls(e) => Self::Broken(e.into()),
        }
    }
}

/// A connection that failed before the request went out, or (for a request that may be
/// repeated) closed or was reset before any byte of the answer.
fn unanswered(failure: &hyper::Error, idempotent: bool) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    if failure.is_canceled() {
        return true;
    }
    let io = std::error::Error::source(failure).and_then(|s| s.downcast_ref::<std::io::Error>());
    let reset =
        io.is_some_and(|io| matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe));
    idempotent && (failure.is_incomplete_message() || reset)
}
