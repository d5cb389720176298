//! The SCIM 2.0 protocol itself (RFC 7643, RFC 7644): resources, requests, errors, lists and
//! the in-memory reference store. Nothing here knows about HTTP, sockets or tenants.

pub mod bulk;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod json;
pub mod list;
pub mod memory;
pub mod patch;
pub mod path;
pub mod request;
pub mod sort;
pub mod urn;

/// The media type of every SCIM message (RFC 7644 §3.1).
pub const MEDIA_TYPE: &str = "application/scim+json";

/// The current time as SCIM writes a dateTime (RFC 7643 §2.3.5): RFC 3339, UTC. What the
/// memory store puts in `meta` and what an audit line is stamped with.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current UTC time formats as RFC 3339")
}
