//! Stage 3, authenticate: the caller proves it is the tenant's identity provider, with a bearer
//! token (stored as a SHA-256 hash, compared in constant time) and/or a client certificate.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::config::{AuthConfig, MtlsRule};
use crate::listener::PeerIdentity;

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

/// Checks every credential the tenant requires: a tenant with both bearer tokens and an mTLS
/// rule wants both.
pub fn authenticate(
    auth: &AuthConfig,
    authorization: Option<&[u8]>,
    peer: Option<&PeerIdentity>,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    if let Some(rule) = &auth.mtls {
        check_certificate(rule, peer)?;
    }
    if !auth.bearer.is_empty() {
        check_bearer(auth, authorization, now)?;
    }
    Ok(())
}

fn check_bearer(
    auth: &AuthConfig,
    header: Option<&[u8]>,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
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
        _ => Ok(()),
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

fn check_certificate(rule: &MtlsRule, peer: Option<&PeerIdentity>) -> Result<(), AuthError> {
    let peer = peer.ok_or(AuthError::MissingCertificate)?;
    let cn_ok = peer
        .subject_cn
        .iter()
        .any(|cn| rule.subject_cn.contains(cn));
    let san_ok = peer.sans.iter().any(|san| rule.san.contains(san));
    if cn_ok || san_ok {
        Ok(())
    } else {
        Err(AuthError::CertificateNotAllowed)
    }
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
                not_after: *not_after,
            })
            .collect();
        AuthConfig { bearer, mtls: None }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    #[test]
    fn any_of_several_rotated_tokens_is_accepted() {
        let auth = tenant(&[("old", None), ("new", None)]);
        assert_eq!(authenticate(&auth, Some(b"Bearer old"), None, NOW), Ok(()));
        assert_eq!(authenticate(&auth, Some(b"bearer new"), None, NOW), Ok(()));
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
        assert_eq!(authenticate(&auth, None, Some(&by_cn), NOW), Ok(()));
        assert_eq!(authenticate(&auth, None, Some(&by_san), NOW), Ok(()));
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
