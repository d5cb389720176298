//! Client certificates: the names a tenant accepts (subject CN, or a SAN of the same type),
//! and, for a tenant with a CA of its own, the chain checked again against that CA and its
//! revocation lists.

use std::sync::Arc;

use rustls::pki_types::UnixTime;

use super::AuthError;
use crate::config::MtlsRule;
use crate::conn::PeerIdentity;

/// The certificate's name that the rule accepts: a listed subject CN, else a listed SAN.
pub fn check(rule: &MtlsRule, peer: Option<&PeerIdentity>) -> Result<Arc<str>, AuthError> {
    let peer = peer.ok_or(AuthError::MissingCertificate)?;
    let by_cn = peer
        .subject_cn
        .iter()
        .find(|cn| rule.subject_cn.iter().any(|r| r.as_str() == &***cn))
        .cloned();
    let by_san = || {
        peer.sans
            .iter()
            .find(|san| rule.san.iter().any(|r| r.matches(san)))
            .map(|san| Arc::from(san.to_string()))
    };
    let name = by_cn
        .or_else(by_san)
        .ok_or(AuthError::CertificateNotAllowed)?;
    if let Some(trust) = &rule.trust {
        // The handshake accepted the chain under any configured CA; this tenant trusts only
        // its own (and honours its CRLs).
        let (end_entity, intermediates) = peer
            .chain
            .split_first()
            .ok_or(AuthError::MissingCertificate)?;
        trust
            .verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map_err(|e| AuthError::CertificateUntrusted(e.to_string()))?;
    }
    Ok(name)
}
