//! Reading the `Authorization` header, and static bearer tokens: stored as SHA-256 hashes and
//! compared in constant time against every entry.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::AuthError;
use crate::config::BearerToken;

/// What an `Authorization` header holds, by scheme.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    Missing,
    /// RFC 6750 §2.1: the token after `Bearer `.
    Bearer(&'a [u8]),
    /// RFC 7617 §2: the base64 of `user:password` after `Basic `.
    Basic(&'a [u8]),
    /// Another scheme, or a scheme with nothing after it.
    Other,
}

impl<'a> Credential<'a> {
    pub fn parse(header: Option<&'a [u8]>) -> Self {
        let Some(header) = header else {
            return Credential::Missing;
        };
        if let Some(token) = after_scheme(header, b"bearer") {
            return Credential::Bearer(token);
        }
        if let Some(encoded) = after_scheme(header, b"basic") {
            return Credential::Basic(encoded);
        }
        Credential::Other
    }
}

/// The value after `scheme` (any case) and a space, trimmed; `None` when it is empty.
fn after_scheme<'a>(header: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    let (name, rest) = header.split_at_checked(scheme.len())?;
    if !name.eq_ignore_ascii_case(scheme) || rest.first() != Some(&b' ') {
        return None;
    }
    let value = rest.trim_ascii();
    (!value.is_empty()).then_some(value)
}

/// The label of the matching token.
pub fn check(
    tokens: &[BearerToken],
    token: &[u8],
    now: OffsetDateTime,
) -> Result<Arc<str>, AuthError> {
    let digest: [u8; 32] = Sha256::digest(token).into();
    // Compare against every stored hash without stopping early, so timing says nothing about
    // which entry (if any) matched.
    let mut matched = None;
    for stored in tokens {
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
