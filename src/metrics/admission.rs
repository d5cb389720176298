//! The metrics of what holds a request back before the app sees it: failed authentications
//! by kind, the tenant limiter's refusals and waits, and, read at scrape time, each tenant's
//! waiting line and circuit breaker. Every label is a configured tenant id (`-` before
//! routing) or a fixed kind.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    tenant: Arc<str>,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    tenant: Arc<str>,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Tenant {
    tenant: Arc<str>,
}

/// A circuit breaker's state as the gauge shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed = 0,
    /// Calls are answered 503 at once until the cool-down ends.
    Open = 1,
    /// The cool-down is over: the next call (or the one out now) decides.
    HalfOpen = 2,
}

/// What one tenant's lasting state shows at a scrape.
#[derive(Clone, Copy, Debug)]
pub struct Live<'a> {
    pub tenant: &'a Arc<str>,
    /// Calls waiting in the tenant's line, all classes; 0 without limits.
    pub queued: usize,
    pub breaker: BreakerState,
}

#[derive(Debug)]
pub struct Admission {
    auth_failures: Family<Kind, Counter>,
    limited: Family<Reason, Counter>,
    queue_wait: Family<Tenant, Histogram>,
    queue_length: Family<Tenant, Gauge>,
    breaker: Family<Tenant, Gauge>,
    /// One scrape at a time rewrites the live gauges, so none reads them half-written.
    scrape: Mutex<()>,
}

impl Admission {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let auth_failures = Family::default();
        registry.register(
            "auth_failures",
            "Requests whose credentials were refused or could not be checked, by tenant and kind (missing, malformed, wrong_token, expired, certificate, basic, jwt, oauth_client, unknown_tenant, throttled, busy, keys_unavailable)",
            auth_failures.clone(),
        );
        let limited = Family::default();
        registry.register(
            "limit_refusals",
            "Calls to an app the limits refused, by tenant and reason: queue_full, too_long and displaced are the tenant's own (429), app_busy and proxy_busy a shared cap (503)",
            limited.clone(),
        );
        let queue_wait = Family::<Tenant, Histogram>::new_with_constructor(|| {
            // 1 ms to about 33 s; a call admitted at once is observed as 0.
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "queue_wait_seconds",
            "How long calls of a tenant with limits waited for their turn, by tenant",
            queue_wait.clone(),
        );
        let queue_length = Family::default();
        registry.register(
            "queue_length",
            "Calls waiting in a tenant's line now, by tenant (tenants with limits)",
            queue_length.clone(),
        );
        let breaker = Family::default();
        registry.register(
            "breaker_state",
            "The circuit breaker of a tenant's app: 0 closed, 1 open, 2 half-open",
            breaker.clone(),
        );
        Self {
            auth_failures,
            limited,
            queue_wait,
            queue_length,
            breaker,
            scrape: Mutex::new(()),
        }
    }

    /// A credential refused or not checked; `tenant` is `None` before routing.
    pub fn auth_failed(&self, tenant: Option<&Arc<str>>, kind: &'static str) {
        let tenant = tenant.cloned().unwrap_or_else(|| Arc::from("-"));
        self.auth_failures
            .get_or_create(&Kind { tenant, kind })
            .inc();
    }

    /// A call the limits refused, for `reason` (see the help text).
    pub fn limited(&self, tenant: &Arc<str>, reason: &'static str) {
        let labels = Reason {
            tenant: tenant.clone(),
            reason,
        };
        self.limited.get_or_create(&labels).inc();
    }

    /// A call of a tenant with limits was admitted after `waited`.
    pub fn admitted(&self, tenant: &Arc<str>, waited: Duration) {
        let labels = Tenant {
            tenant: tenant.clone(),
        };
        self.queue_wait
            .get_or_create(&labels)
            .observe(waited.as_secs_f64());
    }

    /// Rewrites the gauges read at scrape time from the tenants configured now: a tenant a
    /// reload removed disappears from them. The guard keeps other scrapes out until the text
    /// is written.
    pub(super) fn set_live<'a>(
        &self,
        tenants: impl IntoIterator<Item = Live<'a>>,
    ) -> std::sync::MutexGuard<'_, ()> {
        let guard = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.queue_length.clear();
        self.breaker.clear();
        for live in tenants {
            let labels = Tenant {
                tenant: live.tenant.clone(),
            };
            let queued = i64::try_from(live.queued).unwrap_or(i64::MAX);
            self.queue_length.get_or_create(&labels).set(queued);
            self.breaker.get_or_create(&labels).set(live.breaker as i64);
        }
        guard
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use super::*;

    #[test]
    fn live_gauges_follow_the_tenants_configured_at_each_scrape() {
        let m = Metrics::default();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let text = m.encode_live([
            Live {
                tenant: &a,
                queued: 3,
                breaker: BreakerState::Open,
            },
            Live {
                tenant: &b,
                queued: 0,
                breaker: BreakerState::HalfOpen,
            },
        ]);
        for line in [
            r#"scimgate_queue_length{tenant="a"} 3"#,
            r#"scimgate_breaker_state{tenant="a"} 1"#,
            r#"scimgate_breaker_state{tenant="b"} 2"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        let text = m.encode_live([Live {
            tenant: &b,
            queued: 1,
            breaker: BreakerState::Closed,
        }]);
        assert!(text.contains(r#"scimgate_breaker_state{tenant="b"} 0"#));
        assert!(text.contains(r#"scimgate_queue_length{tenant="b"} 1"#));
        assert!(
            !text.contains(r#"tenant="a""#),
            "a removed tenant is gone:\n{text}"
        );
    }

    #[test]
    fn refusals_waits_and_auth_failures_are_counted_by_tenant_and_kind() {
        let m = Metrics::default();
        let t: Arc<str> = Arc::from("acme");
        m.admission.auth_failed(None, "unknown_tenant");
        m.admission.auth_failed(Some(&t), "expired");
        m.admission.auth_failed(Some(&t), "expired");
        m.admission.limited(&t, "queue_full");
        m.admission.admitted(&t, Duration::ZERO);
        m.admission.admitted(&t, Duration::from_millis(40));
        let text = m.encode();
        for line in [
            r#"scimgate_auth_failures_total{tenant="-",kind="unknown_tenant"} 1"#,
            r#"scimgate_auth_failures_total{tenant="acme",kind="expired"} 2"#,
            r#"scimgate_limit_refusals_total{tenant="acme",reason="queue_full"} 1"#,
            r#"scimgate_queue_wait_seconds_count{tenant="acme"} 2"#,
            r#"scimgate_queue_wait_seconds_bucket{le="0.001",tenant="acme"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
