//! Configuration: one TOML file parsed strictly (`raw`) and turned into a validated, typed
//! [`Config`] (`validate`), so nothing downstream re-checks a value or meets a surprise.

mod raw;
mod validate;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Uri};
use time::OffsetDateTime;

pub use raw::{LogFormat, Supports};

use crate::limit::{AuthThrottleConfig, Limits};
use crate::policy::Policy;
use crate::rule_pack::{Pack, Packs};

/// A problem that stops a configuration from being used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `toml` crate's own message, with line, column and caret, passed through unchanged.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{}", .problems.join("\n"))]
    Invalid { problems: Vec<String> },
}

#[derive(Debug)]
pub struct Config {
    pub server: Server,
    /// The admin listener; always on, `127.0.0.1:9090` unless `[admin]` says otherwise.
    pub admin: SocketAddr,
    pub log: Log,
    /// Every rule pack, built-in and the operator's.
    pub packs: Arc<Packs>,
    pub tenants: Vec<TenantConfig>,
}

#[derive(Debug)]
pub struct Server {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub max_connections: usize,
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_upstream_calls: NonZeroUsize,
    pub auth_throttle: AuthThrottleConfig,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug)]
pub struct TenantConfig {
    pub id: Arc<str>,
    pub route: Route,
    pub upstream: UpstreamConfig,
    pub auth: AuthConfig,
    /// DELETE of a User deactivates it (`active: false`) instead.
    pub soft_delete: bool,
    /// How the tenant's requests are normalized; `None`: they are not.
    pub idp: Option<Idp>,
    /// Packs that fix the app behind the tenant, in order (`app_rules`).
    pub app_rules: Vec<Arc<Pack>>,
    /// What attributes may pass to the app and to the IdP (`attributes`).
    pub policy: Arc<Policy>,
    /// How fast, and how many at once, its calls reach the app; `None`: unlimited.
    pub limits: Option<Limits>,
}

/// The rule pack a tenant's requests go through.
#[derive(Debug, Clone)]
pub enum Idp {
    Pack(Arc<Pack>),
    /// Detected per request from its headers and body; `generic` when nothing matches.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// The first path segment, without slashes: `/acme/Users` → `acme`.
    PathPrefix(String),
    /// A lower-case host name without port, matched against `Host` (and SNI under TLS).
    Host(String),
}

#[derive(Debug)]
pub struct UpstreamConfig {
    pub target: UpstreamTarget,
    /// The full `Authorization` value sent upstream, marked sensitive so it is never logged.
    pub credential: Option<HeaderValue>,
    pub ca: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// The cap on calls in flight to this app, shared by the tenants fronting it.
    pub max_in_flight: Option<NonZeroUsize>,
    pub supports: Supports,
}

#[derive(Debug, Clone)]
pub enum UpstreamTarget {
    /// An HTTP(S) SCIM base URL, without a trailing slash.
    Http(Uri),
    /// The embedded in-memory SCIM store.
    Memory,
}

#[derive(Debug, Default)]
pub struct AuthConfig {
    pub bearer: Vec<BearerToken>,
    pub mtls: Option<MtlsRule>,
}

#[derive(Debug, Clone)]
pub struct BearerToken {
    pub sha256: [u8; 32],
    /// Names the token in logs and audit: the configured `label`, else `sha256:` and the first
    /// 12 hex digits of its hash.
    pub label: Arc<str>,
    pub not_after: Option<OffsetDateTime>,
}

/// Which client certificates a tenant accepts: any listed subject CN, or any listed DNS, URI
/// or e-mail subject alternative name.
#[derive(Debug, Clone, Default)]
pub struct MtlsRule {
    pub subject_cn: Vec<String>,
    pub san: Vec<String>,
}

impl Config {
    /// Reads, parses and validates the file; relative paths in it are taken from its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        validate::validate(raw, text, path, base)
            .map_err(|problems| ConfigError::Invalid { problems })
    }
}

#[cfg(test)]
mod tests;
