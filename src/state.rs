//! State that outlives one configuration: kept by the runtime across reloads and handed to each
//! new snapshot. In one process it lives in memory; these types are the seam where shared
//! state for several replicas would go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::scim::discovery::Extensions;
use crate::scim::memory::MemoryStore;
use crate::upstream::breaker::Breaker;
use crate::upstream::caps::{Capabilities, Learned};

/// One tenant's lasting state, for as long as its upstream stays the same.
#[derive(Debug, Default)]
pub struct TenantState {
    /// What the upstream announced of itself, read the first time it matters.
    pub discovered: OnceCell<Capabilities>,
    /// The extension schemas the upstream announced in its `/Schemas`, read the first time a
    /// request body is checked.
    pub schemas: OnceCell<Arc<Extensions>>,
    /// The embedded store's data, for a tenant served by it.
    pub store: Option<Arc<MemoryStore>>,
    /// What the upstream announced but turned out not to do.
    pub learned: Learned,
    /// Whether the upstream is being left alone after failing repeatedly.
    pub breaker: Arc<Breaker>,
}

impl TenantState {
    pub fn with_store() -> Self {
        Self {
            discovered: OnceCell::new(),
            schemas: OnceCell::new(),
            store: Some(Arc::new(MemoryStore::new())),
            learned: Learned::default(),
            breaker: Arc::default(),
        }
    }
}

/// Per-key locks held across the upstream calls of one emulated read-modify-write. Keys name a
/// resource in the app (its base URL, type and id), not in a tenant, so two tenants that front
/// one app share one lock per resource.
#[derive(Debug, Default)]
pub struct Locks {
    live: Mutex<LiveLocks>,
}

impl Locks {
    /// The lock for one key. A lock lives as long as someone holds or waits for it, so it can
    /// never be dropped while held; keys are hashed, so their size costs nothing.
    pub fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = live.by_key.get(&digest).and_then(Weak::upgrade) {
            return lock;
        }
        live.prune();
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        live.by_key.insert(digest, Arc::downgrade(&lock));
        lock
    }
}

#[derive(Debug, Default)]
struct LiveLocks {
    by_key: HashMap<[u8; 32], Weak<tokio::sync::Mutex<()>>>,
    /// Entries no one holds are swept when the map reaches this size, which then doubles past
    /// what is still held, so sweeping costs O(1) per lock on average.
    prune_at: usize,
}

impl LiveLocks {
    fn prune(&mut self) {
        if self.by_key.len() < self.prune_at.max(1024) {
            return;
        }
        self.by_key.retain(|_, lock| lock.strong_count() > 0);
        self.prune_at = 2 * self.by_key.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_gets_one_lock_while_it_is_held() {
        let locks = Locks::default();
        let held = locks.get("Users/1");
        assert!(Arc::ptr_eq(&held, &locks.get("Users/1")));
        assert!(!Arc::ptr_eq(&held, &locks.get("Users/2")));
    }

    #[test]
    fn locks_no_one_holds_are_swept() {
        let locks = Locks::default();
        let kept = locks.get("kept");
        for i in 0..5000 {
            drop(locks.get(&format!("Users/{i}")));
        }
        let live = locks.live.lock().expect("not poisoned");
        assert!(
            live.by_key.len() < 1100,
            "{} entries left",
            live.by_key.len()
        );
        drop(live);
        assert!(Arc::ptr_eq(&kept, &locks.get("kept")));
    }
}
