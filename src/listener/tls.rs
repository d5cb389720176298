//! TLS for the listener: the server certificate, ALPN (h2, http/1.1), optional client
//! certificates verified against configured CAs, and the identity read from a client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::TlsFiles;
use crate::conn::{PeerIdentity, San};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client CA setup: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_error(&files.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let cas: Vec<&Path> = files
        .client_ca
        .iter()
        .chain(&files.tenant_cas)
        .map(PathBuf::as_path)
        .collect();
    let builder = match cas.is_empty() {
        false => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots.add_parsable_certificates(read_certs(ca)?);
            }
            // Certificates are asked for but not demanded at the handshake: tenants that rely
            // on bearer tokens share the listener, and `auth` enforces mTLS per tenant. Any
            // configured CA lets a certificate through here; a tenant with a CA of its own
            // then accepts only a certificate that chains to that one.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        true => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::File {
            path: path.display().to_string(),
            reason: "no PEM certificate in it".into(),
        });
    }
    Ok(certs)
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Reads the names out of a chain the TLS layer has already verified, end entity first.
pub fn peer_identity(chain: &[CertificateDer<'_>]) -> Option<PeerIdentity> {
    let (_, cert) = X509Certificate::from_der(chain.first()?.as_ref()).ok()?;
    let subject_cn = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(Into::into))
        .collect();
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(s) => Some(San::Dns((*s).into())),
                GeneralName::URI(s) => Some(San::Uri((*s).into())),
                GeneralName::RFC822Name(s) => Some(San::Email((*s).into())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let chain = chain.iter().map(|c| c.clone().into_owned()).collect();
    Some(PeerIdentity {
        subject_cn,
        sans,
        chain,
    })
}
