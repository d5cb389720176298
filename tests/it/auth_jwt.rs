//! JWT bearer tokens of an outside issuer: keys from a file or from a key server on loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

const ISSUER: &str = "https://issuer.test/tenant-1/v2.0";
const AUDIENCE: &str = "api://scimgate";

/// An ES256 key pair: signs tokens, and is published as a JWK named `kid`.
pub struct Key {
    kid: String,
    pair: rcgen::KeyPair,
}

impl Key {
    pub fn new(kid: &str) -> Key {
        Key {
            kid: kid.into(),
            pair: rcgen::KeyPair::generate().unwrap(),
        }
    }

    pub fn jwk(&self) -> serde_json::Value {
        let raw = self.pair.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
        })
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = EncodingKey::from_ec_pem(self.pair.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

pub fn jwks(keys: &[&Key]) -> String {
    serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }).to_string()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims of a token valid for ten minutes, with `changes` applied.
fn claims(changes: serde_json::Value) -> serde_json::Value {
    let mut c = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "entra-provisioning",
        "iat": now(), "nbf": now() - 5, "exp": now() + 600,
    });
    for (k, v) in changes.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// How a key server answers.
#[derive(Clone, Copy)]
enum KeyServer {
    Serves,
    /// Accepts the connection and never answers.
    Hangs,
}

/// A key server on loopback serving `body` at any path, counting the fetches.
async fn key_server(body: String, behaviour: KeyServer) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                if let KeyServer::Hangs = behaviour {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, fetches)
}

/// A tenant `id` taking JWTs whose keys are `keys` (`jwks_file = …` or `jwks_url = …`).
fn jwt_tenant(id: &str, keys: &str, audience: &str) -> String {
    format!(
        "[[tenant]]\nid = \"{id}\"\nroute = {{ path_prefix = \"/{id}\" }}\nupstream = {{ url = \"memory:\" }}\nauth.jwt = {{ issuer = \"{ISSUER}\", audience = \"{audience}\", algorithms = [\"ES256\"], {keys} }}\n"
    )
}

async fn get_bearer(proxy: &Proxy, path: &str, token: &str) -> reqwest::Response {
    client()
        .get(proxy.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_valid_jwt_opens_its_tenant_and_every_flaw_is_a_plain_401() {
    let key = Key::new("k1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&key])).unwrap();
    let config = format!(
        "{}{}{}{}",
        server("auth_throttle = { burst = 100, rate_per_s = 100 }"),
        jwt_tenant("entra", "jwks_file = \"jwks.json\"", AUDIENCE),
        jwt_tenant("other", "jwks_file = \"jwks.json\"", "api://other"),
        tenant("acme", "memory:", "acme-token"),
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let good = key.sign(&claims(serde_json::json!({})));
    assert_eq!(
        get_bearer(&proxy, "/entra/Users", &good).await.status(),
        200
    );
    // Within the leeway (60 s by default) a just-expired token still passes.
    let just = key.sign(&claims(serde_json::json!({ "exp": now() - 10 })));
    assert_eq!(
        get_bearer(&proxy, "/entra/Users", &just).await.status(),
        200
    );

    let stranger = Key::new("k1");
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(serde_json::json!({})),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    let flawed = [
        ("/other/Users", good.clone()), // another tenant's audience
        ("/acme/Users", good.clone()),  // a tenant without JWTs
        (
            "/entra/Users",
            key.sign(&claims(serde_json::json!({ "exp": now() - 600 }))),
        ),
        (
            "/entra/Users",
            key.sign(&claims(serde_json::json!({ "nbf": now() + 600 }))),
        ),
        (
            "/entra/Users",
            key.sign(&claims(serde_json::json!({ "aud": "api://else" }))),
        ),
        (
            "/entra/Users",
            key.sign(&claims(serde_json::json!({ "iss": "https://evil.test" }))),
        ),
        (
            "/entra/Users",
            stranger.sign(&claims(serde_json::json!({}))),
        ),
        ("/entra/Users", hs256),
        ("/nobody/Users", good.clone()),
    ];
    let mut details = Vec::new();
    for (path, token) in flawed {
        let resp = get_bearer(&proxy, path, &token).await;
        assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"scim\"");
        details.push(scim_error(resp, 401).await["detail"].clone());
    }
    assert!(details.iter().all(|d| *d == details[0]), "{details:?}");
    let logs = proxy.logs();
    assert!(
        logs.contains("ExpiredSignature"),
        "the log keeps the reason"
    );
    assert!(logs.contains("jwt:entra-provisioning"), "{logs}");
}

#[tokio::test]
async fn keys_from_a_url_are_fetched_once_and_kept() {
    let key = Key::new("k1");
    let (addr, fetches) = key_server(jwks(&[&key]), KeyServer::Serves).await;
    let config = format!(
        "{}{}",
        server(""),
        jwt_tenant(
            "entra",
            &format!("jwks_url = \"http://{addr}/keys\""),
            AUDIENCE
        ),
    );
    let proxy = Proxy::start(&config).await;
    for _ in 0..3 {
        let token = key.sign(&claims(serde_json::json!({})));
        assert_eq!(
            get_bearer(&proxy, "/entra/Users", &token).await.status(),
            200
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

/// A key server that is down answers 503 with a Retry-After (the token may be fine); one that
/// hangs costs its own tenant one bounded wait, and other tenants nothing.
#[tokio::test]
async fn an_unreachable_key_server_is_503_and_stalls_no_other_tenant() {
    let key = Key::new("k1");
    let down = closed_port().await;
    let (hangs, _) = key_server(String::new(), KeyServer::Hangs).await;
    let config = format!(
        "{}{}{}{}",
        server(""),
        jwt_tenant(
            "down",
            &format!("jwks_url = \"http://{down}/keys\""),
            AUDIENCE
        ),
        jwt_tenant(
            "slow",
            &format!("jwks_url = \"http://{hangs}/keys\""),
            AUDIENCE
        ),
        tenant("acme", "memory:", "acme-token"),
    );
    let proxy = Proxy::start(&config).await;
    let token = key.sign(&claims(serde_json::json!({})));
    let resp = get_bearer(&proxy, "/down/Users", &token).await;
    assert!(resp.headers().contains_key("retry-after"));
    scim_error(resp, 503).await;

    let slow_started = Instant::now();
    let slow = tokio::spawn({
        let url = proxy.url("/slow/Users");
        let token = token.clone();
        async move { client().get(url).bearer_auth(token).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let resp = get_bearer(&proxy, "/acme/Users", "acme-token").await;
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let resp = slow.await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(
        slow_started.elapsed() < Duration::from_secs(8),
        "the fetch is bounded: {:?}",
        slow_started.elapsed()
    );
}

#[tokio::test]
async fn check_explains_the_jwt_settings_and_refuses_shared_secret_algorithms() {
    let key = Key::new("k1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), jwks(&[&key])).unwrap();
    let good = format!(
        "{}{}",
        server(""),
        jwt_tenant("entra", "jwks_file = \"jwks.json\"", AUDIENCE)
    );
    let path = dir.path().join("good.toml");
    std::fs::write(&path, &good).unwrap();
    let (code, out, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("JWT bearer tokens of issuer {ISSUER}")),
        "{out}"
    );

    let bad = good.replace("[\"ES256\"]", "[\"HS256\"]").replace(
        "jwks_file = \"jwks.json\"",
        "jwks_url = \"http://keys.example.com/keys\"",
    );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, &bad).unwrap();
    let (code, _, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("auth.jwt.algorithms: \"HS256\""), "{err}");
    assert!(err.contains("auth.jwt.jwks_url"), "{err}");
}

/// A key server over TLS (HTTP/1.1) with the server certificate of a `certs` folder, serving
/// `body` at any path.
async fn tls_key_server(body: String, certs: &std::path::Path) -> SocketAddr {
    let files = scimgate::config::TlsFiles {
        cert: certs.join("server.pem"),
        key: certs.join("server.key"),
        client_ca: None,
        tenant_cas: Vec::new(),
    };
    let mut tls = (*scimgate::listener::server_config(&files).unwrap()).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, body) = (acceptor.clone(), body.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake here.
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_https_key_server_is_checked_against_the_tenants_jwks_ca() {
    let key = Key::new("k1");
    let dir = tempfile::tempdir().unwrap();
    let keys_certs = certs(&dir.path().join("keys"), &[], &[]);
    certs(&dir.path().join("other"), &[], &[]);
    let addr = tls_key_server(jwks(&[&key]), &keys_certs).await;
    let url = format!("jwks_url = \"https://{addr}/keys\"");
    let config = format!(
        "{}{}{}{}",
        server(""),
        jwt_tenant(
            "pinned",
            &format!("{url}, jwks_ca = \"keys/ca.pem\""),
            AUDIENCE
        ),
        jwt_tenant(
            "wrong",
            &format!("{url}, jwks_ca = \"other/ca.pem\""),
            AUDIENCE
        ),
        jwt_tenant("system", &url, AUDIENCE),
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let token = key.sign(&claims(serde_json::json!({})));
    assert_eq!(
        get_bearer(&proxy, "/pinned/Users", &token).await.status(),
        200
    );
    // The same URL under another trust is another source: the keys fetched above do not count.
    for tenant in ["wrong", "system"] {
        let resp = get_bearer(&proxy, &format!("/{tenant}/Users"), &token).await;
        scim_error(resp, 503).await;
    }
    let logs = proxy.logs();
    assert!(logs.contains("fetching the JWT key set failed"), "{logs}");

    let path = proxy.dir.path().join("check.toml");
    std::fs::write(&path, &config).unwrap();
    let (code, out, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("server checked against the CA in"), "{out}");
}
