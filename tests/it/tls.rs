//! TLS termination, ALPN and client certificates.

use crate::support::*;

/// A TLS proxy with client CAs: tenant "acme" wants a bearer token, "okta" a client
/// certificate named `okta-client`, "both" wants both.
async fn tls_proxy(dir: tempfile::TempDir) -> Proxy {
    certs(
        dir.path(),
        &["acme.scim.test"],
        &["okta-client", "intruder"],
    );
    let tls = "tls = { cert = \"server.pem\", key = \"server.key\", client_ca = \"ca.pem\" }";
    let config = format!(
        "{}{}[[tenant]]\nid = \"okta\"\nroute = {{ path_prefix = \"/okta\" }}\nupstream = {{ url = \"memory:\" }}\nauth.mtls = {{ subject_cn = [\"okta-client\"] }}\n\
         [[tenant]]\nid = \"both\"\nroute = {{ path_prefix = \"/both\" }}\nupstream = {{ url = \"memory:\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nauth.mtls = {{ san = [\"dns:okta-client\"] }}\n",
        server(tls),
        tenant("acme", "memory:", "acme-token"),
        hash("both-token"),
    );
    Proxy::start_in(dir, &config).await
}

#[tokio::test]
async fn tls_negotiates_h2_and_http1() {
    let proxy = tls_proxy(tempfile::tempdir().unwrap()).await;
    let dir = proxy.dir.path();
    let h2 = tls_client(dir, None).build().unwrap();
    let resp = h2
        .get(proxy.url("/acme/Users"))
        .bearer_auth("acme-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.version()),
        (200, reqwest::Version::HTTP_2)
    );
    let h1 = tls_client(dir, None).http1_only().build().unwrap();
    let resp = h1
        .get(proxy.url("/acme/Users"))
        .bearer_auth("acme-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.version()),
        (200, reqwest::Version::HTTP_11)
    );
}

#[tokio::test]
async fn mtls_tenant_accepts_only_its_certificate() {
    let proxy = tls_proxy(tempfile::tempdir().unwrap()).await;
    let dir = proxy.dir.path();
    let ok = tls_client(dir, Some("okta-client")).build().unwrap();
    assert_eq!(
        ok.get(proxy.url("/okta/Users"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let other = tls_client(dir, Some("intruder")).build().unwrap();
    let resp = other.get(proxy.url("/okta/Users")).send().await.unwrap();
    assert!(scim_error(resp, 401).await["detail"]
        .as_str()
        .unwrap()
        .contains("not accepted"));

    let none = tls_client(dir, None).build().unwrap();
    let resp = none.get(proxy.url("/okta/Users")).send().await.unwrap();
    assert!(scim_error(resp, 401).await["detail"]
        .as_str()
        .unwrap()
        .contains("requires a client certificate"));
}

#[tokio::test]
async fn a_tenant_with_both_wants_both() {
    let proxy = tls_proxy(tempfile::tempdir().unwrap()).await;
    let dir = proxy.dir.path();
    let cert = tls_client(dir, Some("okta-client")).build().unwrap();
    assert_eq!(
        cert.get(proxy.url("/both/Users"))
            .bearer_auth("both-token")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    scim_error(
        cert.get(proxy.url("/both/Users")).send().await.unwrap(),
        401,
    )
    .await;
    let token_only = tls_client(dir, None).build().unwrap();
    scim_error(
        token_only
            .get(proxy.url("/both/Users"))
            .bearer_auth("both-token")
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_fails_the_handshake() {
    let proxy = tls_proxy(tempfile::tempdir().unwrap()).await;
    let stranger = tempfile::tempdir().unwrap();
    certs(stranger.path(), &[], &["okta-client"]);
    // Trusts the proxy's CA but presents a certificate the proxy's CA never signed.
    let mut pem = std::fs::read(stranger.path().join("client-okta-client.pem")).unwrap();
    pem.extend(std::fs::read(stranger.path().join("client-okta-client.key")).unwrap());
    let c = tls_client(proxy.dir.path(), None)
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    assert!(c.get(proxy.url("/okta/Users")).send().await.is_err());
}

#[tokio::test]
async fn host_must_match_the_tls_server_name() {
    let proxy = tls_proxy(tempfile::tempdir().unwrap()).await;
    let c = tls_client(proxy.dir.path(), None)
        .resolve("acme.scim.test", proxy.addr)
        .http1_only()
        .build()
        .unwrap();
    let url = format!("https://acme.scim.test:{}/acme/Users", proxy.addr.port());
    let resp = c
        .get(&url)
        .bearer_auth("acme-token")
        .header("host", "other.example")
        .send()
        .await
        .unwrap();
    scim_error(resp, 421).await;
}

/// Dev certificates of a CA of their own, made in `dir/name`.
fn cert_set(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    certs(&dir.join(name), &[], &["idp-client"])
}

/// Copies the server certificate and key of the set `set` into `dir/live`, where the
/// configuration of [`live_tls_config`] points.
fn go_live(set: &std::path::Path, dir: &std::path::Path) {
    let live = dir.join("live");
    std::fs::create_dir_all(&live).unwrap();
    for file in ["server.pem", "server.key"] {
        std::fs::copy(set.join(file), live.join(file)).unwrap();
    }
}

/// A TLS proxy serving `live/server.pem` and `live/server.key` with one memory tenant "t"
/// opened by "tok". A connection held across a reload must outlive the test's pace, hence the
/// long read timeout.
fn live_tls_config() -> String {
    let settings =
        "read_timeout = \"1m\"\ntls = { cert = \"live/server.pem\", key = \"live/server.key\" }";
    format!("{}{}", server(settings), tenant("t", "memory:", "tok"))
}

/// The status of a GET of /t/Users with the token "tok", the body read so that the connection
/// can be reused.
async fn users_status(c: &reqwest::Client, proxy: &Proxy) -> u16 {
    let resp = c
        .get(proxy.url("/t/Users"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    resp.bytes().await.unwrap();
    status
}

/// A new client trusting only the CA of `set` cannot complete the handshake with the proxy.
async fn assert_handshake_fails(set: &std::path::Path, proxy: &Proxy) {
    let c = tls_client(set, None).build().unwrap();
    let err = c
        .get(proxy.url("/t/Users"))
        .bearer_auth("tok")
        .send()
        .await
        .expect_err("the handshake fails");
    assert!(
        err.is_connect() && format!("{err:?}").contains("InvalidCertificate"),
        "{err:?}"
    );
}

/// A reload re-reads the server certificate and key: new connections get the new one, so a
/// client trusting only the old CA is refused at the handshake, while a connection opened
/// before the reload keeps the certificate it was opened with.
#[tokio::test]
async fn a_reload_serves_new_certificates_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let a = cert_set(dir.path(), "a");
    go_live(&a, dir.path());
    let config = live_tls_config();
    let proxy = Proxy::start_in(dir, &config).await;
    let held = tls_client(&a, None).build().unwrap();
    assert_eq!(users_status(&held, &proxy).await, 200);

    let b = cert_set(proxy.dir.path(), "b");
    go_live(&b, proxy.dir.path());
    proxy.reload_with(&config).await;

    let trusts_b = tls_client(&b, None).build().unwrap();
    assert_eq!(users_status(&trusts_b, &proxy).await, 200);
    assert_handshake_fails(&a, &proxy).await;
    // Only the connection opened before the reload can still carry a request for a client that
    // trusts A alone: a new one would fail as above.
    assert_eq!(
        users_status(&held, &proxy).await,
        200,
        "on the connection opened before the reload"
    );
}

/// A reload whose TLS key file is gone is refused as a whole, and new connections keep getting
/// the running certificate even though the certificate file on disk has changed.
#[tokio::test]
async fn a_reload_without_its_tls_key_keeps_the_running_certificate() {
    const REFUSED: &str = "configuration reload refused; the running configuration keeps serving";
    let dir = tempfile::tempdir().unwrap();
    let a = cert_set(dir.path(), "a");
    go_live(&a, dir.path());
    let config = live_tls_config();
    let proxy = Proxy::start_in(dir, &config).await;
    assert_eq!(
        users_status(&tls_client(&a, None).build().unwrap(), &proxy).await,
        200
    );

    let b = cert_set(proxy.dir.path(), "b");
    go_live(&b, proxy.dir.path());
    std::fs::remove_file(proxy.dir.path().join("live/server.key")).unwrap();
    proxy.reload();
    proxy
        .wait_for_log(&format!("\"message\":\"{REFUSED}\""), 1)
        .await;
    let refusal = proxy
        .log_json()
        .into_iter()
        .find(|v| v["message"] == REFUSED)
        .unwrap();
    assert!(
        refusal["error"]
            .as_str()
            .unwrap_or_default()
            .contains("server.tls.key"),
        "{refusal}"
    );
    assert_eq!(proxy.log_count("\"message\":\"configuration reloaded\""), 0);

    let trusts_a = tls_client(&a, None).build().unwrap();
    assert_eq!(users_status(&trusts_a, &proxy).await, 200);
    assert_handshake_fails(&b, &proxy).await;
}
