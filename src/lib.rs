//! scimgate: a SCIM 2.0 edge proxy. It stands in front of an application that speaks some SCIM,
//! authenticates each tenant's identity provider, and forwards RFC 7644-clean requests to the
//! application, answering every error as a SCIM Error.
//!
//! The stage modules follow the request's way through the proxy; `pipeline` calls them in
//! order over one [`ctx::RequestCtx`], under the configuration snapshot the [`runtime`] holds.
#![forbid(unsafe_code)]

pub mod attribute_policy; // 7. filter (and the outbound half of 10)
pub mod audit; // 11. record
pub mod auth; // 3. authenticate
pub mod classify; // 5. classify
pub mod emulate; // 8. fill gaps
pub mod limit; // 4. admit
pub mod listener; // 1. listen
pub mod metrics; // 11. record
pub mod normalize; // 6. normalize
pub mod response; // 10. answer
pub mod tenant; // 2. route
pub mod upstream; // 9. forward

pub mod admin;
pub mod app;
pub mod body;
pub mod certs;
pub mod config;
pub mod conn;
pub mod control;
pub mod ctx;
pub mod error;
pub mod pipeline;
pub mod policy;
pub mod rule_pack;
pub mod runtime;
pub mod scim;
pub mod state;
pub mod trace;
