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

/// Writes `name.pem` (the certificate, then `chain`) and `name.key` for a client certificate
/// named "idp" issued by `ca`.
fn client_pem(
    dir: &Path,
    name: &str,
    ca: &(rcgen::Certificate, rcgen::KeyPair),
    chain: &[&rcgen::Certificate],
) {
    use rcgen::*;
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["idp".to_owned()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "idp");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &ca.0, &ca.1).unwrap();
    let mut pem = cert.pem();
    for c in chain {
        pem.push_str(&c.pem());
    }
    std::fs::write(dir.join(format!("{name}.pem")), pem).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

/// A CA named `cn`: self-signed, or issued by `parent` (an intermediate).
fn ca(
    cn: &str,
    parent: Option<&(rcgen::Certificate, rcgen::KeyPair)>,
) -> (rcgen::Certificate, rcgen::KeyPair) {
    use rcgen::*;
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = match parent {
        None => p.self_signed(&key).unwrap(),
        Some((pc, pk)) => p.signed_by(&key, pc, pk).unwrap(),
    };
    (cert, key)
}

fn sha256_hex(cert: &rcgen::Certificate) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(cert.der()))
}

/// OpenSSL's way of writing a fingerprint: upper case, ':' between bytes.
fn openssl_style(hex: &str) -> String {
    let upper = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..upper.len())
        .step_by(2)
        .map(|i| &upper[i..i + 2])
        .collect();
    pairs.join(":")
}

#[tokio::test]
async fn a_pinned_issuer_narrows_the_listeners_client_ca_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    tenant_certs(dir.path());
    let d = dir.path();
    // Two roots in the listener's bundle; an intermediate under the first, sent by clients.
    let (r1, r2) = (ca("root one", None), ca("root two", None));
    let i1 = ca("intermediate one", Some(&r1));
    std::fs::write(
        d.join("clients-ca.pem"),
        format!("{}{}", r1.0.pem(), r2.0.pem()),
    )
    .unwrap();
    client_pem(d, "by-r1", &r1, &[]);
    client_pem(d, "by-r2", &r2, &[]);
    client_pem(d, "by-i1", &i1, &[&i1.0]);
    // Issued under root two, with the pinned intermediate appended: listed, not an issuer.
    client_pem(d, "by-r2-with-i1", &r2, &[&i1.0]);
    let config = format!(
        "{}{}{}",
        server(
            "tls = { cert = \"server.pem\", key = \"server.key\", client_ca = \"clients-ca.pem\" }"
        ),
        mtls_tenant(
            "root",
            &format!(
                "subject_cn = [\"idp\"], issuer_sha256 = \"{}\"",
                sha256_hex(&r1.0)
            )
        ),
        mtls_tenant(
            "inter",
            &format!(
                "subject_cn = [\"idp\"], issuer_sha256 = [\"{}\", \"{}\"]",
                openssl_style(&sha256_hex(&i1.0)),
                sha256_hex(&ca("unused", None).0)
            ),
        ),
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let d = proxy.dir.path();
    let client = |name: &str| client_with(d, &format!("{name}.pem"), &format!("{name}.key"));
    for (name, root, inter) in [
        ("by-r1", 200, 401),
        ("by-i1", 200, 200),
        ("by-r2", 401, 401),
        ("by-r2-with-i1", 401, 401),
    ] {
        let c = client(name);
        assert_eq!(
            status(&c, &proxy, "/root/Users").await,
            root,
            "{name} at root"
        );
        assert_eq!(
            status(&c, &proxy, "/inter/Users").await,
            inter,
            "{name} at inter"
        );
    }
    let logs = proxy.logs();
    assert!(
        logs.contains("not issued under a CA of issuer_sha256"),
        "{logs}"
    );
    assert!(
        logs.contains("no CA of issuer_sha256 is in the chain"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_tenants_chain_check_runs_once_per_connection_and_again_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    tenant_certs(dir.path());
    ca_with_crl(dir.path());
    const CHECKED: &str = "client certificate chain checked";
    let config = |crl: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{TLS}\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\nlevel = \"info,scimgate::auth::mtls=debug\"\n{}",
            mtls_tenant("c", &format!("subject_cn = [\"idp\"], client_ca = \"crl-ca.pem\"{crl}"))
        )
    };
    let proxy = Proxy::start_in(dir, &config("")).await;
    // Serial 2, which the CRL revokes; the first configuration has no CRL.
    let c = client_with(proxy.dir.path(), "idp-2.pem", "idp-2.key");
    for _ in 0..3 {
        assert_eq!(status(&c, &proxy, "/c/Users").await, 200);
    }
    proxy.wait_for_log(CHECKED, 1).await;
    assert_eq!(
        proxy.log_count(CHECKED),
        1,
        "one check for three requests of one connection"
    );

    proxy.reload_with(&config(", crl = [\"crl.pem\"]")).await;
    for _ in 0..2 {
        assert_eq!(
            status(&c, &proxy, "/c/Users").await,
            401,
            "the new snapshot's CRL applies to an open connection"
        );
    }
    proxy.wait_for_log(CHECKED, 2).await;
    assert_eq!(proxy.log_count(CHECKED), 2, "{}", proxy.logs());

    let other = client_with(proxy.dir.path(), "idp-2.pem", "idp-2.key");
    assert_eq!(status(&other, &proxy, "/c/Users").await, 401);
    proxy.wait_for_log(CHECKED, 3).await;
}
