//! Routing requests to tenants and authenticating them.

use crate::support::*;

async fn two_tenants() -> Proxy {
    let config = format!(
        "{}{}{}[[tenant]]\nid = \"globex\"\nroute = {{ host = \"globex.scim.test\" }}\nupstream = {{ url = \"memory:\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}, {{ sha256 = \"{}\", not_after = \"2020-01-01T00:00:00Z\" }}, {{ sha256 = \"{}\", not_after = \"2999-01-01T00:00:00Z\" }}]\n",
        server(""),
        tenant("acme", "memory:", "acme-token"),
        tenant("initech", "memory:", "initech-token"),
        hash("globex-token"),
        hash("globex-expired"),
        hash("globex-next"),
    );
    Proxy::start(&config).await
}

#[tokio::test]
async fn path_prefix_routes_to_the_tenant() {
    let proxy = two_tenants().await;
    let resp = client()
        .get(proxy.url("/acme/Users"))
        .bearer_auth("acme-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/scim+json");
}

#[tokio::test]
async fn host_routes_to_the_tenant() {
    let proxy = two_tenants().await;
    let c = reqwest::Client::builder()
        .resolve("globex.scim.test", proxy.addr)
        .build()
        .unwrap();
    let url = format!("http://globex.scim.test:{}/Users", proxy.addr.port());
    let resp = c
        .get(&url)
        .bearer_auth("globex-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A rotated-in token with a future expiry works alongside the current one.
    let resp = c.get(&url).bearer_auth("globex-next").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// An unauthenticated caller cannot tell a tenant that does not exist from a wrong token, so it
/// cannot list the tenants; the log keeps the real reason.
#[tokio::test]
async fn an_unknown_tenant_is_answered_as_a_wrong_credential() {
    let proxy = two_tenants().await;
    let c = client();
    for (path, token) in [
        ("/nobody/Users", Some("acme-token")),
        ("/nobody/Users", None),
    ] {
        let unknown = c.get(proxy.url(path));
        let known = c.get(proxy.url("/acme/Users"));
        let (unknown, known) = match token {
            Some(t) => (unknown.bearer_auth(t), known.bearer_auth("wrong-token")),
            None => (unknown, known),
        };
        let (a, b) = (unknown.send().await.unwrap(), known.send().await.unwrap());
        assert_eq!(
            a.headers()["www-authenticate"],
            b.headers()["www-authenticate"]
        );
        let (a, b) = (scim_error(a, 401).await, scim_error(b, 401).await);
        assert_eq!(a, b, "same answer for {path} with {token:?}");
    }
    assert!(proxy.logs().contains("no tenant is served at this address"));
}

#[tokio::test]
async fn a_request_naming_two_hosts_is_refused() {
    let proxy = two_tenants().await;
    // Absolute-form target for one host, Host header for another.
    let raw = format!(
        "GET http://globex.scim.test:{}/Users HTTP/1.1\r\nHost: victim.example\r\nAuthorization: Bearer globex-token\r\nConnection: close\r\n\r\n",
        proxy.addr.port()
    );
    let answer = raw_exchange(proxy.addr, raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let twice = "GET /acme/Users HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nAuthorization: Bearer acme-token\r\nConnection: close\r\n\r\n";
    let answer = raw_exchange(proxy.addr, twice.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[tokio::test]
async fn a_token_of_one_tenant_never_opens_another() {
    let proxy = two_tenants().await;
    let resp = client()
        .get(proxy.url("/initech/Users"))
        .bearer_auth("acme-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"scim\"");
    scim_error(resp, 401).await;
}

#[tokio::test]
async fn missing_wrong_and_expired_tokens_are_401_and_never_logged() {
    let proxy = two_tenants().await;
    let c = client();
    let resp = c.get(proxy.url("/acme/Users")).send().await.unwrap();
    assert!(scim_error(resp, 401).await["detail"]
        .as_str()
        .unwrap()
        .contains("required"));
    let resp = c
        .get(proxy.url("/acme/Users"))
        .bearer_auth("wrong-secret-value")
        .send()
        .await
        .unwrap();
    scim_error(resp, 401).await;
    let resp = c
        .get(proxy.url("/acme/Users"))
        .basic_auth("user", Some("pw"))
        .send()
        .await
        .unwrap();
    scim_error(resp, 401).await;

    let g = reqwest::Client::builder()
        .resolve("globex.scim.test", proxy.addr)
        .build()
        .unwrap();
    let url = format!("http://globex.scim.test:{}/Users", proxy.addr.port());
    let resp = g
        .get(&url)
        .bearer_auth("globex-expired")
        .send()
        .await
        .unwrap();
    assert_eq!(
        scim_error(resp, 401).await["detail"],
        "the bearer token is not valid for this tenant",
        "that the token was once valid is not the caller's to know"
    );
    assert!(proxy.logs().contains("the bearer token has expired"));

    let logs = proxy.logs();
    assert!(logs.contains("\"status\":401"), "{logs}");
    for secret in ["wrong-secret-value", "globex-expired", "acme-token"] {
        assert!(!logs.contains(secret), "a token reached the log");
    }
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let proxy = two_tenants().await;
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = c
        .get(proxy.url("/acme/Users"))
        .bearer_auth("acme-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
}
