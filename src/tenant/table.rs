//! The compiled tenants of one configuration snapshot and the table that routes to them: by
//! `Host` (and TLS SNI) or by the first path segment, with two hash lookups whatever the number
//! of tenants.

use rustc_hash::FxHashMap;
use std::sync::Arc;

use crate::auth::jwks::Jwks;
use crate::config::{AuthConfig, AuthSchemes, Idp, Route, Supports, TenantConfig};
use crate::control::TenantControl;
use crate::limit::{Gate, TenantLimiter};
use crate::policy::{Direction, Policy};
use crate::rule_pack::Pack;
use crate::scim::discovery::Extensions;
use crate::state::TenantState;
use crate::upstream::target::Upstream;

/// A tenant as the pipeline uses it: its compiled configuration, its upstream handle, and a
/// handle on the state kept for it across reloads.
#[derive(Debug)]
pub struct Tenant {
    pub id: Arc<str>,
    pub route: Route,
    pub auth: AuthConfig,
    /// Basic users, the outside JWT issuer and the OAuth token endpoint, if any.
    pub schemes: AuthSchemes,
    /// The JWT issuer's keys, read from a file or fetched (and kept across reloads).
    pub jwks: Option<Arc<Jwks>>,
    pub upstream: Upstream,
    /// What the configuration declares of the upstream; the rest is discovered.
    pub supports: Supports,
    /// DELETE of a User deactivates it instead.
    pub soft_delete: bool,
    /// The rule pack its requests go through (stage 6), if any.
    pub idp: Option<Idp>,
    /// The packs that fix the app behind it: their request rules run on every request sent to
    /// the app, their response rules on every answer read from it.
    pub app_rules: Vec<Arc<Pack>>,
    /// The app's extension schemas from the tenant's schema files; those its `/Schemas`
    /// announces are read into `state`.
    pub schemas: Arc<Extensions>,
    /// What attributes may pass to the app (stage 7) and back to the IdP (stage 10).
    pub policy: Arc<Policy>,
    /// Attributes whose values its audit lines carry, where the policy lets them pass.
    pub audit_loggable: Arc<[String]>,
    /// Its rate and in-flight limits (stage 4), kept across reloads while they stay the same.
    pub limiter: Option<TenantLimiter>,
    /// The cap on calls in flight to its app, shared with the tenants fronting the same app.
    pub app_gate: Option<Arc<Gate>>,
    pub state: Arc<TenantState>,
    /// Pause, test mode and activity, kept by tenant id across reloads (the admin API).
    pub control: Arc<TenantControl>,
}

/// The outcome of routing: the tenant, and how much of the path is its public prefix.
pub struct Routed<'a> {
    pub tenant: &'a Arc<Tenant>,
    /// Length of the tenant's public path prefix (`/acme` in `/acme/Users/1`; 0 when the tenant
    /// is routed by host). What follows it is the path below the upstream's base URL.
    pub prefix_len: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("no tenant is served at this address")]
    UnknownTenant,
    #[error("the Host header does not match the TLS server name")]
    Misdirected,
    /// Two `Host` headers, or a `Host` that names another authority than the request target
    /// (RFC 9112 §3.2): which one routes would be a guess, and the app would be told the other.
    #[error("the request names two different hosts")]
    AmbiguousHost,
}

/// The maps are built from the configuration alone and a request only looks up in them, so no
/// request can lengthen their probe sequences: FxHash needs no seed here, and costs a lookup
/// far less than SipHash.
#[derive(Debug, Default)]
pub struct Tenants {
    by_host: FxHashMap<Box<str>, Arc<Tenant>>,
    by_prefix: FxHashMap<Box<str>, Arc<Tenant>>,
    /// For the admin API and reloads, which name a tenant by id.
    by_id: FxHashMap<Arc<str>, Arc<Tenant>>,
}

impl Tenants {
    pub fn new(tenants: impl IntoIterator<Item = Tenant>) -> Self {
        let mut out = Self::default();
        for t in tenants {
            let key: Box<str> = match &t.route {
                Route::Host(h) | Route::PathPrefix(h) => h.as_str().into(),
            };
            let map = match t.route {
                Route::Host(_) => &mut out.by_host,
                Route::PathPrefix(_) => &mut out.by_prefix,
            };
            let t = Arc::new(t);
            out.by_id.insert(t.id.clone(), t.clone());
            map.insert(key, t);
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The tenant with this id, if the snapshot has one.
    pub fn get(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.by_id.get(id)
    }

    /// Routes by host first (when any tenant is host-routed), then by the first path segment.
    /// Under TLS, a Host that differs from the SNI name is refused (RFC 9110 §7.4, 421), so a
    /// connection made for one tenant cannot be used to reach another.
    pub fn lookup(
        &self,
        host: Option<&str>,
        sni: Option<&str>,
        path: &str,
    ) -> Result<Routed<'_>, RouteError> {
        let host = host.map(strip_port);
        if let (Some(h), Some(s)) = (host, sni) {
            if !h.eq_ignore_ascii_case(s) {
                return Err(RouteError::Misdirected);
            }
        }
        if let Some(tenant) = host.and_then(|h| self.lookup_host(h)) {
            return Ok(Routed {
                tenant,
                prefix_len: 0,
            });
        }
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let segment = trimmed.split('/').next().unwrap_or_default();
        let tenant = self
            .by_prefix
            .get(segment)
            .ok_or(RouteError::UnknownTenant)?;
        Ok(Routed {
            tenant,
            prefix_len: path.len() - trimmed.len() + segment.len(),
        })
    }

    fn lookup_host(&self, host: &str) -> Option<&Arc<Tenant>> {
        if self.by_host.is_empty() {
            return None;
        }
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.by_host.get(host.to_ascii_lowercase().as_str());
        }
        self.by_host.get(host)
    }
}

/// `example.com:8443` → `example.com`; `[::1]:8443` → `[::1]`.
fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

impl Tenant {
    pub fn from_config(
        cfg: TenantConfig,
        upstream: Upstream,
        state: Arc<TenantState>,
        limiter: Option<TenantLimiter>,
    ) -> Self {
        Self {
            id: cfg.id,
            route: cfg.route,
            auth: cfg.auth,
            schemes: cfg.schemes,
            jwks: None,
            upstream,
            supports: cfg.upstream.supports,
            soft_delete: cfg.soft_delete,
            idp: cfg.idp,
            app_rules: cfg.app_rules,
            schemas: cfg.schemas,
            policy: cfg.policy,
            audit_loggable: cfg.audit_loggable,
            limiter,
            app_gate: None,
            state,
            control: Arc::default(),
        }
    }

    /// Whether a later stage reads a request body of this tenant as JSON anyway (a rule pack,
    /// an inbound attribute policy with detectors), so that stage 5 parses it once instead of
    /// checking its syntax first. A policy that judges names alone reads a resource as text
    /// (a PatchOp or a Bulk it parses itself).
    pub fn reads_bodies(&self) -> bool {
        self.idp.is_some()
            || !self.app_rules.is_empty()
            || self.policy.rules(Direction::Inbound).reads_values()
    }

    /// Names the app behind this tenant, for locks on its resources: its base URL, or the
    /// tenant for the embedded store (which no other tenant shares).
    pub fn app_key(&self) -> &str {
        self.upstream.base_url().unwrap_or(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants() -> Tenants {
        let t = |id: &str, route: Route| {
            let state = Arc::new(TenantState::with_store());
            Tenant {
                id: id.into(),
                route,
                auth: AuthConfig::default(),
                schemes: AuthSchemes::default(),
                jwks: None,
                upstream: Upstream::Memory(state.store.clone().expect("made with a store")),
                supports: Supports::default(),
                soft_delete: false,
                idp: None,
                app_rules: Vec::new(),
                schemas: Default::default(),
                policy: Arc::default(),
                audit_loggable: Arc::from([]),
                limiter: None,
                app_gate: None,
                state,
                control: Arc::default(),
            }
        };
        Tenants::new([
            t("acme", Route::PathPrefix("acme".into())),
            t("globex", Route::Host("globex.scim.test".into())),
        ])
    }

    #[test]
    fn path_prefix_routes_and_strips_the_segment() {
        let ts = tenants();
        let path = "/acme/Users/1";
        let r = ts.lookup(Some("proxy:8443"), None, path).expect("routed");
        assert_eq!((&*r.tenant.id, &path[r.prefix_len..]), ("acme", "/Users/1"));
        let r = ts.lookup(None, None, "/acme").expect("routed");
        assert_eq!(r.prefix_len, "/acme".len());
    }

    #[test]
    fn host_routes_whole_path_case_insensitively() {
        let ts = tenants();
        let r = ts
            .lookup(Some("Globex.SCIM.test:443"), None, "/Users")
            .expect("routed");
        assert_eq!((&*r.tenant.id, r.prefix_len), ("globex", 0));
    }

    #[test]
    fn unknown_prefix_and_prefix_lookalikes_are_refused() {
        let ts = tenants();
        assert_eq!(
            ts.lookup(None, None, "/other/Users").err(),
            Some(RouteError::UnknownTenant)
        );
        assert_eq!(
            ts.lookup(None, None, "/acmecorp/Users").err(),
            Some(RouteError::UnknownTenant)
        );
        assert_eq!(
            ts.lookup(None, None, "/").err(),
            Some(RouteError::UnknownTenant)
        );
    }

    #[test]
    fn host_that_differs_from_sni_is_misdirected() {
        let ts = tenants();
        let r = ts.lookup(Some("globex.scim.test"), Some("other.scim.test"), "/Users");
        assert_eq!(r.err(), Some(RouteError::Misdirected));
    }

    #[test]
    fn ipv6_host_keeps_its_brackets() {
        assert_eq!(strip_port("[::1]:8443"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
