//! `/metrics` on the admin listener: what the requests through the proxy did, in the
//! Prometheus text format, with labels that name tenants and operations, never resources.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn requests_refusals_rules_and_last_sync_are_counted() {
    let config = format!(
        "{}{}idp = \"entra\"\n",
        server(""),
        tenant("acme", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "leaver@example.com", "active": true});
    let created: serde_json::Value = json_of(c.post(proxy.url("/acme/Users")).json(&user)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // Entra's capitalised op fires a rule of its pack; active = false deprovisions.
    let deactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let resp = c
        .patch(proxy.url(&format!("/acme/Users/{id}")))
        .bearer_auth("tok")
        .json(&deactivate)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let refused = c
        .get(proxy.url("/acme/Users"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let resp = c
        .get(format!("http://{}/metrics", proxy.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("openmetrics-text"));
    let text = resp.text().await.unwrap();
    for line in [
        r#"scimgate_requests_total{tenant="acme",operation="create",status="2xx"} 1"#,
        r#"scimgate_requests_total{tenant="acme",operation="patch",status="2xx"} 1"#,
        r#"scimgate_requests_total{tenant="acme",operation="other",status="4xx"} 1"#,
        r#"scimgate_refusals_total{kind="auth"} 1"#,
        r#"scimgate_request_duration_seconds_count{tenant="acme",operation="patch"} 1"#,
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(
        text.contains(r#"scimgate_rules_fired_total{pack="entra",rule="generic/op-lowercase"} 1"#),
        "{text}"
    );
    for gauge in ["last_successful_write", "last_deprovisioning"] {
        let line = text
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "scimgate_{gauge}_timestamp_seconds{{tenant=\"acme\"}}"
                ))
            })
            .unwrap_or_else(|| panic!("{gauge} not in\n{text}"));
        let at: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(at > 1.7e9, "{line}");
    }
    assert!(!text.contains(&id), "no resource id in a label");
    assert!(!text.contains("leaver"), "no user name in a label");
}

#[tokio::test]
async fn calls_to_the_app_are_timed_and_failures_counted_by_kind() {
    let (up, dead) = (echo_upstream().await, closed_port().await);
    let config = format!(
        "{}{}{}",
        server(""),
        tenant("live", &format!("http://{up}"), "tok"),
        tenant("dead", &format!("http://{dead}"), "tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let live = c
        .get(proxy.url("/live/Users/1"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let down = c
        .get(proxy.url("/dead/Users/1"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    let text = c
        .get(format!("http://{}/metrics", proxy.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The GET, and any call the proxy made of its own (its read of the ServiceProviderConfig).
    let timed = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"scimgate_upstream_duration_seconds_count{tenant="live"} "#))
        .unwrap_or_else(|| panic!("no upstream timing in\n{text}"));
    assert!(timed.parse::<u64>().unwrap() >= 1);
    for line in [
        r#"scimgate_upstream_failures_total{tenant="dead",kind="unreachable"} 1"#,
        r#"scimgate_requests_total{tenant="dead",operation="read",status="5xx"} 1"#,
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}
