//! Why an upstream call was not admitted, with when to try again. A tenant over its own
//! limits fits 429 Too Many Requests; a shared cap that stayed full (the app's or the proxy's)
//! fits 503 Service Unavailable; both carry Retry-After (RFC 9110 §10.2.3, RFC 6585 §4).

use std::time::Duration;

/// Which shared cap a [`Gate`](super::Gate) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateScope {
    /// The calls all tenants fronting one app may have at it at once.
    Upstream,
    /// The calls the whole process may have at its upstreams at once.
    Global,
}

impl std::fmt::Display for GateScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GateScope::Upstream => "application",
            GateScope::Global => "proxy",
        })
    }
}

/// A refusal. Messages are safe to show the identity provider.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The tenant's queue was full and held nothing less urgent to make room.
    #[error("too many requests: {queue} calls are already waiting for this tenant")]
    QueueFull { queue: usize, retry_after: Duration },
    /// The call would have waited (or did wait) longer than the tenant's `max_wait`.
    #[error("too many requests: the wait for this tenant would exceed {}", humantime::format_duration(*max_wait))]
    TooLong {
        max_wait: Duration,
        retry_after: Duration,
    },
    /// A more urgent call took this one's place in a full queue.
    #[error("too many requests: more urgent calls for this tenant took this one's place")]
    Displaced { retry_after: Duration },
    /// A shared cap stayed full for the whole wait.
    #[error("the {scope} is at its limit of {cap} calls at once")]
    Busy {
        scope: GateScope,
        cap: usize,
        retry_after: Duration,
    },
}

impl LimitError {
    /// When the caller should try again: whole seconds, at least one.
    pub fn retry_after(&self) -> Duration {
        match self {
            LimitError::QueueFull { retry_after, .. }
            | LimitError::TooLong { retry_after, .. }
            | LimitError::Displaced { retry_after }
            | LimitError::Busy { retry_after, .. } => *retry_after,
        }
    }

    /// A fixed name per reason, for the metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LimitError::QueueFull { .. } => "queue_full",
            LimitError::TooLong { .. } => "too_long",
            LimitError::Displaced { .. } => "displaced",
            LimitError::Busy {
                scope: GateScope::Upstream,
                ..
            } => "app_busy",
            LimitError::Busy {
                scope: GateScope::Global,
                ..
            } => "proxy_busy",
        }
    }

    /// The tenant's own limits refused it (429), rather than a cap it shares (503).
    pub fn is_tenant_limit(&self) -> bool {
        !matches!(self, LimitError::Busy { .. })
    }
}

/// A wait as a Retry-After: rounded up to whole seconds, at least one (RFC 9110 §10.2.3
/// counts in seconds, and zero would invite an immediate retry).
pub fn retry_after(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_of_at_least_one() {
        assert_eq!(retry_after(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(
            retry_after(Duration::from_millis(10)),
            Duration::from_secs(1)
        );
        assert_eq!(retry_after(Duration::from_secs(2)), Duration::from_secs(2));
        assert_eq!(
            retry_after(Duration::from_millis(2001)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn messages_name_the_numbers_an_operator_needs() {
        let long = LimitError::TooLong {
            max_wait: Duration::from_secs(5),
            retry_after: Duration::from_secs(7),
        };
        assert_eq!(
            long.to_string(),
            "too many requests: the wait for this tenant would exceed 5s"
        );
        let busy = LimitError::Busy {
            scope: GateScope::Upstream,
            cap: 8,
            retry_after: Duration::from_secs(1),
        };
        assert_eq!(
            busy.to_string(),
            "the application is at its limit of 8 calls at once"
        );
        assert!(long.is_tenant_limit() && !busy.is_tenant_limit());
        assert_eq!((long.reason(), busy.reason()), ("too_long", "app_busy"));
    }
}
