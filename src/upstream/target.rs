//! Where one tenant's requests go: a pooled HTTP(S) client for an app's SCIM base URL, or the
//! embedded memory store. Built with each configuration snapshot; the store's data and the
//! client pools outlive it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use tokio::time::Instant;

use super::client::{ClientError, Clients, HttpClient};
use super::error::UpstreamError;
use super::relocate::BaseUrl;
use crate::config::{UpstreamConfig, UpstreamTarget};
use crate::scim::memory::MemoryStore;

// One per tenant and snapshot, never moved on the request path: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Upstream {
    Http(HttpUpstream),
    Memory(Arc<MemoryStore>),
}

pub struct HttpUpstream {
    /// `scheme://authority/base-path`, no trailing slash: the request's path is appended.
    pub(super) base: Box<str>,
    /// `base` as byte patterns, to find it in answers.
    base_pattern: Arc<BaseUrl>,
    authority: http::uri::Authority,
    https: bool,
    client: HttpClient,
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
    /// `store` is the tenant's lasting memory store, used when the configuration names it.
    pub fn build(
        cfg: &UpstreamConfig,
        clients: &mut Clients,
        store: impl FnOnce() -> Arc<MemoryStore>,
    ) -> Result<Self, ClientError> {
        let base = match &cfg.target {
            UpstreamTarget::Memory => return Ok(Self::Memory(store())),
            UpstreamTarget::Http(uri) => uri,
        };
        let base_text: Box<str> = base.to_string().trim_end_matches('/').into();
        Ok(Self::Http(HttpUpstream {
            base_pattern: Arc::new(BaseUrl::new(&base_text)),
            base: base_text,
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

    /// `host:port` to probe for readiness; `None` for the in-process store, which is always up.
    pub fn probe_address(&self) -> Option<String> {
        let Self::Http(up) = self else { return None };
        let port = up
            .authority
            .port_u16()
            .unwrap_or(if up.https { 443 } else { 80 });
        Some(format!("{}:{port}", up.authority.host()))
    }
}

impl HttpUpstream {
    /// Sends a request and waits for the head of the answer, at most until `deadline`.
    pub(super) async fn send(
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
