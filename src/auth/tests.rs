//! The synchronous core: static bearer tokens and certificate names.

use super::*;
use crate::config::{BearerToken, MtlsRule};
use crate::conn::San;
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
        authenticate(&auth, Some(header), None, NOW).map(|p| p.token.as_deref().map(str::to_owned))
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
    assert!(matches!(
        authenticate(&auth, Some(b"Basic dDp0"), None, NOW),
        Err(AuthError::Basic(_))
    ));
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
fn an_unknown_tenant_answers_as_a_wrong_credential_of_the_same_scheme() {
    let auth = tenant(&[("t", None)]);
    for header in [
        None,
        Some(&b"Bearer x"[..]),
        Some(b"Basic dDp0"),
        Some(b"Digest x"),
    ] {
        let known = authenticate(&auth, header, None, NOW).expect_err("refused");
        let unknown = refusal_without_tenant(header);
        assert_eq!(known.shown(), unknown.shown(), "{header:?}");
        assert_eq!(known.challenge(), unknown.challenge(), "{header:?}");
    }
}

#[test]
fn refusals_say_nothing_of_why_a_credential_failed() {
    let shown = [
        AuthError::UnknownToken,
        AuthError::ExpiredToken,
        AuthError::Jwt("expired".into()),
    ]
    .map(|e| e.shown());
    assert!(shown.iter().all(|s| *s == shown[0]), "{shown:?}");
    assert_eq!(
        AuthError::Basic("no such user").shown(),
        AuthError::Basic("wrong password").shown()
    );
    assert!(AuthError::Basic("x").challenge().starts_with("Basic "));
    assert!(AuthError::UnknownToken.challenge().starts_with("Bearer "));
    assert!(!AuthError::Busy.is_refusal());
}

fn peer(cn: &[&str], sans: Vec<San>) -> PeerIdentity {
    PeerIdentity {
        subject_cn: cn.iter().map(|c| (*c).into()).collect(),
        sans,
        chain: Vec::new(),
    }
}

#[test]
fn certificate_must_match_a_listed_cn_or_san() {
    let rule = MtlsRule {
        subject_cn: vec!["okta".into()],
        san: vec![San::Dns("idp.example".into())],
        ..MtlsRule::default()
    };
    let auth = AuthConfig {
        bearer: vec![],
        mtls: Some(rule),
    };
    let named = |peer: &PeerIdentity| {
        authenticate(&auth, None, Some(peer), NOW)
            .map(|p| p.certificate.as_deref().map(str::to_owned))
    };
    assert_eq!(named(&peer(&["okta"], vec![])), Ok(Some("okta".to_owned())));
    assert_eq!(
        named(&peer(&[], vec![San::Dns("IDP.example".into())])),
        Ok(Some("dns:IDP.example".to_owned()))
    );
    assert_eq!(
        named(&peer(&["entra"], vec![])),
        Err(AuthError::CertificateNotAllowed)
    );
    assert_eq!(
        authenticate(&auth, None, None, NOW),
        Err(AuthError::MissingCertificate)
    );
}

#[test]
fn a_san_matches_only_a_san_of_its_type() {
    let rule = MtlsRule {
        subject_cn: vec![],
        san: vec![San::Uri("spiffe://example.com/okta".into())],
        ..MtlsRule::default()
    };
    let auth = AuthConfig {
        bearer: vec![],
        mtls: Some(rule),
    };
    let as_dns = peer(&[], vec![San::Dns("spiffe://example.com/okta".into())]);
    assert_eq!(
        authenticate(&auth, None, Some(&as_dns), NOW),
        Err(AuthError::CertificateNotAllowed)
    );
    let as_uri = peer(&[], vec![San::Uri("spiffe://example.com/okta".into())]);
    assert!(authenticate(&auth, None, Some(&as_uri), NOW).is_ok());
    assert_eq!(
        San::parse("email:a@b.example"),
        Some(San::Email("a@b.example".into()))
    );
    assert_eq!(San::parse("okta.example"), None);
    assert_eq!(San::parse("ip:10.0.0.1"), None);
}

#[test]
fn token_hash_is_lowercase_hex_sha256() {
    // SHA-256("test"), a well-known vector.
    assert_eq!(
        token_hash("test"),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
}
