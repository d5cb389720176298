//! Stage 3, authenticate: the caller proves it is the tenant's identity provider. In the
//! `Authorization` header: a static bearer token (stored as a SHA-256 hash, compared in constant
//! time), HTTP Basic (argon2, checked off the async workers), a JWT of an outside issuer, or a
//! token the tenant's own OAuth endpoint issued. Beside it, a client certificate. Every refusal
//! is a plain 401 to the caller; the log keeps the real reason.

pub mod basic;
pub mod bearer;
pub mod jwks;
pub mod jwt;
pub mod mtls;
pub mod oauth;
pub mod secret;

use std::sync::Arc;

use http::header;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::AuthConfig;
use crate::conn::PeerIdentity;
use crate::ctx::{Principal, RequestCtx};
use crate::tenant::table::Tenant;

pub use bearer::Credential;

/// What authentication keeps for the whole process, across reloads: the bound on slow hash
/// checks with its cache of recent successes, and the key OAuth tokens are signed with.
#[derive(Debug)]
pub struct Services {
    pub secrets: Arc<secret::SecretVerifier>,
    pub signer: Arc<oauth::Signer>,
}

/// Stage 3: the routed tenant's credentials, checked before the body is read, so an unknown
/// caller costs no more than its headers (and, for Basic, one bounded hash check).
pub async fn check(ctx: &mut RequestCtx) -> Result<(), AuthError> {
    let tenant = ctx.tenant().clone();
    let services = ctx.snapshot.auth.clone();
    let authorization = ctx.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let now = OffsetDateTime::now_utc();
    let mut principal = Principal::default();
    if let Some(rule) = &tenant.auth.mtls {
        principal.certificate = Some(mtls::check(rule, ctx.conn.peer())?);
    }
    if wants_credential(&tenant) {
        let label = credential(&tenant, authorization, now, &services).await?;
        principal.token = Some(label);
    }
    ctx.principal = Some(principal);
    Ok(())
}

/// Whether the tenant wants something in `Authorization` (a tenant with only `mtls` does not).
pub fn wants_credential(tenant: &Tenant) -> bool {
    !tenant.auth.bearer.is_empty() || !tenant.schemes.is_empty()
}

/// Any one of the tenant's header schemes will do; the scheme of the header picks which.
async fn credential(
    tenant: &Tenant,
    authorization: Option<&[u8]>,
    now: OffsetDateTime,
    services: &Services,
) -> Result<Arc<str>, AuthError> {
    match Credential::parse(authorization) {
        Credential::Missing => Err(AuthError::MissingToken),
        Credential::Other => Err(AuthError::NotBearer),
        Credential::Basic(encoded) => basic::check(tenant, encoded, now, &services.secrets).await,
        Credential::Bearer(token) => match bearer::check(&tenant.auth.bearer, token, now) {
            Err(AuthError::UnknownToken) if jwt::looks_like_jwt(token) => {
                issued_token(tenant, token, services).await
            }
            other => other,
        },
    }
}

/// A JWT: one the tenant's own token endpoint issued, else one of its outside issuer.
async fn issued_token(
    tenant: &Tenant,
    token: &[u8],
    services: &Services,
) -> Result<Arc<str>, AuthError> {
    let token = std::str::from_utf8(token).map_err(|_| AuthError::UnknownToken)?;
    if let Some(rule) = &tenant.schemes.oauth {
        if oauth::is_ours(token) {
            return services.signer.verify(token, &tenant.id, rule);
        }
    }
    match (&tenant.schemes.jwt, &tenant.jwks) {
        (Some(rule), Some(keys)) => jwt::verify(rule, keys, token).await,
        _ => Err(AuthError::UnknownToken),
    }
}

/// Checks a tenant's static bearer tokens and client certificate rule (a tenant with both
/// wants both) and names the ones that matched: the synchronous core of [`check`], for a
/// tenant without Basic, JWT or OAuth.
pub fn authenticate(
    auth: &AuthConfig,
    authorization: Option<&[u8]>,
    peer: Option<&PeerIdentity>,
    now: OffsetDateTime,
) -> Result<Principal, AuthError> {
    let mut principal = Principal::default();
    if let Some(rule) = &auth.mtls {
        principal.certificate = Some(mtls::check(rule, peer)?);
    }
    if !auth.bearer.is_empty() {
        let token = match Credential::parse(authorization) {
            Credential::Missing => return Err(AuthError::MissingToken),
            Credential::Bearer(token) => token,
            Credential::Basic(_) => return Err(AuthError::Basic("the tenant takes no Basic")),
            Credential::Other => return Err(AuthError::NotBearer),
        };
        principal.token = Some(bearer::check(&auth.bearer, token, now)?);
    }
    Ok(principal)
}

/// What a tenant would answer these credentials with when they are wrong: said to a request
/// for a tenant that does not exist, so that the answer does not tell which tenants do.
pub fn refusal_without_tenant(authorization: Option<&[u8]>) -> AuthError {
    match Credential::parse(authorization) {
        Credential::Missing => AuthError::MissingToken,
        Credential::Other => AuthError::NotBearer,
        Credential::Basic(_) => AuthError::Basic("no tenant is served at this address"),
        Credential::Bearer(_) => AuthError::UnknownToken,
    }
}

/// Why a caller was refused. `Display` is the reason for the log; [`AuthError::shown`] is what
/// the caller is told, which never says more than "not valid" about a credential.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("an Authorization: Bearer token is required")]
    MissingToken,
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    #[error("the bearer token is not valid for this tenant")]
    UnknownToken,
    #[error("the bearer token has expired")]
    ExpiredToken,
    #[error("this tenant requires a client certificate")]
    MissingCertificate,
    #[error("the client certificate is not accepted for this tenant")]
    CertificateNotAllowed,
    /// The certificate names an accepted identity but does not chain to the tenant's own CA,
    /// or its CA revoked it.
    #[error("the client certificate is not accepted for this tenant: {0}")]
    CertificateUntrusted(String),
    #[error("Basic credentials refused: {0}")]
    Basic(&'static str),
    #[error("bearer JWT refused: {0}")]
    Jwt(String),
    /// Every slot for slow hash checks stayed taken: the credentials may well be right.
    #[error("too many credential checks at once")]
    Busy,
    /// The issuer's key set is out of reach and none was fetched before.
    #[error("the JWT keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

/// What a refused Basic caller is told, whatever the reason.
const BASIC_REFUSED: &str = "the Basic credentials are not valid for this tenant";

impl AuthError {
    /// The caller's message: an expired or foreign token reads as any token that is not valid.
    pub fn shown(&self) -> String {
        match self {
            AuthError::ExpiredToken | AuthError::Jwt(_) => AuthError::UnknownToken.to_string(),
            AuthError::CertificateUntrusted(_) => AuthError::CertificateNotAllowed.to_string(),
            AuthError::Basic(_) => BASIC_REFUSED.to_owned(),
            AuthError::Busy | AuthError::KeysUnavailable(_) => {
                "credentials cannot be checked right now; retry shortly".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// Whether the caller's credential was refused (401, counted by the throttle), rather
    /// than left unchecked for a moment (503).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, AuthError::Busy | AuthError::KeysUnavailable(_))
    }

    /// The `WWW-Authenticate` challenge of a refusal: the scheme the caller tried (RFC 7617
    /// §2 for Basic, RFC 6750 §3 otherwise), so that the answer is the same whatever the
    /// tenant accepts, or whether it exists.
    pub fn challenge(&self) -> &'static str {
        match self {
            AuthError::Basic(_) => "Basic realm=\"scim\", charset=\"UTF-8\"",
            _ => "Bearer realm=\"scim\"",
        }
    }
}

/// The hex SHA-256 of a token, as written in the configuration.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests;
