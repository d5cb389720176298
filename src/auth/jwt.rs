//! Bearer tokens that are JWTs of an outside issuer (Entra ID's, and any OpenID provider's):
//! signature against the issuer's published keys, `iss`, `aud`, `exp` and `nbf` with a small
//! leeway (RFC 7519 §4.1), and an optional list of accepted subjects. `jsonwebtoken` does the
//! verification.

use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::jwks::Jwks;
use super::AuthError;
use crate::config::JwtRule;

/// Algorithms whose keys can be published. An HMAC algorithm would let anyone who reads the
/// key set sign tokens.
pub fn asymmetric(alg: Algorithm) -> bool {
    use Algorithm::*;
    matches!(
        alg,
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | EdDSA
    )
}

/// Three base64url segments: worth checking as a JWT (a static token of `scimgate token new`
/// never is one).
pub fn looks_like_jwt(token: &[u8]) -> bool {
    token.starts_with(b"eyJ")
        && token.iter().filter(|&&b| b == b'.').count() == 2
        && token
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
}

/// The label of a valid token: `jwt:` and its subject.
pub async fn verify(rule: &JwtRule, keys: &Jwks, token: &str) -> Result<Arc<str>, AuthError> {
    let refuse = |why: String| AuthError::Jwt(why);
    let header = jsonwebtoken::decode_header(token).map_err(|e| refuse(format!("header: {e}")))?;
    if !rule.algorithms.contains(&header.alg) {
        return Err(refuse(format!("algorithm {:?} is not allowed", header.alg)));
    }
    let set = keys.key_set(header.kid.as_deref()).await?;
    let jwk = pick(&set, header.kid.as_deref())?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| refuse(format!("key: {e}")))?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = rule.leeway.as_secs();
    validation.validate_nbf = true;
    validation.set_issuer(&[&rule.issuer]);
    validation.set_audience(&rule.audience);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| refuse(e.to_string()))?;
    let sub = data.claims.sub.unwrap_or_default();
    if !rule.subjects.is_empty() && !rule.subjects.contains(&sub) {
        return Err(refuse(format!("subject {:?} is not listed", label(&sub))));
    }
    Ok(format!("jwt:{}", label(&sub)).into())
}

/// The key the token names; a token naming none is checked against a set of one key only.
fn pick<'a>(set: &'a JwkSet, kid: Option<&str>) -> Result<&'a Jwk, AuthError> {
    let signing = |k: &&Jwk| k.common.public_key_use != Some(PublicKeyUse::Encryption);
    match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(signing)
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .ok_or_else(|| AuthError::Jwt(format!("no key {:?} in the issuer's set", label(kid)))),
        None => {
            let mut keys = set.keys.iter().filter(signing);
            match (keys.next(), keys.next()) {
                (Some(only), None) => Ok(only),
                _ => Err(AuthError::Jwt(
                    "the token names no key (kid) and the set has several".into(),
                )),
            }
        }
    }
}

/// A claim as it may go into a log line: printable, at most 64 characters.
fn label(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jwt_shaped_tokens_are_tried_as_jwts() {
        assert!(looks_like_jwt(b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(!looks_like_jwt(b"sgt_0123456789abcdef"));
        assert!(!looks_like_jwt(b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0"));
        assert!(!looks_like_jwt(b"eyJ a.b.c"));
    }

    #[test]
    fn shared_secret_algorithms_are_never_accepted() {
        assert!(asymmetric(Algorithm::RS256));
        assert!(asymmetric(Algorithm::EdDSA));
        assert!(!asymmetric(Algorithm::HS256));
        assert!(!asymmetric(Algorithm::HS512));
    }

    #[test]
    fn log_labels_are_short_and_printable() {
        assert_eq!(label("a b\nc"), "abc");
        assert_eq!(label(&"x".repeat(100)).len(), 64);
    }
}
