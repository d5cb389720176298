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
         [[tenant]]\nid = \"both\"\nroute = {{ path_prefix = \"/both\" }}\nupstream = {{ url = \"memory:\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nauth.mtls = {{ san = [\"okta-client\"] }}\n",
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
