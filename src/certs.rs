//! Development certificates: a private CA, a server certificate and a client certificate it
//! signs, so TLS and mTLS can be tried without an outside PKI. Not for production.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};

/// The names to put in the certificates.
pub struct DevNames<'a> {
    pub server_names: &'a [String],
    /// One client certificate is made per name; the name is its subject CN and DNS SAN.
    pub client_cns: &'a [String],
}

/// Writes `ca.pem`, `server.pem`, `server.key` and, per client name N, `client-N.pem` and
/// `client-N.key` into `dir`. Returns the paths written.
pub fn write_dev_certs(
    dir: &Path,
    names: &DevNames<'_>,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "scimgate development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;

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
        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, cn.as_str());
        client_params.subject_alt_names = vec![SanType::DnsName(cn.as_str().try_into()?)];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca, &ca_key)?;
        files.push((format!("client-{cn}.pem"), client.pem()));
        files.push((format!("client-{cn}.key"), client_key.serialize_pem()));
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
