//! Every answer is a SCIM Error: the legacy app's odd errors rewritten, and an upstream that is
//! down, slow or rude answered 502/503/504.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::support::*;

async fn proxy_to_legacy(upstream_token: &str) -> Proxy {
    let legacy = legacy_app("legacy-secret").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("upstream.token"),
        format!("{upstream_token}\n"),
    )
    .unwrap();
    let config = format!(
        "{}[[tenant]]\nid = \"acme\"\nroute = {{ path_prefix = \"/acme\" }}\nupstream = {{ url = \"http://{legacy}/scim/v2\", token_file = \"upstream.token\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        hash("idp-token"),
    );
    Proxy::start_in(dir, &config).await
}

#[tokio::test]
async fn legacy_app_crud_works_through_the_proxy_with_scim_media_type() {
    let proxy = proxy_to_legacy("legacy-secret").await;
    let c = client();
    let user = serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"});
    let resp = c
        .post(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["content-type"], "application/scim+json");
    let created: serde_json::Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let resp = c
        .get(proxy.url(&format!("/acme/Users/{id}")))
        .bearer_auth("idp-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c
        .delete(proxy.url(&format!("/acme/Users/{id}")))
        .bearer_auth("idp-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = c
        .get(proxy.url(&format!("/acme/Users/{id}")))
        .bearer_auth("idp-token")
        .send()
        .await
        .unwrap();
    assert_eq!(scim_error(resp, 404).await["detail"], "not found");
}

#[tokio::test]
async fn legacy_errors_become_scim_errors() {
    let proxy = proxy_to_legacy("legacy-secret").await;
    let c = client();
    let user = serde_json::json!({"userName": "dup"});
    c.post(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .json(&user)
        .send()
        .await
        .unwrap();
    let resp = c
        .post(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .json(&user)
        .send()
        .await
        .unwrap();
    let e = scim_error(resp, 409).await;
    assert_eq!(
        (e["scimType"].as_str(), e["detail"].as_str()),
        (Some("uniqueness"), Some("user already exists"))
    );

    let resp = c
        .post(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .json(&serde_json::json!({"displayName": "x"}))
        .send()
        .await
        .unwrap();
    // The legacy app answers 422, which SCIM does not have (RFC 7644 §3.12).
    let e = scim_error(resp, 400).await;
    assert_eq!(e["detail"], "userName is required");
    assert_eq!(e["scimType"], "invalidValue");

    // HTML pages are not echoed. (The app has no PUT on a collection.)
    let resp = c
        .put(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        scim_error(resp, 405).await["detail"],
        "the application answered 405 Method Not Allowed"
    );
    let resp = c
        .get(proxy.url("/acme/Printers"))
        .bearer_auth("idp-token")
        .send()
        .await
        .unwrap();
    // A path that is no SCIM endpoint never reaches the app.
    assert_eq!(
        scim_error(resp, 404).await["detail"],
        "there is no SCIM endpoint at this path"
    );

    // A JSON body the proxy accepts but the app refuses with plain text.
    let resp = c
        .post(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(scim_error(resp, 400).await["detail"], "bad request");
}

#[tokio::test]
async fn empty_500_and_custom_statuses_become_scim_errors() {
    // The app's test hooks ignore what follows their name: the tenants' bases point at them.
    let legacy = legacy_app("legacy-secret").await;
    let config = format!(
        "{}{}{}",
        server(""),
        tenant("t", &format!("http://{legacy}/_test/empty500"), "idp-token"),
        tenant("s", &format!("http://{legacy}/_test/status"), "idp-token")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let resp = c
        .get(proxy.url("/t/Users"))
        .bearer_auth("idp-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        scim_error(resp, 500).await["detail"],
        "the application answered 500 Internal Server Error"
    );
    let url = proxy.url("/s/Users?code=503&type=text/plain&body=maintenance%20window");
    let resp = c.get(url).bearer_auth("idp-token").send().await.unwrap();
    assert_eq!(scim_error(resp, 503).await["detail"], "maintenance window");
}

#[tokio::test]
async fn upstream_refusing_the_proxy_credential_is_a_502_not_a_401() {
    let proxy = proxy_to_legacy("stale-upstream-token").await;
    let resp = client()
        .get(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("www-authenticate").is_none());
    assert!(scim_error(resp, 502).await["detail"]
        .as_str()
        .unwrap()
        .contains("upstream credential"));
}

async fn proxy_to(addr: std::net::SocketAddr) -> Proxy {
    let config = format!(
        "{}[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nupstream = {{ url = \"http://{addr}\", timeout = \"500ms\", connect_timeout = \"500ms\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        hash("tok"),
    );
    Proxy::start(&config).await
}

#[tokio::test]
async fn upstream_down_is_503_with_retry_after() {
    let proxy = proxy_to(closed_port().await).await;
    let resp = client()
        .get(proxy.url("/t/Users"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "5");
    scim_error(resp, 503).await;
    assert!(proxy.logs().contains("request failed"));
}

#[tokio::test]
async fn silent_upstream_is_504() {
    let proxy = proxy_to(rude_upstream(Rude::Silent).await).await;
    let resp = client()
        .get(proxy.url("/t/Users"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    scim_error(resp, 504).await;
}

#[tokio::test]
async fn reset_and_garbage_are_502() {
    for kind in [Rude::Reset, Rude::Garbage] {
        let proxy = proxy_to(rude_upstream(kind).await).await;
        let resp = client()
            .get(proxy.url("/t/Users"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        scim_error(resp, 502).await;
    }
}

#[tokio::test]
async fn upstream_stalling_mid_body_is_cut_at_the_deadline() {
    let stalls = rude_upstream(Rude::StallsMidBody).await;
    let config = format!(
        "{}[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nupstream = {{ url = \"http://{stalls}\", timeout = \"500ms\", supports = {{ patch = true, filter = true, sort = true, bulk = true, etag = true, discovery = true }} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        hash("tok"),
    );
    let proxy = Proxy::start(&config).await;
    // Streamed through (an app with its own discovery documents): the head was already
    // sent, so the body ends in an error, not a hang.
    let resp = client()
        .get(proxy.url("/t/Schemas"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());
    // A resource answer the proxy reads whole (here: to project it) runs into the deadline
    // and becomes a SCIM Error.
    let resp = client()
        .get(proxy.url("/t/Users?attributes=userName"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    scim_error(resp, 504).await;
}

/// SCIM has no 422 (RFC 7644 §3.12): an app's "unprocessable entity" reaches the IdP as 400
/// `invalidValue`, with the app's text as `detail`.
#[tokio::test]
async fn an_apps_422_becomes_400_invalid_value() {
    let app = json_upstream(|_, _| {
        (
            422,
            r#"{"errors":[{"field":"userName"}],"message":"userName is not valid"}"#.to_owned(),
        )
    })
    .await;
    let config = format!(
        "{}{}",
        server(""),
        tenant("t", &format!("http://{app}/scim/v2"), "tok")
    );
    let proxy = Proxy::start(&config).await;
    let resp = client()
        .put(proxy.url("/t/Users/1"))
        .bearer_auth("tok")
        .json(&serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x"}))
        .send()
        .await
        .unwrap();
    let e = scim_error(resp, 400).await;
    assert_eq!(e["scimType"], "invalidValue");
    assert_eq!(e["detail"], "userName is not valid");
}

/// An app that answers `GET …/Users/{id}` with a User of `size(id)` bytes, sending all but the
/// last 100 bytes at once and the rest after `pause(id)`.
async fn paced_app(size: fn(&str) -> usize, pause: fn(&str) -> Duration) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                let id = path.rsplit('/').next().unwrap_or_default().to_owned();
                let mut body = format!(
                    "{{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"{id}\",\"userName\":\"{id}\",\"title\":\""
                );
                let pad = size(&id).saturating_sub(body.len() + 2);
                body.push_str(&"x".repeat(pad));
                body.push_str("\"}");
                let header = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let (first, rest) = body.as_bytes().split_at(body.len() - 100);
                let _ = stream.write_all(header.as_bytes()).await;
                let _ = stream.write_all(first).await;
                tokio::time::sleep(pause(&id)).await;
                let _ = stream.write_all(rest).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn answers_read_whole_share_one_memory_budget_and_say_why_they_failed() {
    let app = paced_app(
        |id| match id {
            "big" => 900_000,
            "huge" => 2_000_000,
            _ => 200_000,
        },
        |id| match id {
            "big" => Duration::from_secs(4),
            _ => Duration::ZERO,
        },
    )
    .await;
    // The response rules of app-generic make the proxy read every answer whole.
    let config = format!(
        "{}{}",
        server("max_buffered_bytes = 1048576"),
        complete_app_tenant(app, "app_rules = [\"app-generic\"]")
    );
    let proxy = Proxy::start(&config).await;
    let get = |id: &'static str| {
        let url = proxy.url(&format!("/e/Users/{id}"));
        async move { client().get(url).bearer_auth("tok").send().await.unwrap() }
    };
    // One answer larger than the budget: 502, and the detail (and the log) says why.
    let err = scim_error(get("huge").await, 502).await;
    let detail = err["detail"].as_str().unwrap();
    assert!(detail.contains("larger than 1 MiB"), "{detail}");
    // 900 KB held by an answer still arriving leaves no room for 200 KB more: 503 after a
    // short wait, with Retry-After; once it is done there is room again.
    let big = tokio::spawn(get("big"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let small = get("small").await;
    assert_eq!(small.status(), 503);
    assert!(small.headers().contains_key("retry-after"));
    assert_eq!(big.await.unwrap().status(), 200);
    assert_eq!(get("small").await.status(), 200);
    assert!(
        proxy.logs().contains("larger than 1 MiB"),
        "the log names the cause"
    );
}

/// What the proxy can see of a request's head and media type is answered as a SCIM Error, over
/// HTTP/1.1 and HTTP/2 alike, and a body that is not JSON is refused before anything is written.
#[tokio::test]
async fn oversized_heads_and_bodies_of_another_media_type_get_scim_errors() {
    let config = format!("{}{}", server(""), tenant("t", "memory:", "tok"));
    let proxy = Proxy::start(&config).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(LIMIT)
        .build()
        .unwrap();
    for c in [client(), h2] {
        let mut many = c.get(proxy.url("/t/Users")).bearer_auth("tok");
        for i in 0..80 {
            many = many.header(format!("x-extra-{i}"), "1");
        }
        let err = scim_error(many.send().await.unwrap(), 431).await;
        assert!(err["detail"].as_str().unwrap().contains("header"), "{err}");
        let big = c
            .get(proxy.url("/t/Users"))
            .bearer_auth("tok")
            .header("x-big", "a".repeat(40 << 10))
            .send()
            .await
            .unwrap();
        scim_error(big, 431).await;
        let long = format!("/t/Users?filter=userName eq \"{}\"", "a".repeat(10 << 10));
        let resp = c
            .get(proxy.url(&long))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        scim_error(resp, 414).await;
        let plain = c
            .post(proxy.url("/t/Users"))
            .bearer_auth("tok")
            .header("content-type", "text/plain")
            .body(
                r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"plain"}"#,
            )
            .send()
            .await
            .unwrap();
        let err = scim_error(plain, 415).await;
        assert!(
            err["detail"].as_str().unwrap().contains("text/plain"),
            "{err}"
        );
    }
    let list = get_json(&client(), proxy.url("/t/Users")).await;
    assert_eq!(list["totalResults"], 0, "nothing was created");
    // With a charset, or in another case, JSON is JSON.
    let created = client()
        .post(proxy.url("/t/Users"))
        .bearer_auth("tok")
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"json"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
}
