//! HTTP Basic (RFC 7617), for IdPs whose SCIM connector offers only a user name and password
//! (Okta, Ping): the password is stored as an argon2 (or bcrypt) hash and checked by
//! [`SecretVerifier`].

use std::sync::Arc;

use base64::Engine;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::secret::SecretVerifier;
use super::AuthError;
use crate::config::BasicUser;
use crate::tenant::table::Tenant;

/// The label of the matching user, `basic:` and its name.
pub async fn check(
    tenant: &Tenant,
    encoded: &[u8],
    now: OffsetDateTime,
    secrets: &SecretVerifier,
) -> Result<Arc<str>, AuthError> {
    let users = &tenant.schemes.basic;
    if users.is_empty() {
        return Err(AuthError::Basic("the tenant takes no Basic credentials"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| AuthError::Basic("the credentials are not base64"))?;
    let (name, password) = split(&decoded).ok_or(AuthError::Basic("no ':' in the credentials"))?;
    // A user may be listed more than once while its password is rotated; every entry of the
    // name is tried, the current ones first.
    let mut candidates: Vec<&BasicUser> = users
        .iter()
        .filter(|u| bool::from(u.username.as_bytes().ct_eq(name)))
        .collect();
    if candidates.is_empty() {
        let like = users.first().map(|u| &u.hash);
        secrets
            .waste(like, password)
            .await
            .map_err(|_| AuthError::Busy)?;
        return Err(AuthError::Basic("no such user"));
    }
    candidates.sort_by_key(|u| u.not_after.is_some_and(|t| now > t));
    for user in candidates {
        let scope = format!("{}/basic/{}", tenant.id, user.username);
        if secrets
            .verify(&scope, &user.hash, password)
            .await
            .map_err(|_| AuthError::Busy)?
        {
            return match user.not_after {
                Some(t) if now > t => Err(AuthError::Basic("the password has expired")),
                _ => Ok(format!("basic:{}", user.username).into()),
            };
        }
    }
    Err(AuthError::Basic("wrong password"))
}

/// `user-id ":" password` (RFC 7617 §2): the user-id ends at the first colon.
fn split(decoded: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = decoded.iter().position(|&b| b == b':')?;
    Some((&decoded[..at], &decoded[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_id_ends_at_the_first_colon() {
        assert_eq!(split(b"okta:pa:ss"), Some((&b"okta"[..], &b"pa:ss"[..])));
        assert_eq!(split(b"okta"), None);
        assert_eq!(split(b":pw"), Some((&b""[..], &b"pw"[..])));
    }
}
