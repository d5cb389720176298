//! What the proxy knows of one client connection: its address, its TLS session (server name,
//! client certificate), and whether it is busy, so the idle timer can tell.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderValue;
use rustls::pki_types::CertificateDer;
use tokio::time::Instant;

/// What the pipeline knows of the connection a request came on.
#[derive(Debug)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// `remote`'s address as `X-Forwarded-For` names it, written once per connection rather
    /// than once per request.
    pub remote_ip: HeaderValue,
    pub tls: Option<TlsInfo>,
    /// Accepted past the connection cap: every request on it is answered 503.
    pub overloaded: bool,
    pub activity: Arc<Activity>,
}

#[derive(Debug, Default)]
pub struct TlsInfo {
    pub sni: Option<Box<str>>,
    pub peer: Option<PeerIdentity>,
    /// What the tenants' own checks of `peer`'s chain concluded on this connection.
    pub verdicts: ChainVerdicts,
}

/// Verdicts of chain checks (a tenant's own CA and CRLs, its pinned issuers) on one
/// connection's client chain, by the id of the check. The chain cannot change within a
/// connection, so each check runs once per connection instead of once per request. A check's
/// id is new at every configuration load, so a reload (new CRLs, new pins) checks again; an
/// acceptance lasts no longer than the chain's certificates do.
#[derive(Debug, Default)]
pub struct ChainVerdicts {
    seen: Mutex<Vec<Verdict>>,
}

#[derive(Debug, Clone)]
struct Verdict {
    check: u64,
    outcome: Result<(), String>,
    /// Unix time past which an acceptance is checked again (the chain's earliest notAfter).
    until: Option<i64>,
}

/// Distinct checks one connection may meet: a few tenants over a few reloads. Past it the
/// oldest verdict is forgotten (and checked again if needed).
const MAX_VERDICTS: usize = 16;

impl ChainVerdicts {
    /// The remembered verdict of check `check`, else `run`'s, remembered. `run` returns the
    /// outcome and, for an acceptance, until when it holds.
    pub fn get_or_check(
        &self,
        check: u64,
        now: i64,
        run: impl FnOnce() -> (Result<(), String>, Option<i64>),
    ) -> Result<(), String> {
        let lock = || self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = |v: &Verdict| v.check == check && v.until.is_none_or(|t| now <= t);
        if let Some(v) = lock().iter().find(|v| fresh(v)) {
            return v.outcome.clone();
        }
        // Checked without the lock: another request of the connection may check at the same
        // time, and both come to the same verdict.
        let (outcome, until) = run();
        let mut seen = lock();
        seen.retain(|v| v.check != check);
        if seen.len() >= MAX_VERDICTS {
            seen.remove(0);
        }
        seen.push(Verdict {
            check,
            outcome: outcome.clone(),
            until,
        });
        outcome
    }
}

/// Who a verified client certificate names: what tenants' `auth.mtls` rules match against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    pub subject_cn: Vec<Arc<str>>,
    /// DNS names, URIs and e-mail addresses from the subject alternative names.
    pub sans: Vec<San>,
    /// The chain as the client sent it, end entity first: a tenant with a CA of its own checks
    /// it again against that CA alone.
    pub chain: Vec<CertificateDer<'static>>,
}

/// A subject alternative name of one type. A rule's `dns:okta.example` never matches a URI or
/// an e-mail address that happens to read the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    Dns(Arc<str>),
    Uri(Arc<str>),
    Email(Arc<str>),
}

impl San {
    /// `dns:…`, `uri:…` or `email:…`, as written in `auth.mtls.san`.
    pub fn parse(s: &str) -> Option<San> {
        let (kind, name) = s.split_once(':')?;
        if name.is_empty() {
            return None;
        }
        match kind {
            "dns" => Some(San::Dns(name.into())),
            "uri" => Some(San::Uri(name.into())),
            "email" => Some(San::Email(name.into())),
            _ => None,
        }
    }

    /// DNS names and e-mail addresses compare without regard to ASCII case (RFC 4343; the
    /// domain of an address is a DNS name and IdPs do not send mixed-case local parts); URIs
    /// compare exactly.
    pub fn matches(&self, other: &San) -> bool {
        match (self, other) {
            (San::Dns(a), San::Dns(b)) | (San::Email(a), San::Email(b)) => {
                a.eq_ignore_ascii_case(b)
            }
            (San::Uri(a), San::Uri(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(n) => write!(f, "dns:{n}"),
            San::Uri(n) => write!(f, "uri:{n}"),
            San::Email(n) => write!(f, "email:{n}"),
        }
    }
}

impl ConnInfo {
    pub fn new(remote: SocketAddr, tls: Option<TlsInfo>, overloaded: bool) -> Self {
        let remote_ip = HeaderValue::try_from(remote.ip().to_string())
            .expect("an IP address is a valid header value");
        Self {
            remote,
            remote_ip,
            tls,
            overloaded,
            activity: Arc::new(Activity::default()),
        }
    }

    pub fn sni(&self) -> Option<&str> {
        self.tls.as_ref()?.sni.as_deref()
    }

    pub fn peer(&self) -> Option<&PeerIdentity> {
        self.tls.as_ref()?.peer.as_ref()
    }

    pub fn verdicts(&self) -> Option<&ChainVerdicts> {
        self.tls.as_ref().map(|t| &t.verdicts)
    }

    pub fn https(&self) -> bool {
        self.tls.is_some()
    }
}

/// What the connection's timers read: whether a request started or finished since the last
/// look, how many are being served (an answer still streaming counts), and whether any request
/// on the connection has authenticated. Bytes are not activity: a client that only PINGs, or
/// only sends requests it cannot authenticate, is not busy.
#[derive(Debug, Default)]
pub struct Activity {
    moved: AtomicBool,
    in_flight: AtomicU32,
    authenticated: AtomicBool,
    /// The deadline of the upstream answer streaming on this connection, if one is: past it, a
    /// client that takes no more bytes is cut off (see `listener::stall`).
    streaming_until: Mutex<Option<Instant>>,
    /// The connection was cut because its client stopped taking bytes.
    stalled: AtomicBool,
}

impl Activity {
    /// True when no request started or finished since the last call and none is being served.
    pub fn idle_since_last_look(&self) -> bool {
        let moved = self.moved.swap(false, Ordering::Relaxed);
        !moved && self.in_flight.load(Ordering::Relaxed) == 0
    }

    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.moved.store(true, Ordering::Relaxed);
        InFlight {
            activity: self.clone(),
            until: None,
        }
    }

    /// When the answer streaming now must be done by, if one is streaming.
    pub fn streaming_until(&self) -> Option<Instant> {
        *self
            .streaming_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection is being cut: its client took no bytes in time.
    pub fn stalled(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }

    /// A request on this connection proved who sent it.
    pub fn authenticated(&self) {
        self.authenticated.store(true, Ordering::Relaxed);
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Relaxed)
    }
}

/// Held while a request is served, until the last byte of its answer is handed to the
/// connection; dropping it (even when the client goes away) counts it out.
#[derive(Debug)]
pub struct InFlight {
    activity: Arc<Activity>,
    /// The deadline of this request's streaming answer, as told to the connection.
    until: Option<Instant>,
}

impl InFlight {
    /// This request's answer streams until `deadline` at the latest.
    pub fn streams_until(&mut self, deadline: Instant) {
        *self
            .activity
            .streaming_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(deadline);
        self.until = Some(deadline);
    }

    /// Whether the connection was cut because its client stopped taking bytes.
    pub fn client_stalled(&self) -> bool {
        self.activity.stalled.load(Ordering::Relaxed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(mine) = self.until {
            let mut at = self
                .activity
                .streaming_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *at == Some(mine) {
                *at = None;
            }
        }
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.activity.moved.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting(
        runs: &AtomicU32,
        outcome: Result<(), String>,
        until: Option<i64>,
    ) -> impl FnOnce() -> (Result<(), String>, Option<i64>) + '_ {
        move || {
            runs.fetch_add(1, Ordering::Relaxed);
            (outcome, until)
        }
    }

    #[test]
    fn a_check_runs_once_per_connection_and_again_under_a_new_id() {
        let v = ChainVerdicts::default();
        let runs = AtomicU32::new(0);
        for _ in 0..3 {
            assert_eq!(
                v.get_or_check(7, 100, counting(&runs, Ok(()), None)),
                Ok(())
            );
        }
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        let refused = Err("revoked".to_owned());
        assert_eq!(
            v.get_or_check(8, 100, counting(&runs, refused.clone(), None)),
            refused
        );
        assert_eq!(
            v.get_or_check(8, 100, counting(&runs, Ok(()), None)),
            refused
        );
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn an_acceptance_ends_when_the_chain_expires() {
        let v = ChainVerdicts::default();
        let runs = AtomicU32::new(0);
        assert_eq!(
            v.get_or_check(1, 100, counting(&runs, Ok(()), Some(200))),
            Ok(())
        );
        assert_eq!(
            v.get_or_check(1, 200, counting(&runs, Ok(()), Some(200))),
            Ok(())
        );
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        let expired = Err("expired".to_owned());
        assert_eq!(
            v.get_or_check(1, 201, counting(&runs, expired.clone(), None)),
            expired
        );
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn verdicts_stay_bounded() {
        let v = ChainVerdicts::default();
        let runs = AtomicU32::new(0);
        for id in 0..(3 * MAX_VERDICTS as u64) {
            v.get_or_check(id, 0, counting(&runs, Ok(()), None))
                .expect("accepted");
        }
        let kept = v.seen.lock().expect("not poisoned").len();
        assert_eq!(kept, MAX_VERDICTS);
    }
}
