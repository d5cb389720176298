//! What each tenant's upstream does itself: declared in the configuration, or read once from
//! its own ServiceProviderConfig the first time it matters.

use std::sync::Arc;
use std::time::Duration;

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
    locks: moka::sync::Cache<String, Arc<Mutex<()>>>,
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
        let locks = moka::sync::Cache::builder()
            .max_capacity(100_000)
            // Longer than any upstream exchange, so a lock cannot expire while it is held.
            .time_to_idle(Duration::from_secs(600))
            .build();
        Self {
            declared,
            discovered: OnceCell::new(),
            locks,
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

    /// The lock for one key (a resource path, a unique value). Held across the upstream calls
    /// of one emulated operation.
    pub fn lock(&self, key: &str) -> Arc<Mutex<()>> {
        self.locks.get_with_by_ref(key, || Arc::new(Mutex::new(())))
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
    let lasting = doc.is_some()
        || reply.status.is_client_error()
        || reply.status == StatusCode::NOT_IMPLEMENTED;
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
