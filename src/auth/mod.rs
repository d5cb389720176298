//! Stage 3, authenticate: the caller proves it is the tenant's identity provider. In the
//! `Authorization` header: a static bearer token (stored as a SHA-256 hash, compared in constant
//! time), HTTP Basic (argon2, checked off the async workers), a JWT of an outside issuer, or a
//! token the tenant's own OAuth endpoint issued. Beside it, a client certificate. Every refusal
//! is a plain 401 to the caller; the log keeps the real reason.

pub mod anchor;
pub mod announce;
pub mod basic;
pub mod bearer;
mod error;
pub mod jwks;
pub mod jwt;
pub mod mtls;
pub mod oauth;
pub mod secret;
pub mod services;
pub mod signer;

use std::sync::Arc;

use http::header;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::AuthConfig;
use crate::conn::PeerIdentity;
use crate::ctx::{Principal, RequestCtx};
use crate::tenant::table::Tenant;

pub use bearer::Credential;
pub use error::AuthError;
pub use services::Services;

/// Stage 3: the routed tenant's credentials, checked before the body is read, so an unknown
/// caller costs no more than its headers (and, for Basic, one bounded hash check).
pub async fn check(ctx: &mut RequestCtx) -> Result<(), AuthError> {
    let tenant = ctx.tenant().clone();
    let services = ctx.snapshot.auth.clone();
    let authorization = ctx.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let now = OffsetDateTime::now_utc();
    let mut principal = Principal::default();
    if let Some(rule) = &tenant.auth.mtls {
        let verdicts = ctx.conn.verdicts();
        principal.certificate = Some(mtls::check(rule, ctx.conn.peer(), verdicts)?);
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
        principal.certificate = Some(mtls::check(rule, peer, None)?);
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

/// The hex SHA-256 of a token, as written in the configuration.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests;
