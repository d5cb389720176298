//! What an upstream does itself: declared in the configuration, or read from its own
//! ServiceProviderConfig (RFC 7643 §5). Every `false` is a gap the proxy fills.

use std::sync::atomic::{AtomicU8, Ordering};

use http::StatusCode;
use serde_json::Value;

use crate::config::Supports;
use crate::scim::request::Endpoint;

/// The upstream's own abilities.
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

/// An upstream that does nothing optional.
pub const NOTHING: Capabilities = Capabilities {
    patch: false,
    filter: false,
    sort: false,
    bulk: false,
    etag: false,
    discovery: false,
    uniqueness: true,
};

impl Capabilities {
    /// What the embedded store announces of itself.
    pub fn of_memory_store() -> Self {
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

    /// The upstream's answer to `GET /ServiceProviderConfig`, and whether it lasts: a document,
    /// or a plain "no such endpoint" (an upstream without one supports nothing optional), is
    /// kept; a server error is asked again next time.
    pub fn from_answer(status: StatusCode, body: &[u8]) -> (Self, bool) {
        let doc: Option<Value> = status
            .is_success()
            .then(|| serde_json::from_slice(body).ok())
            .flatten();
        let absent = [
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::NOT_IMPLEMENTED,
        ];
        let lasting = doc.is_some() || absent.contains(&status);
        let Some(doc) = doc else {
            return (NOTHING, lasting);
        };
        let supported = |key: &str| {
            doc.get(key)
                .and_then(|k| k.get("supported")?.as_bool())
                .unwrap_or(false)
        };
        let caps = Self {
            patch: supported("patch"),
            filter: supported("filter"),
            sort: supported("sort"),
            bulk: supported("bulk"),
            etag: supported("etag"),
            discovery: true,
            uniqueness: true,
        };
        (caps, lasting)
    }

    /// What the configuration declares wins over what was found.
    pub fn with_declared(self, d: &Supports) -> Self {
        Self {
            patch: d.patch.unwrap_or(self.patch),
            filter: d.filter.unwrap_or(self.filter),
            sort: d.sort.unwrap_or(self.sort),
            bulk: d.bulk.unwrap_or(self.bulk),
            etag: d.etag.unwrap_or(self.etag),
            discovery: d.discovery.unwrap_or(self.discovery),
            uniqueness: d.uniqueness.unwrap_or(true),
        }
    }
}

/// A form of request an app announced it does but answered 501 for (or, at the service root,
/// 404): the proxy fills it from then on, for that resource type only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Patch,
    Filter,
    Sort,
}

impl Form {
    fn bit(self) -> u8 {
        match self {
            Form::Patch => 1,
            Form::Filter => 2,
            Form::Sort => 4,
        }
    }
}

/// What an app turned out not to do, per resource type (Users, Groups, the service root):
/// kept with the tenant for the life of the process, so one refused request teaches the rest.
#[derive(Debug, Default)]
pub struct Learned {
    forms: [AtomicU8; 3],
}

impl Learned {
    /// Returns whether this is news.
    pub fn learn(&self, at: Endpoint, form: Form) -> bool {
        let Some(slot) = self.slot(at) else {
            return false;
        };
        slot.fetch_or(form.bit(), Ordering::Relaxed) & form.bit() == 0
    }

    /// `caps` without what the app turned out not to do at `at`.
    pub fn apply(&self, at: Endpoint, mut caps: Capabilities) -> Capabilities {
        let Some(slot) = self.slot(at) else {
            return caps;
        };
        let refused = slot.load(Ordering::Relaxed);
        caps.patch &= refused & Form::Patch.bit() == 0;
        caps.filter &= refused & Form::Filter.bit() == 0;
        caps.sort &= refused & Form::Sort.bit() == 0;
        caps
    }

    fn slot(&self, at: Endpoint) -> Option<&AtomicU8> {
        match at {
            Endpoint::Users => Some(&self.forms[0]),
            Endpoint::Groups => Some(&self.forms[1]),
            Endpoint::Root => Some(&self.forms[2]),
            _ => None,
        }
    }
}

/// Whether the configuration says everything discovery would read, so nothing need be asked.
pub fn all_declared(d: &Supports) -> bool {
    [d.patch, d.filter, d.sort, d.bulk, d.etag, d.discovery]
        .iter()
        .all(Option::is_some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_provider_config_is_read_and_lasts() {
        let spc = br#"{"patch":{"supported":true},"filter":{"supported":false},"bulk":{"supported":true}}"#;
        let (caps, lasting) = Capabilities::from_answer(StatusCode::OK, spc);
        assert!(lasting);
        assert!(caps.patch && caps.bulk && caps.discovery);
        assert!(!caps.filter && !caps.sort && !caps.etag);
    }

    #[test]
    fn no_such_endpoint_lasts_and_a_server_error_does_not() {
        assert_eq!(
            Capabilities::from_answer(StatusCode::NOT_FOUND, b""),
            (NOTHING, true)
        );
        assert_eq!(
            Capabilities::from_answer(StatusCode::BAD_GATEWAY, b""),
            (NOTHING, false)
        );
    }

    #[test]
    fn declared_keys_win() {
        let d = Supports {
            patch: Some(false),
            uniqueness: Some(false),
            ..Supports::default()
        };
        let caps = Capabilities::of_memory_store().with_declared(&d);
        assert!(!caps.patch && !caps.uniqueness && caps.filter);
    }
}
