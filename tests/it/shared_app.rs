//! Two tenants in front of one legacy app: what the proxy does for the app (emulated PATCH,
//! Bulk) must hold for the app as a whole, not for each tenant on its own.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use serde_json::{json, Value};

use crate::support::*;

/// One proxy with tenants "a" and "b" (tokens "tok-a" and "tok-b"), both routed by path prefix
/// to the same legacy app; returned with the app's address.
async fn two_tenants_one_app() -> (Proxy, SocketAddr) {
    let legacy = legacy_app("legacy-secret").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("legacy.token"), "legacy-secret").unwrap();
    let mut config = server("");
    for id in ["a", "b"] {
        config.push_str(&format!(
            "[[tenant]]\nid = \"{id}\"\nroute = {{ path_prefix = \"/{id}\" }}\nupstream = {{ url = \"http://{legacy}/scim/v2\", token_file = \"legacy.token\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
            hash(&format!("tok-{id}")),
        ));
    }
    (Proxy::start_in(dir, &config).await, legacy)
}

/// Creates `doc` at `path` through tenant `t` and returns its id.
async fn create(c: &reqwest::Client, proxy: &Proxy, t: &str, path: &str, doc: &Value) -> String {
    let resp = c
        .post(proxy.url(&format!("/{t}{path}")))
        .bearer_auth(format!("tok-{t}"))
        .json(doc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{t}{path}");
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// GET through tenant `t`, the answer read as JSON after checking it is a 200.
async fn read(c: &reqwest::Client, url: &str, t: &str) -> Value {
    let resp = c
        .get(url)
        .bearer_auth(format!("tok-{t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp.json().await.unwrap()
}

/// The proxy emulates PATCH for the app with a GET and a PUT; two tenants fronting the same app
/// reach the same group, so the lock that keeps one PATCH's GET and PUT together must be per
/// resource of the app, not per tenant, or members added through one tenant are overwritten
/// through the other.
#[tokio::test]
async fn a_hundred_concurrent_patches_through_two_tenants_lose_no_member() {
    let (proxy, _) = two_tenants_one_app().await;
    let c = client();
    let group = create(
        &c,
        &proxy,
        "a",
        "/Groups",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Everyone"}),
    )
    .await;
    let mut members = Vec::new();
    for i in 0..100 {
        let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("member{i}")});
        members.push(create(&c, &proxy, "a", "/Users", &user).await);
    }

    // One connection per PATCH, all sent at once: half through each tenant.
    let mut patches = tokio::task::JoinSet::new();
    for (i, member) in members.iter().enumerate() {
        let t = ["a", "b"][i % 2];
        let url = proxy.url(&format!("/{t}/Groups/{group}"));
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}]
        });
        let c = c.clone();
        patches.spawn(async move {
            match c
                .patch(&url)
                .bearer_auth(format!("tok-{t}"))
                .json(&body)
                .send()
                .await
            {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    (t, status, resp.text().await.unwrap_or_default())
                }
                Err(e) => (t, 0, format!("{e:?}")),
            }
        });
    }
    let all = async {
        let mut answers = Vec::new();
        while let Some(answer) = patches.join_next().await {
            answers.push(answer.unwrap());
        }
        answers
    };
    let answers = tokio::time::timeout(LIMIT, all)
        .await
        .expect("the PATCHes are answered in time");
    assert_eq!(answers.len(), 100);
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, status, _)| !matches!(status, 200 | 204))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 100 PATCHes failed, first: {:?}",
        failed.len(),
        failed[0]
    );

    let expected: BTreeSet<&str> = members.iter().map(String::as_str).collect();
    for t in ["a", "b"] {
        let doc = read(&c, &proxy.url(&format!("/{t}/Groups/{group}")), t).await;
        let listed = doc["members"].as_array().map_or(0, Vec::len);
        assert_eq!(listed, 100, "through {t}: {doc}");
        let values: BTreeSet<&str> = doc["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["value"].as_str())
            .collect();
        assert_eq!(values, expected, "through {t}");
    }
}

/// The IdP is told where the proxy serves what a Bulk created, never where the app keeps it:
/// the app's address would be unreachable for the IdP and bypass the proxy.
#[tokio::test]
async fn a_bulk_answer_carries_the_proxys_address_never_the_upstreams() {
    let (proxy, legacy) = two_tenants_one_app().await;
    let c = client();
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "POST", "path": "/Users", "bulkId": "u1", "data": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bulky"}}]
    });
    let resp = c
        .post(proxy.url("/a/Bulk"))
        .bearer_auth("tok-a")
        .json(&bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let upstream = format!("127.0.0.1:{}", legacy.port());
    assert!(
        !text.contains(&upstream),
        "the app's address {upstream} in: {text}"
    );
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        answer["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    let op = &answer["Operations"][0];
    assert_eq!(
        (op["status"].as_str(), op["bulkId"].as_str()),
        (Some("201"), Some("u1")),
        "{answer}"
    );
    let public = proxy.url("/a/Users/");
    let location = op["location"].as_str().unwrap_or_default();
    assert!(location.starts_with(&public), "location {location:?}");
    if let Some(inner) = op["response"]["meta"]["location"].as_str() {
        assert!(
            inner.starts_with(&public),
            "response meta.location {inner:?}"
        );
    }
    // The location is one the IdP can use.
    assert_eq!(read(&c, location, "a").await["userName"], "bulky");
}

/// An app whose GET takes 300 ms and that keeps the order in which it received requests; it
/// answers a PUT with what was put, and every other request with one small User.
async fn slow_reading_app() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let order: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let log = order.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let service = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| {
                    let log = log.clone();
                    async move {
                        let method = req.method().to_string();
                        log.lock().unwrap().push(method.clone());
                        if method == "GET" {
                            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        }
                        let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"u@example.com","active":true}"#;
                        let status = if method == "DELETE" { 204 } else { 200 };
                        let put = http_body_util::BodyExt::collect(req.into_body()).await;
                        let body = match (status, method.as_str()) {
                            (204, _) => bytes::Bytes::new(),
                            (_, "PUT") => put.map(|b| b.to_bytes()).unwrap_or_default(),
                            _ => bytes::Bytes::from(user),
                        };
                        let resp = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/scim+json")
                            .body(http_body_util::Full::new(body))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    (addr, order)
}

/// A DELETE sent while an emulated PATCH of the same user is between its GET and its PUT waits
/// for the PUT: otherwise the PUT would bring back the user the DELETE removed.
#[tokio::test]
async fn a_forwarded_delete_waits_for_an_emulated_patch_of_the_same_resource() {
    let (app, order) = slow_reading_app().await;
    let config = format!(
        "{}[[tenant]]\nid = \"e\"\nroute = {{ path_prefix = \"/e\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", supports = {{ patch = false, filter = true, sort = true, bulk = false, etag = false, discovery = true }} }}\n",
        server(""),
        hash("tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let patching = {
        let (c, url) = (c.clone(), proxy.url("/e/Users/1"));
        tokio::spawn(async move {
            c.patch(url)
                .bearer_auth("tok")
                .json(&patch)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let deleted = c
        .delete(proxy.url("/e/Users/1"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(patching.await.unwrap(), 200);
    assert_eq!(*order.lock().unwrap(), ["GET", "PUT", "DELETE"]);
}
