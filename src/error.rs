//! The proxy's own failures, and the one function that turns any of them into a SCIM Error
//! response: client faults 4xx, upstream faults 502/503/504, each with a `scimType` where one fits.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::auth::AuthError;
use crate::response::{self, Body};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::json::JsonError;
use crate::scim::MEDIA_TYPE;
use crate::tenant::RouteError;
use crate::upstream::UpstreamError;

/// The methods SCIM uses (RFC 7644 §3.2); nothing else is forwarded.
pub const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// Seconds an IdP is asked to wait before retrying when the upstream is unavailable.
const RETRY_AFTER_SECS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the request path has segments that could reach outside the tenant's SCIM base ('.', '..', ';', '\\' or an encoded slash)")]
    UnsafePath,
    #[error("there is no SCIM endpoint at this path")]
    NoEndpoint,
    #[error("{0} is not a SCIM method")]
    MethodNotAllowed(http::Method),
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("the request body could not be read")]
    BodyRead(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    InvalidJson(#[from] JsonError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("the proxy has reached its connection limit")]
    Overloaded,
    /// A refusal already phrased as a SCIM Error (a bad filter, a PATCH that cannot apply).
    #[error("{}", .0.detail)]
    Scim(ScimError),
}

impl ProxyError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Route(RouteError::UnknownTenant) => StatusCode::NOT_FOUND,
            Self::Route(RouteError::Misdirected) => StatusCode::MISDIRECTED_REQUEST,
            Self::Auth(_) => StatusCode::UNAUTHORIZED,
            Self::UnsafePath | Self::InvalidJson(_) | Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::NoEndpoint => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Upstream(UpstreamError::Unavailable(_)) | Self::Overloaded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Upstream(UpstreamError::Timeout(_) | UpstreamError::SlowBody) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::Upstream(UpstreamError::Broken(_)) => StatusCode::BAD_GATEWAY,
            Self::Upstream(UpstreamError::BadPath(_)) => StatusCode::BAD_REQUEST,
            Self::Scim(e) => {
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn scim_type(&self) -> Option<ScimType> {
        match self {
            Self::InvalidJson(_) => Some(ScimType::InvalidSyntax),
            Self::UnsafePath | Self::Upstream(UpstreamError::BadPath(_)) => {
                Some(ScimType::InvalidPath)
            }
            Self::Scim(e) => e.scim_type,
            _ => None,
        }
    }

    /// Whether the operator should hear about it: the proxy's or upstream's fault, not the
    /// client's.
    pub fn is_server_side(&self) -> bool {
        self.status().is_server_error()
    }
}

/// The one place a failure becomes a response. The client sees the external message (the
/// error's `Display`); causes stay in the log.
pub fn respond(err: &ProxyError) -> Response<Body> {
    let status = err.status();
    let doc = ScimError {
        status: status.as_u16(),
        scim_type: err.scim_type(),
        detail: err.to_string(),
    };
    let mut response = response::full(status, MEDIA_TYPE, doc.to_json());
    let headers = response.headers_mut();
    match err {
        // RFC 6750 §3: a bearer-protected resource names its scheme when it refuses.
        ProxyError::Auth(_) => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        // Transient: tell the IdP when to retry (RFC 9110 §10.2.3).
        ProxyError::Upstream(UpstreamError::Unavailable(_)) | ProxyError::Overloaded => {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        // RFC 9110 §15.5.6: a 405 lists the methods that are allowed.
        ProxyError::MethodNotAllowed(_) => {
            headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        }
        ProxyError::BodyTooLarge { .. } | ProxyError::BodyTimeout => {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_failure_is_401_with_bearer_challenge() {
        let r = respond(&ProxyError::Auth(AuthError::UnknownToken));
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"scim\"");
        assert_eq!(r.headers()["content-type"], MEDIA_TYPE);
    }

    #[test]
    fn upstream_down_is_503_with_retry_after() {
        let r = respond(&ProxyError::Upstream(UpstreamError::Unavailable(
            "refused".into(),
        )));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], RETRY_AFTER_SECS);
    }

    #[test]
    fn upstream_timeout_is_504_and_broken_is_502() {
        let timeout =
            ProxyError::Upstream(UpstreamError::Timeout(std::time::Duration::from_secs(2)));
        assert_eq!(respond(&timeout).status(), 504);
        assert_eq!(
            respond(&ProxyError::Upstream(UpstreamError::Broken("reset".into()))).status(),
            502
        );
    }
}
