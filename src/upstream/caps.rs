//! What an upstream does itself: declared in the configuration, or read from its own
//! ServiceProviderConfig (RFC 7643 §5). Every `false` is a gap the proxy fills.

use http::StatusCode;
use serde_json::Value;

use crate::config::Supports;

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
