//! Stage 11, record, its metrics half: counters and latency histograms of every request and
//! Bulk operation, in the Prometheus text format at the admin listener's `/metrics`. The
//! registry lives in the runtime, so a reload keeps the counts. Labels are bounded: configured
//! tenant ids (`-` for none), a fixed set of operations and status classes, rule ids of the
//! loaded packs, and fixed refusal kinds; never a resource id or a user name.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::scim::request::{Endpoint, Target};

mod admission;
mod handles;
mod work;

use handles::Handles;

pub use admission::{Admission, BreakerState, Live};
pub use work::Work;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    tenant: Arc<str>,
    operation: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    tenant: Arc<str>,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Rule {
    pack: Arc<str>,
    rule: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Filled {
    tenant: Arc<str>,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Refusal {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Tenant {
    tenant: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamFailure {
    tenant: Arc<str>,
    kind: &'static str,
}

type Timestamp = Gauge<f64, AtomicU64>;

/// What one finished request tells the metrics.
pub struct Finished<'a> {
    pub tenant: Option<&'a Arc<str>>,
    pub method: &'a Method,
    pub target: Option<&'a Target<'static>>,
    pub status: StatusCode,
    pub took: Duration,
    pub pack: Option<&'a Arc<str>>,
    pub rules: &'a [Arc<str>],
    pub filled: Option<&'static str>,
    /// A write that took a user away: DELETE of a User, or `active` set to false.
    pub deprovisions: bool,
}

pub struct Metrics {
    registry: Registry,
    requests: Handles<Request, Counter>,
    latency: Handles<Operation, Histogram>,
    rules: Handles<Rule, Counter>,
    filled: Family<Filled, Counter>,
    refused: Family<Refusal, Counter>,
    last_write: Family<Tenant, Timestamp>,
    last_deprovision: Family<Tenant, Timestamp>,
    upstream_latency: Handles<Tenant, Histogram>,
    upstream_failures: Family<UpstreamFailure, Counter>,
    /// Authentication failures, the limiter's refusals and waits, queues and breakers.
    pub admission: Admission,
    /// Withheld attributes, gap filling's calls, Bulk operations.
    pub work: Work,
    audit: AuditMetrics,
}

/// The audit writer's own counts: lines written, lines waiting for it, when it last wrote,
/// and writes that failed. Cloned into the writer, which updates them.
#[derive(Clone, Debug, Default)]
pub struct AuditMetrics {
    pub lines: Counter,
    pub pending: Gauge,
    pub last_write: Timestamp,
    pub failures: Counter,
}

impl AuditMetrics {
    /// Lines just written, `queued` of them from requests (the rest are checkpoints): counted,
    /// no longer waiting, and the time noted.
    pub fn written(&self, lines: u64, queued: u64) {
        self.lines.inc_by(lines);
        self.pending
            .dec_by(i64::try_from(queued).unwrap_or(i64::MAX));
        self.last_write.set(unix_now());
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("scimgate");
        let requests = Family::default();
        registry.register(
            "requests",
            "Requests and Bulk operations answered, by tenant, operation and status class",
            requests.clone(),
        );
        let latency = Family::<Operation, Histogram>::new_with_constructor(|| {
            // 0.5 ms to about 16 s.
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer's head, by tenant and operation",
            latency.clone(),
        );
        let rules = Family::default();
        registry.register(
            "rules_fired",
            "Requests a normalization rule changed, by pack and rule id",
            rules.clone(),
        );
        let filled = Family::default();
        registry.register(
            "gaps_filled",
            "Requests the proxy carried out for an app that cannot, by tenant and kind",
            filled.clone(),
        );
        let refused = Family::default();
        registry.register(
            "refusals",
            "Requests refused before reaching an app, by kind",
            refused.clone(),
        );
        let last_write = Family::default();
        registry.register(
            "last_successful_write_timestamp_seconds",
            "When a tenant's last create, replace, patch or delete succeeded (its last sync)",
            last_write.clone(),
        );
        let last_deprovision = Family::default();
        registry.register(
            "last_deprovisioning_timestamp_seconds",
            "When a tenant last deleted or deactivated a user",
            last_deprovision.clone(),
        );
        let upstream_latency = Family::<Tenant, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "upstream_duration_seconds",
            "Time from sending a call to the app to its answer's head, by tenant (forwarded requests and the proxy's own calls)",
            upstream_latency.clone(),
        );
        let upstream_failures = Family::default();
        registry.register(
            "upstream_failures",
            "Calls to the app that got no answer, by tenant and kind (unreachable, timeout, broken, circuit_open, ...)",
            upstream_failures.clone(),
        );
        let admission = Admission::register(&mut registry);
        let work = Work::register(&mut registry);
        let audit = AuditMetrics::default();
        registry.register(
            "audit_lines",
            "Audit lines written to the audit file (changes, refusals and checkpoints)",
            audit.lines.clone(),
        );
        registry.register(
            "audit_pending_lines",
            "Audit lines waiting for the writer; their requests wait with them",
            audit.pending.clone(),
        );
        registry.register(
            "audit_last_write_timestamp_seconds",
            "When the audit writer last wrote lines to the file",
            audit.last_write.clone(),
        );
        registry.register(
            "audit_write_failures",
            "Writes to the audit file that failed; changes are refused while it cannot be written",
            audit.failures.clone(),
        );
        Self {
            registry,
            audit,
            admission,
            work,
            upstream_latency: Handles::new(upstream_latency),
            upstream_failures,
            requests: Handles::new(requests),
            latency: Handles::new(latency),
            rules: Handles::new(rules),
            filled,
            refused,
            last_write,
            last_deprovision,
        }
    }
}

impl Metrics {
    pub fn finished(&self, done: &Finished<'_>) {
        let tenant = done.tenant.cloned().unwrap_or_else(|| Arc::from("-"));
        let operation = operation(done.method, done.target);
        let request = Request {
            tenant: tenant.clone(),
            operation,
            status: class_of(done.status.as_u16()),
        };
        self.requests.with(&request, |c| c.inc());
        let labels = Operation {
            tenant: tenant.clone(),
            operation,
        };
        self.latency
            .with(&labels, |h| h.observe(done.took.as_secs_f64()));
        if let Some(pack) = done.pack {
            for rule in done.rules {
                let labels = Rule {
                    pack: pack.clone(),
                    rule: rule.clone(),
                };
                self.rules.with(&labels, |c| c.inc());
            }
        }
        if let Some(kind) = done.filled {
            let labels = Filled {
                tenant: tenant.clone(),
                kind,
            };
            self.filled.get_or_create(&labels).inc();
        }
        let write = matches!(
            operation,
            "create" | "replace" | "patch" | "delete" | "bulk"
        );
        if write && done.status.is_success() {
            let now = unix_now();
            let labels = Tenant { tenant };
            self.last_write.get_or_create(&labels).set(now);
            if done.deprovisions {
                self.last_deprovision.get_or_create(&labels).set(now);
            }
        }
    }

    /// A call to the app answered (its head arrived) after `took`.
    pub fn upstream_answered(&self, tenant: &Arc<str>, took: Duration) {
        let labels = Tenant {
            tenant: tenant.clone(),
        };
        self.upstream_latency
            .with(&labels, |h| h.observe(took.as_secs_f64()));
    }

    /// A call to the app that got no answer.
    pub fn upstream_failed(&self, tenant: &Arc<str>, kind: &'static str) {
        let labels = UpstreamFailure {
            tenant: tenant.clone(),
            kind,
        };
        self.upstream_failures.get_or_create(&labels).inc();
    }

    /// A request refused before it reached an app: `auth`, `throttled`, `limits`, `schema`,
    /// `policy`, `overloaded`, `paused` (a write to a tenant its operator paused), `audit` (the
    /// audit log cannot be written).
    pub fn refused(&self, kind: &'static str) {
        self.refused.get_or_create(&Refusal { kind }).inc();
    }

    /// The audit writer's counts, for the writer to update.
    pub fn audit(&self) -> AuditMetrics {
        self.audit.clone()
    }

    /// The text a Prometheus scrape reads, with the gauges of what `tenants` (those configured
    /// now) hold at this moment: queue lengths and breaker states.
    pub fn encode_live<'a>(&self, tenants: impl IntoIterator<Item = Live<'a>>) -> String {
        let _one_scrape = self.admission.set_live(tenants);
        self.encode()
    }

    /// The text a Prometheus scrape reads, the gauges read at scrape time as last set.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn class_of(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// What a request does, from its method and what its path names.
fn operation(method: &Method, target: Option<&Target<'static>>) -> &'static str {
    let Some(t) = target else { return "other" };
    let resource = matches!(t.endpoint, Endpoint::Users | Endpoint::Groups);
    match (method, t.endpoint) {
        (_, Endpoint::Bulk) => "bulk",
        (&Method::POST, _) if t.search => "search",
        (_, Endpoint::ServiceProviderConfig | Endpoint::Schemas | Endpoint::ResourceTypes) => {
            "discovery"
        }
        (&Method::GET | &Method::HEAD, _) if t.id.is_some() => "read",
        (&Method::GET | &Method::HEAD, _) => "list",
        (&Method::POST, _) if resource => "create",
        (&Method::PUT, _) => "replace",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_timed_and_named_by_bounded_labels() {
        let m = Metrics::default();
        let tenant: Arc<str> = Arc::from("acme");
        let pack: Arc<str> = Arc::from("entra");
        let rules = [Arc::from("entra/op-case")];
        let target = crate::scim::request::classify("/Users/2819c223").unwrap();
        m.finished(&Finished {
            tenant: Some(&tenant),
            method: &Method::DELETE,
            target: Some(&target),
            status: StatusCode::NO_CONTENT,
            took: Duration::from_millis(3),
            pack: Some(&pack),
            rules: &rules,
            filled: Some("soft_delete"),
            deprovisions: true,
        });
        m.refused("auth");
        let text = m.encode();
        for line in [
            r#"scimgate_requests_total{tenant="acme",operation="delete",status="2xx"} 1"#,
            r#"scimgate_request_duration_seconds_count{tenant="acme",operation="delete"} 1"#,
            r#"scimgate_rules_fired_total{pack="entra",rule="entra/op-case"} 1"#,
            r#"scimgate_gaps_filled_total{tenant="acme",kind="soft_delete"} 1"#,
            r#"scimgate_refusals_total{kind="auth"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert!(text.contains("scimgate_last_deprovisioning_timestamp_seconds{tenant=\"acme\"}"));
        assert!(!text.contains("2819c223"), "no resource id in a label");
    }
}
