//! Caps shared by tenants: the calls all tenants fronting one app may have at it at once
//! ([`UpstreamGates`], keyed by the app's base URL), and the calls the whole process may have
//! at its upstreams ([`Gate`] with [`GateScope::Global`]). Waiters are served in arrival order.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{GateScope, LimitError};

/// A cap on calls in flight at once.
#[derive(Debug)]
pub struct Gate {
    scope: GateScope,
    cap: usize,
    slots: Arc<Semaphore>,
    refused: AtomicU64,
}

/// One place under a [`Gate`], given back when dropped.
#[derive(Debug)]
pub struct GatePermit {
    _slot: OwnedSemaphorePermit,
}

impl Gate {
    pub fn new(scope: GateScope, cap: NonZeroUsize) -> Self {
        Self {
            scope,
            cap: cap.get(),
            slots: Arc::new(Semaphore::new(cap.get())),
            refused: AtomicU64::new(0),
        }
    }

    /// Waits for a place until `deadline`, in arrival order. Cancellation-safe: a dropped wait
    /// leaves the line and holds nothing.
    pub async fn acquire(&self, deadline: Instant) -> Result<GatePermit, LimitError> {
        // A free place is taken without arming a timer.
        if let Some(permit) = self.free() {
            return Ok(permit);
        }
        let wait = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await;
        match wait {
            Ok(Ok(slot)) => Ok(GatePermit { _slot: slot }),
            // The semaphore is never closed; a timeout and a closed gate both mean "no place".
            Ok(Err(_)) | Err(_) => Err(self.busy()),
        }
    }

    /// A place if one is free now; not having one is no refusal (the caller goes on to wait).
    pub fn free(&self) -> Option<GatePermit> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        Some(GatePermit { _slot: slot })
    }

    /// A place now, or the refusal.
    pub fn try_acquire(&self) -> Result<GatePermit, LimitError> {
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => Ok(GatePermit { _slot: slot }),
            Err(_) => Err(self.busy()),
        }
    }

    fn busy(&self) -> LimitError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        // How long calls take at the app is not known here: a second is the shortest
        // Retry-After there is.
        LimitError::Busy {
            scope: self.scope,
            cap: self.cap,
            retry_after: Duration::from_secs(1),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn in_flight(&self) -> usize {
        self.cap - self.slots.available_permits()
    }

    /// Refusals since the gate was made.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// The per-app gates, kept across reloads by the runtime.
#[derive(Debug, Default)]
pub struct UpstreamGates {
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

impl UpstreamGates {
    /// Puts a configuration's caps in force: one gate per key, capped at the smallest cap any
    /// of the key's tenants asks for. A key whose cap is unchanged keeps its gate, and with it
    /// the count of calls in flight; a changed cap starts a fresh gate (calls already in
    /// flight finish under the old one); keys no longer named are forgotten.
    pub fn reconcile<K: Into<String>>(&self, wanted: impl IntoIterator<Item = (K, NonZeroUsize)>) {
        let mut caps: HashMap<String, NonZeroUsize> = HashMap::new();
        for (key, cap) in wanted {
            let entry = caps.entry(key.into()).or_insert(cap);
            *entry = (*entry).min(cap);
        }
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::with_capacity(caps.len());
        for (key, cap) in caps {
            let gate = match gates.remove(&key) {
                Some(gate) if gate.cap == cap.get() => gate,
                _ => Arc::new(Gate::new(GateScope::Upstream, cap)),
            };
            next.insert(key, gate);
        }
        *gates = next;
    }

    /// The gate for an app's base URL, if the configuration in force caps it.
    pub fn get(&self, key: &str) -> Option<Arc<Gate>> {
        let gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        gates.get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).expect("test cap above 0")
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_gate_refuses_at_the_deadline_and_frees_on_drop() {
        let gate = Gate::new(GateScope::Global, cap(1));
        let held = gate.try_acquire().expect("a place");
        let deadline = Instant::now() + Duration::from_secs(2);
        let refused = gate.acquire(deadline).await.expect_err("full");
        assert_eq!(refused.retry_after(), Duration::from_secs(1));
        assert!(!refused.is_tenant_limit());
        assert_eq!((gate.in_flight(), gate.refused()), (1, 1));
        drop(held);
        assert_eq!(gate.in_flight(), 0);
        let _again = gate.acquire(deadline).await.expect("free again");
    }

    #[test]
    fn tenants_sharing_an_app_share_the_smallest_cap() {
        let gates = UpstreamGates::default();
        gates.reconcile([("http://app/scim", cap(8)), ("http://app/scim", cap(3))]);
        let gate = gates.get("http://app/scim").expect("configured");
        assert_eq!(gate.cap(), 3);
        assert!(gates.get("http://other/scim").is_none());
    }

    #[test]
    fn a_reload_keeps_a_gate_whose_cap_is_unchanged() {
        let gates = UpstreamGates::default();
        gates.reconcile([("a", cap(2)), ("b", cap(2))]);
        let a = gates.get("a").expect("configured");
        let held = a.try_acquire().expect("a place");
        gates.reconcile([("a", cap(2)), ("b", cap(5))]);
        let kept = gates.get("a").expect("still configured");
        assert!(Arc::ptr_eq(&a, &kept), "same gate, same count");
        assert_eq!(kept.in_flight(), 1);
        assert_eq!(gates.get("b").expect("configured").cap(), 5);
        gates.reconcile([("b", cap(5))]);
        assert!(gates.get("a").is_none(), "forgotten");
        drop(held);
    }
}
