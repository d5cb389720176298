//! The proxy's own failures, typed by the stage where they happen, and the one function that
//! turns any of them into a SCIM Error response: client faults 4xx, upstream faults
//! 502/503/504, each with a `scimType` where one fits (RFC 7644 §3.12). The IdP gets the
//! external message; causes stay in the log.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::audit::log::AuditError;
use crate::auth::AuthError;
use crate::body::{self, Body};
use crate::classify::ClassifyError;
use crate::emulate::EmulateError;
use crate::normalize::NormalizeError;
use crate::policy::Refusal;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::MEDIA_TYPE;
use crate::tenant::RouteError;
use crate::upstream::UpstreamError;

/// The methods SCIM uses (RFC 7644 §3.2); nothing else is forwarded.
pub const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// Seconds an IdP is asked to wait before retrying when the upstream is unavailable.
const RETRY_AFTER_SECS: u64 = 5;

/// Seconds an IdP is asked to wait before retrying a write to a paused tenant: a pause is an
/// operator's decision, over in minutes rather than seconds.
const PAUSED_RETRY_AFTER_SECS: u64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the proxy has reached its connection limit")]
    Overloaded,
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Too many failed authentications from this client address.
    #[error("too many failed authentications from this address; retry in {}s", .0.as_secs())]
    Throttled(std::time::Duration),
    #[error(transparent)]
    Classify(#[from] ClassifyError),
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
    #[error(transparent)]
    Policy(#[from] Refusal),
    #[error(transparent)]
    Emulate(#[from] EmulateError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The operator paused the tenant's writes (admin API).
    #[error("the tenant is paused by its operator: writes are refused until it is resumed; reads still work")]
    Paused,
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// How one failure is answered.
struct Mapped {
    status: StatusCode,
    scim_type: Option<ScimType>,
    /// Transient: the IdP is told to retry after this many seconds.
    retry_after: Option<u64>,
}

impl Mapped {
    fn new(status: StatusCode) -> Self {
        Self {
            status,
            scim_type: None,
            retry_after: None,
        }
    }

    fn typed(status: StatusCode, scim_type: ScimType) -> Self {
        Self {
            scim_type: Some(scim_type),
            ..Self::new(status)
        }
    }

    fn retry(status: StatusCode) -> Self {
        Self::retry_in(status, std::time::Duration::from_secs(RETRY_AFTER_SECS))
    }

    fn retry_in(status: StatusCode, after: std::time::Duration) -> Self {
        Self {
            // Whole seconds (RFC 9110 §10.2.3), at least one.
            retry_after: Some(after.as_secs_f64().ceil().max(1.0) as u64),
            ..Self::new(status)
        }
    }
}

fn map(err: &ProxyError) -> Mapped {
    use ClassifyError as C;
    use EmulateError as E;
    match err {
        ProxyError::Overloaded => Mapped::retry(StatusCode::SERVICE_UNAVAILABLE),
        ProxyError::Route(RouteError::UnknownTenant) => Mapped::new(StatusCode::NOT_FOUND),
        ProxyError::Route(RouteError::Misdirected) => Mapped::new(StatusCode::MISDIRECTED_REQUEST),
        ProxyError::Route(RouteError::AmbiguousHost) => Mapped::new(StatusCode::BAD_REQUEST),
        ProxyError::Auth(AuthError::Busy) => {
            Mapped::retry_in(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(1))
        }
        ProxyError::Auth(AuthError::KeysUnavailable(_)) => {
            Mapped::retry_in(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(10))
        }
        ProxyError::Auth(_) => Mapped::new(StatusCode::UNAUTHORIZED),
        ProxyError::Throttled(after) => Mapped::retry_in(StatusCode::TOO_MANY_REQUESTS, *after),
        ProxyError::Classify(e) => match e {
            C::HeadersTooLarge => Mapped::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            C::UriTooLong => Mapped::new(StatusCode::URI_TOO_LONG),
            C::MediaType(_) => Mapped::new(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            C::MethodNotAllowed(_) => Mapped::new(StatusCode::METHOD_NOT_ALLOWED),
            C::UnsafePath => Mapped::typed(StatusCode::BAD_REQUEST, ScimType::InvalidPath),
            C::NoEndpoint => Mapped::new(StatusCode::NOT_FOUND),
            C::BulkInBulk => Mapped::typed(StatusCode::BAD_REQUEST, ScimType::InvalidValue),
            C::BodyTooLarge { .. } => Mapped::new(StatusCode::PAYLOAD_TOO_LARGE),
            C::BodyTimeout => Mapped::new(StatusCode::REQUEST_TIMEOUT),
            C::BodyRead(_) => Mapped::new(StatusCode::BAD_REQUEST),
            C::InvalidJson(_) => Mapped::typed(StatusCode::BAD_REQUEST, ScimType::InvalidSyntax),
            C::Query(e) => Mapped {
                status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                scim_type: e.scim_type,
                retry_after: None,
            },
        },
        ProxyError::Normalize(NormalizeError::Schema(e)) => Mapped {
            status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            scim_type: e.scim_type,
            retry_after: None,
        },
        ProxyError::Policy(r) => Mapped::typed(StatusCode::BAD_REQUEST, r.scim_type()),
        ProxyError::Emulate(e) => match e {
            E::Upstream(e) => map_upstream(e),
            E::Scim(e) => Mapped {
                status: StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                scim_type: e.scim_type,
                retry_after: None,
            },
            E::BadJson(_) => Mapped::typed(StatusCode::BAD_REQUEST, ScimType::InvalidSyntax),
            E::PreconditionFailed => Mapped::new(StatusCode::PRECONDITION_FAILED),
            E::Duplicate { .. } => Mapped::typed(StatusCode::CONFLICT, ScimType::Uniqueness),
            E::DuplicateUnknown => Mapped::retry(StatusCode::SERVICE_UNAVAILABLE),
            E::TooManyToSort { .. } | E::TooLargeToSort { .. } | E::TooManyToScan { .. } => {
                Mapped::typed(StatusCode::BAD_REQUEST, ScimType::TooMany)
            }
            E::Unreadable(_) | E::NotKept(_) => Mapped::new(StatusCode::BAD_GATEWAY),
            E::NoSuchDocument => Mapped::new(StatusCode::NOT_FOUND),
            E::ReadOnly(_) => Mapped::new(StatusCode::METHOD_NOT_ALLOWED),
            E::Deadline(_) => Mapped::new(StatusCode::GATEWAY_TIMEOUT),
        },
        ProxyError::Upstream(e) => map_upstream(e),
        ProxyError::Paused => Mapped::retry_in(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(PAUSED_RETRY_AFTER_SECS),
        ),
        // Transient: the IdP sends the change again once the file can be written.
        ProxyError::Audit(_) => Mapped::retry(StatusCode::SERVICE_UNAVAILABLE),
    }
}

fn map_upstream(e: &UpstreamError) -> Mapped {
    match e {
        UpstreamError::Unavailable(_) => Mapped::retry(StatusCode::SERVICE_UNAVAILABLE),
        UpstreamError::CircuitOpen(left) => {
            Mapped::retry_in(StatusCode::SERVICE_UNAVAILABLE, *left)
        }
        UpstreamError::Timeout(_) | UpstreamError::SlowBody => {
            Mapped::new(StatusCode::GATEWAY_TIMEOUT)
        }
        UpstreamError::Broken(_) | UpstreamError::TooLarge(_) => {
            Mapped::new(StatusCode::BAD_GATEWAY)
        }
        UpstreamError::NoBufferRoom(_) => Mapped::retry(StatusCode::SERVICE_UNAVAILABLE),
        UpstreamError::BadPath(_) => Mapped::typed(StatusCode::BAD_REQUEST, ScimType::InvalidPath),
        // The tenant's own budget is spent: 429. A cap shared with others is full: 503.
        UpstreamError::Limited(e) if e.is_tenant_limit() => {
            Mapped::retry_in(StatusCode::TOO_MANY_REQUESTS, e.retry_after())
        }
        UpstreamError::Limited(e) => {
            Mapped::retry_in(StatusCode::SERVICE_UNAVAILABLE, e.retry_after())
        }
    }
}

impl ProxyError {
    /// For the metrics: the kind of a refusal made before the request reached an app.
    pub fn refusal_kind(&self) -> Option<&'static str> {
        match self {
            ProxyError::Auth(e) if e.is_refusal() => Some("auth"),
            ProxyError::Route(RouteError::UnknownTenant) => Some("auth"),
            ProxyError::Throttled(_) => Some("throttled"),
            ProxyError::Overloaded => Some("overloaded"),
            ProxyError::Upstream(UpstreamError::Limited(_)) => Some("limits"),
            ProxyError::Normalize(_) => Some("schema"),
            ProxyError::Policy(_) => Some("policy"),
            ProxyError::Classify(_) => Some("request"),
            ProxyError::Paused => Some("paused"),
            ProxyError::Audit(AuditError::Unavailable) => Some("audit"),
            _ => None,
        }
    }

    /// For the metrics: the kind of an authentication failure. `routed` is false when no
    /// tenant serves the path, which the caller is told as a refused credential.
    pub fn auth_failure_kind(&self, routed: bool) -> Option<&'static str> {
        match self {
            ProxyError::Auth(_) if !routed => Some("unknown_tenant"),
            ProxyError::Auth(e) => Some(e.kind()),
            ProxyError::Throttled(_) => Some("throttled"),
            _ => None,
        }
    }

    /// Whether the operator should hear about it: the proxy's or upstream's fault, not the
    /// client's.
    pub fn is_server_side(&self) -> bool {
        // A pause is the operator's own doing, not a fault to warn them of.
        !matches!(self, ProxyError::Paused) && map(self).status.is_server_error()
    }
}

/// What the caller is told. An expired token is answered as any token that is not valid: that
/// it was once valid is for the log only (stage 11 records the real reason); so is every
/// other reason a credential was refused.
fn shown(err: &ProxyError) -> String {
    match err {
        ProxyError::Auth(e) => e.shown(),
        _ => err.to_string(),
    }
}

/// The one place a failure becomes a response. The client sees the external message (the
/// error's `Display`); causes stay in the log.
pub fn respond(err: &ProxyError) -> Response<Body> {
    let mapped = map(err);
    let doc = ScimError {
        status: mapped.status.as_u16(),
        scim_type: mapped.scim_type,
        detail: shown(err),
    };
    let mut response = body::full(mapped.status, MEDIA_TYPE, doc.to_json());
    let headers = response.headers_mut();
    if let Some(secs) = mapped.retry_after {
        // Transient: tell the IdP when to retry (RFC 9110 §10.2.3).
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    match err {
        // RFC 6750 §3, RFC 7617 §2: a protected resource names its scheme when it refuses.
        ProxyError::Auth(e) if e.is_refusal() => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(e.challenge()),
            );
        }
        // RFC 9110 §15.5.6: a 405 lists the methods that are allowed.
        ProxyError::Classify(ClassifyError::MethodNotAllowed(_)) => {
            headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        }
        ProxyError::Emulate(EmulateError::ReadOnly(_)) => {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        // The rest of the body is unread: the connection cannot carry another request.
        ProxyError::Classify(
            ClassifyError::BodyTooLarge { .. }
            | ClassifyError::BodyTimeout
            | ClassifyError::MediaType(_),
        ) => {
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
    fn auth_failures_are_named_by_kind_and_an_unknown_tenant_apart() {
        let expired = ProxyError::Auth(AuthError::ExpiredToken);
        assert_eq!(expired.auth_failure_kind(true), Some("expired"));
        assert_eq!(expired.auth_failure_kind(false), Some("unknown_tenant"));
        let cert = ProxyError::Auth(AuthError::CertificateUntrusted("revoked".into()));
        assert_eq!(cert.auth_failure_kind(true), Some("certificate"));
        let throttled = ProxyError::Throttled(std::time::Duration::from_secs(1));
        assert_eq!(throttled.auth_failure_kind(false), Some("throttled"));
        assert_eq!(ProxyError::Overloaded.auth_failure_kind(true), None);
    }

    #[test]
    fn upstream_down_is_503_with_retry_after() {
        let r = respond(&ProxyError::Upstream(UpstreamError::Unavailable(
            "refused".into(),
        )));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "5");
    }

    #[test]
    fn a_write_to_a_paused_tenant_is_503_with_retry_after_and_says_why() {
        let r = respond(&ProxyError::Paused);
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "60");
        assert_eq!(r.headers()["content-type"], MEDIA_TYPE);
        assert_eq!(ProxyError::Paused.refusal_kind(), Some("paused"));
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

    #[test]
    fn an_upstream_fault_met_while_filling_a_gap_is_answered_as_a_forwarding_one() {
        let down = || UpstreamError::Unavailable("refused".into());
        let direct = respond(&ProxyError::Upstream(down()));
        let filling = respond(&ProxyError::Emulate(EmulateError::Upstream(down())));
        assert_eq!(direct.status(), filling.status());
        assert_eq!(
            direct.headers()["retry-after"],
            filling.headers()["retry-after"]
        );
    }

    #[test]
    fn gap_filling_refusals_carry_their_status_and_scim_type() {
        let cases = [
            (
                EmulateError::Duplicate { attr: "userName" },
                409,
                Some("uniqueness"),
            ),
            (EmulateError::PreconditionFailed, 412, None),
            (
                EmulateError::TooManyToSort { limit: 10 },
                400,
                Some("tooMany"),
            ),
            (EmulateError::Unreadable("a GET"), 502, None),
            (EmulateError::DuplicateUnknown, 503, None),
        ];
        for (e, status, scim_type) in cases {
            let mapped = map(&ProxyError::Emulate(e));
            assert_eq!(mapped.status.as_u16(), status);
            assert_eq!(mapped.scim_type.map(ScimType::as_str), scim_type);
        }
    }
}
