//! Why a caller was refused, and what it is told.

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

    /// A fixed name per reason, for the metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::MissingToken | AuthError::MissingCertificate => "missing",
            AuthError::NotBearer => "malformed",
            AuthError::UnknownToken => "wrong_token",
            AuthError::ExpiredToken => "expired",
            AuthError::CertificateNotAllowed | AuthError::CertificateUntrusted(_) => "certificate",
            AuthError::Basic(_) => "basic",
            AuthError::Jwt(_) => "jwt",
            AuthError::Busy => "busy",
            AuthError::KeysUnavailable(_) => "keys_unavailable",
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
