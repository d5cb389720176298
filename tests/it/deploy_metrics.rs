//! The Grafana dashboard and the Prometheus alert rules of `examples/deploy/` name only
//! metrics the proxy exports: every `scimgate_*` name in their queries is checked against
//! the text of the registry `/metrics` serves. The rules also go through `promtool check rules`
//! where it is installed.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::deploy::{kit, read, tools_required, yaml_docs};

/// The audit log's metrics, exported once the audit writer is built (`src/audit/`); until
/// then the kits may name them ahead of it, and only them.
const AUDIT: [&str; 4] = [
    "scimgate_audit_lines_total",
    "scimgate_audit_pending_lines",
    "scimgate_audit_last_write_timestamp_seconds",
    "scimgate_audit_write_failures_total",
];

/// The sample names a scrape can show, from its `# TYPE` lines: a counter's with `_total`, a
/// histogram's `_bucket`, `_sum` and `_count`.
fn exported(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    names
}

/// The `scimgate_*` names a query uses.
fn named_in(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("scimgate_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Names in `exprs` that `exported` lacks, the audit log's aside while it is not built.
fn unknown(exprs: &[String], exported: &BTreeSet<String>) -> Vec<String> {
    let audit_built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/audit")
        .exists();
    exprs
        .iter()
        .flat_map(|e| named_in(e))
        .filter(|n| !exported.contains(n))
        .filter(|n| audit_built || !AUDIT.contains(&n.as_str()))
        .collect()
}

/// What the proxy exports: its registry (the one `/metrics` encodes) with a sample in every
/// family, since a family nothing was recorded in is not written at all.
fn scrape() -> BTreeSet<String> {
    use scimgate::metrics::{BreakerState, Finished, Live, Metrics};
    let m = Metrics::default();
    let tenant: std::sync::Arc<str> = "a".into();
    let rules = ["p/r".into()];
    let target = scimgate::scim::request::classify("/Users/1").unwrap();
    m.finished(&Finished {
        tenant: Some(&tenant),
        method: &http::Method::DELETE,
        target: Some(&target),
        status: http::StatusCode::NO_CONTENT,
        took: Duration::from_millis(1),
        pack: Some(&tenant),
        rules: &rules,
        filled: Some("patch"),
        deprovisions: true,
    });
    m.refused("auth");
    m.upstream_answered(&tenant, Duration::from_millis(1));
    m.upstream_failed(&tenant, "timeout");
    m.admission.auth_failed(Some(&tenant), "expired");
    m.admission.limited(&tenant, "queue_full");
    m.admission.admitted(&tenant, Duration::ZERO);
    m.work
        .withheld(&tenant, scimgate::policy::Direction::Inbound, 1, 1);
    m.work.emulated_calls(&tenant, "patch", 2);
    m.work.bulk_done(&tenant, [("POST", 201)]);
    let live = Live {
        tenant: &tenant,
        queued: 0,
        breaker: BreakerState::Closed,
    };
    exported(&m.encode_live([live]))
}

/// Every `expr` of the dashboard's panels, rows' nested panels included.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested);
        }
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array();
        let targets = targets.unwrap_or_else(|| panic!("no targets: {}", panel["title"]));
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for t in targets {
            exprs.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    exprs
}

fn alert_rules() -> Vec<Value> {
    let docs = yaml_docs(&read("alerts.yaml"));
    let groups = docs[0]["groups"].as_array().unwrap();
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter().cloned())
        .collect()
}

#[test]
fn a_name_the_proxy_does_not_export_is_caught() {
    let text = "# TYPE scimgate_requests counter\n# TYPE scimgate_request_duration_seconds histogram\n# TYPE scimgate_breaker_state gauge\n";
    let have = exported(text);
    let exprs = [
        "sum(rate(scimgate_requests_total[5m])) / scimgate_breaker_state".to_owned(),
        "histogram_quantile(0.9, rate(scimgate_request_duration_seconds_bucket[5m]))".to_owned(),
        "scimgate_requests_totl + scimgate_breaker_state_total".to_owned(),
    ];
    assert_eq!(
        unknown(&exprs, &have),
        ["scimgate_breaker_state_total", "scimgate_requests_totl"]
    );
}

#[test]
fn the_dashboard_shows_what_operators_watch_with_metrics_the_proxy_exports() {
    let dashboard: Value = serde_json::from_str(&read("grafana-dashboard.json")).unwrap();
    let exprs = dashboard_exprs(&dashboard);
    let missing = unknown(&exprs, &scrape());
    assert!(missing.is_empty(), "not exported: {missing:?}");
    let all = exprs.join("\n");
    for watched in [
        "scimgate_requests_total",
        "scimgate_request_duration_seconds_bucket",
        "scimgate_last_successful_write_timestamp_seconds",
        "scimgate_last_deprovisioning_timestamp_seconds",
        "scimgate_auth_failures_total",
        "scimgate_breaker_state",
        "scimgate_queue_length",
        "scimgate_audit_pending_lines",
    ] {
        assert!(all.contains(watched), "the dashboard lacks {watched}");
    }
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate panel id"
        );
        assert!(panel["gridPos"]["w"].as_u64().unwrap() > 0);
    }
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(variables.iter().any(|v| v["name"] == "tenant"));
}

#[test]
fn the_alert_rules_cover_the_failures_that_matter_with_exported_metrics() {
    let rules = alert_rules();
    let exprs: Vec<String> = rules
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_owned())
        .collect();
    let missing = unknown(&exprs, &scrape());
    assert!(missing.is_empty(), "not exported: {missing:?}");
    for rule in &rules {
        let name = rule["alert"].as_str().expect("an alerting rule");
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        assert!(rule["annotations"]["summary"].is_string(), "{name}");
    }
    let covered = |needle: &str| exprs.iter().any(|e| e.contains(needle));
    for needle in [
        r#"operation="delete",status="5xx""#,
        "scimgate_auth_failures_total",
        r#"scimgate_requests_total{status="5xx"}"#,
        "scimgate_breaker_state",
        "time() - scimgate_last_successful_write_timestamp_seconds",
        "time() - scimgate_audit_last_write_timestamp_seconds",
    ] {
        assert!(covered(needle), "no rule on {needle}");
    }
    promtool_check(&kit("alerts.yaml"));
}

fn promtool_check(rules: &Path) {
    let probe = std::process::Command::new("promtool")
        .arg("--version")
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(!tools_required(), "promtool is not installed");
        eprintln!("promtool not installed: the rules' PromQL is not checked");
        return;
    }
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
