//! The JWT issuer's public keys (a JWK Set, RFC 7517 §5): from a file, or fetched from an
//! https URL when first needed, kept, and fetched again when an hour old or when a token names a
//! key the set does not have (the issuer rotated). A fetch is bounded in time and size, one runs
//! at a time per URL, and a failed one is not retried for a few seconds, so a key server that
//! is down or slow costs a tenant's callers at most one bounded wait, and other tenants nothing.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::jwk::JwkSet;
use tokio::time::Instant;

use super::error::AuthError;
use crate::upstream::client::HttpClient;

/// A key set larger than this is not a key set.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// How long one fetch may take, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys older than this are fetched again (issuers announce new keys well before use).
const REFRESH: Duration = Duration::from_secs(3600);
/// A token naming an unknown key fetches the set again, but not more often than this: made-up
/// key ids must not turn into a flood of fetches.
const REFETCH_FOR_UNKNOWN_KEY: Duration = Duration::from_secs(60);
/// After a failed fetch, callers are answered from what is kept (or refused) for this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// Where a tenant's JWT keys come from.
pub enum Jwks {
    Static(Arc<JwkSet>),
    Remote(Box<RemoteJwks>),
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Jwks::Static(set) => write!(f, "Jwks::Static({} keys)", set.keys.len()),
            Jwks::Remote(r) => write!(f, "Jwks::Remote({})", r.url),
        }
    }
}

impl Jwks {
    /// The set to check a token naming `kid` against.
    pub async fn key_set(&self, kid: Option<&str>) -> Result<Arc<JwkSet>, AuthError> {
        match self {
            Jwks::Static(set) => Ok(set.clone()),
            Jwks::Remote(remote) => remote.key_set(kid).await,
        }
    }
}

pub struct RemoteJwks {
    url: Uri,
    client: HttpClient,
    current: ArcSwapOption<Fetched>,
    /// Held while fetching: one fetch at a time, and the others wait for its result.
    fetching: tokio::sync::Mutex<Attempt>,
}

struct Fetched {
    set: Arc<JwkSet>,
    at: Instant,
}

#[derive(Default)]
struct Attempt {
    last: Option<Instant>,
    failed: Option<String>,
}

impl RemoteJwks {
    pub fn new(url: Uri, client: HttpClient) -> Self {
        Self {
            url,
            client,
            current: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(Attempt::default()),
        }
    }

    pub fn url(&self) -> &Uri {
        &self.url
    }

    async fn key_set(&self, kid: Option<&str>) -> Result<Arc<JwkSet>, AuthError> {
        let usable = |f: &Fetched| f.at.elapsed() < REFRESH && has_key(&f.set, kid);
        if let Some(f) = self.current.load_full().filter(|f| usable(f)) {
            return Ok(f.set.clone());
        }
        let mut attempt = self.fetching.lock().await;
        // Whoever held the lock before may just have fetched what this caller needs.
        let kept = self.current.load_full();
        if let Some(f) = kept.as_ref().filter(|f| usable(f)) {
            return Ok(f.set.clone());
        }
        let pause = match &kept {
            Some(f) if f.at.elapsed() < REFRESH => REFETCH_FOR_UNKNOWN_KEY,
            _ => RETRY_AFTER_FAILURE,
        };
        if attempt.last.is_some_and(|t| t.elapsed() < pause) {
            return kept.map(|f| f.set.clone()).ok_or_else(|| {
                AuthError::KeysUnavailable(attempt.failed.clone().unwrap_or_default())
            });
        }
        attempt.last = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                attempt.failed = None;
                let set = Arc::new(set);
                self.current.store(Some(Arc::new(Fetched {
                    set: set.clone(),
                    at: Instant::now(),
                })));
                Ok(set)
            }
            Err(why) => {
                tracing::warn!(url = %self.url, error = %why, "fetching the JWT key set failed");
                attempt.failed = Some(why.clone());
                // Keys a little past their refresh are better than refusing every caller.
                kept.map(|f| f.set.clone())
                    .ok_or(AuthError::KeysUnavailable(why))
            }
        }
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let request = http::Request::get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("request: {e}"))?;
            if response.status() != http::StatusCode::OK {
                return Err(format!("answered {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            serde_json::from_slice::<JwkSet>(&body).map_err(|e| format!("not a key set: {e}"))
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
    }
}

fn has_key(set: &JwkSet, kid: Option<&str>) -> bool {
    match kid {
        Some(kid) => set.find(kid).is_some(),
        None => !set.keys.is_empty(),
    }
}

/// An https URL; plain http only to this machine (a key server beside the proxy, or a test):
/// keys read in clear over a network could be anyone's.
pub fn parse_url(s: &str) -> Result<Uri, String> {
    let bad = || {
        format!("{s:?}: expected an https URL such as \"https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys\" (http only to 127.0.0.1, ::1 or localhost)")
    };
    let uri: Uri = s.parse().map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if matches!(host, "127.0.0.1" | "[::1]" | "localhost") => Ok(uri),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_set_urls_are_https_or_loopback_http() {
        assert!(parse_url("https://login.example.com/keys").is_ok());
        assert!(parse_url("http://127.0.0.1:8080/keys").is_ok());
        assert!(parse_url("http://[::1]:8080/keys").is_ok());
        assert!(parse_url("http://keys.example.com/keys").is_err());
        assert!(parse_url("http://127.0.0.1.example.com/keys").is_err());
        assert!(parse_url("file:///etc/keys.json").is_err());
        assert!(parse_url("keys.json").is_err());
    }

    #[test]
    fn a_named_key_must_be_in_the_set() {
        let set: JwkSet = serde_json::from_str(
            r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
        )
        .expect("a key set");
        assert!(has_key(&set, Some("k1")));
        assert!(!has_key(&set, Some("k2")));
        assert!(has_key(&set, None));
    }
}
