//! The configuration file exactly as written: serde structs that refuse unknown keys. Values
//! that need checking keep their span so a problem can name its line.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub log: RawLog,
    pub rules: Option<RawRules>,
    pub audit: Option<Spanned<RawAudit>>,
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<RawTenant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Spanned<String>,
    pub tls: Option<RawTls>,
    pub max_connections: Option<Spanned<u64>>,
    /// Connections one client address (an IPv6 /64) may hold at once.
    pub max_connections_per_address: Option<Spanned<u64>>,
    pub max_body_bytes: Option<Spanned<u64>>,
    pub read_timeout: Option<Spanned<String>>,
    pub idle_timeout: Option<Spanned<String>>,
    /// How long a connection may stay open before one of its requests authenticates.
    pub unauthenticated_timeout: Option<Spanned<String>>,
    pub shutdown_grace: Option<Spanned<String>>,
    /// Upstream calls the whole process may have in flight at once.
    pub max_upstream_calls: Option<Spanned<u64>>,
    /// Bytes of answers the whole process may hold while reading them whole.
    pub max_buffered_bytes: Option<Spanned<u64>>,
    /// Failed authentications per client address.
    pub auth_throttle: Option<crate::limit::RawAuthThrottle>,
    /// A secret that OAuth access tokens are signed with, shared by replicas; without it each
    /// process makes its own.
    pub token_key_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: Spanned<PathBuf>,
    pub key: Spanned<PathBuf>,
    pub client_ca: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<Spanned<String>>,
    /// The SHA-256 of the admin API's bearer token; without it only the probes and
    /// `/metrics` answer.
    pub token_sha256: Option<Spanned<String>>,
    /// Requests kept per tenant for the admin API: the request log and test mode's record.
    pub request_log: Option<Spanned<u64>>,
}

/// Where an operator's own rule packs are, beside the built-in ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    pub dir: Spanned<PathBuf>,
}

/// The audit log: where, how large a file grows, and the key its checkpoints are sealed with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub path: Spanned<PathBuf>,
    /// A file holding the secret the checkpoints' HMAC is made with.
    pub key_file: Spanned<PathBuf>,
    /// A file that would grow past this is closed and renamed, and a new one started.
    pub max_file_bytes: Option<Spanned<u64>>,
    /// How often a checkpoint seals the lines written since the last one.
    pub checkpoint_every: Option<Spanned<String>>,
    /// Also write every line to standard output, for log shippers.
    #[serde(default)]
    pub stdout: bool,
}

/// A tenant's audit settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenantAudit {
    /// Attributes whose values (not only names) go into the audit lines.
    #[serde(default)]
    pub loggable: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<LogFormat>,
    pub level: Option<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    pub id: Spanned<String>,
    // Missing `route` or `auth` tables default to empty, so validation's message (which says
    // what to write) is shown instead of toml's bare "missing field".
    #[serde(default)]
    pub route: RawRoute,
    pub upstream: RawUpstream,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub soft_delete: bool,
    /// Writes are recorded and answered by the proxy, not sent to the app, from when the
    /// tenant first appears or the file changes this value.
    #[serde(default)]
    pub test_mode: bool,
    /// The IdP rule pack for this tenant's requests, or `auto`.
    pub idp: Option<Spanned<String>>,
    /// Packs that fix the app behind this tenant, in the order they run.
    #[serde(default)]
    pub app_rules: Vec<Spanned<String>>,
    /// Schema files (RFC 7643 §7) describing the app's extensions, beside what its `/Schemas`
    /// announces.
    #[serde(default)]
    pub schemas: Vec<Spanned<PathBuf>>,
    /// What attributes may pass, each way.
    pub attributes: Option<crate::policy::RawAttributes>,
    /// How fast, and how many at once, this tenant's calls reach the app.
    pub limits: Option<crate::limit::RawLimits>,
    /// What its audit lines show.
    pub audit: Option<Spanned<RawTenantAudit>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub path_prefix: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub url: Spanned<String>,
    pub token_env: Option<Spanned<String>>,
    pub token_file: Option<Spanned<PathBuf>>,
    pub ca: Option<Spanned<PathBuf>>,
    pub connect_timeout: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    /// How long a connection to the app may sit unused in the pool before it is dropped.
    pub pool_idle_timeout: Option<Spanned<String>>,
    /// When the proxy stops sending requests to an app that does not answer.
    pub breaker: Option<Spanned<RawBreaker>>,
    /// Calls all tenants fronting this app may have at it at once.
    pub max_in_flight: Option<Spanned<u64>>,
    #[serde(default)]
    pub supports: Supports,
}

/// The circuit breaker of one tenant's upstream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    pub enabled: Option<bool>,
    /// Consecutive connect failures or timeouts that open it.
    pub failures: Option<Spanned<u64>>,
    /// How long it stays open before one request is let through to try.
    pub cool_down: Option<Spanned<String>>,
}

/// What the upstream does itself. A key left out is read from the upstream's own
/// ServiceProviderConfig (false when it has none); `uniqueness` cannot be discovered and
/// defaults to true.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Supports {
    pub patch: Option<bool>,
    pub filter: Option<bool>,
    pub sort: Option<bool>,
    pub bulk: Option<bool>,
    pub etag: Option<bool>,
    /// Serves /ServiceProviderConfig, /Schemas and /ResourceTypes.
    pub discovery: Option<bool>,
    /// Refuses a second resource with the same userName or externalId.
    pub uniqueness: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(default)]
    pub bearer: Vec<RawBearer>,
    pub mtls: Option<Spanned<RawMtls>>,
    #[serde(default)]
    pub basic: Vec<Spanned<RawBasic>>,
    pub jwt: Option<Spanned<RawJwt>>,
    pub oauth: Option<Spanned<RawOAuth>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBearer {
    pub sha256: Spanned<String>,
    pub label: Option<Spanned<String>>,
    pub not_after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMtls {
    #[serde(default)]
    pub subject_cn: Vec<String>,
    /// Typed: `dns:…`, `uri:…` or `email:…`.
    #[serde(default)]
    pub san: Vec<String>,
    /// The CA (PEM, one or more certificates) this tenant's client certificates must chain to.
    pub client_ca: Option<Spanned<PathBuf>>,
    /// Certificate revocation lists (PEM) of that CA.
    #[serde(default)]
    pub crl: Vec<Spanned<PathBuf>>,
    /// The SHA-256 fingerprint(s) of the CA certificate(s) this tenant's client certificates
    /// must be issued under, among those the listener's `client_ca` (or the tenant's) accepts.
    pub issuer_sha256: Option<Spanned<OneOrMany>>,
}

/// One HTTP Basic user (RFC 7617): the password is stored as an argon2 PHC string, or as a
/// bcrypt hash brought over from another system (one of the two).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasic {
    pub username: Spanned<String>,
    pub argon2: Option<Spanned<String>>,
    pub bcrypt: Option<Spanned<String>>,
    pub not_after: Option<Spanned<String>>,
}

/// Bearer tokens that are JWTs signed by an outside issuer (Entra ID and others).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    pub issuer: Spanned<String>,
    pub audience: Spanned<OneOrMany>,
    pub algorithms: Option<Spanned<Vec<String>>>,
    pub jwks_file: Option<Spanned<PathBuf>>,
    pub jwks_url: Option<Spanned<String>>,
    /// PEM CA certificates that the https `jwks_url` server's certificate must chain to,
    /// instead of the system's roots.
    pub jwks_ca: Option<Spanned<PathBuf>>,
    pub leeway: Option<Spanned<String>>,
    /// When given, the token's `sub` must be one of these.
    pub subjects: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The token endpoint the proxy serves for this tenant (OAuth 2.0 client credentials).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth {
    pub clients: Vec<RawOAuthClient>,
    pub token_ttl: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuthClient {
    pub client_id: Spanned<String>,
    pub argon2: Spanned<String>,
}
