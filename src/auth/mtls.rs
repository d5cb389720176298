//! Client certificates: the names a tenant accepts (subject CN, or a SAN of the same type),
//! and the chain checked again for a tenant with a CA of its own (and its revocation lists)
//! or with pinned issuers (`issuer_sha256`). Those chain checks run once per connection: their
//! verdicts are kept with it ([`ChainVerdicts`]).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::anchor;
use super::AuthError;
use crate::config::{IssuerPin, MtlsRule};
use crate::conn::{ChainVerdicts, PeerIdentity};

/// The certificate's name that the rule accepts: a listed subject CN, else a listed SAN.
/// `verdicts`, the connection's, spares a chain check made before on it.
pub fn check(
    rule: &MtlsRule,
    peer: Option<&PeerIdentity>,
    verdicts: Option<&ChainVerdicts>,
) -> Result<Arc<str>, AuthError> {
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
    if rule.trust.is_none() && rule.issuers.is_empty() {
        return Ok(name);
    }
    if peer.chain.is_empty() {
        return Err(AuthError::MissingCertificate);
    }
    let now = UnixTime::now();
    let run = || {
        let verdict = chain_trusted(rule, &peer.chain, now);
        tracing::debug!(
            check = rule.check_id,
            ok = verdict.is_ok(),
            "client certificate chain checked"
        );
        (verdict, valid_until(&peer.chain))
    };
    let verdict = match verdicts {
        Some(v) => v.get_or_check(rule.check_id, unix(now), run),
        None => run().0,
    };
    verdict.map_err(AuthError::CertificateUntrusted)?;
    Ok(name)
}

/// The handshake accepted the chain under any configured CA; this tenant trusts only its own
/// (and honours its CRLs), and only the issuers it pins.
fn chain_trusted(
    rule: &MtlsRule,
    chain: &[CertificateDer<'static>],
    now: UnixTime,
) -> Result<(), String> {
    let (end_entity, intermediates) = chain.split_first().ok_or("no certificate")?;
    if let Some(trust) = &rule.trust {
        trust
            .verifier
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| e.to_string())?;
    }
    if !rule.issuers.is_empty() {
        issued_under(&rule.issuers, end_entity, intermediates, now)?;
    }
    Ok(())
}

/// Whether the end-entity certificate was issued, directly or through intermediates, under
/// the key of a pinned CA. A pin is a root known from a CA file, or an intermediate the client
/// sent: merely listing a certificate in the chain proves nothing, so the chain is verified
/// with the pinned certificate as its only anchor.
fn issued_under(
    pins: &[IssuerPin],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<(), String> {
    let mut why = None;
    for pin in pins {
        let verifier = match &pin.known {
            Some(v) => v.clone(),
            None => {
                let sent = intermediates
                    .iter()
                    .find(|c| anchor::fingerprint(c) == pin.sha256);
                match sent.map(anchor::verifier_anchored_at) {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => {
                        why = Some(e);
                        continue;
                    }
                    None => continue,
                }
            }
        };
        match verifier.verify_client_cert(end_entity, intermediates, now) {
            Ok(_) => return Ok(()),
            Err(e) => why = Some(e.to_string()),
        }
    }
    Err(match why {
        Some(e) => format!("not issued under a CA of issuer_sha256: {e}"),
        None => "no CA of issuer_sha256 is in the chain or in a configured CA file".to_owned(),
    })
}

/// The earliest notAfter of the chain, in Unix seconds: an acceptance lasts no longer.
fn valid_until(chain: &[CertificateDer<'_>]) -> Option<i64> {
    chain
        .iter()
        .filter_map(|c| X509Certificate::from_der(c.as_ref()).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp())
        .min()
}

fn unix(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}
