//! The attribute policy through the running proxy: what an app behind it receives (stage 7)
//! and what the IdP gets back (stage 10), for every body shape, with the RFC 7643 §8.2 full
//! enterprise user as the document.

use serde_json::{json, Value};

use crate::support::*;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// RFC 7643 §8.2, the full enterprise user, without `id` and `meta` (a create).
fn full_user() -> Value {
    json!({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
      "externalId": "701984",
      "userName": "bjensen@example.com",
      "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara", "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"},
      "displayName": "Babs Jensen",
      "nickName": "Babs",
      "profileUrl": "https://login.example.com/bjensen",
      "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}],
      "addresses": [{"streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "USA", "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA", "type": "work", "primary": true}],
      "phoneNumbers": [{"value": "555-555-5555", "type": "work"}, {"value": "555-555-4444", "type": "mobile"}],
      "userType": "Employee",
      "title": "Tour Guide",
      "preferredLanguage": "en-US",
      "locale": "en-US",
      "timezone": "America/Los_Angeles",
      "active": true,
      "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
      ENTERPRISE: {"employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios", "division": "Theme Park", "department": "Tour Operations", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
    })
}

const DENY: &str = "attributes = { deny = [\"employeeNumber\", \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter\", \"addresses.*\"], detect = [\"us_ssn\"], on_detect = \"reject\" }";

fn stored(id: &str) -> String {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": "bjensen@example.com"}).to_string()
}

/// The proxy in front of `app` with one complete-app tenant at `/e`, `extra` in its table.
async fn proxy_with(app: std::net::SocketAddr, extra: &str) -> Proxy {
    Proxy::start(&format!(
        "{}{}",
        server(""),
        complete_app_tenant(app, extra)
    ))
    .await
}

/// The app answers `method path` with `status` and a SCIM JSON `body`.
fn script(method: &'static str, path: &str, status: u16, body: String) -> Script {
    Script {
        method,
        path: path.into(),
        status,
        content_type: "application/scim+json",
        body,
    }
}

async fn app() -> (std::net::SocketAddr, Seen) {
    scripted_upstream(vec![
        script("POST", "/scim/v2/Users", 201, stored("1")),
        script("GET", "/scim/v2/Users/1", 200, stored("1")),
        script("PATCH", "/scim/v2/Users/1", 200, stored("1")),
        script("GET", "/scim/v2/Users", 200, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []}).to_string()),
        script("POST", "/scim/v2/Bulk", 200, json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"], "Operations": []}).to_string()),
    ])
    .await
}

fn last_body(seen: &Seen, method: &str) -> Value {
    serde_json::from_str(&last_raw_body(seen, method)).unwrap()
}

/// The body of the last `method` the app got, as its bytes came.
fn last_raw_body(seen: &Seen, method: &str) -> String {
    let seen = seen.lock().unwrap();
    let (_, _, body) = seen
        .iter()
        .rev()
        .find(|(m, _, _)| m == method)
        .unwrap_or_else(|| panic!("the app got no {method}: {seen:?}"));
    body.clone()
}

#[tokio::test]
async fn denied_attributes_never_reach_the_app_in_any_body_shape() {
    let (app, seen) = app().await;
    let proxy = proxy_with(app, DENY).await;
    let c = client();

    // POST: the full RFC user loses exactly what is denied.
    let resp = c
        .post(proxy.url("/e/Users"))
        .bearer_auth("tok")
        .json(&full_user())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let sent = last_body(&seen, "POST");
    let mut want = full_user();
    want.as_object_mut().unwrap().remove("addresses");
    want[ENTERPRISE]
        .as_object_mut()
        .unwrap()
        .remove("employeeNumber");
    want[ENTERPRISE]
        .as_object_mut()
        .unwrap()
        .remove("costCenter");
    assert_eq!(sent, want);
    let logs = proxy.logs();
    assert!(
        logs.contains("dropped:") && logs.contains("costCenter"),
        "{logs}"
    );
    assert!(
        !logs.contains("4130"),
        "the log names attributes, never values"
    );

    // PATCH: operations on denied attributes go, URN-qualified, filtered or path-less.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter", "value": "9"},
        {"op": "replace", "path": "addresses[type eq \"work\"].locality", "value": "Burbank"},
        {"op": "replace", "path": "title", "value": "Guide"},
        {"op": "replace", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "2", "nickName": "B"}}
    ]});
    let resp = c
        .patch(proxy.url("/e/Users/1"))
        .bearer_auth("tok")
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent = last_body(&seen, "PATCH");
    assert_eq!(
        sent["Operations"],
        json!([{"op": "replace", "path": "title", "value": "Guide"}, {"op": "replace", "value": {"nickName": "B"}}])
    );

    // A PATCH of denied attributes only changes nothing: the app is asked for the resource.
    let patches_before = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, _, _)| m == "PATCH")
        .count();
    let only_denied = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "add", "path": "addresses", "value": [{"type": "home", "locality": "Paris"}]}]});
    let resp = c
        .patch(proxy.url("/e/Users/1"))
        .bearer_auth("tok")
        .json(&only_denied)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "1");
    let patches_after = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, _, _)| m == "PATCH")
        .count();
    assert_eq!(patches_before, patches_after, "no PATCH reached the app");

    // A Bulk the app does itself: each operation's data is filtered.
    let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": full_user()}]});
    let resp = c
        .post(proxy.url("/e/Bulk"))
        .bearer_auth("tok")
        .json(&bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent = last_body(&seen, "POST");
    let data = &sent["Operations"][0]["data"];
    assert!(
        data.get("addresses").is_none() && data[ENTERPRISE].get("costCenter").is_none(),
        "{data}"
    );
    assert_eq!(data["userName"], "bjensen@example.com");
}

#[tokio::test]
async fn filters_and_sorts_that_test_a_denied_attribute_are_refused() {
    let (app, seen) = app().await;
    let proxy = proxy_with(app, DENY).await;
    let c = client();
    let asked = seen.lock().unwrap().len();
    for (key, value) in [
        ("filter", "employeeNumber eq \"701984\""),
        (
            "filter",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter sw \"4\"",
        ),
        ("filter", "addresses[locality eq \"Hollywood\"]"),
        ("sortBy", "employeeNumber"),
    ] {
        let resp = c
            .get(proxy.url("/e/Users"))
            .query(&[(key, value)])
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        let err = scim_error(resp, 400).await;
        assert_eq!(err["scimType"], "invalidFilter", "{key}={value}");
    }
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "employeeNumber pr"});
    let resp = c
        .post(proxy.url("/e/Users/.search"))
        .bearer_auth("tok")
        .json(&search)
        .send()
        .await
        .unwrap();
    scim_error(resp, 400).await;
    assert_eq!(
        seen.lock().unwrap().len(),
        asked,
        "no oracle query reached the app"
    );
    let resp = c
        .get(proxy.url("/e/Users"))
        .query(&[("filter", "userName eq \"a\"")])
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "other filters pass");
}

#[tokio::test]
async fn a_detected_value_is_refused_without_echoing_it() {
    let (app, seen) = app().await;
    let proxy = proxy_with(app, DENY).await;
    let mut user = full_user();
    user["title"] = json!("SSN 078-05-1120");
    let resp = client()
        .post(proxy.url("/e/Users"))
        .bearer_auth("tok")
        .json(&user)
        .send()
        .await
        .unwrap();
    let err = scim_error(resp, 400).await;
    assert_eq!(err["scimType"], "invalidValue");
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.contains("title") && !detail.contains("078"),
        "{detail}"
    );
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the app");
}

#[tokio::test]
async fn what_the_app_answers_is_filtered_on_its_way_to_the_idp() {
    let mut user = full_user();
    user["id"] = json!("7");
    user["phoneNumbers"][1]["value"] = json!("4111 1111 1111 1111");
    let list = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1, "Resources": [user.clone()]});
    let (app, _) = scripted_upstream(vec![
        Script { method: "GET", path: "/scim/v2/Users/7".into(), status: 200, content_type: "application/scim+json", body: user.to_string() },
        Script { method: "GET", path: "/scim/v2/Users".into(), status: 200, content_type: "application/scim+json", body: list.to_string() },
        Script { method: "GET", path: "/scim/v2/Users/10".into(), status: 200, content_type: "application/scim+json",
            body: json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE], "id": "10", "userName": "b", ENTERPRISE: {"costCenter": "4130"}, "Resources": []}).to_string() },
        Script { method: "DELETE", path: "/scim/v2/Users/8".into(), status: 404, content_type: "application/scim+json",
            body: json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "no user with SSN 078-05-1120"}).to_string() },
    ])
    .await;
    let outbound = "attributes = { outbound = { deny = [\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter\"], detect = [\"card\", \"us_ssn\"], on_detect = \"redact\" } }";
    let proxy = proxy_with(app, outbound).await;
    let c = client();
    let one = get_json(&c, proxy.url("/e/Users/7")).await;
    assert!(one[ENTERPRISE].get("costCenter").is_none(), "{one}");
    assert_eq!(
        one[ENTERPRISE]["employeeNumber"], "701984",
        "outbound only denies costCenter"
    );
    assert_eq!(one["phoneNumbers"][1]["value"], "[redacted]");
    let many = get_json(&c, proxy.url("/e/Users")).await;
    let listed = &many["Resources"][0];
    assert!(listed[ENTERPRISE].get("costCenter").is_none());
    assert_eq!(listed["phoneNumbers"][1]["value"], "[redacted]");
    // A resource is walked whole: a member named `Resources` does not make it a list.
    let posing = get_json(&c, proxy.url("/e/Users/10")).await;
    assert!(posing[ENTERPRISE].get("costCenter").is_none(), "{posing}");
    let resp = c
        .delete(proxy.url("/e/Users/8"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    let err = scim_error(resp, 404).await;
    assert!(!err["detail"].as_str().unwrap().contains("078"), "{err}");
}

#[tokio::test]
async fn a_policy_that_denies_what_the_schema_requires_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scimgate.toml");
    let config = format!(
        "{}{}attributes = {{ deny = [\"userName\"], detect = [\"nonesuch\"] }}\n",
        server(""),
        tenant("t", "memory:", "tok")
    );
    std::fs::write(&path, config).unwrap();
    let (code, _, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("userName") && err.contains("nonesuch"),
        "{err}"
    );
}

/// A tenant whose bodies are read anyway (a pack and a policy) parses each body once: bad
/// JSON still gets the same refusal as on a tenant that forwards bodies unread, and never
/// reaches the app. (serde words a few faults differently when it builds the value than when
/// it skips it, "trailing comma" for "key must be a string", and may place a control
/// character one column apart: the words after "not valid JSON:" are serde's.)
#[tokio::test]
async fn bad_json_is_refused_alike_whether_the_tenant_reads_bodies_or_not() {
    let (app, seen) = app().await;
    let reading = complete_app_tenant(app, &format!("idp = \"okta\"\n{DENY}"));
    let plain = tenant("plain", &format!("http://{app}/scim/v2"), "tok");
    let proxy = Proxy::start(&format!("{}{reading}{plain}", server(""))).await;
    let c = client();
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let bodies = [
        r#"{"userName": "#.to_owned(),
        r#"{"userName": "a",}"#.to_owned(),
        "{\"userName\": \"\u{7}\"}".to_owned(),
        deep,
        "12 13".to_owned(),
    ];
    for body in bodies {
        let mut answers = Vec::new();
        for prefix in ["/e", "/plain"] {
            let resp = c
                .post(proxy.url(&format!("{prefix}/Users")))
                .bearer_auth("tok")
                .header("content-type", "application/scim+json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let error = scim_error(resp, 400).await;
            assert_eq!(
                error["scimType"], "invalidSyntax",
                "{prefix} {body:?}: {error}"
            );
            let detail = error["detail"].as_str().unwrap().to_owned();
            answers.push(detail.split(':').next().unwrap().to_owned());
        }
        assert_eq!(answers[0], answers[1], "{body:?}");
    }
    assert!(app_requests(&seen).iter().all(|(m, _, _)| m != "POST"));
}

/// A policy without detectors reads of an answer only the members it names; the rest reach the
/// IdP as the app wrote them. Names the app escapes, and lists, are read whole, and nothing
/// denied gets through either way.
#[tokio::test]
async fn an_answer_loses_what_the_policy_names_and_keeps_the_rest_as_written() {
    let mut user = full_user();
    user["id"] = json!("7");
    let pretty = serde_json::to_string_pretty(&user).unwrap();
    let escaped = pretty.replace("\"employeeNumber\"", "\"employee\\u004eumber\"");
    let top_level = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "9", "userName": "b", "employeeNumber": "1"});
    let list = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 1, "Resources": [user.clone()]});
    let (app, _) = scripted_upstream(vec![
        script("GET", "/scim/v2/Users/7", 200, pretty.clone()),
        script("POST", "/scim/v2/Users", 201, pretty.clone()),
        script("GET", "/scim/v2/Users/8", 200, escaped),
        script(
            "GET",
            "/scim/v2/Users/9",
            200,
            format!("\u{feff}{top_level}"),
        ),
        script("GET", "/scim/v2/Users", 200, list.to_string()),
        script("GET", "/scim/v2/Users/10", 200, json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "10", "userName": "b", "employeeNumber": "1", "Resources": []}).to_string()),
        script("GET", "/scim/v2/Me", 200, pretty.clone()),
    ])
    .await;
    let outbound =
        "attributes = { outbound = { deny = [\"employeeNumber\", \"name.givenName\"] } }";
    let proxy = proxy_with(app, outbound).await;
    let c = client();
    let mut expected = user.clone();
    expected[ENTERPRISE]
        .as_object_mut()
        .unwrap()
        .remove("employeeNumber");
    expected["name"]
        .as_object_mut()
        .unwrap()
        .remove("givenName");

    let resp = c
        .get(proxy.url("/e/Users/7"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        expected,
        "{text}"
    );
    // What the policy does not name is passed on byte for byte, the app's layout and all.
    assert!(
        text.contains("\"userName\": \"bjensen@example.com\",\n"),
        "{text}"
    );

    let resp = c
        .post(proxy.url("/e/Users"))
        .bearer_auth("tok")
        .header("content-type", "application/scim+json")
        .body(full_user().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.json::<Value>().await.unwrap(), expected);

    let escaped = get_json(&c, proxy.url("/e/Users/8")).await;
    assert_eq!(
        escaped, expected,
        "an escaped name is read as serde reads it"
    );
    let top = get_json(&c, proxy.url("/e/Users/9")).await;
    assert!(top.get("employeeNumber").is_none(), "{top}");
    assert_eq!(top["userName"], "b");
    let many = get_json(&c, proxy.url("/e/Users")).await;
    assert_eq!(many["Resources"][0], expected);
    // A resource is walked whole: a member named `Resources` does not make it a list.
    let posing = get_json(&c, proxy.url("/e/Users/10")).await;
    assert!(posing.get("employeeNumber").is_none(), "{posing}");
    // `/Me` answers a User (RFC 7644 §3.11), filtered as any other.
    assert_eq!(get_json(&c, proxy.url("/e/Me")).await, expected);
}

/// A body no rule pack reads is read by the policy only where its lists name it; the app gets
/// the rest as the IdP wrote it.
#[tokio::test]
async fn a_body_loses_what_the_policy_names_and_keeps_the_rest_as_written() {
    let (app, seen) = app().await;
    let policy = "attributes = { deny = [\"employeeNumber\", \"name.givenName\"] }";
    let proxy = proxy_with(app, policy).await;
    let c = client();
    let pretty = serde_json::to_string_pretty(&full_user()).unwrap();
    let resp = c
        .post(proxy.url("/e/Users"))
        .bearer_auth("tok")
        .header("content-type", "application/scim+json")
        .body(pretty)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let raw = last_raw_body(&seen, "POST");
    let mut want = full_user();
    want["name"].as_object_mut().unwrap().remove("givenName");
    want[ENTERPRISE]
        .as_object_mut()
        .unwrap()
        .remove("employeeNumber");
    assert_eq!(serde_json::from_str::<Value>(&raw).unwrap(), want, "{raw}");
    assert!(
        raw.contains("\"userName\": \"bjensen@example.com\",\n"),
        "{raw}"
    );
    let logs = proxy.logs();
    assert!(logs.contains("dropped:name.givenName"), "{logs}");

    // Nothing named, nothing rewritten: the app gets the IdP's bytes.
    let plain = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x"});
    let text = format!("{}\n", serde_json::to_string_pretty(&plain).unwrap());
    let resp = c
        .post(proxy.url("/e/Users"))
        .bearer_auth("tok")
        .header("content-type", "application/scim+json")
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(last_raw_body(&seen, "POST"), text);
}
