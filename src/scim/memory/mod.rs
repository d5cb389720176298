//! The in-memory reference SCIM 2.0 service provider (`upstream = { url = "memory:" }`):
//! Users and Groups with the RFC 7644 semantics the proxy is checked against, and the
//! discovery endpoints describing exactly what it supports.

mod handlers;
mod precondition;
pub mod projection;
mod query;
mod render;
mod store;
mod validate;

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use serde_json::Value;

use super::discovery::{AuthenticationScheme, Capabilities};
use super::error::{ScimError, ScimType};
use super::list::MAX_COUNT;
use super::request::Method;
use store::{Kind, Tables};

/// A request as the store sees it: no HTTP types, paths relative to the SCIM base.
#[derive(Clone, Copy, Debug)]
pub struct StoreRequest<'a> {
    pub method: Method,
    /// Relative to the SCIM base: "/Users/2819c223", "/ServiceProviderConfig".
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    /// The public base URL of this SCIM endpoint, for `meta.location` and `Location`.
    pub base_url: &'a str,
    /// The `If-Match` header: entity tags a write (or read) of one resource requires.
    pub if_match: Option<&'a str>,
    /// The `If-None-Match` header: entity tags for which a GET answers 304 Not Modified.
    pub if_none_match: Option<&'a str>,
}

/// The store's answer. `body` is SCIM JSON (`application/scim+json`) unless empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub location: Option<String>,
    pub etag: Option<String>,
}

impl StoreResponse {
    fn json(status: u16, doc: &Value) -> Self {
        let body = serde_json::to_vec(doc).expect("a JSON value always serializes");
        Self {
            status,
            body,
            location: None,
            etag: None,
        }
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            body: Vec::new(),
            location: None,
            etag: None,
        }
    }

    fn error(e: &ScimError) -> Self {
        Self {
            status: e.status,
            body: e.to_json(),
            location: None,
            etag: None,
        }
    }
}

/// The store. Cheap to share behind an `Arc`; every request takes the lock once, so each
/// request sees and leaves a consistent state.
#[derive(Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

/// Counts only: the resources themselves (passwords included) must not reach a log. Never
/// waits for the lock, so formatting the store cannot deadlock a request in flight.
impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("MemoryStore");
        if let Ok(tables) = self.tables.try_read() {
            d.field("users", &tables.users.len())
                .field("groups", &tables.groups.len());
        }
        d.finish_non_exhaustive()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// What this store really supports, as its ServiceProviderConfig announces it. A filtered
    /// list returns at most one page, so `filter.maxResults` is the largest page.
    pub fn capabilities() -> Capabilities {
        Capabilities {
            patch: true,
            filter: true,
            max_results: MAX_COUNT,
            sort: true,
            etag: true,
            change_password: true,
            bulk: false,
            bulk_max_operations: 0,
            bulk_max_payload_size: 0,
            authentication_schemes: vec![AuthenticationScheme::oauth_bearer_token()],
        }
    }

    /// Answers one request; every failure is a SCIM Error document (RFC 7644 §3.12).
    pub fn handle(&self, req: &StoreRequest<'_>) -> StoreResponse {
        handlers::route(self, req).unwrap_or_else(|e| StoreResponse::error(&e))
    }

    /// Whether a request would wait for the lock now: a reader while a write is under way, a
    /// writer while anything is. A hint for the caller, stale as soon as it is read.
    pub fn busy(&self, for_write: bool) -> bool {
        if for_write {
            matches!(self.tables.try_write(), Err(TryLockError::WouldBlock))
        } else {
            matches!(self.tables.try_read(), Err(TryLockError::WouldBlock))
        }
    }

    // The lock is poisoned only if a request panicked while holding it; the writes have no
    // panicking step between their checks and their updates, so the tables are still whole.
    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a POST or PUT body is a resource this store would accept: the schema check of
/// RFC 7643 (types, required attributes, known attributes), without storing anything.
pub fn check_resource(
    rt: &crate::scim::discovery::ResourceTypeDef,
    body: &Value,
) -> Result<(), ScimError> {
    validate::check(rt, body)
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::with_type(400, ScimType::InvalidValue, detail)
}

fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::with_type(400, ScimType::InvalidSyntax, detail)
}

fn not_found(kind: Kind, id: &str) -> ScimError {
    // The id is the client's own input, not a sensitive value, so echoing it helps debugging.
    ScimError::new(404, format!("{} {id:?} not found", kind.def().name))
}

#[cfg(test)]
mod tests;
