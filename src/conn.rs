//! What the proxy knows of one client connection: its address, its TLS session (server name,
//! client certificate), and whether it is busy, so the idle timer can tell.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// What the pipeline knows of the connection a request came on.
#[derive(Debug)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub tls: Option<TlsInfo>,
    /// Accepted past the connection cap: every request on it is answered 503.
    pub overloaded: bool,
    pub activity: Arc<Activity>,
}

#[derive(Debug, Default)]
pub struct TlsInfo {
    pub sni: Option<Box<str>>,
    pub peer: Option<PeerIdentity>,
}

/// Who a verified client certificate names: what tenants' `auth.mtls` rules match against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    pub subject_cn: Vec<Arc<str>>,
    /// DNS names, URIs and e-mail addresses from the subject alternative names.
    pub sans: Vec<Arc<str>>,
}

impl ConnInfo {
    pub fn sni(&self) -> Option<&str> {
        self.tls.as_ref()?.sni.as_deref()
    }

    pub fn peer(&self) -> Option<&PeerIdentity> {
        self.tls.as_ref()?.peer.as_ref()
    }

    pub fn https(&self) -> bool {
        self.tls.is_some()
    }
}

/// What the idle timer reads: bytes moved since its last look, and requests still being served.
#[derive(Debug, Default)]
pub struct Activity {
    moved: AtomicBool,
    in_flight: AtomicU32,
}

impl Activity {
    /// True when nothing moved since the last call and no request is being served.
    pub fn idle_since_last_look(&self) -> bool {
        let moved = self.moved.swap(false, Ordering::Relaxed);
        !moved && self.in_flight.load(Ordering::Relaxed) == 0
    }

    /// Bytes went in or out.
    pub fn mark(&self) {
        self.moved.store(true, Ordering::Relaxed);
    }

    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// Held while a request is served; dropping it (even when the client goes away) counts it out.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.mark();
    }
}
