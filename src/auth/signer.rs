//! The key the tokens the proxy issues are signed with (RFC 6749 §4.4 access tokens, as JWTs
//! with a per-tenant audience), kept for the whole process so that a reload does not end them.
//! Free of requests: the runtime holds it, the token endpoint and the bearer check use it.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::AuthError;
use crate::config::OAuthRule;

/// The key id of the tokens the proxy issues, which tells them from an outside issuer's.
const KID: &str = "scimgate-oauth";
const ISSUER: &str = "scimgate";

/// Signs and checks the tokens the proxy issues.
pub struct Signer {
    master: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: u64,
    exp: u64,
}

impl Signer {
    /// A key of the process's own, from the system's randomness.
    pub fn random() -> Result<Self, String> {
        let mut master = [0u8; 32];
        getrandom::fill(&mut master).map_err(|e| format!("no randomness available: {e}"))?;
        Ok(Self { master })
    }

    /// A key shared by every process given the same `server.token_key_file`.
    pub fn with_key(master: [u8; 32]) -> Self {
        Self { master }
    }

    /// Tenant `id`'s key: a tenant's tokens cannot be made from another's even if `aud`
    /// were not checked.
    fn key(&self, tenant: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"scimgate oauth token key\0");
        h.update(self.master);
        h.update(tenant.as_bytes());
        h.finalize().into()
    }

    pub fn issue(&self, tenant: &str, client: &str, ttl: Duration) -> Result<String, String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: audience(tenant),
            sub: client.into(),
            iat: now,
            exp: now + ttl.as_secs(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(&self.key(tenant)),
        )
        .map_err(|e| e.to_string())
    }

    /// The label of a valid token of this tenant: `oauth:` and its client, which must still be
    /// configured (removing a client from the file ends its tokens at the reload).
    pub fn verify(
        &self,
        token: &str,
        tenant: &str,
        rule: &OAuthRule,
    ) -> Result<Arc<str>, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[audience(tenant)]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let key = DecodingKey::from_secret(&self.key(tenant));
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Jwt(format!("issued token: {e}")))?;
        let client = &data.claims.sub;
        if !rule.clients.iter().any(|c| &*c.client_id == client) {
            return Err(AuthError::Jwt(format!(
                "issued token: client {client:?} is no longer configured"
            )));
        }
        Ok(format!("oauth:{client}").into())
    }
}

fn audience(tenant: &str) -> String {
    format!("scimgate:tenant:{tenant}")
}

/// Whether a JWT says the proxy issued it.
pub fn is_ours(token: &str) -> bool {
    jsonwebtoken::decode_header(token).is_ok_and(|h| h.kid.as_deref() == Some(KID))
}
