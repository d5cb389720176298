//! Forwarding to an HTTP upstream: methods, paths, statuses, bodies and header hygiene.

use crate::support::*;

async fn proxy_to_echo() -> (Proxy, std::net::SocketAddr) {
    let echo = echo_upstream().await;
    std::env::set_var("ECHO_UPSTREAM_TOKEN", "upstream-secret");
    let config = format!(
        "{}[[tenant]]\nid = \"acme\"\nroute = {{ path_prefix = \"/acme\" }}\nupstream = {{ url = \"http://{echo}/scim/v2\", token_env = \"ECHO_UPSTREAM_TOKEN\", supports = {{ patch = true, filter = true, sort = true, bulk = true, discovery = true }} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server("max_body_bytes = 1024"),
        hash("idp-token"),
    );
    (Proxy::start(&config).await, echo)
}

#[tokio::test]
async fn every_scim_method_reaches_the_upstream_below_its_base_path() {
    let (proxy, _) = proxy_to_echo().await;
    let c = client();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = c
            .request(m, proxy.url("/acme/Users/2819c223?count=5"))
            .bearer_auth("idp-token");
        if method != "GET" && method != "DELETE" {
            req = req
                .header("content-type", "application/scim+json")
                .body(r#"{"userName":"bjensen"}"#);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{method}");
        let echo: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(echo["method"], method);
        assert_eq!(echo["path"], "/scim/v2/Users/2819c223");
        assert_eq!(echo["query"], "count=5");
        if method == "POST" {
            // Bodies are forwarded byte for byte.
            assert_eq!(echo["body"], r#"{"userName":"bjensen"}"#);
        }
    }
}

#[tokio::test]
async fn upstream_statuses_pass_through() {
    let (proxy, _) = proxy_to_echo().await;
    for status in [200u16, 201, 204] {
        let resp = client()
            .post(proxy.url(&format!("/acme/Users?echo_status={status}")))
            .bearer_auth("idp-token")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status);
    }
    for status in [400u16, 404, 409, 412, 500, 501, 503] {
        let resp = client()
            .get(proxy.url(&format!("/acme/Users?get_status={status}")))
            .bearer_auth("idp-token")
            .send()
            .await
            .unwrap();
        scim_error(resp, status).await;
    }
}

#[tokio::test]
async fn headers_are_cleaned_and_the_upstream_credential_replaces_the_idps() {
    let (proxy, echo) = proxy_to_echo().await;
    let resp = client()
        .get(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .header("connection", "x-drop-me")
        .header("x-drop-me", "1")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("x-request-id", "trace-abc-123")
        .header("x-scimgate-tenant", "spoofed")
        .header("x-http-method-override", "DELETE")
        .header("x-original-url", "/admin")
        .header("cookie", "session=1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-abc-123");
    // The upstream's own hop-by-hop headers stop at the proxy too.
    assert!(resp.headers().get("x-upstream-hop").is_none());
    // Its Location names the upstream; the IdP is shown the proxy's address instead.
    assert_eq!(resp.headers()["location"], proxy.url("/acme/Users/42"));
    let echo_json: serde_json::Value = resp.json().await.unwrap();
    let h = &echo_json["headers"];
    assert_eq!(h["authorization"], "Bearer upstream-secret");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(
        h["x-forwarded-host"],
        format!("127.0.0.1:{}", proxy.addr.port())
    );
    assert_eq!(h["x-scimgate-tenant"], "acme");
    assert_eq!(h["x-request-id"], "trace-abc-123");
    assert_eq!(h["host"], echo.to_string());
    for gone in [
        "x-drop-me",
        "proxy-authorization",
        "x-http-method-override",
        "x-original-url",
        "cookie",
    ] {
        assert!(h.get(gone).is_none(), "{gone} was forwarded");
    }
    assert!(!proxy.logs().contains("upstream-secret"));
}

#[tokio::test]
async fn a_request_id_is_made_when_the_client_sends_none() {
    let (proxy, _) = proxy_to_echo().await;
    let resp = client()
        .get(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let echo: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(echo["headers"]["x-request-id"], id.as_str());
    assert!(proxy.logs().contains(&id));
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused_before_the_upstream() {
    let (proxy, _) = proxy_to_echo().await;
    let c = client();
    // Small enough to arrive in one read, so the early answer is not lost to a reset.
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(1500));
    let resp = c
        .post(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    scim_error(resp, 413).await;
    // Without a Content-Length the limit is enforced while reading.
    let head = "POST /acme/Users HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer idp-token\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut raw = head.as_bytes().to_vec();
    for chunk in big.as_bytes().chunks(500) {
        raw.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend(chunk);
        raw.extend(b"\r\n");
    }
    raw.extend(b"0\r\n\r\n");
    let answer = raw_exchange(proxy.addr, &raw).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let resp = c
        .post(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .body(r#"{"userName": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(scim_error(resp, 400).await["scimType"], "invalidSyntax");
    // JSON between systems is UTF-8 (RFC 8259 §8.1): a byte that is not, even inside a
    // string, is refused here rather than passed to the app to guess at.
    let resp = c
        .post(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .body(b"{\"userName\": \"bj\xe9nsen\"}".to_vec())
        .send()
        .await
        .unwrap();
    let error = scim_error(resp, 400).await;
    assert_eq!(error["scimType"], "invalidSyntax");
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("invalid UTF-8 at line 1 column 17"),
        "{error}"
    );
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let resp = c
        .post(proxy.url("/acme/Users"))
        .bearer_auth("idp-token")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(scim_error(resp, 400).await["scimType"], "invalidSyntax");
}

#[tokio::test]
async fn paths_that_could_leave_the_base_never_reach_the_upstream() {
    let (proxy, _) = proxy_to_echo().await;
    // Sent raw: an HTTP client library would resolve or re-encode them itself. Each is a
    // way some server resolves a path above the tenant's base.
    for path in [
        "/acme/%2e%2e/admin",
        "/acme/Users/../../admin",
        "/acme/Users/..;/..;/other/Users",
        "/acme/Users/..%2F..%2Fother%2FUsers",
        "/acme/Users/..\\..\\other",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer idp-token\r\nconnection: close\r\n\r\n");
        let answer = raw_exchange(proxy.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("invalidPath"), "{path}: {answer}");
    }
}

#[tokio::test]
async fn only_scim_endpoints_and_methods_are_forwarded() {
    let (proxy, _) = proxy_to_echo().await;
    let c = client();
    // Lookalikes of SCIM endpoints would skip what the proxy does for the real ones.
    for path in ["/acme//Users", "/acme/Users/1/extra", "/acme/admin"] {
        let resp = c
            .get(proxy.url(path))
            .bearer_auth("idp-token")
            .send()
            .await
            .unwrap();
        assert_eq!(
            scim_error(resp, 404).await["detail"],
            "there is no SCIM endpoint at this path",
            "{path}"
        );
    }
    // TRACE would echo back the upstream credential the proxy adds.
    for method in ["TRACE", "OPTIONS", "PROPFIND"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = c
            .request(m, proxy.url("/acme/Users"))
            .bearer_auth("idp-token")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["allow"],
            "GET, HEAD, POST, PUT, PATCH, DELETE"
        );
        scim_error(resp, 405).await;
    }
}

#[tokio::test]
async fn https_upstreams_are_reached_with_a_configured_ca_and_h2() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path(), &[], &[]);
    let upstream = tls_echo_upstream(dir.path()).await;
    let supports = "supports = { patch = true, filter = true, sort = true, bulk = true, etag = false, discovery = true }";
    let config = format!(
        "{}[[tenant]]\nid = \"tls\"\nroute = {{ path_prefix = \"/tls\" }}\nupstream = {{ url = \"https://localhost:{}/scim/v2\", ca = \"ca.pem\", {supports} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n\
         [[tenant]]\nid = \"untrusted\"\nroute = {{ path_prefix = \"/untrusted\" }}\nupstream = {{ url = \"https://localhost:{}/scim/v2\", {supports} }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(""),
        upstream.port(),
        hash("tok"),
        upstream.port(),
        hash("tok"),
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let resp = client()
        .get(proxy.url("/tls/Users/1"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (echo["path"].as_str(), echo["version"].as_str()),
        (Some("/scim/v2/Users/1"), Some("HTTP/2.0"))
    );
    // The system's trust store does not know the development CA: no connection is made.
    let resp = client()
        .get(proxy.url("/untrusted/Users/1"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    scim_error(resp, 503).await;
    assert!(
        proxy.logs().contains("certificate"),
        "the log names the TLS failure"
    );
}

/// `/users` is the resource endpoint in any case, and the app receives RFC 7644's spelling;
/// `attributes` naming a filter is refused rather than answered with nothing but `id`.
#[tokio::test]
async fn endpoints_match_without_case_and_attributes_must_be_attribute_paths() {
    let echo = echo_upstream().await;
    let config = format!("{}{}", server(""), complete_app_tenant(echo, ""));
    let proxy = Proxy::start(&config).await;
    let c = client();
    let echoed = get_json(&c, proxy.url("/e/users/2819c223?count=1")).await;
    assert_eq!(echoed["path"], "/scim/v2/Users/2819c223");
    assert_eq!(echoed["query"], "count=1");
    let resp = c
        .get(proxy.url("/e/Users?attributes=emails%5Btype%20eq%20%22work%22%5D"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    let e = scim_error(resp, 400).await;
    assert_eq!(e["scimType"], "invalidValue");
    assert!(
        e["detail"].as_str().unwrap().starts_with("attributes"),
        "{e}"
    );
    let fine = c
        .get(proxy.url("/e/Users?attributes=emails.value,userName"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
}
