//! Filling the legacy app's gaps through the proxy, checked against the memory upstream: the
//! same operations must leave both in the same state.

use serde_json::{json, Value};

use crate::support::*;

/// One proxy with two tenants: "legacy" (the partial app) and "memory" (the reference).
async fn both(extra: &str) -> Proxy {
    let legacy = legacy_app("legacy-secret").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("legacy.token"), "legacy-secret").unwrap();
    let config = format!(
        "{}[[tenant]]\nid = \"legacy\"\nroute = {{ path_prefix = \"/legacy\" }}\nupstream = {{ url = \"http://{legacy}/scim/v2\", token_file = \"legacy.token\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n{extra}\n{}",
        server(""),
        hash("tok"),
        tenant("memory", "memory:", "tok"),
    );
    Proxy::start_in(dir, &config).await
}

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "externalId": format!("ext-{name}"),
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
        "active": true,
    })
}

async fn create(c: &reqwest::Client, proxy: &Proxy, t: &str, path: &str, doc: &Value) -> String {
    let resp = c
        .post(proxy.url(&format!("/{t}{path}")))
        .bearer_auth("tok")
        .json(doc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{t}");
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The parts of a resource both servers must agree on: no ids, no meta, members by display.
fn comparable(mut doc: Value) -> Value {
    let map = doc.as_object_mut().unwrap();
    for k in ["id", "meta", "groups", "schemas"] {
        map.remove(k);
    }
    doc
}

#[tokio::test]
async fn patch_is_emulated_with_the_same_result_as_a_native_patch() {
    let proxy = both("").await;
    let c = client();
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "name.givenName", "value": "Babs"},
            {"op": "add", "path": "emails", "value": [{"value": "babs@home.example", "type": "home"}]},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b.jensen@example.com"},
            {"op": "add", "value": {"nickName": "Babs", "title": "Tour Guide"}},
            {"op": "remove", "path": "externalId"},
            {"op": "replace", "path": "active", "value": false},
        ]
    });
    let mut results = Vec::new();
    for t in ["legacy", "memory"] {
        let id = create(&c, &proxy, t, "/Users", &user("bjensen")).await;
        let url = proxy.url(&format!("/{t}/Users/{id}"));
        let resp = c
            .patch(&url)
            .bearer_auth("tok")
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{t}");
        let patched: Value = resp.json().await.unwrap();
        let read: Value = get_json(&c, &url).await;
        assert_eq!(
            comparable(patched),
            comparable(read.clone()),
            "{t}: PATCH answer and later GET differ"
        );
        results.push(comparable(read));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0]["name"]["givenName"], "Babs");
    assert!(results[0].get("externalId").is_none());
}

#[tokio::test]
async fn concurrent_emulated_patches_lose_no_member() {
    let proxy = both("").await;
    let c = client();
    let group = create(&c, &proxy, "legacy", "/Groups", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Tour Guides"})).await;
    let mut members = Vec::new();
    for i in 0..12 {
        members.push(create(&c, &proxy, "legacy", "/Users", &user(&format!("guide{i}"))).await);
    }
    let url = proxy.url(&format!("/legacy/Groups/{group}"));
    let tasks: Vec<_> = members
        .iter()
        .map(|m| {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": m}]}]});
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { c.patch(&url).bearer_auth("tok").json(&body).send().await.unwrap().status() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let read: Value = get_json(&c, &url).await;
    assert_eq!(
        read["members"].as_array().unwrap().len(),
        members.len(),
        "{read}"
    );
}

#[tokio::test]
async fn bad_patches_are_refused_and_change_nothing() {
    let proxy = both("").await;
    let c = client();
    let id = create(&c, &proxy, "legacy", "/Users", &user("kept")).await;
    let url = proxy.url(&format!("/legacy/Users/{id}"));
    let before: Value = get_json(&c, &url).await;
    let bad_path = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "displayName", "value": "Changed"},
        {"op": "replace", "path": "emails[type eq", "value": "x"}]});
    let resp = c
        .patch(&url)
        .bearer_auth("tok")
        .json(&bad_path)
        .send()
        .await
        .unwrap();
    let e = scim_error(resp, 400).await;
    assert_eq!(e["scimType"], "invalidPath", "{e}");
    let no_schema = json!({"Operations": [{"op": "replace", "path": "displayName", "value": "x"}]});
    let resp = c
        .patch(&url)
        .bearer_auth("tok")
        .json(&no_schema)
        .send()
        .await
        .unwrap();
    assert_eq!(scim_error(resp, 400).await["scimType"], "invalidSyntax");
    let after: Value = get_json(&c, &url).await;
    assert_eq!(before, after);
    let missing = proxy.url("/legacy/Users/no-such-id");
    let ok = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": "x"}]});
    scim_error(
        c.patch(&missing)
            .bearer_auth("tok")
            .json(&ok)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn filters_are_evaluated_by_the_proxy_for_an_app_that_ignores_them() {
    let proxy = both("").await;
    let c = client();
    for t in ["legacy", "memory"] {
        for name in ["alice", "bob", "carol", "Dave", "erin"] {
            create(&c, &proxy, t, "/Users", &user(name)).await;
        }
    }
    let cases = [
        ("userName eq \"dave\"", 1),
        ("userName sw \"a\" or userName ew \"n\"", 2),
        ("emails[type eq \"work\" and value co \"@example.com\"]", 5),
        ("not (userName eq \"bob\")", 4),
        ("userName eq \"nobody\"", 0),
    ];
    for (filter, expected) in cases {
        let mut totals = Vec::new();
        for t in ["legacy", "memory"] {
            let resp = c
                .get(proxy.url(&format!("/{t}/Users")))
                .query(&[("filter", filter)])
                .bearer_auth("tok")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{t} {filter}");
            let list: Value = resp.json().await.unwrap();
            assert_eq!(
                list["schemas"][0],
                "urn:ietf:params:scim:api:messages:2.0:ListResponse"
            );
            totals.push(list["totalResults"].as_u64().unwrap());
            assert_eq!(
                list["Resources"].as_array().unwrap().len() as u64,
                list["totalResults"].as_u64().unwrap()
            );
        }
        assert_eq!(totals, [expected, expected], "{filter}");
    }
    // A window into the filtered results, and the same through POST /.search.
    let page: Value = json_of(c.get(proxy.url("/legacy/Users")).query(&[
        ("filter", "userName pr"),
        ("startIndex", "2"),
        ("count", "2"),
        ("attributes", "userName"),
    ]))
    .await;
    assert_eq!(
        (
            page["totalResults"].as_u64(),
            page["startIndex"].as_u64(),
            page["itemsPerPage"].as_u64()
        ),
        (Some(5), Some(2), Some(2))
    );
    assert_eq!(page["Resources"][0]["userName"], "bob");
    assert!(page["Resources"][0].get("emails").is_none());
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"carol\""});
    for t in ["legacy", "memory"] {
        let found: Value = c
            .post(proxy.url(&format!("/{t}/Users/.search")))
            .bearer_auth("tok")
            .json(&search)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(found["totalResults"], 1, "{t}: {found}");
        assert_eq!(found["Resources"][0]["userName"], "carol");
    }
    let resp = c
        .get(proxy.url("/legacy/Users"))
        .query(&[("filter", "userName eq")])
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(scim_error(resp, 400).await["scimType"], "invalidFilter");
}

#[tokio::test]
async fn discovery_is_served_for_an_app_without_it() {
    let proxy = both("").await;
    let c = client();
    let spc: Value = get_json(&c, proxy.url("/legacy/ServiceProviderConfig")).await;
    assert_eq!(
        (
            spc["patch"]["supported"].as_bool(),
            spc["filter"]["supported"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(
        spc["meta"]["location"],
        proxy.url("/legacy/ServiceProviderConfig")
    );
    let schemas: Value = get_json(&c, proxy.url("/legacy/Schemas")).await;
    assert!(schemas["totalResults"].as_u64().unwrap() >= 3);
    let user_type: Value = get_json(&c, proxy.url("/legacy/ResourceTypes/User")).await;
    assert_eq!(user_type["endpoint"], "/Users");
    scim_error(
        c.get(proxy.url("/legacy/ResourceTypes/Printer"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn duplicate_deliveries_of_one_create_make_one_resource() {
    // The legacy app refuses a second userName itself but not a second externalId.
    let proxy = both("").await;
    let dedup = format!(
        "{}[[tenant]]\nid = \"dedup\"\nroute = {{ path_prefix = \"/dedup\" }}\nupstream = {{ url = \"{}\", token_file = \"legacy.token\", supports = {{ uniqueness = false }} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        legacy_url(&proxy).await,
        hash("tok"),
    );
    std::fs::write(proxy.dir.path().join("legacy.token"), "legacy-secret").unwrap();
    let dedup = Proxy::start_in(tempdir_with_token(), &dedup).await;
    let c = client();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let mut doc = user(&format!("twin{i}"));
            doc["externalId"] = json!("same-external-id");
            let (c, url) = (c.clone(), dedup.url("/dedup/Users"));
            tokio::spawn(async move {
                c.post(url)
                    .bearer_auth("tok")
                    .json(&doc)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409]);
}

/// The legacy app behind `proxy`'s "legacy" tenant, read back from its configuration.
async fn legacy_url(proxy: &Proxy) -> String {
    let text = std::fs::read_to_string(proxy.dir.path().join("scimgate.toml")).unwrap();
    let start = text.find("url = \"http://").unwrap() + 7;
    text[start..start + text[start..].find('"').unwrap()].to_owned()
}

fn tempdir_with_token() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("legacy.token"), "legacy-secret").unwrap();
    dir
}

#[tokio::test]
async fn soft_delete_deactivates_instead() {
    let proxy = both("soft_delete = true").await;
    let c = client();
    let id = create(&c, &proxy, "legacy", "/Users", &user("leaver")).await;
    let url = proxy.url(&format!("/legacy/Users/{id}"));
    assert_eq!(
        c.delete(&url)
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let kept: Value = get_json(&c, &url).await;
    assert_eq!(kept["active"], false);
    assert_eq!(kept["userName"], "leaver");
}

#[tokio::test]
async fn native_patch_answered_204_is_read_back_when_attributes_are_asked() {
    let echo = echo_upstream().await;
    let config = format!(
        "{}[[tenant]]\nid = \"e\"\nroute = {{ path_prefix = \"/e\" }}\nupstream = {{ url = \"http://{echo}/scim/v2\", supports = {{ patch = true, filter = true, discovery = true }} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        hash("tok"),
    );
    let proxy = Proxy::start(&config).await;
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let c = client();
    // Without attributes the 204 passes through as the RFC allows.
    let resp = c
        .patch(proxy.url("/e/Users/1?echo_status=204"))
        .bearer_auth("tok")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = c
        .patch(proxy.url("/e/Users/1?excludedAttributes=emails&echo_status=204"))
        .bearer_auth("tok")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let read: Value = resp.json().await.unwrap();
    assert_eq!(
        (read["method"].as_str(), read["path"].as_str()),
        (Some("GET"), Some("/scim/v2/Users/1"))
    );
}

#[tokio::test]
async fn bulk_runs_in_order_and_resolves_bulk_ids_on_an_app_without_bulk() {
    let proxy = both("").await;
    let c = client();
    // RFC 7644 §3.7.2: a group whose member is a user created in the same request.
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "failOnErrors": 2,
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": user("alice")},
            {"method": "POST", "path": "/Groups", "bulkId": "ytrewq", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Tour Guides",
                "members": [{"type": "User", "value": "bulkId:qwerty"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:qwerty", "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Alice"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": user("alice")},
            {"method": "DELETE", "path": "/Users/no-such-user"},
            {"method": "POST", "path": "/Users", "bulkId": "never", "data": user("zed")},
        ]
    });
    let resp = c
        .post(proxy.url("/legacy/Bulk"))
        .bearer_auth("tok")
        .json(&bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        answer["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    let ops = answer["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    // failOnErrors 2: the duplicate and the missing user are the two errors; "zed" never runs.
    assert_eq!(statuses, ["201", "201", "200", "409", "404"], "{answer}");
    let user_id = ops[0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let group: Value = get_json(&c, ops[1]["location"].as_str().unwrap()).await;
    assert_eq!(group["members"][0]["value"], user_id);
    let alice: Value = get_json(&c, proxy.url(&format!("/legacy/Users/{user_id}"))).await;
    assert_eq!(alice["displayName"], "Alice");
    let zed = c
        .get(proxy.url("/legacy/Users"))
        .query(&[("filter", "userName eq \"zed\"")])
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(zed.json::<Value>().await.unwrap()["totalResults"], 0);

    let too_many = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": (0..1001).map(|_| json!({"method": "DELETE", "path": "/Users/x"})).collect::<Vec<_>>()});
    let resp = c
        .post(proxy.url("/legacy/Bulk"))
        .bearer_auth("tok")
        .json(&too_many)
        .send()
        .await
        .unwrap();
    scim_error(resp, 413).await;
}

#[tokio::test]
async fn a_filtered_list_answered_404_becomes_an_empty_list() {
    let echo = echo_upstream().await;
    let config = format!(
        "{}[[tenant]]\nid = \"e\"\nroute = {{ path_prefix = \"/e\" }}\nupstream = {{ url = \"http://{echo}/scim/v2\", supports = {{ patch = true, filter = true, discovery = true }} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        hash("tok"),
    );
    let proxy = Proxy::start(&config).await;
    let resp = client()
        .get(proxy.url("/e/Users"))
        .query(&[("filter", "userName eq \"nobody\""), ("get_status", "404")])
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let list: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            list["totalResults"].as_u64(),
            list["Resources"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    // A 404 for one resource stays a 404.
    let resp = client()
        .get(proxy.url("/e/Users/gone?get_status=404"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    scim_error(resp, 404).await;
}

#[tokio::test]
async fn sorting_is_done_by_the_proxy_as_the_memory_store_does_it() {
    let proxy = both("").await;
    let c = client();
    for t in ["legacy", "memory"] {
        for name in ["carol", "alice", "Dave", "bob", "erin"] {
            create(&c, &proxy, t, "/Users", &user(name)).await;
        }
    }
    let query = [
        ("sortBy", "userName"),
        ("sortOrder", "descending"),
        ("startIndex", "2"),
        ("count", "3"),
        ("filter", "userName ne \"erin\""),
    ];
    let mut orders = Vec::new();
    for t in ["legacy", "memory"] {
        let list: Value = json_of(c.get(proxy.url(&format!("/{t}/Users"))).query(&query)).await;
        assert_eq!(list["totalResults"], 4, "{t}: {list}");
        let names: Vec<String> = list["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_owned())
            .collect();
        orders.push(names);
    }
    // Case-insensitive: "Dave" sorts between "carol" and "erin".
    assert_eq!(orders[0], ["carol", "bob", "alice"]);
    assert_eq!(orders[0], orders[1]);
    let resp = c
        .get(proxy.url("/legacy/Users"))
        .query(&[("sortBy", "name")])
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(scim_error(resp, 400).await["scimType"], "invalidValue");
}

#[tokio::test]
async fn emulated_writes_honour_the_clients_if_match_and_never_echo_passwords() {
    let proxy = both("").await;
    let c = client();
    let mut doc = user("guarded");
    doc["password"] = json!("t1meMa$heen");
    let resp = c
        .post(proxy.url("/legacy/Users"))
        .bearer_auth("tok")
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert!(
        created.get("password").is_none(),
        "the app echoed the password and it got through: {created}"
    );
    let url = proxy.url(&format!(
        "/legacy/Users/{}",
        created["id"].as_str().unwrap()
    ));
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]});
    // The app keeps no versions, so no version the client names can be the current one.
    let resp = c
        .patch(&url)
        .bearer_auth("tok")
        .header("if-match", "W/\"3694e05e9dff591\"")
        .json(&patch)
        .send()
        .await
        .unwrap();
    scim_error(resp, 412).await;
    let resp = c
        .patch(&url)
        .bearer_auth("tok")
        .header("if-match", "*")
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["title"], "Boss");
    assert!(patched.get("password").is_none());
}

#[tokio::test]
async fn a_scan_that_outlasts_its_deadline_is_cut_off() {
    // Each page takes 50 ms, well within the 200 ms upstream timeout; the whole scan gets ten
    // of those, 2 s, and the list never ends.
    let upstream = slow_list_upstream(std::time::Duration::from_millis(50)).await;
    let config = format!(
        "{}[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nupstream = {{ url = \"http://{upstream}\", timeout = \"200ms\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        hash("tok"),
    );
    let proxy = Proxy::start(&config).await;
    let started = std::time::Instant::now();
    let resp = client()
        .get(proxy.url("/t/Users"))
        .query(&[("filter", "userName eq \"nobody\"")])
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    scim_error(resp, 504).await;
    assert!(started.elapsed() < LIMIT);
}

#[tokio::test]
async fn a_partial_apps_own_addresses_and_passwords_never_reach_the_idp() {
    // An app without discovery documents that names itself in meta.location and echoes
    // the password.
    let app = json_upstream(|path, own| match path {
        "/scim/v2/Users/1" => (
            200,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1", "userName": "bjensen",
                   "password": "t1meMa$heen", "meta": {"resourceType": "User", "location": format!("http://{own}/scim/v2/Users/1")}})
            .to_string(),
        ),
        _ => (404, String::new()),
    })
    .await;
    let config = format!(
        "{}{}",
        server(""),
        tenant("t", &format!("http://{app}/scim/v2"), "tok")
    );
    let proxy = Proxy::start(&config).await;
    let user = get_json(&client(), proxy.url("/t/Users/1")).await;
    assert_eq!(user["meta"]["location"], proxy.url("/t/Users/1"));
    assert!(user.get("password").is_none(), "{user}");
    assert_eq!(user["userName"], "bjensen");
}

/// A Bulk the proxy carries out that runs past its deadline (ten upstream timeouts) still
/// answers a BulkResponse: what was done, the operation cut off as 504, the rest as 503, so
/// the IdP replays only what was not done.
#[tokio::test]
async fn a_bulk_past_its_deadline_answers_what_was_done() {
    let (app, _) = counting_upstream(std::time::Duration::from_millis(150)).await;
    let config = format!(
        "{}[[tenant]]\nid = \"s\"\nroute = {{ path_prefix = \"/s\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", timeout = \"200ms\", supports = {{ patch = true, filter = true, sort = true, bulk = false, etag = false, discovery = true }} }}\n",
        server(""),
        hash("tok")
    );
    let proxy = Proxy::start(&config).await;
    let ops: Vec<Value> = (0..20)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("b{i}@example.com")}}))
        .collect();
    let bulk = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    let resp = client()
        .post(proxy.url("/s/Bulk"))
        .bearer_auth("tok")
        .json(&bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let statuses: Vec<&str> = body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 20, "{statuses:?}");
    let done = statuses.iter().take_while(|s| **s == "201").count();
    assert!((1..20).contains(&done), "{statuses:?}");
    assert_eq!(statuses[done], "504", "{statuses:?}");
    assert!(
        statuses[done + 1..].iter().all(|s| *s == "503"),
        "{statuses:?}"
    );
}

/// An app that pages its list one user at a time and ignores `filter`, whatever it claims: the
/// duplicate is on its second page.
async fn paging_app_ignoring_filters() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let users = [
                        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1", "userName": "first@example.com"}),
                        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "2", "userName": "taken@example.com"}),
                    ];
                    let start: usize = req
                        .uri()
                        .query()
                        .and_then(|q| {
                            form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "startIndex")
                        })
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(1);
                    let (status, body) = if req.method() == hyper::Method::GET {
                        let page: Vec<Value> =
                            users.iter().skip(start - 1).take(1).cloned().collect();
                        (
                            200,
                            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 2, "startIndex": start, "itemsPerPage": page.len(), "Resources": page}),
                        )
                    } else {
                        (201, users[0].clone())
                    };
                    let resp = hyper::Response::builder()
                        .status(status)
                        .header("content-type", "application/scim+json")
                        .body(http_body_util::Full::new(bytes::Bytes::from(
                            body.to_string(),
                        )))
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(resp)
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    addr
}

#[tokio::test]
async fn the_uniqueness_check_is_not_fooled_by_an_app_ignoring_filters_or_by_decoy_keys() {
    let app = paging_app_ignoring_filters().await;
    let config = format!(
        "{}[[tenant]]\nid = \"u\"\nroute = {{ path_prefix = \"/u\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", supports = {{ patch = true, filter = true, sort = true, bulk = false, etag = false, discovery = true, uniqueness = false }} }}\n",
        server(""),
        hash("tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let resp = c
        .post(proxy.url("/u/Users"))
        .bearer_auth("tok")
        .json(&user("taken@example.com"))
        .send()
        .await
        .unwrap();
    let err = scim_error(resp, 409).await;
    assert_eq!(err["scimType"], "uniqueness");
    // Two spellings of one attribute: which one the app would store is a guess.
    let mut decoy = user("new@example.com");
    decoy["externalId"] = json!("x");
    decoy["EXTERNALID"] = json!("y");
    let resp = c
        .post(proxy.url("/u/Users"))
        .bearer_auth("tok")
        .json(&decoy)
        .send()
        .await
        .unwrap();
    let err = scim_error(resp, 400).await;
    assert!(
        err["detail"].as_str().unwrap().contains("externalId"),
        "{err}"
    );
}

/// What the memory store refuses in a PATCH, the proxy refuses before writing the legacy app's
/// PUT: same status, same `scimType`, and nothing changes in the app.
#[tokio::test]
async fn an_emulated_patch_is_held_to_the_schema_as_the_memory_store_holds_it() {
    let proxy = both("").await;
    let c = client();
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Schema Checked"});
    let cases = [
        (
            "/Users",
            user("typed"),
            json!({"op": "replace", "path": "active", "value": "True"}),
        ),
        (
            "/Groups",
            group.clone(),
            json!({"op": "add", "path": "members", "value": ["string id 1"]}),
        ),
        (
            "/Groups",
            group,
            json!({"op": "add", "path": "members", "value": [{"value": "x", "displayName": "X"}]}),
        ),
    ];
    for (i, (path, doc, op)) in cases.into_iter().enumerate() {
        let mut doc = doc;
        if path == "/Users" {
            doc["userName"] = json!(format!("typed{i}"));
        } else {
            doc["displayName"] = json!(format!("Schema Checked {i}"));
        }
        let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]});
        let mut answers = Vec::new();
        for t in ["legacy", "memory"] {
            let id = create(&c, &proxy, t, path, &doc).await;
            let url = proxy.url(&format!("/{t}{path}/{id}"));
            let before = get_json(&c, &url).await;
            let resp = c
                .patch(&url)
                .bearer_auth("tok")
                .json(&patch)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let err: Value = resp.json().await.unwrap();
            let after = get_json(&c, &url).await;
            assert_eq!(
                comparable(before),
                comparable(after),
                "{t}: {op} changed the resource"
            );
            answers.push((status, err["scimType"].clone()));
        }
        assert_eq!(answers[0], answers[1], "legacy vs memory for {op}");
        assert_eq!(answers[0].0, 400, "{op}");
    }
}

/// An app without sort whose users are 20 KB each (a long `title`), 1,000 of them.
fn heavy_app(path: &str, _: std::net::SocketAddr) -> (u16, String) {
    if path.ends_with("/ServiceProviderConfig") {
        let spc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true}, "filter": {"supported": true, "maxResults": 100},
            "sort": {"supported": false}, "bulk": {"supported": false},
            "etag": {"supported": false}, "changePassword": {"supported": false}});
        return (200, spc.to_string());
    }
    let heavy = "x".repeat(20_000);
    let users: Vec<Value> = (0..100)
        .map(|i| {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": format!("u{i}"), "userName": format!("user{i}"), "title": heavy})
        })
        .collect();
    let page = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 1000, "itemsPerPage": 100, "Resources": users});
    (200, page.to_string())
}

#[tokio::test]
async fn sorting_holds_matches_up_to_a_byte_bound_not_only_a_count() {
    let app = json_upstream(heavy_app).await;
    let config = format!(
        "{}{}",
        server(""),
        tenant("s", &format!("http://{app}/scim/v2"), "tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    // 1,000 matches are far below the count bound, but 20 MB of them are past the byte bound.
    let resp = c
        .get(proxy.url("/s/Users"))
        .query(&[("sortBy", "userName")])
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    let err = scim_error(resp, 400).await;
    assert_eq!(err["scimType"], "tooMany");
    assert!(err["detail"].as_str().unwrap().contains("MiB"), "{err}");
    // A filter that keeps few of them sorts fine (the app answers the same page whatever
    // `startIndex` asks, so each of its ten pages holds one "user7").
    let list: Value = json_of(
        c.get(proxy.url("/s/Users"))
            .query(&[("sortBy", "userName"), ("filter", "userName eq \"user7\"")]),
    )
    .await;
    assert_eq!(list["totalResults"], 10, "{}", list["totalResults"]);
}

#[tokio::test]
async fn a_replace_or_a_patch_may_not_take_a_value_another_resource_holds() {
    // The legacy app does not do PATCH (the proxy writes a PUT) and does not check externalId.
    let proxy = both("").await;
    let config = format!(
        "{}[[tenant]]\nid = \"dedup\"\nroute = {{ path_prefix = \"/dedup\" }}\nupstream = {{ url = \"{}\", token_file = \"legacy.token\", supports = {{ uniqueness = false }} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        legacy_url(&proxy).await,
        hash("tok"),
    );
    let dedup = Proxy::start_in(tempdir_with_token(), &config).await;
    let c = client();
    let mut ids = Vec::new();
    for name in ["holder", "renamed"] {
        let mut doc = user(name);
        doc["externalId"] = json!(format!("ext-{name}"));
        let created: Value = json_of(c.post(dedup.url("/dedup/Users")).json(&doc)).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let url = dedup.url(&format!("/dedup/Users/{}", ids[1]));
    let put = |external: &str| {
        let mut doc = user("renamed");
        doc["externalId"] = json!(external);
        doc["displayName"] = json!(format!("now {external}"));
        c.put(&url).bearer_auth("tok").json(&doc).send()
    };
    let err = scim_error(put("ext-holder").await.unwrap(), 409).await;
    assert_eq!(err["scimType"], "uniqueness");
    // Its own values are no conflict.
    assert_eq!(put("ext-renamed").await.unwrap().status(), 200);
    let patch = |external: &str| {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "externalId", "value": external}]});
        c.patch(&url).bearer_auth("tok").json(&body).send()
    };
    let err = scim_error(patch("ext-holder").await.unwrap(), 409).await;
    assert_eq!(err["scimType"], "uniqueness");
    assert_eq!(patch("ext-new").await.unwrap().status(), 200);
    let now: Value = json_of(c.get(&url)).await;
    assert_eq!(now["externalId"], "ext-new");
    assert_eq!(now["displayName"], "now ext-renamed");
}

/// An app that does PATCH itself but does not keep `externalId` unique (here: the proxy's
/// legacy tenant, declared so): a PATCH that would give a resource a value another one holds
/// is refused before it is sent, as a PUT is.
#[tokio::test]
async fn a_native_patch_may_not_take_a_value_another_resource_holds() {
    let inner = both("").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inner.token"), "tok").unwrap();
    let config = format!(
        "{}[[tenant]]\nid = \"native\"\nroute = {{ path_prefix = \"/native\" }}\nupstream = {{ url = \"{}\", token_file = \"inner.token\", supports = {{ patch = true, filter = true, sort = true, bulk = false, etag = false, discovery = false, uniqueness = false }} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        inner.url("/legacy"),
        hash("tok"),
    );
    let outer = Proxy::start_in(dir, &config).await;
    let c = client();
    let mut ids = Vec::new();
    for name in ["holder", "renamed"] {
        let created: Value = json_of(c.post(outer.url("/native/Users")).json(&user(name))).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let url = outer.url(&format!("/native/Users/{}", ids[1]));
    let patch = |op: Value| {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]});
        c.patch(&url).bearer_auth("tok").json(&body).send()
    };
    let by_path = json!({"op": "replace", "path": "externalId", "value": "ext-holder"});
    let err = scim_error(patch(by_path).await.unwrap(), 409).await;
    assert_eq!(err["scimType"], "uniqueness");
    let by_value = json!({"op": "Replace", "value": {"userName": "HOLDER"}});
    let err = scim_error(patch(by_value).await.unwrap(), 409).await;
    assert_eq!(err["scimType"], "uniqueness");
    let fresh = json!({"op": "replace", "path": "externalId", "value": "ext-fresh"});
    assert_eq!(patch(fresh).await.unwrap().status(), 200);
    let now: Value = json_of(c.get(&url)).await;
    assert_eq!(
        (&now["externalId"], &now["userName"]),
        (&json!("ext-fresh"), &json!("renamed"))
    );
}

/// An app that stores a group's name but not its members: its PUT answers success with the
/// members it had. With `keeps_members`, it stores what is put.
async fn group_app(keeps_members: bool) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stored = std::sync::Arc::new(std::sync::Mutex::new(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g", "displayName": "Staff", "members": [{"value": "a"}]
    })));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let stored = stored.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let stored = stored.clone();
                    async move {
                        let put = req.method() == hyper::Method::PUT;
                        let body = http_body_util::BodyExt::collect(req.into_body())
                            .await
                            .unwrap()
                            .to_bytes();
                        if put {
                            let sent: Value = serde_json::from_slice(&body).unwrap();
                            let mut now = stored.lock().unwrap();
                            now["displayName"] = sent["displayName"].clone();
                            if keeps_members {
                                now["members"] = sent["members"].clone();
                            }
                        }
                        let doc = stored.lock().unwrap().to_string();
                        let resp = hyper::Response::builder()
                            .header("content-type", "application/scim+json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(doc)))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    addr
}

/// An emulated PATCH is answered 200 only when the app kept the change: an app whose PUT drops
/// `members` makes the PATCH a 502 that names them, not a 200 for a change that did not happen.
#[tokio::test]
async fn an_emulated_patch_the_app_did_not_keep_is_an_error_naming_the_attribute() {
    for keeps_members in [false, true] {
        let app = group_app(keeps_members).await;
        let config = format!(
            "{}[[tenant]]\nid = \"g\"\nroute = {{ path_prefix = \"/g\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", supports = {{ patch = false, filter = true, sort = true, bulk = false, etag = false, discovery = true }} }}\n",
            server(""),
            hash("tok")
        );
        let proxy = Proxy::start(&config).await;
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "replace", "path": "displayName", "value": "All staff"},
            {"op": "add", "path": "members", "value": [{"value": "b"}]},
        ]});
        let resp = client()
            .patch(proxy.url("/g/Groups/g"))
            .bearer_auth("tok")
            .json(&body)
            .send()
            .await
            .unwrap();
        if keeps_members {
            assert_eq!(resp.status(), 200);
            let doc: Value = resp.json().await.unwrap();
            assert_eq!(doc["members"], json!([{"value": "a"}, {"value": "b"}]));
        } else {
            let err = scim_error(resp, 502).await;
            let detail = err["detail"].as_str().unwrap();
            assert!(detail.contains("did not keep members"), "{detail}");
            assert!(
                !detail.contains("displayName"),
                "what it kept is not named: {detail}"
            );
            assert!(proxy.logs().contains("did not keep what it changed"));
        }
    }
}

/// An app that announces PATCH and filtering but answers 501 for a PATCH of a group, and
/// serves no service root; it keeps one user and one group, and counts the PATCHes it saw.
async fn overpromising_app() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let patches = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = patches.clone();
    let group = std::sync::Arc::new(std::sync::Mutex::new(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g", "displayName": "Staff", "members": [{"value": "u"}]
    })));
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u", "userName": "ann@example.com"});
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (group, user, seen) = (group.clone(), user.clone(), seen.clone());
            let service = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| {
                    let (group, user, seen) = (group.clone(), user.clone(), seen.clone());
                    async move {
                        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
                        let body = http_body_util::BodyExt::collect(req.into_body())
                            .await
                            .unwrap()
                            .to_bytes();
                        let list = |r: Vec<Value>| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": r.len(), "startIndex": 1, "itemsPerPage": r.len(), "Resources": r});
                        let (status, doc) = match (method.as_str(), path.as_str()) {
                            ("GET", "/scim/v2/ServiceProviderConfig") => (
                                200,
                                json!({
                            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                            "patch": {"supported": true}, "filter": {"supported": true, "maxResults": 100},
                            "sort": {"supported": false}, "bulk": {"supported": false}, "etag": {"supported": false},
                            "changePassword": {"supported": false}, "authenticationSchemes": []}),
                            ),
                            ("PATCH", _) => {
                                seen.fetch_add(1, Ordering::SeqCst);
                                (
                                    501,
                                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "501", "detail": "PATCH of groups is not implemented"}),
                                )
                            }
                            ("PUT", "/scim/v2/Groups/g") => {
                                *group.lock().unwrap() = serde_json::from_slice(&body).unwrap();
                                (200, group.lock().unwrap().clone())
                            }
                            ("GET", "/scim/v2/Groups/g") => (200, group.lock().unwrap().clone()),
                            ("GET", "/scim/v2/Users") => (200, list(vec![user])),
                            ("GET", "/scim/v2/Groups") => {
                                (200, list(vec![group.lock().unwrap().clone()]))
                            }
                            _ => (
                                404,
                                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404"}),
                            ),
                        };
                        let resp = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/scim+json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(
                                doc.to_string(),
                            )))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    (addr, patches)
}

/// What an app announces and then refuses with 501 (or, for the service root, 404) is filled
/// by the proxy after all, and remembered: the next PATCH goes straight to GET + PUT.
#[tokio::test]
async fn a_form_the_app_announces_but_refuses_is_filled_and_remembered() {
    let (app, patches) = overpromising_app().await;
    let config = format!(
        "{}[[tenant]]\nid = \"o\"\nroute = {{ path_prefix = \"/o\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\" }}\n",
        server(""),
        hash("tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    for member in ["v", "w"] {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}]});
        let resp = c
            .patch(proxy.url("/o/Groups/g"))
            .bearer_auth("tok")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }
    let group = get_json(&c, proxy.url("/o/Groups/g")).await;
    assert_eq!(
        group["members"],
        json!([{"value": "u"}, {"value": "v"}, {"value": "w"}])
    );
    assert_eq!(
        patches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "asked once, then filled"
    );
    assert!(proxy
        .logs()
        .contains("refused it; the proxy fills it from now on"));

    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"ann@example.com\" or displayName eq \"Staff\""});
    let found: Value = json_of(c.post(proxy.url("/o/.search")).json(&search)).await;
    assert_eq!(found["totalResults"], 2, "{found}");
}
