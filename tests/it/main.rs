//! Integration tests: the real binary in front of real upstreams, over loopback sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../examples/legacy_app.rs"]
mod legacy_app;
#[path = "../../examples/many_tenants.rs"]
#[allow(dead_code)] // its `main` is the example's
mod many_tenants;
mod support;

mod admin;
mod app_rules;
mod audit;
mod auth_basic;
mod auth_jwt;
mod auth_mtls;
mod auth_oauth;
mod burst;
mod cli;
mod deploy;
mod deploy_metrics;
mod emulate;
mod errors;
mod fleet;
mod forwarding;
mod leaks;
mod lifecycle;
mod limits;
mod memory;
mod metrics;
mod policy;
mod reload;
mod routing_auth;
mod schemas;
mod shared_app;
mod tls;
mod upstream;
mod vectors;
