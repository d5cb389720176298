//! Stage 3, authenticate: the caller proves it is the tenant's identity provider, with a bearer
//! token (stored as a SHA-256 hash, compared in constant time) and/or a client certificate.

use std::sync::Arc;

use http::header;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::config::{AuthConfig, MtlsRule};
use crate::conn::PeerIdentity;
use crate::ctx::{Principal, RequestCtx};

/// Stage 3: the routed tenant's credentials, checked before the body is read, so an unknown
/// caller costs no more than its headers.
pub fn check(ctx: &mut RequestCtx) -> Result<(), AuthError> {
    let authorization = ctx.headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let principal = authenticate(
        &ctx.tenant().auth,
        authorization,
        ctx.conn.peer(),
        OffsetDateTime::now_utc(),
    )?;
    ctx.principal = Some(principal);
    Ok(())
}

/// Why a caller was refused. The messages are safe to show the caller: none names a token.
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
}

/// Checks every credential the tenant requires (a tenant with both bearer tokens and an mTLS
/// rule wants both) and names the ones that matched.
pub fn authenticate(
    auth: &AuthConfig,
    authorization: Option<&[u8]>,
    peer: Option<&PeerIdentity>,
    now: OffsetDateTime,
) -> Result<Principal, AuthError> {
    let mut principal = Principal::default();
    if let Some(rule) = &auth.mtls {
        principal.certificate = Some(check_certificate(rule, peer)?);
    }
    if !auth.bearer.is_empty() {
        principal.token = Some(check_bearer(auth, authorization, now)?);
    }
    Ok(principal)
}

/// What a tenant that wants a bearer token would answer these credentials: said to a request
/// for a tenant that does not exist, so that the answer does not tell which tenants do.
pub fn refusal_without_tenant(authorization: Option<&[u8]>) -> AuthError {
    match authorization {
        None => AuthError::MissingToken,
        Some(h) if bearer_token(h).is_none() => AuthError::NotBearer,
        Some(_) => AuthError::UnknownToken,
    }
}

/// The label of the matching token.
fn check_bearer(
    auth: &AuthConfig,
    header: Option<&[u8]>,
    now: OffsetDateTime,
) -> Result<Arc<str>, AuthError> {
    let header = header.ok_or(AuthError::MissingToken)?;
    let token = bearer_token(header).ok_or(AuthError::NotBearer)?;
    let digest: [u8; 32] = Sha256::digest(token).into();
    // Compare against every stored hash without stopping early, so timing says nothing about
    // which entry (if any) matched.
    let mut matched = None;
    for stored in &auth.bearer {
        if bool::from(stored.sha256.ct_eq(&digest)) {
            matched = Some(stored);
        }
    }
    let stored = matched.ok_or(AuthError::UnknownToken)?;
    match stored.not_after {
        Some(t) if now > t => Err(AuthError::ExpiredToken),
        _ => Ok(stored.label.clone()),
    }
}

/// RFC 6750 §2.1: `Bearer` (any case) followed by the token.
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The certificate's name that the rule accepts: a listed subject CN, else a listed SAN.
fn check_certificate(rule: &MtlsRule, peer: Option<&PeerIdentity>) -> Result<Arc<str>, AuthError> {
    let peer = peer.ok_or(AuthError::MissingCertificate)?;
    let by_cn = peer
        .subject_cn
        .iter()
        .find(|cn| rule.subject_cn.iter().any(|r| r.as_str() == &***cn));
    let by_san = || {
        peer.sans
            .iter()
            .find(|san| rule.san.iter().any(|r| r.as_str() == &***san))
    };
    by_cn
        .or_else(by_san)
        .cloned()
        .ok_or(AuthError::CertificateNotAllowed)
}

/// The hex SHA-256 of a token, as written in the configuration.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BearerToken;
    use time::macros::datetime;

    fn tenant(tokens: &[(&str, Option<OffsetDateTime>)]) -> AuthConfig {
        let bearer = tokens
            .iter()
            .map(|(t, not_after)| BearerToken {
                sha256: Sha256::digest(t.as_bytes()).into(),
                label: (*t).into(),
                not_after: *not_after,
            })
            .collect();
        AuthConfig { bearer, mtls: None }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    #[test]
    fn any_of_several_rotated_tokens_is_accepted() {
        let auth = tenant(&[("old", None), ("new", None)]);
        let label = |header: &[u8]| {
            authenticate(&auth, Some(header), None, NOW)
                .map(|p| p.token.as_deref().map(str::to_owned))
        };
        assert_eq!(label(b"Bearer old"), Ok(Some("old".to_owned())));
        assert_eq!(label(b"bearer new"), Ok(Some("new".to_owned())));
    }

    #[test]
    fn a_token_past_not_after_is_expired() {
        let auth = tenant(&[("t", Some(datetime!(2026-11-01 0:00 UTC)))]);
        assert_eq!(
            authenticate(&auth, Some(b"Bearer t"), None, NOW),
            Err(AuthError::ExpiredToken)
        );
    }

    #[test]
    fn missing_wrong_and_non_bearer_headers_are_refused() {
        let auth = tenant(&[("t", None)]);
        assert_eq!(
            authenticate(&auth, None, None, NOW),
            Err(AuthError::MissingToken)
        );
        assert_eq!(
            authenticate(&auth, Some(b"Bearer x"), None, NOW),
            Err(AuthError::UnknownToken)
        );
        assert_eq!(
            authenticate(&auth, Some(b"Basic dDp0"), None, NOW),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            authenticate(&auth, Some(b"Bearer "), None, NOW),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            authenticate(&auth, Some(b"Bearert"), None, NOW),
            Err(AuthError::NotBearer)
        );
    }

    #[test]
    fn certificate_must_match_a_listed_cn_or_san() {
        let rule = MtlsRule {
            subject_cn: vec!["okta".into()],
            san: vec!["idp.example".into()],
        };
        let auth = AuthConfig {
            bearer: vec![],
            mtls: Some(rule),
        };
        let by_cn = PeerIdentity {
            subject_cn: vec!["okta".into()],
            sans: vec![],
        };
        let by_san = PeerIdentity {
            subject_cn: vec![],
            sans: vec!["idp.example".into()],
        };
        let other = PeerIdentity {
            subject_cn: vec!["entra".into()],
            sans: vec![],
        };
        let named = |peer: &PeerIdentity| {
            authenticate(&auth, None, Some(peer), NOW)
                .map(|p| p.certificate.as_deref().map(str::to_owned))
        };
        assert_eq!(named(&by_cn), Ok(Some("okta".to_owned())));
        assert_eq!(named(&by_san), Ok(Some("idp.example".to_owned())));
        assert_eq!(
            authenticate(&auth, None, Some(&other), NOW),
            Err(AuthError::CertificateNotAllowed)
        );
        assert_eq!(
            authenticate(&auth, None, None, NOW),
            Err(AuthError::MissingCertificate)
        );
    }

    #[test]
    fn token_hash_is_lowercase_hex_sha256() {
        // SHA-256("test"), a well-known vector.
        assert_eq!(
            token_hash("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
