//! Client certificates per tenant: each tenant's own CA, typed SANs and revocation lists.

use std::path::Path;

use crate::support::*;

/// Server certificates (no listener-wide client CA) and, per tenant "a" and "b", a client CA
/// of its own with one client certificate, as `scimgate certs dev --tenant a --tenant b` makes.
fn tenant_certs(dir: &Path) {
    let names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let tenants = ["a".to_owned(), "b".to_owned()];
    let names = scimgate::certs::DevNames {
        server_names: &names,
        client_cns: &[],
        tenants: &tenants,
    };
    scimgate::certs::write_dev_certs(dir, &names).unwrap();
}

/// A client trusting the server's CA and presenting the certificate in `cert`/`key`.
fn client_with(dir: &Path, cert: &str, key: &str) -> reqwest::Client {
    let mut pem = std::fs::read(dir.join(cert)).unwrap();
    pem.extend(std::fs::read(dir.join(key)).unwrap());
    tls_client(dir, None)
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

fn mtls_tenant(id: &str, mtls: &str) -> String {
    format!("[[tenant]]\nid = \"{id}\"\nroute = {{ path_prefix = \"/{id}\" }}\nupstream = {{ url = \"memory:\" }}\nauth.mtls = {{ {mtls} }}\n")
}

const TLS: &str = "tls = { cert = \"server.pem\", key = \"server.key\" }";

async fn status(c: &reqwest::Client, proxy: &Proxy, path: &str) -> u16 {
    c.get(proxy.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_certificate_opens_only_the_tenant_whose_ca_issued_it() {
    let dir = tempfile::tempdir().unwrap();
    tenant_certs(dir.path());
    // Tenant b accepts a's name too: only the CA tells them apart.
    let config = format!(
        "{}{}{}",
        server(TLS),
        mtls_tenant(
            "a",
            "san = [\"uri:urn:scimgate:idp:a\"], client_ca = \"tenant-a/ca.pem\""
        ),
        mtls_tenant(
            "b",
            "subject_cn = [\"a-idp\", \"b-idp\"], client_ca = \"tenant-b/ca.pem\""
        ),
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let d = proxy.dir.path();
    let a = client_with(d, "tenant-a/client.pem", "tenant-a/client.key");
    let b = client_with(d, "tenant-b/client.pem", "tenant-b/client.key");
    assert_eq!(status(&a, &proxy, "/a/Users").await, 200);
    assert_eq!(status(&b, &proxy, "/b/Users").await, 200);
    assert_eq!(
        status(&a, &proxy, "/b/Users").await,
        401,
        "a's CA is not b's"
    );
    assert_eq!(status(&b, &proxy, "/a/Users").await, 401);
    let logs = proxy.logs();
    assert!(
        logs.contains("certificate uri:urn:scimgate:idp:a"),
        "{logs}"
    );
    assert!(
        logs.contains("the client certificate is not accepted for this tenant: "),
        "the log says why: {logs}"
    );
}

#[tokio::test]
async fn a_san_is_matched_with_its_type() {
    let dir = tempfile::tempdir().unwrap();
    tenant_certs(dir.path());
    // The certificate's DNS SAN is "a-idp": as a URI it names nothing.
    let config = format!(
        "{}{}",
        server(TLS),
        mtls_tenant(
            "a",
            "san = [\"uri:a-idp\"], client_ca = \"tenant-a/ca.pem\""
        ),
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let a = client_with(
        proxy.dir.path(),
        "tenant-a/client.pem",
        "tenant-a/client.key",
    );
    assert_eq!(status(&a, &proxy, "/a/Users").await, 401);
}

/// A CA, two client certificates (serials 1 and 2) and a CRL revoking serial 2.
fn ca_with_crl(dir: &Path) {
    use rcgen::*;
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "revoking CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("crl-ca.pem"), ca.pem()).unwrap();
    for serial in [1u64, 2] {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["idp".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "idp");
        p.serial_number = Some(SerialNumber::from(serial));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join(format!("idp-{serial}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("idp-{serial}.key")), key.serialize_pem()).unwrap();
    }
    let crl = CertificateRevocationListParams {
        this_update: date_time_ymd(2024, 1, 1),
        next_update: date_time_ymd(2100, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(2u64),
            revocation_time: date_time_ymd(2024, 1, 1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca, &ca_key)
    .unwrap();
    std::fs::write(dir.join("crl.pem"), crl.pem().unwrap()).unwrap();
}

#[tokio::test]
async fn a_revoked_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    tenant_certs(dir.path());
    ca_with_crl(dir.path());
    let config = format!(
        "{}{}",
        server(TLS),
        mtls_tenant(
            "c",
            "subject_cn = [\"idp\"], client_ca = \"crl-ca.pem\", crl = [\"crl.pem\"]"
        ),
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let d = proxy.dir.path();
    let good = client_with(d, "idp-1.pem", "idp-1.key");
    let revoked = client_with(d, "idp-2.pem", "idp-2.key");
    assert_eq!(status(&good, &proxy, "/c/Users").await, 200);
    assert_eq!(status(&revoked, &proxy, "/c/Users").await, 401);
    assert!(proxy.logs().contains("Revoked"), "{}", proxy.logs());
}

#[tokio::test]
async fn check_names_each_tenants_ca_and_certs_dev_makes_one_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("certs");
    let (code, out, err) = run_cli(&[
        "certs",
        "dev",
        "--out",
        out_dir.to_str().unwrap(),
        "--tenant",
        "a",
        "--tenant",
        "b",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("tenant-a/ca.pem") && out.contains("tenant-b/client.key"),
        "{out}"
    );
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntls = {{ cert = \"certs/server.pem\", key = \"certs/server.key\" }}\n{}",
        mtls_tenant("a", "san = [\"uri:urn:scimgate:idp:a\"], client_ca = \"certs/tenant-a/ca.pem\"")
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let (code, out, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("client certificate naming SAN uri:urn:scimgate:idp:a, issued by the CA in"),
        "{out}"
    );
}
