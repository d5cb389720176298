//! Configuration: one TOML file parsed strictly (`raw`) and turned into a validated, typed
//! [`Config`] (`validate`), so nothing downstream re-checks a value or meets a surprise.

mod auth;
mod raw;
mod validate;

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Uri};
use time::OffsetDateTime;

pub use raw::{LogFormat, Supports};

use crate::limit::{AuthThrottleConfig, Limits};
use crate::policy::Policy;
use crate::rule_pack::{Pack, Packs};
use crate::scim::discovery::Extensions;

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
    /// The admin listener and its API (`[admin]`).
    pub admin: Admin,
    pub log: Log,
    /// Every rule pack, built-in and the operator's.
    pub packs: Arc<Packs>,
    pub tenants: Vec<TenantConfig>,
    /// The audit log; `None`: none is kept.
    pub audit: Option<AuditConfig>,
}

/// `[audit]`, checked: the file, its size, its checkpoint key and period.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub path: PathBuf,
    pub key_file: PathBuf,
    /// The content of `key_file`, the HMAC key of the checkpoints.
    pub key: Arc<[u8]>,
    pub max_file_bytes: u64,
    pub checkpoint_every: Duration,
    pub stdout: bool,
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("path", &self.path)
            .field("key_file", &self.key_file)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("stdout", &self.stdout)
            .finish_non_exhaustive()
    }
}

/// The admin listener: always on, `127.0.0.1:9090` unless `[admin] listen` says otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    pub listen: SocketAddr,
    /// The SHA-256 of the admin API's bearer token; `None`: the API is off, and only
    /// `/healthz`, `/readyz` and `/metrics` answer.
    pub token_sha256: Option<[u8; 32]>,
    /// Entries kept per tenant in the request log and in test mode's record of would-be writes.
    pub request_log: usize,
}

#[derive(Debug)]
pub struct Server {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold at once.
    pub max_connections_per_address: usize,
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    /// A connection none of whose requests has authenticated by then is closed.
    pub unauthenticated_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_upstream_calls: NonZeroUsize,
    /// Bytes of answers the process may hold while it reads them whole.
    pub max_buffered_bytes: usize,
    pub auth_throttle: AuthThrottleConfig,
    /// The key OAuth access tokens are signed with, from `server.token_key_file`; `None`: a
    /// random key of the process's own.
    pub token_key: Option<TokenKey>,
}

/// A signing key read from a file: the SHA-256 of its content.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey {
    pub path: PathBuf,
    pub key: [u8; 32],
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    /// The tenants' own client CAs (`auth.mtls.client_ca`): the handshake accepts a certificate
    /// of any of them, and each tenant then accepts only its own.
    pub tenant_cas: Vec<PathBuf>,
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
    pub schemes: AuthSchemes,
    /// DELETE of a User deactivates it (`active: false`) instead.
    pub soft_delete: bool,
    /// Test mode as the file sets it (`test_mode`): applied when the tenant first appears and
    /// whenever a reload changes it; the admin API may switch it in between.
    pub test_mode: bool,
    /// How the tenant's requests are normalized; `None`: they are not.
    pub idp: Option<Idp>,
    /// Packs that fix the app behind the tenant, in order (`app_rules`).
    pub app_rules: Vec<Arc<Pack>>,
    /// The app's extension schemas from the tenant's schema files (`schemas`).
    pub schemas: Arc<Extensions>,
    /// What attributes may pass to the app and to the IdP (`attributes`).
    pub policy: Arc<Policy>,
    /// How fast, and how many at once, its calls reach the app; `None`: unlimited.
    pub limits: Option<Limits>,
    /// Attributes whose values its audit lines carry (`[tenant.audit] loggable`).
    pub audit_loggable: Arc<[String]>,
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
    /// Idle pooled connections older than this are not reused.
    pub pool_idle_timeout: Duration,
    /// `None`: the breaker is off.
    pub breaker: Option<Breaker>,
    /// The cap on calls in flight to this app, shared by the tenants fronting it.
    pub max_in_flight: Option<NonZeroUsize>,
    pub supports: Supports,
}

/// After `failures` consecutive connect failures or timeouts, requests to the app are answered
/// 503 at once for `cool_down`; then one is let through to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breaker {
    pub failures: NonZeroU32,
    pub cool_down: Duration,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            failures: NonZeroU32::new(5).expect("5 is not zero"),
            cool_down: Duration::from_secs(10),
        }
    }
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
/// or e-mail subject alternative name, each compared only with SANs of its own type.
#[derive(Debug, Clone, Default)]
pub struct MtlsRule {
    pub subject_cn: Vec<String>,
    pub san: Vec<crate::conn::San>,
    /// The tenant's own CA (and CRLs): a certificate must chain to it, whichever CA the
    /// listener's handshake accepted it under. `None`: `server.tls.client_ca` decides.
    pub trust: Option<TenantCa>,
    /// CAs named by fingerprint (`issuer_sha256`): a certificate must have been issued under
    /// one of them. Empty: any CA the handshake (and `trust`) accepts.
    pub issuers: Vec<IssuerPin>,
    /// Names this rule's chain checks (`trust`, `issuers`) in a connection's remembered
    /// verdicts ([`crate::conn::ChainVerdicts`]): new at every load, so a reload checks again.
    pub check_id: u64,
}

/// A CA a tenant pins by the SHA-256 of its certificate (DER).
#[derive(Debug, Clone)]
pub struct IssuerPin {
    pub sha256: [u8; 32],
    /// A verifier anchored at the pinned certificate when a configured CA file holds it;
    /// `None`: it must come in the client's chain (an intermediate), and is looked up there.
    pub known: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
}

/// A tenant's own client CA, compiled into a verifier that also applies its CRLs.
#[derive(Debug, Clone)]
pub struct TenantCa {
    pub ca: PathBuf,
    pub crls: Vec<PathBuf>,
    pub verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

/// The credentials a tenant accepts in `Authorization` beyond its static bearer tokens: each
/// is an alternative to the others (and to `bearer`), all on top of `mtls` when that is set.
#[derive(Debug, Default)]
pub struct AuthSchemes {
    pub basic: Vec<BasicUser>,
    pub jwt: Option<JwtRule>,
    pub oauth: Option<OAuthRule>,
}

impl AuthSchemes {
    pub fn is_empty(&self) -> bool {
        self.basic.is_empty() && self.jwt.is_none() && self.oauth.is_none()
    }
}

/// An HTTP Basic user: a name and the stored hash of its password (an argon2 PHC string or
/// a bcrypt hash; `auth::secret` tells them apart by their prefix).
#[derive(Debug, Clone)]
pub struct BasicUser {
    pub username: Arc<str>,
    pub hash: Arc<str>,
    pub not_after: Option<OffsetDateTime>,
}

/// JWT bearer tokens from an outside issuer.
#[derive(Debug, Clone)]
pub struct JwtRule {
    pub issuer: String,
    pub audience: Vec<String>,
    /// Asymmetric algorithms only: a shared secret cannot come from a published key set.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    pub keys: JwksFrom,
    pub leeway: Duration,
    /// When not empty, the token's `sub` must be one of these.
    pub subjects: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum JwksFrom {
    /// Read when the configuration is loaded (and again on each reload).
    File {
        path: PathBuf,
        set: Arc<jsonwebtoken::jwk::JwkSet>,
    },
    /// Fetched when first needed, cached and refreshed (`auth::jwks`), over TLS checked
    /// against `ca` (PEM) when given, else against the system's roots.
    Url { url: Uri, ca: Option<PathBuf> },
}

/// The OAuth 2.0 client-credentials token endpoint this tenant serves.
#[derive(Debug, Clone)]
pub struct OAuthRule {
    pub clients: Vec<OAuthClient>,
    pub token_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: Arc<str>,
    pub argon2: Arc<str>,
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
#[cfg(test)]
mod tests_auth;
