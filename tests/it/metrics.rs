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

/// Reads `/metrics` from the admin listener.
async fn scrape(c: &reqwest::Client, proxy: &Proxy) -> String {
    let resp = c
        .get(format!("http://{}/metrics", proxy.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The value of the one sample `series` (name and labels, as written), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn refusals_breakers_bulks_and_withheld_attributes_are_counted_per_tenant() {
    let (legacy, dead) = (legacy_app("legacy-secret").await, closed_port().await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("legacy.token"), "legacy-secret").unwrap();
    let config = format!(
        "{}[[tenant]]\nid = \"legacy\"\nroute = {{ path_prefix = \"/legacy\" }}\nupstream = {{ url = \"http://{legacy}/scim/v2\", token_file = \"legacy.token\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nattributes = {{ deny = [\"employeeNumber\"] }}\n{}limits = {{ rate_per_s = 0.01, burst = 1, max_wait = \"1s\" }}\n[[tenant]]\nid = \"dead\"\nroute = {{ path_prefix = \"/dead\" }}\nupstream = {{ url = \"http://{dead}\", breaker = {{ failures = 1, cool_down = \"1h\" }} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        hash("tok"),
        tenant("limited", "memory:", "tok"),
        hash("tok"),
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let c = client();
    let get = |path: &str| c.get(proxy.url(path)).bearer_auth("tok").send();

    // The tenant's budget is one call a hundred seconds: the write after the first is refused
    // at once, its wait being longer than max_wait.
    let mut refused = 0;
    for n in 0..3 {
        let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("u{n}")});
        let create = c
            .post(proxy.url("/limited/Users"))
            .bearer_auth("tok")
            .json(&user);
        match create.send().await.unwrap().status().as_u16() {
            201 => {}
            429 => {
                refused += 1;
                break;
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!(refused, 1);
    // A dead app opens its breaker at the first failure; the next request is answered at once.
    assert_eq!(get("/dead/Users/1").await.unwrap().status(), 503);
    assert_eq!(get("/dead/Users/1").await.unwrap().status(), 503);
    // A Bulk the proxy carries out for an app without Bulk; the policy drops employeeNumber
    // from the created user before the app sees it.
    let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
    "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": "bulky",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"}}},
        {"method": "DELETE", "path": "/Users/no-such-user"},
    ]});
    let resp = c
        .post(proxy.url("/legacy/Bulk"))
        .bearer_auth("tok")
        .json(&bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: serde_json::Value = resp.json().await.unwrap();
    let statuses: Vec<&str> = answer["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["201", "404"], "{answer}");
    // The legacy app has no PATCH: the proxy reads the user and writes it back.
    let id = answer["Operations"][0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Bulky"}]});
    let resp = c
        .patch(proxy.url(&format!("/legacy/Users/{id}")))
        .bearer_auth("tok")
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Credentials refused: a wrong token, none at all, and a path no tenant serves.
    let wrong = c.get(proxy.url("/legacy/Users")).bearer_auth("nope");
    assert_eq!(wrong.send().await.unwrap().status(), 401);
    let none = c.get(proxy.url("/legacy/Users"));
    assert_eq!(none.send().await.unwrap().status(), 401);
    assert_eq!(get("/nowhere/Users").await.unwrap().status(), 401);

    let text = scrape(&c, &proxy).await;
    for (series, value) in [
        (
            r#"scimgate_limit_refusals_total{tenant="limited",reason="too_long"}"#,
            1.0,
        ),
        (r#"scimgate_queue_length{tenant="limited"}"#, 0.0),
        (r#"scimgate_breaker_state{tenant="dead"}"#, 1.0),
        (r#"scimgate_breaker_state{tenant="legacy"}"#, 0.0),
        (r#"scimgate_breaker_state{tenant="limited"}"#, 0.0),
        (
            r#"scimgate_upstream_failures_total{tenant="dead",kind="unreachable"}"#,
            1.0,
        ),
        (
            r#"scimgate_bulk_operations_total{tenant="legacy",method="POST",status="2xx"}"#,
            1.0,
        ),
        (
            r#"scimgate_bulk_operations_total{tenant="legacy",method="DELETE",status="4xx"}"#,
            1.0,
        ),
        (
            r#"scimgate_attributes_withheld_total{tenant="legacy",direction="inbound",action="dropped"}"#,
            1.0,
        ),
        (
            r#"scimgate_auth_failures_total{tenant="legacy",kind="wrong_token"}"#,
            1.0,
        ),
        (
            r#"scimgate_auth_failures_total{tenant="legacy",kind="missing"}"#,
            1.0,
        ),
        (
            r#"scimgate_auth_failures_total{tenant="-",kind="unknown_tenant"}"#,
            1.0,
        ),
        (
            r#"scimgate_gaps_filled_total{tenant="legacy",kind="bulk"}"#,
            1.0,
        ),
        (
            r#"scimgate_gaps_filled_total{tenant="legacy",kind="patch"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    // At least the read and the write of the PATCH.
    let patch_calls = r#"scimgate_emulated_upstream_calls_total{tenant="legacy",kind="patch"}"#;
    let calls = sample(&text, patch_calls).unwrap_or_else(|| panic!("{patch_calls} in\n{text}"));
    assert!(calls >= 2.0, "{calls}");
    // Every call of the limited tenant that was admitted waited, or not, on the record.
    let waited = sample(
        &text,
        r#"scimgate_queue_wait_seconds_count{tenant="limited"}"#,
    );
    assert!(waited.is_some_and(|n| n >= 1.0), "{text}");
    assert!(
        !text.contains("bulky") && !text.contains(&id),
        "no user in a label"
    );
}
