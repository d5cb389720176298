//! What each tenant's upstream does itself: declared in the configuration, or read once from
//! its own ServiceProviderConfig the first time it matters.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, Weak};

use sha2::{Digest, Sha256};

use http::StatusCode;
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

use super::get;
use crate::config::Supports;
use crate::error::ProxyError;
use crate::upstream::{CallContext, Upstream};

/// The upstream's own abilities; every `false` is a gap the proxy fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub patch: bool,
    pub filter: bool,
    pub sort: bool,
    pub bulk: bool,
    pub etag: bool,
    pub discovery: bool,
    pub uniqueness: bool,
}

impl Capabilities {
    /// What the embedded store announces of itself.
    fn of_memory_store() -> Self {
        let own = crate::scim::memory::MemoryStore::capabilities();
        Self {
            patch: own.patch,
            filter: own.filter,
            sort: own.sort,
            bulk: own.bulk,
            etag: own.etag,
            discovery: true,
            uniqueness: true,
        }
    }
}

/// A tenant's gap-filling state: its upstream's capabilities and the per-resource locks that
/// keep emulated read-modify-writes from losing updates.
pub struct Gaps {
    declared: Supports,
    discovered: OnceCell<Capabilities>,
    locks: std::sync::Mutex<Locks>,
    pub soft_delete: bool,
}

impl std::fmt::Debug for Gaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gaps")
            .field("declared", &self.declared)
            .field("discovered", &self.discovered.get())
            .finish()
    }
}

impl Gaps {
    pub fn new(declared: Supports, soft_delete: bool) -> Self {
        Self {
            declared,
            discovered: OnceCell::new(),
            locks: std::sync::Mutex::default(),
            soft_delete,
        }
    }

    pub async fn capabilities(
        &self,
        upstream: &Upstream,
        ctx: &CallContext<'_>,
    ) -> Result<Capabilities, ProxyError> {
        if matches!(upstream, Upstream::Memory(_)) {
            return Ok(Capabilities::of_memory_store());
        }
        let d = &self.declared;
        let all_declared = [d.patch, d.filter, d.sort, d.bulk, d.etag, d.discovery]
            .iter()
            .all(Option::is_some);
        if all_declared {
            return Ok(self.with_declared(NOTHING));
        }
        if let Some(found) = self.discovered.get() {
            return Ok(self.with_declared(*found));
        }
        let (found, lasting) = discover(upstream, ctx).await?;
        if lasting {
            // Two first requests may both have asked; either answer is the same.
            let _ = self.discovered.set(found);
        }
        Ok(self.with_declared(found))
    }

    fn with_declared(&self, found: Capabilities) -> Capabilities {
        let d = &self.declared;
        Capabilities {
            patch: d.patch.unwrap_or(found.patch),
            filter: d.filter.unwrap_or(found.filter),
            sort: d.sort.unwrap_or(found.sort),
            bulk: d.bulk.unwrap_or(found.bulk),
            etag: d.etag.unwrap_or(found.etag),
            discovery: d.discovery.unwrap_or(found.discovery),
            uniqueness: d.uniqueness.unwrap_or(true),
        }
    }

    /// The lock for one key (a resource, a unique value), held across the upstream calls of
    /// one emulated operation. A lock lives as long as someone holds or waits for it, so it
    /// can never be dropped while held; keys are hashed, so their size costs nothing.
    pub fn lock(&self, key: &str) -> Arc<Mutex<()>> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = locks.by_key.get(&digest).and_then(Weak::upgrade) {
            return lock;
        }
        locks.prune();
        let lock = Arc::new(Mutex::new(()));
        locks.by_key.insert(digest, Arc::downgrade(&lock));
        lock
    }
}

/// The live per-key locks of one tenant.
#[derive(Default)]
struct Locks {
    by_key: HashMap<[u8; 32], Weak<Mutex<()>>>,
    /// Entries no one holds are swept when the map reaches this size, which then doubles
    /// past what is still held, so sweeping costs O(1) per lock on average.
    prune_at: usize,
}

impl Locks {
    fn prune(&mut self) {
        if self.by_key.len() < self.prune_at.max(1024) {
            return;
        }
        self.by_key.retain(|_, lock| lock.strong_count() > 0);
        self.prune_at = 2 * self.by_key.len();
    }
}

/// An upstream that does nothing optional.
const NOTHING: Capabilities = Capabilities {
    patch: false,
    filter: false,
    sort: false,
    bulk: false,
    etag: false,
    discovery: false,
    uniqueness: true,
};

/// Reads the upstream's ServiceProviderConfig (RFC 7643 §5), and says whether the answer
/// lasts: a document, or a plain "no such endpoint" (an upstream without one supports nothing
/// optional), is kept; a server error or an unreachable upstream is asked again next time.
async fn discover(
    upstream: &Upstream,
    ctx: &CallContext<'_>,
) -> Result<(Capabilities, bool), ProxyError> {
    let reply = upstream.call(get("/ServiceProviderConfig"), ctx).await?;
    let doc: Option<Value> = reply
        .status
        .is_success()
        .then(|| serde_json::from_slice(&reply.body).ok())
        .flatten();
    let absent = [
        StatusCode::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED,
        StatusCode::NOT_IMPLEMENTED,
    ];
    let lasting = doc.is_some() || absent.contains(&reply.status);
    let Some(doc) = doc else {
        return Ok((NOTHING, lasting));
    };
    let supported = |key: &str| {
        doc.get(key)
            .and_then(|k| k.get("supported")?.as_bool())
            .unwrap_or(false)
    };
    let caps = Capabilities {
        patch: supported("patch"),
        filter: supported("filter"),
        sort: supported("sort"),
        bulk: supported("bulk"),
        etag: supported("etag"),
        discovery: true,
        uniqueness: true,
    };
    tracing::info!(?caps, "read the upstream's capabilities");
    Ok((caps, lasting))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_gets_one_lock_while_it_is_held() {
        let gaps = Gaps::new(Supports::default(), false);
        let held = gaps.lock("Users/1");
        assert!(Arc::ptr_eq(&held, &gaps.lock("Users/1")));
        assert!(!Arc::ptr_eq(&held, &gaps.lock("Users/2")));
    }

    #[test]
    fn locks_no_one_holds_are_swept() {
        let gaps = Gaps::new(Supports::default(), false);
        let kept = gaps.lock("kept");
        for i in 0..5000 {
            drop(gaps.lock(&format!("Users/{i}")));
        }
        let locks = gaps.locks.lock().expect("not poisoned");
        assert!(
            locks.by_key.len() < 1100,
            "{} entries left",
            locks.by_key.len()
        );
        drop(locks);
        assert!(Arc::ptr_eq(&kept, &gaps.lock("kept")));
    }
}
