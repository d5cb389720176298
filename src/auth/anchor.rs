//! A client certificate verifier that trusts one CA certificate alone: what a tenant's
//! `auth.mtls.issuer_sha256` pin checks a chain with, whether the pinned CA was found in a
//! configured CA file or in the chain the client sent.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use sha2::{Digest, Sha256};

/// A verifier whose only trust anchor is `ca`: a chain passes when its end-entity certificate
/// was issued, directly or through intermediates, under `ca`'s key.
pub fn verifier_anchored_at(
    ca: &CertificateDer<'_>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone().into_owned())
        .map_err(|e| format!("not usable as a CA certificate: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())
}

/// The SHA-256 of a certificate's DER, which `issuer_sha256` names it by (the fingerprint
/// `openssl x509 -noout -fingerprint -sha256` prints).
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(cert.as_ref()).into()
}
