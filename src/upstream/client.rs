//! The pooled clients that carry requests upstream. A plain-HTTP upstream gets a [`Pool`] of
//! connections driven by the requests themselves, shared by the tenants with the same host,
//! port, connect timeout and idle timeout. An HTTPS upstream gets hyper-util's client (it may
//! answer in h2), shared by the tenants with the same trust roots and timeouts, and so one
//! connection pool per upstream host; it has a twin that never reuses a connection, for the
//! one retry of a request that met a connection the app had closed while it sat idle.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::pool::Pool;
use crate::listener::workers;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long a connection may sit idle in the pool when nothing else is said: below the
/// keep-alive of common app servers (5 s for Node.js and nginx), so that the proxy drops an
/// idle connection before the app closes it under a request.
pub const DEFAULT_POOL_IDLE: Duration = Duration::from_secs(4);

/// One upstream's clients: a pooled one per worker for every request, and one that opens a
/// fresh connection each time (and keeps none), sharing their connector and TLS settings. A
/// pooled connection is served by the worker that opened it, so each worker reuses its own:
/// a request and its upstream connection never wake each other across threads.
#[derive(Clone)]
pub struct UpstreamClient {
    per_worker: Arc<[HttpClient]>,
    pub fresh: HttpClient,
}

impl UpstreamClient {
    /// The pooled client of the worker this runs on.
    pub fn pooled(&self) -> &HttpClient {
        &self.per_worker[workers::current() % self.per_worker.len()]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("upstream CA file {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("TLS client setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// Builds clients on demand and hands out the same one for the same settings. Kept across
/// reloads, so connections stay pooled; a CA file whose content changed gets a new client.
#[derive(Default)]
pub struct Clients {
    built: HashMap<(Option<Vec<u8>>, Duration, Duration), UpstreamClient>,
    plain: HashMap<(String, Duration, Duration), Arc<Pool>>,
    native_roots: Option<Arc<RootCertStore>>,
}

impl Clients {
    /// The pool for a plain-HTTP upstream at `base`'s host and port.
    pub fn plain(&mut self, base: &Uri, connect_timeout: Duration, idle: Duration) -> Arc<Pool> {
        let authority = base.authority().map_or("", |a| a.as_str());
        self.plain
            .entry((authority.to_owned(), connect_timeout, idle))
            .or_insert_with(|| Arc::new(Pool::new(base, connect_timeout, idle)))
            .clone()
    }

    pub fn get(
        &mut self,
        ca: Option<&Path>,
        connect_timeout: Duration,
        pool_idle: Duration,
    ) -> Result<UpstreamClient, ClientError> {
        let pem = match ca {
            Some(path) => Some(std::fs::read(path).map_err(|e| ClientError::Ca {
                path: path.to_owned(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let key = (pem, connect_timeout, pool_idle);
        if let Some(client) = self.built.get(&key) {
            return Ok(client.clone());
        }
        let roots = match (ca, &key.0) {
            (Some(path), Some(pem)) => Arc::new(roots_from_pem(path, pem)?),
            _ => self
                .native_roots
                .get_or_insert_with(|| Arc::new(native_roots()))
                .clone(),
        };
        let client = build(roots, connect_timeout, pool_idle)?;
        self.built.insert(key, client.clone());
        Ok(client)
    }
}

fn build(
    roots: Arc<RootCertStore>,
    connect_timeout: Duration,
    pool_idle: Duration,
) -> Result<UpstreamClient, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(pool_idle);
    let per_worker = (0..workers::count())
        .map(|_| builder.build(https.clone()))
        .collect();
    let fresh = builder.pool_max_idle_per_host(0).build(https);
    Ok(UpstreamClient { per_worker, fresh })
}

fn roots_from_pem(path: &Path, pem: &[u8]) -> Result<RootCertStore, ClientError> {
    let err = |reason: String| ClientError::Ca {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(err("no usable certificate in it".into()));
    }
    Ok(roots)
}

/// The system's trust store. Unreadable entries are skipped: one bad file in /etc/ssl must
/// not stop the proxy from reaching upstreams whose CA is fine.
fn native_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "skipping an unreadable system CA certificate");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}
