//! The OAuth 2.0 client-credentials token endpoint a tenant serves (RFC 6749 §4.4), and the
//! tokens it issues as bearer credentials of that tenant only.

use crate::auth_basic::argon2;
use crate::support::*;

/// Tenants "ping" and "other", each with an OAuth client "ping" (secrets ping-secret and
/// other-secret), and "acme" with a static token.
async fn oauth_tenants(server_extra: &str) -> Proxy {
    let oauth = |id: &str, secret: &str| {
        format!(
            "[[tenant]]\nid = \"{id}\"\nroute = {{ path_prefix = \"/{id}\" }}\nupstream = {{ url = \"memory:\" }}\nauth.oauth = {{ clients = [{{ client_id = \"ping\", argon2 = \"{}\" }}], token_ttl = \"10m\" }}\n",
            argon2(secret)
        )
    };
    let config = format!(
        "{}{}{}{}",
        server(server_extra),
        oauth("ping", "ping-secret"),
        oauth("other", "other-secret"),
        tenant("acme", "memory:", "acme-token"),
    );
    Proxy::start(&config).await
}

async fn token_request(
    proxy: &Proxy,
    tenant: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut req = client()
        .post(proxy.url(&format!("/{tenant}/oauth/token")))
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

async fn fetch_token(proxy: &Proxy, tenant: &str, secret: &str) -> String {
    let resp = token_request(
        proxy,
        tenant,
        &[("grant_type", "client_credentials")],
        Some(("ping", secret)),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(doc["token_type"], "Bearer");
    assert_eq!(doc["expires_in"], 600);
    doc["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_token_from_the_endpoint_opens_its_tenant_and_no_other() {
    let proxy = oauth_tenants("auth_throttle = { burst = 100, rate_per_s = 100 }").await;
    let token = fetch_token(&proxy, "ping", "ping-secret").await;
    let c = client();
    let get = |path: &str| c.get(proxy.url(path)).bearer_auth(&token).send();
    assert_eq!(get("/ping/Users").await.unwrap().status(), 200);
    for path in ["/other/Users", "/acme/Users", "/nobody/Users"] {
        let resp = get(path).await.unwrap();
        assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"scim\"");
        let detail = scim_error(resp, 401).await["detail"].clone();
        assert_eq!(
            detail, "the bearer token is not valid for this tenant",
            "{path}"
        );
    }
    // Client credentials in the body work too (RFC 6749 §2.3.1).
    let resp = token_request(
        &proxy,
        "other",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "ping"),
            ("client_secret", "other-secret"),
        ],
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(proxy.logs().contains("oauth:ping"));
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let proxy = oauth_tenants("auth_throttle = { burst = 100, rate_per_s = 100 }").await;
    let grant = [("grant_type", "client_credentials")];
    let cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (
            token_request(&proxy, "ping", &grant, Some(("ping", "other-secret"))).await,
            401,
            "invalid_client",
        ),
        (
            token_request(&proxy, "ping", &grant, Some(("nobody", "ping-secret"))).await,
            401,
            "invalid_client",
        ),
        (
            token_request(
                &proxy,
                "ping",
                &[("grant_type", "password")],
                Some(("ping", "ping-secret")),
            )
            .await,
            400,
            "unsupported_grant_type",
        ),
        (
            token_request(&proxy, "ping", &[], Some(("ping", "ping-secret"))).await,
            400,
            "invalid_request",
        ),
        (
            token_request(
                &proxy,
                "ping",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", "ping"),
                    ("client_secret", "ping-secret"),
                ],
                Some(("ping", "ping-secret")),
            )
            .await,
            400,
            "invalid_request",
        ),
    ];
    for (resp, status, code) in cases {
        assert_eq!(resp.status(), status, "{code}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        if status == 401 {
            assert!(resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic "));
        }
        let doc: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(doc, serde_json::json!({ "error": code }));
    }
    let logs = proxy.logs();
    assert!(logs.contains("wrong client secret") && logs.contains("no such client"));
    assert!(!logs.contains("ping-secret") && !logs.contains("other-secret"));
    // A GET is no token request.
    let resp = client()
        .get(proxy.url("/ping/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn wrong_client_secrets_feed_the_auth_throttle() {
    let proxy = oauth_tenants("auth_throttle = { burst = 2, rate_per_s = 0.01 }").await;
    let grant = [("grant_type", "client_credentials")];
    for _ in 0..2 {
        let resp = token_request(&proxy, "ping", &grant, Some(("ping", "guess"))).await;
        assert_eq!(resp.status(), 401);
    }
    let resp = token_request(&proxy, "ping", &grant, Some(("ping", "ping-secret"))).await;
    assert_eq!(resp.status(), 429);
}

/// The signing key lives as long as the process: a reload keeps issued tokens valid, while a
/// client removed from the file loses its tokens at once.
#[tokio::test]
async fn a_reload_keeps_tokens_valid_unless_their_client_is_removed() {
    let proxy = oauth_tenants("").await;
    let token = fetch_token(&proxy, "ping", "ping-secret").await;
    let config = std::fs::read_to_string(proxy.config_path()).unwrap();
    proxy.reload_with(&config).await;
    let status = |token: String| {
        let url = proxy.url("/ping/Users");
        async move {
            client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(token.clone()).await, 200);
    let renamed = config.replacen("client_id = \"ping\"", "client_id = \"ping-2\"", 1);
    proxy.reload_with(&renamed).await;
    assert_eq!(status(token).await, 401);
}

/// Replicas given the same `server.token_key_file` accept each other's tokens; a replica with
/// its own random key does not.
#[tokio::test]
async fn replicas_sharing_a_token_key_accept_each_others_tokens() {
    let key = "0123456789abcdef0123456789abcdef0123456789abcdef";
    let config = |key_line: &str| {
        format!(
            "{}[[tenant]]\nid = \"ping\"\nroute = {{ path_prefix = \"/ping\" }}\nupstream = {{ url = \"memory:\" }}\nauth.oauth = {{ clients = [{{ client_id = \"ping\", argon2 = \"{}\" }}], token_ttl = \"10m\" }}\n",
            server(key_line),
            argon2("ping-secret")
        )
    };
    let start = |key_line: &'static str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token.key"), format!("{key}\n")).unwrap();
        let text = config(key_line);
        async move { Proxy::start_in(dir, &text).await }
    };
    let a = start("token_key_file = \"token.key\"").await;
    let b = start("token_key_file = \"token.key\"").await;
    let own = start("").await;
    let token = fetch_token(&a, "ping", "ping-secret").await;
    let status = |proxy: &Proxy| {
        let req = client().get(proxy.url("/ping/Users")).bearer_auth(&token);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(status(&a).await, 200);
    assert_eq!(status(&b).await, 200, "a replica with the same key");
    assert_eq!(status(&own).await, 401, "a process with a key of its own");

    let path = a.dir.path().join("scimgate.toml");
    let (code, out, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("signed with the key in "), "{out}");
}
