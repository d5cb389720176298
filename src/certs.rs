//! Development certificates: a private CA, a server certificate and a client certificate it
//! signs, and per tenant a client CA of its own with a client certificate whose names say
//! which tenant it is for, so TLS and per-tenant mTLS can be tried without an outside PKI.
//! Not for production.

use std::path::Path;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

/// The names to put in the certificates.
pub struct DevNames<'a> {
    pub server_names: &'a [String],
    /// One client certificate is made per name; the name is its subject CN and DNS SAN.
    pub client_cns: &'a [String],
    /// Per tenant id T: a CA of its own (`tenant-T/ca.pem`) and a client certificate it signs
    /// (`tenant-T/client.pem`, `.key`) named `T-idp` (CN and DNS SAN) and
    /// `urn:scimgate:idp:T` (URI SAN), for `auth.mtls.client_ca` and `auth.mtls.san`.
    pub tenants: &'a [String],
}

/// Writes `ca.pem`, `server.pem`, `server.key` and, per client name N, `client-N.pem` and
/// `client-N.key` into `dir`, and each tenant's folder. Returns the paths written.
pub fn write_dev_certs(
    dir: &Path,
    names: &DevNames<'_>,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let (ca, ca_key) = ca_cert("scimgate development CA")?;

    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(names.server_names.to_vec())?;
    server_params.distinguished_name.push(
        DnType::CommonName,
        names
            .server_names
            .first()
            .map_or("localhost", String::as_str),
    );
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server_params.signed_by(&server_key, &ca, &ca_key)?;

    let mut files = vec![
        ("ca.pem".to_owned(), ca.pem()),
        ("server.pem".to_owned(), server.pem()),
        ("server.key".to_owned(), server_key.serialize_pem()),
    ];
    for cn in names.client_cns {
        let (client, client_key) = client_cert(cn, None, &ca, &ca_key)?;
        files.push((format!("client-{cn}.pem"), client.pem()));
        files.push((format!("client-{cn}.key"), client_key.serialize_pem()));
    }
    for tenant in names.tenants {
        // A tenant id (as in the configuration), so it is also a safe folder name.
        let valid = (1..=64).contains(&tenant.len())
            && tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(format!("tenant {tenant:?}: expected letters, digits, '-' or '_'").into());
        }
        let (tenant_ca, tenant_key) = ca_cert(&format!("scimgate development CA of {tenant}"))?;
        let uri = format!("urn:scimgate:idp:{tenant}");
        let (client, client_key) = client_cert(
            &format!("{tenant}-idp"),
            Some(&uri),
            &tenant_ca,
            &tenant_key,
        )?;
        std::fs::create_dir_all(dir.join(format!("tenant-{tenant}")))?;
        files.push((format!("tenant-{tenant}/ca.pem"), tenant_ca.pem()));
        files.push((format!("tenant-{tenant}/client.pem"), client.pem()));
        files.push((
            format!("tenant-{tenant}/client.key"),
            client_key.serialize_pem(),
        ));
    }
    let mut written = Vec::new();
    for (name, pem) in files {
        let path = dir.join(&name);
        if name.ends_with(".key") {
            write_private(&path, pem.as_bytes())?;
        } else {
            std::fs::write(&path, pem)?;
        }
        written.push(path.display().to_string());
    }
    Ok(written)
}

type Made = Result<(Certificate, KeyPair), Box<dyn std::error::Error>>;

fn ca_cert(name: &str) -> Made {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key)?;
    Ok((cert, key))
}

/// A client certificate named `cn` (subject CN and DNS SAN), and `uri` as a URI SAN if given.
fn client_cert(cn: &str, uri: Option<&str>, ca: &Certificate, ca_key: &KeyPair) -> Made {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = vec![SanType::DnsName(cn.try_into()?)];
    if let Some(uri) = uri {
        params.subject_alt_names.push(SanType::URI(uri.try_into()?));
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, ca, ca_key)?;
    Ok((cert, key))
}

/// Writes a private key readable and writable by its owner only (0600), also when it replaces
/// a file an earlier run left with wider permissions: the mode is fixed before the key is in it.
#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}
