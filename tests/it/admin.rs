//! The admin API: its own token, the tenants' status, pause and resume of writes, test mode
//! (writes answered and recorded, never sent to the app), the request log, and a reload that
//! refuses a bad file while the running configuration keeps serving.

use serde_json::{json, Value};

use crate::support::*;

const ADMIN_TOKEN: &str = "admin-s3cret";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// `[server]`, `[admin]` with the admin token's hash, `[log]`, then `tenants`.
fn config(tenants: &str) -> String {
    let with_token = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_sha256 = \"{}\"\n",
        hash(ADMIN_TOKEN)
    );
    server("").replace("[admin]\nlisten = \"127.0.0.1:0\"\n", &with_token) + tenants
}

/// The app's user 1, as the scripted app holds it.
fn stored_user() -> Value {
    json!({"schemas": [USER], "id": "1", "userName": "ann@example.com", "active": true, "title": "Engineer"})
}

/// An app that holds user 1 (GET) and answers every write as a real app would, recording all
/// it receives.
async fn recording_app() -> (std::net::SocketAddr, Seen) {
    let script = |method, path: &str, status, body: String| Script {
        method,
        path: format!("/scim/v2{path}"),
        status,
        content_type: "application/scim+json",
        body,
    };
    let user = stored_user().to_string();
    scripted_upstream(vec![
        script("GET", "/Users/1", 200, user.clone()),
        script("POST", "/Users", 201, user.clone()),
        script("PUT", "/Users/1", 200, user.clone()),
        script("PATCH", "/Users/1", 200, user),
        script("DELETE", "/Users/1", 204, String::new()),
    ])
    .await
}

/// A tenant `id` (token "tok") in front of `app`, which does what `supports` says.
fn app_tenant(id: &str, app: std::net::SocketAddr, supports: &str) -> String {
    format!(
        "[[tenant]]\nid = \"{id}\"\nroute = {{ path_prefix = \"/{id}\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", supports = {{ {supports} }} }}\n",
        hash("tok")
    )
}

const EVERYTHING: &str =
    "patch = true, filter = true, sort = true, bulk = true, etag = false, discovery = true";

struct Admin {
    base: String,
    c: reqwest::Client,
}

impl Admin {
    fn of(proxy: &Proxy) -> Self {
        Self {
            base: format!("http://{}", proxy.admin),
            c: client(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .c
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn post(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::POST, path, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn test_mode(&self, tenant: &str, on: bool) -> Value {
        let path = format!("/api/tenants/{tenant}/test-mode");
        let (status, body) = self
            .send(reqwest::Method::PUT, &path, Some(json!({"on": on})))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The tenant's entry in `GET /api/tenants`.
    async fn tenant(&self, id: &str) -> Value {
        let all = self.get("/api/tenants").await;
        let found = all["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id);
        found.cloned().unwrap_or_else(|| panic!("no {id} in {all}"))
    }
}

/// A SCIM request with the tenant token "tok".
fn scim(c: &reqwest::Client, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
    c.request(method, url)
        .bearer_auth("tok")
        .header("content-type", "application/scim+json")
}

fn new_user(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name, "active": true})
}

fn deactivate() -> Value {
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]})
}

/// The writes the app received (method, path), leaving out reads.
fn writes_seen(seen: &Seen) -> Vec<(String, String)> {
    app_requests(seen)
        .into_iter()
        .filter(|(m, _, _)| m != "GET")
        .map(|(m, pq, _)| (m, pq))
        .collect()
}

#[tokio::test]
async fn the_api_refuses_a_missing_or_wrong_token_and_the_probes_stay_open() {
    let proxy = Proxy::start(&config(&tenant("t", "memory:", "tok"))).await;
    let c = client();
    let url = |p: &str| format!("http://{}{p}", proxy.admin);
    let resp = c.get(url("/api/tenants")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("admin token"),
        "{body}"
    );
    for wrong in ["tok", "admin-s3cre", "admin-s3cret2"] {
        let resp = c
            .post(url("/api/tenants/t/pause"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{wrong}");
    }
    // An unknown route is refused the same way: nothing is learnt without the token.
    let resp = c.get(url("/api/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let admin = Admin::of(&proxy);
    assert_eq!(
        admin.tenant("t").await["paused"],
        false,
        "the wrong tokens paused nothing"
    );
    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            c.get(url(open)).send().await.unwrap().status(),
            200,
            "{open}"
        );
    }
}

#[tokio::test]
async fn without_a_configured_token_the_api_is_off_and_says_how_to_turn_it_on() {
    let proxy = Proxy::start(&(server("") + &tenant("t", "memory:", "tok"))).await;
    let resp = client()
        .get(format!("http://{}/api/tenants", proxy.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("admin.token_sha256"),
        "{body}"
    );
}

#[tokio::test]
async fn the_tenant_list_shows_counts_and_the_last_request_after_traffic() {
    let proxy = Proxy::start(&config(&tenant("t", "memory:", "tok"))).await;
    let admin = Admin::of(&proxy);
    let before = admin.tenant("t").await;
    assert_eq!(before["requests"]["total"], 0);
    assert_eq!(before["last_request"], Value::Null);
    let c = client();
    let created = scim(&c, reqwest::Method::POST, proxy.url("/t/Users"))
        .json(&new_user("ann@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let missing = scim(&c, reqwest::Method::GET, proxy.url("/t/Users/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let after = admin.tenant("t").await;
    assert_eq!(
        after["requests"],
        json!({"total": 2, "succeeded": 1, "client_errors": 1, "server_errors": 0})
    );
    assert_eq!(after["error_rate"], 0.5);
    assert!(after["last_request"].is_string(), "{after}");
    assert!(after["last_success"].is_string(), "{after}");
    assert_eq!(
        (&after["paused"], &after["test_mode"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(after["breaker"], "none", "the memory store has no breaker");
    let one = admin.get("/api/tenants/t").await;
    assert_eq!(one["requests"]["total"], 2);
}

#[tokio::test]
async fn a_paused_tenant_refuses_writes_with_503_serves_reads_and_stays_paused_across_a_reload() {
    let (app, seen) = recording_app().await;
    let text = config(&app_tenant("a", app, EVERYTHING));
    let proxy = Proxy::start(&text).await;
    let admin = Admin::of(&proxy);
    let c = client();
    assert_eq!(admin.post("/api/tenants/a/pause").await["paused"], true);
    let refused = scim(&c, reqwest::Method::POST, proxy.url("/a/Users"))
        .json(&new_user("bob@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["retry-after"], "60");
    let err = scim_error(refused, 503).await;
    assert!(err["detail"].as_str().unwrap().contains("paused"), "{err}");
    for (method, body) in [
        (reqwest::Method::PATCH, Some(deactivate())),
        (reqwest::Method::DELETE, None),
    ] {
        let mut req = scim(&c, method.clone(), proxy.url("/a/Users/1"));
        if let Some(body) = body {
            req = req.json(&body);
        }
        assert_eq!(req.send().await.unwrap().status(), 503, "{method}");
    }
    // Someone without the tenant's token learns nothing of the pause.
    let stranger = c
        .post(proxy.url("/a/Users"))
        .bearer_auth("not-the-token")
        .json(&new_user("eve@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    let read = scim(&c, reqwest::Method::GET, proxy.url("/a/Users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "reads still work");
    let search = scim(&c, reqwest::Method::POST, proxy.url("/a/Users/.search"))
        .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}))
        .send()
        .await
        .unwrap();
    // The app has no list to give (404), but the query was not refused as a write.
    assert_eq!(search.status(), 404, "a query sent as a POST is a read");
    assert_eq!(
        writes_seen(&seen),
        Vec::<(String, String)>::new(),
        "no write reached the app"
    );

    // Both ways of reloading keep the pause.
    proxy.reload_with(&text).await;
    let (status, body) = admin.send(reqwest::Method::POST, "/api/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin.tenant("a").await["paused"], true);
    let still = scim(&c, reqwest::Method::DELETE, proxy.url("/a/Users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 503);
    assert!(writes_seen(&seen).is_empty());

    assert_eq!(admin.post("/api/tenants/a/resume").await["paused"], false);
    let created = scim(&c, reqwest::Method::POST, proxy.url("/a/Users"))
        .json(&new_user("bob@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        writes_seen(&seen),
        [("POST".to_owned(), "/scim/v2/Users".to_owned())]
    );
    let refusals = admin.tenant("a").await["requests"]["server_errors"]
        .as_u64()
        .unwrap();
    assert_eq!(refusals, 4, "the status counts the refused writes");
}

#[tokio::test]
async fn test_mode_answers_writes_as_the_app_would_and_sends_none_of_them() {
    let (app, seen) = recording_app().await;
    // "a" forwards everything; "b" has an app without PATCH or Bulk, so the proxy fills them
    // (an emulated PATCH is a GET and a PUT: the PUT must not go out either).
    let text = config(
        &(app_tenant("a", app, EVERYTHING)
            + &app_tenant(
                "b",
                app,
                "patch = false, filter = true, bulk = false, discovery = true",
            )),
    );
    let proxy = Proxy::start(&text).await;
    let admin = Admin::of(&proxy);
    let c = client();
    for id in ["a", "b"] {
        assert_eq!(admin.test_mode(id, true).await["test_mode"], true);
    }

    let created = scim(&c, reqwest::Method::POST, proxy.url("/a/Users"))
        .json(&new_user("new@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let user: Value = created.json().await.unwrap();
    let id = user["id"].as_str().expect("an id was made").to_owned();
    assert_eq!(user["userName"], "new@example.com");
    assert_eq!(location, proxy.url(&format!("/a/Users/{id}")));
    assert_eq!(user["meta"]["location"], location);
    assert_eq!(user["meta"]["resourceType"], "User");

    let replaced = scim(&c, reqwest::Method::PUT, proxy.url("/a/Users/1"))
        .json(&json!({"schemas": [USER], "userName": "ann@example.com", "title": "Manager"}))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(
        (&replaced["id"], &replaced["title"]),
        (&json!("1"), &json!("Manager"))
    );

    for tenant in ["a", "b"] {
        let patched = scim(
            &c,
            reqwest::Method::PATCH,
            proxy.url(&format!("/{tenant}/Users/1")),
        )
        .json(&deactivate())
        .send()
        .await
        .unwrap();
        assert_eq!(patched.status(), 200, "{tenant}");
        let patched: Value = patched.json().await.unwrap();
        assert_eq!(patched["active"], false, "{tenant}: {patched}");
        assert_eq!(
            patched["title"], "Engineer",
            "{tenant}: the rest is the app's"
        );
    }

    let deleted = scim(&c, reqwest::Method::DELETE, proxy.url("/a/Users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "n1", "data": new_user("bulk@example.com")},
            {"method": "DELETE", "path": "/Users/1"},
        ],
    });
    let answered = scim(&c, reqwest::Method::POST, proxy.url("/a/Bulk"))
        .json(&bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    let answered: Value = answered.json().await.unwrap();
    let statuses: Vec<&str> = answered["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["201", "204"], "{answered}");

    // Reads still reach the app; no write did.
    let read = scim(&c, reqwest::Method::GET, proxy.url("/a/Users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert!(app_requests(&seen)
        .iter()
        .any(|(m, pq, _)| m == "GET" && pq == "/scim/v2/Users/1"));
    assert_eq!(writes_seen(&seen), Vec::<(String, String)>::new());

    // What would have been sent is listed, newest first, without credentials.
    let kept = admin.get("/api/tenants/a/test-requests").await;
    let kept = kept["requests"].as_array().unwrap().clone();
    let methods: Vec<&str> = kept
        .iter()
        .rev()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["POST", "PUT", "PATCH", "DELETE", "POST", "DELETE"]
    );
    let first = kept.last().unwrap();
    assert_eq!(first["path"], "/Users");
    assert_eq!(first["body"]["userName"], "new@example.com");
    assert_eq!(first["headers"]["x-scimgate-tenant"], "a");
    let listed = Value::Array(kept.clone()).to_string().to_ascii_lowercase();
    assert!(
        !listed.contains("authorization") && !listed.contains("bearer"),
        "{listed}"
    );
    let b = admin.get("/api/tenants/b/test-requests").await;
    let b: Vec<&str> = b["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(b, ["PUT"], "the emulated PATCH's PUT was kept from the app");

    // Test mode survives a reload; turned off, writes go to the app again.
    proxy.reload_with(&text).await;
    assert_eq!(admin.tenant("a").await["test_mode"], true);
    let again = scim(&c, reqwest::Method::DELETE, proxy.url("/a/Users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 204);
    assert!(writes_seen(&seen).is_empty());
    admin.test_mode("a", false).await;
    let sent = scim(&c, reqwest::Method::DELETE, proxy.url("/a/Users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 204);
    assert_eq!(
        writes_seen(&seen),
        [("DELETE".to_owned(), "/scim/v2/Users/1".to_owned())]
    );
}

#[tokio::test]
async fn a_reload_through_the_api_answers_the_errors_of_a_bad_file_and_keeps_serving() {
    let text = config(&tenant("t", "memory:", "tok"));
    let proxy = Proxy::start(&text).await;
    let admin = Admin::of(&proxy);
    let c = client();
    let bad = text.replacen("listen = \"127.0.0.1:0\"", "listen = \"nowhere\"", 1);
    std::fs::write(proxy.config_path(), bad).unwrap();
    let (status, body) = admin.send(reqwest::Method::POST, "/api/reload", None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["status"], "refused");
    let errors = body["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e
            .as_str()
            .unwrap()
            .contains("server.listen: expected an address")),
        "{body}"
    );
    let served = scim(&c, reqwest::Method::GET, proxy.url("/t/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        served.status(),
        200,
        "the running configuration keeps serving"
    );

    std::fs::write(
        proxy.config_path(),
        text.clone() + &tenant("u", "memory:", "tok"),
    )
    .unwrap();
    let (status, body) = admin.send(reqwest::Method::POST, "/api/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["added"], &body["removed"]),
        (&json!(["u"]), &json!([]))
    );
    let served = scim(&c, reqwest::Method::GET, proxy.url("/u/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
}

#[tokio::test]
async fn the_request_log_lists_the_last_requests_without_bodies_queries_or_tokens() {
    let proxy = Proxy::start(&config(&tenant("t", "memory:", "tok"))).await;
    let admin = Admin::of(&proxy);
    let c = client();
    let created = scim(&c, reqwest::Method::POST, proxy.url("/t/Users"))
        .json(&new_user("body-marker@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let listed = scim(&c, reqwest::Method::GET, proxy.url("/t/Users"))
        .query(&[("filter", "userName eq \"query-marker@example.com\"")])
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let log = admin.get("/api/tenants/t/requests").await;
    let entries = log["requests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{log}");
    let (newest, oldest) = (&entries[0], &entries[1]);
    assert_eq!(
        (&newest["method"], &newest["path"], &newest["status"]),
        (&json!("GET"), &json!("/t/Users"), &json!(200))
    );
    assert_eq!(
        (&oldest["method"], &oldest["status"]),
        (&json!("POST"), &json!(201))
    );
    assert!(oldest["request_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert!(oldest["latency_ms"].is_number() && oldest["time"].is_string());
    let text = log.to_string();
    for secret in [
        "body-marker",
        "query-marker",
        "Bearer",
        hash("tok").as_str(),
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let (status, _) = admin
        .send(reqwest::Method::GET, "/api/tenants/nobody/requests", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_tenant_the_file_starts_in_test_mode_writes_nothing_until_switched_off() {
    let text = config(&(tenant("t", "memory:", "tok") + "test_mode = true\n"));
    let proxy = Proxy::start(&text).await;
    let admin = Admin::of(&proxy);
    let c = client();
    assert_eq!(admin.tenant("t").await["test_mode"], true);
    let created = scim(&c, reqwest::Method::POST, proxy.url("/t/Users"))
        .json(&new_user("ann@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = scim(
        &c,
        reqwest::Method::GET,
        proxy.url(&format!("/t/Users/{id}")),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(stored.status(), 404, "the store never got the user");

    // Switched off, it stays off across a reload of the same file.
    admin.test_mode("t", false).await;
    proxy.reload_with(&text).await;
    assert_eq!(admin.tenant("t").await["test_mode"], false);
    let created = scim(&c, reqwest::Method::POST, proxy.url("/t/Users"))
        .json(&new_user("ann@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = scim(
        &c,
        reqwest::Method::GET,
        proxy.url(&format!("/t/Users/{id}")),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(stored.status(), 200);
}
