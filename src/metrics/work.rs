//! The metrics of what the proxy does to a request beyond passing it on: attributes the
//! policy withheld, the calls gap filling made to the app, and the operations of the Bulks
//! the proxy carried out. Labels are tenant ids and fixed words; attribute names are not
//! labels (see `withheld`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Handles;
use crate::policy::Direction;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Withheld {
    tenant: Arc<str>,
    direction: &'static str,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Calls {
    tenant: Arc<str>,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BulkOp {
    tenant: Arc<str>,
    method: &'static str,
    status: &'static str,
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

#[derive(Debug)]
pub struct Work {
    withheld: Handles<Withheld, Counter>,
    calls: Family<Calls, Counter>,
    bulk: Family<BulkOp, Counter>,
}

impl Work {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let withheld = Family::default();
        registry.register(
            "attributes_withheld",
            "Attributes the attribute policy dropped or redacted, and documents it refused, by tenant, direction and action",
            withheld.clone(),
        );
        let calls = Family::default();
        registry.register(
            "emulated_upstream_calls",
            "Calls to the app the proxy made while filling a gap, by tenant and kind (patch, list, uniqueness, soft_delete, discovery, ...)",
            calls.clone(),
        );
        let bulk = Family::default();
        registry.register(
            "bulk_operations",
            "Operations of the Bulk requests the proxy carried out for an app without Bulk, by tenant, method and status class",
            bulk.clone(),
        );
        Self {
            withheld: Handles::new(withheld),
            calls,
            bulk,
        }
    }

    /// What the policy did to one document. Attributes are counted, not named: a detector
    /// redacts whatever attribute holds a value it recognises, so the names come from the
    /// document rather than the configuration, and the request's log line lists them.
    pub fn withheld(
        &self,
        tenant: &Arc<str>,
        direction: Direction,
        dropped: usize,
        redacted: usize,
    ) {
        for (action, n) in [("dropped", dropped), ("redacted", redacted)] {
            if n > 0 {
                let labels = Withheld {
                    tenant: tenant.clone(),
                    direction: direction_name(direction),
                    action,
                };
                self.withheld.with(&labels, |c| c.inc_by(n as u64));
            }
        }
    }

    /// A document the policy refused whole (a detector with `on_detect = "reject"`, a filter
    /// that tests a withheld attribute).
    pub fn refused(&self, tenant: &Arc<str>, direction: Direction) {
        let labels = Withheld {
            tenant: tenant.clone(),
            direction: direction_name(direction),
            action: "refused",
        };
        self.withheld.with(&labels, |c| c.inc());
    }

    /// `calls` made to the app while filling a gap of `kind`.
    pub fn emulated_calls(&self, tenant: &Arc<str>, kind: &'static str, calls: u32) {
        if calls == 0 {
            return;
        }
        let labels = Calls {
            tenant: tenant.clone(),
            kind,
        };
        self.calls.get_or_create(&labels).inc_by(u64::from(calls));
    }

    /// The operations of one Bulk the proxy carried out, as `(method, status)`: performed or
    /// failed without being performed (an unresolved `bulkId`, past the deadline).
    pub fn bulk_done(&self, tenant: &Arc<str>, ops: impl IntoIterator<Item = (&'static str, u16)>) {
        for (method, status) in ops {
            let labels = BulkOp {
                tenant: tenant.clone(),
                method,
                status: super::class_of(status),
            };
            self.bulk.get_or_create(&labels).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use super::*;

    #[test]
    fn withheld_attributes_emulated_calls_and_bulk_operations_are_counted() {
        let m = Metrics::default();
        let t: Arc<str> = Arc::from("acme");
        m.work.withheld(&t, Direction::Inbound, 2, 0);
        m.work.withheld(&t, Direction::Outbound, 0, 1);
        m.work.refused(&t, Direction::Inbound);
        m.work.emulated_calls(&t, "patch", 2);
        m.work.emulated_calls(&t, "list", 0);
        m.work
            .bulk_done(&t, [("POST", 201), ("POST", 409), ("DELETE", 204)]);
        let text = m.encode();
        for line in [
            r#"scimgate_attributes_withheld_total{tenant="acme",direction="inbound",action="dropped"} 2"#,
            r#"scimgate_attributes_withheld_total{tenant="acme",direction="outbound",action="redacted"} 1"#,
            r#"scimgate_attributes_withheld_total{tenant="acme",direction="inbound",action="refused"} 1"#,
            r#"scimgate_emulated_upstream_calls_total{tenant="acme",kind="patch"} 2"#,
            r#"scimgate_bulk_operations_total{tenant="acme",method="POST",status="2xx"} 1"#,
            r#"scimgate_bulk_operations_total{tenant="acme",method="POST",status="4xx"} 1"#,
            r#"scimgate_bulk_operations_total{tenant="acme",method="DELETE",status="2xx"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert!(!text.contains(r#"kind="list""#), "no calls, no series");
    }
}
