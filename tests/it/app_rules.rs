//! Packs that fix the app behind a tenant (`app_rules`), through the running proxy: the
//! response vectors of `tests/fixtures/idp/vectors.json` (an app's sloppy answer → what the IdP
//! must see), the request rules on forwarded and on emulated writes, and the answers the proxy
//! reads itself while filling gaps.

use serde_json::{json, Value};

use crate::support::*;

fn response_vector(id: &str) -> Value {
    let doc: Value = serde_json::from_str(include_str!("../fixtures/idp/vectors.json")).unwrap();
    doc["response_vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no vector {id}"))
        .clone()
}

/// The vector's backend request line as (method, path below the app's `/scim/v2` base, query).
fn request_of(v: &Value) -> (&'static str, String, Option<String>) {
    let line = v["backend_response"]["request"].as_str().unwrap();
    let (method, target) = line.split_once(' ').unwrap();
    let method = ["GET", "PATCH", "PUT", "POST", "DELETE"]
        .into_iter()
        .find(|m| *m == method)
        .unwrap();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let at = path
        .find("/Users")
        .or_else(|| path.find("/Groups"))
        .unwrap();
    (method, path[at..].to_owned(), query)
}

/// The app answers the vector's backend response; a second tenant "plain" fronts the same app
/// without app packs.
async fn vector_proxy(v: &Value, body: String) -> (Proxy, Seen) {
    let (method, path, _) = request_of(v);
    let backend = &v["backend_response"];
    let script = Script {
        method,
        path: format!("/scim/v2{path}"),
        status: backend["status"].as_u64().unwrap() as u16,
        content_type: match backend["headers"]["Content-Type"].as_str() {
            Some("text/html") => "text/html",
            Some(_) => "application/json",
            None => "",
        },
        body,
    };
    let (app, seen) = scripted_upstream(vec![script]).await;
    let plain = complete_app_tenant(app, "")
        .replace("\"e\"", "\"plain\"")
        .replace("/e\"", "/plain\"");
    let config = format!(
        "{}{}{plain}",
        server(""),
        complete_app_tenant(app, "app_rules = [\"app-generic\"]")
    );
    (Proxy::start(&config).await, seen)
}

async fn send(proxy: &Proxy, tenant: &str, v: &Value) -> reqwest::Response {
    let (method, path, query) = request_of(v);
    let url = match query {
        Some(q) => proxy.url(&format!("/{tenant}{path}?{q}")),
        None => proxy.url(&format!("/{tenant}{path}")),
    };
    let req = client()
        .request(method.parse().unwrap(), url)
        .bearer_auth("tok");
    let req = if method == "PATCH" {
        req.header("content-type", "application/scim+json").body(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]}).to_string(),
        )
    } else {
        req
    };
    req.send().await.unwrap()
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_bare_unpaged_array_becomes_the_page_asked_for() {
    let v = response_vector("resp-02-bare-array-no-envelope");
    let users: Vec<Value> = (1..=250)
        .map(|i| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": i.to_string(), "userName": format!("u{i}@example.com")}))
        .collect();
    let (proxy, _) = vector_proxy(&v, Value::Array(users).to_string()).await;
    let resp = send(&proxy, "e", &v).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(content_type(&resp), "application/scim+json");
    let body: Value = resp.json().await.unwrap();
    let want = &v["normalized_response"]["body"];
    for key in ["schemas", "totalResults", "startIndex", "itemsPerPage"] {
        assert_eq!(body[key], want[key], "{key}");
    }
    let ids: Vec<&str> = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (101..=200).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected, "users 101..200, in the app's order");
    assert!(
        proxy.logs().contains("app-generic/list-envelope"),
        "{}",
        proxy.logs()
    );

    // The same app without the pack: the IdP gets the bare array.
    let resp = send(&proxy, "plain", &v).await;
    let body: Value = resp.json().await.unwrap();
    assert!(body.is_array());
}

#[tokio::test]
async fn an_html_500_becomes_a_scim_error() {
    let v = response_vector("resp-03-html-500");
    let html = "<!-- Copyright Example --><html><body><h1>Whoops, looks like something went wrong.</h1></body></html>";
    let (proxy, _) = vector_proxy(&v, html.to_owned()).await;
    let resp = send(&proxy, "e", &v).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(content_type(&resp), "application/scim+json");
    let body: Value = resp.json().await.unwrap();
    let want = &v["normalized_response"]["body"];
    assert_eq!(body["schemas"], want["schemas"]);
    assert_eq!(body["status"], want["status"]);
    assert!(
        !body["detail"].as_str().unwrap().contains("<html"),
        "{body}"
    );
}

#[tokio::test]
async fn a_patch_204_passes_through_without_a_body() {
    let v = response_vector("resp-05-patch-204");
    let (proxy, seen) = vector_proxy(&v, String::new()).await;
    let resp = send(&proxy, "e", &v).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(app_requests(&seen).len(), 1, "forwarded once, natively");
}

#[tokio::test]
async fn string_types_and_a_manager_string_come_back_typed_with_schemas_and_meta() {
    let v = response_vector("resp-06-manager-string-and-string-types");
    let body = v["backend_response"]["body"].to_string();
    let (proxy, _) = vector_proxy(&v, body.clone()).await;
    let resp = send(&proxy, "e", &v).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(content_type(&resp), "application/scim+json");
    let got: Value = resp.json().await.unwrap();
    let mut want = v["normalized_response"]["body"].clone();
    want["meta"]["location"] = json!(proxy.url("/e/Users/7"));
    assert_eq!(got, want);

    let plain: Value = send(&proxy, "plain", &v).await.json().await.unwrap();
    assert_eq!(
        plain["active"], "true",
        "without the pack the answer is the app's"
    );
}

fn user_with_role() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "r@example.com",
        "roles": [{"value": "admin", "type": "WindowsAzureActiveDirectoryRole", "primary": true}]
    })
}

#[tokio::test]
async fn request_rules_adapt_forwarded_and_emulated_writes_to_the_app() {
    let stored = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "5", "userName": "r@example.com"});
    let (app, seen) = scripted_upstream(vec![
        Script {
            method: "POST",
            path: "/scim/v2/Users".into(),
            status: 201,
            content_type: "application/scim+json",
            body: stored.to_string(),
        },
        Script {
            method: "GET",
            path: "/scim/v2/Users/5".into(),
            status: 200,
            content_type: "application/scim+json",
            body: stored.to_string(),
        },
        Script {
            method: "PUT",
            path: "/scim/v2/Users/5".into(),
            status: 200,
            content_type: "application/scim+json",
            // What the app keeps of the PUT: the role, without the type it cannot take.
            body: {
                let mut kept = stored.clone();
                kept["roles"] = json!([{"value": "editor"}]);
                kept.to_string()
            },
        },
    ])
    .await;
    // Tenant "e" forwards everything; tenant "p" fills PATCH with GET + PUT.
    let emulated = format!(
        "[[tenant]]\nid = \"p\"\nroute = {{ path_prefix = \"/p\" }}\napp_rules = [\"app-roles-without-type\"]\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", supports = {{ patch = false, filter = true, sort = true, bulk = false, etag = false, discovery = true }} }}\n",
        hash("tok")
    );
    let config = format!(
        "{}{}{emulated}",
        server(""),
        complete_app_tenant(app, "app_rules = [\"app-roles-without-type\"]")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let resp = c
        .post(proxy.url("/e/Users"))
        .bearer_auth("tok")
        .json(&user_with_role())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "roles", "value": [{"value": "editor", "type": "app"}]}]});
    let resp = c
        .patch(proxy.url("/p/Users/5"))
        .bearer_auth("tok")
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let seen = seen.lock().unwrap().clone();
    let body_of = |method: &str| -> Value {
        let (_, _, body) = seen
            .iter()
            .find(|(m, _, _)| m == method)
            .unwrap_or_else(|| panic!("no {method} in {seen:?}"));
        serde_json::from_str(body).unwrap()
    };
    let posted = body_of("POST");
    assert_eq!(
        posted["roles"],
        json!([{"value": "admin", "primary": true}])
    );
    let put = body_of("PUT");
    assert_eq!(
        put["roles"],
        json!([{"value": "editor"}]),
        "the emulated PUT went through the pack too"
    );
    assert!(proxy
        .logs()
        .contains("app-roles-without-type/remove-role-type"));
}

#[tokio::test]
async fn answers_read_while_filling_gaps_are_cleaned_first() {
    // An app without filtering that answers its users as a bare array: the proxy's emulated
    // filter reads it, and must see a ListResponse with typed values.
    let users: Vec<Value> = (1..=30)
        .map(|i| json!({"id": i, "userName": format!("u{i}@example.com"), "active": if i % 2 == 0 { "true" } else { "false" }}))
        .collect();
    let (app, _) = scripted_upstream(vec![Script {
        method: "GET",
        path: "/scim/v2/Users".into(),
        status: 200,
        content_type: "application/json",
        body: Value::Array(users).to_string(),
    }])
    .await;
    let config = format!(
        "{}[[tenant]]\nid = \"f\"\nroute = {{ path_prefix = \"/f\" }}\napp_rules = [\"app-generic\"]\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", supports = {{ patch = true, filter = false, sort = false, bulk = false, etag = false, discovery = false }} }}\n",
        server(""),
        hash("tok")
    );
    let proxy = Proxy::start(&config).await;
    let resp = client()
        .get(proxy.url("/f/Users"))
        .query(&[("filter", "active eq true and userName sw \"u1\"")])
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let mut names: Vec<&str> = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "u10@example.com",
            "u12@example.com",
            "u14@example.com",
            "u16@example.com",
            "u18@example.com"
        ]
    );
    assert_eq!(body["totalResults"], 5);
    assert_eq!(body["Resources"][0]["active"], true);
    assert!(body["Resources"][0]["id"].is_string());
}

#[tokio::test]
async fn an_unknown_app_pack_fails_the_check_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scimgate.toml");
    let config = format!(
        "{}{}app_rules = [\"app-nonesuch\"]\n",
        server(""),
        tenant("t", "memory:", "tok")
    );
    std::fs::write(&path, config).unwrap();
    let (code, _, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("app_rules") && err.contains("app-nonesuch"),
        "{err}"
    );
}
