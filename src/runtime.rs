//! The runtime: the configuration snapshot in force, swapped whole on reload, and the state
//! that outlives snapshots (memory stores, capability caches, locks, client pools). A request
//! loads the snapshot once and keeps it to its end, so a reload never changes a request halfway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use tokio_rustls::TlsAcceptor;

use crate::audit::log::AuditLog;
use crate::auth::jwks::{self, Jwks};
use crate::auth::secret::{default_parallelism, SecretVerifier};
use crate::auth::services::Services;
use crate::auth::signer::Signer;
use crate::config::{Admin, Config, ConfigError, JwksFrom, Log, Server, TokenKey, UpstreamTarget};
use crate::control::TenantControl;
use crate::limit::{
    AuthThrottle, AuthThrottleConfig, Buffers, Gate, GateScope, TenantLimiter, UpstreamGates,
};
use crate::listener::http::HttpBuilders;
use crate::listener::tls::{server_config, TlsError};
use crate::metrics::{Live, Metrics};
use crate::rule_pack::Packs;
use crate::state::{Locks, TenantState};
use crate::tenant::table::{Tenant, Tenants};
use crate::upstream::client::{ClientError, Clients, DEFAULT_POOL_IDLE};
use crate::upstream::target::Upstream;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("server TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("authentication setup: {0}")]
    Auth(String),
    #[error("tenant \"{tenant}\": {source}")]
    Upstream {
        tenant: String,
        #[source]
        source: ClientError,
    },
}

/// One compiled configuration: what a request needs from the file, read once per request.
pub struct Snapshot {
    pub tenants: Tenants,
    pub server: Server,
    /// The admin listener's address (as bound), and its API's token and request log size.
    pub admin: Admin,
    pub log: Log,
    pub tls: Option<TlsAcceptor>,
    pub http: HttpBuilders,
    /// The rule packs of this configuration, for tenants with `idp = "auto"`.
    pub packs: Arc<Packs>,
    /// The same locks in every snapshot: a reload never lets two writers in at once.
    pub locks: Arc<Locks>,
    /// The cap on upstream calls in flight for the whole process.
    pub global: Arc<Gate>,
    /// Failed authentications per client address.
    pub auth_throttle: Arc<AuthThrottle>,
    /// The bytes of answers read whole, for the whole process.
    pub buffers: Arc<Buffers>,
    /// The counts `/metrics` shows: the same in every snapshot, so a reload keeps them.
    pub metrics: Arc<Metrics>,
    /// The slow-hash bound and cache, and the OAuth signing key: the same in every snapshot.
    pub auth: Arc<Services>,
    /// The audit log, the same in every snapshot; `None`: none is kept.
    pub audit: Option<Arc<AuditLog>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("tenants", &self.tenants.len())
            .field("listen", &self.server.listen)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The text of a Prometheus scrape: the counts, and what each configured tenant's queue
    /// and circuit breaker hold now.
    pub fn scrape(&self) -> String {
        let now = tokio::time::Instant::now();
        let live = self.tenants.iter().map(|t| Live {
            tenant: &t.id,
            queued: t
                .limiter
                .as_ref()
                .map_or(0, |l| l.stats().queued.iter().sum()),
            breaker: t.state.breaker.state(now),
        });
        self.metrics.encode_live(live)
    }
}

pub struct Runtime {
    current: ArcSwap<Snapshot>,
    lasting: Mutex<Lasting>,
    locks: Arc<Locks>,
}

/// What is kept from one snapshot to the next.
#[derive(Default)]
struct Lasting {
    clients: Clients,
    /// By tenant id: the state, and the upstream it belongs to. A tenant whose upstream
    /// changes starts afresh; one removed by a reload is forgotten.
    tenants: HashMap<Arc<str>, (String, Arc<TenantState>)>,
    /// By tenant id, for as long as the tenant is configured, whatever else changes: a paused
    /// tenant stays paused.
    controls: HashMap<Arc<str>, Arc<TenantControl>>,
    /// By tenant id, kept while its limits stay the same: a reload neither refills a bucket
    /// nor forgets who is waiting.
    limiters: HashMap<Arc<str>, TenantLimiter>,
    /// The caps of the apps several tenants may share, by base URL.
    gates: UpstreamGates,
    global: Option<Arc<Gate>>,
    throttle: Option<(AuthThrottleConfig, Arc<AuthThrottle>)>,
    buffers: Option<Arc<Buffers>>,
    metrics: Arc<Metrics>,
    secrets: Option<Arc<SecretVerifier>>,
    /// The OAuth signing key, and the configured key it was made from (`None`: at random).
    signer: Option<(Option<TokenKey>, Arc<Signer>)>,
    /// Fetched JWT key sets by URL, kept while a tenant still names the URL.
    jwks: HashMap<String, Arc<Jwks>>,
    /// Made from the first configuration; `[audit]` changes only by restart.
    audit: Option<Arc<AuditLog>>,
}

/// What a reload did, for the log and the admin API.
#[derive(Debug)]
pub struct Reloaded {
    pub tenants: usize,
    /// Tenant ids the new file has and the old one had not, and the reverse.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Settings the file changed that only a restart applies (the sockets are already bound).
    pub ignored: Vec<&'static str>,
}

/// Why a reload was refused: every problem, as `scimgate check` words it.
#[derive(Debug)]
pub struct ReloadRefused {
    pub problems: Vec<String>,
}

impl Runtime {
    /// Everything that can fail from the configuration's content happens here, before any
    /// port is bound.
    pub fn build(mut config: Config) -> Result<Self, BuildError> {
        let locks = Arc::new(Locks::default());
        let mut lasting = Lasting {
            audit: config.audit.take().map(|c| Arc::new(AuditLog::new(c))),
            ..Lasting::default()
        };
        let snapshot = compile(config, &mut lasting, &locks)?;
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
            lasting: Mutex::new(lasting),
            locks,
        })
    }

    /// Opens the audit log and starts its writer, before the proxy serves.
    pub fn start_audit(&self) -> std::io::Result<()> {
        let snapshot = self.snapshot();
        match &snapshot.audit {
            Some(audit) => audit.start(snapshot.metrics.audit()).map_err(|e| {
                let path = audit.config().path.display();
                std::io::Error::new(e.kind(), format!("audit log {path}: {e}"))
            }),
            None => Ok(()),
        }
    }

    /// Seals and closes the audit log, once the last request is answered.
    pub async fn close_audit(&self) {
        if let Some(audit) = &self.snapshot().audit {
            audit.close().await;
        }
    }

    /// The snapshot in force now; hold it for the whole request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Puts a new configuration in force for every request that starts from now on. On error
    /// nothing changes: the running snapshot keeps serving.
    pub fn reload(&self, config: Config) -> Result<Reloaded, BuildError> {
        let mut lasting = self.lasting.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.current.load();
        let mut ignored = Vec::new();
        if config.server.listen != old.server.listen {
            ignored.push("server.listen");
        }
        if config.admin.listen != old.admin.listen {
            ignored.push("admin.listen");
        }
        if config.server.max_connections != old.server.max_connections {
            ignored.push("server.max_connections");
        }
        if config.server.max_connections_per_address != old.server.max_connections_per_address {
            ignored.push("server.max_connections_per_address");
        }
        if config.log.format != old.log.format || config.log.level != old.log.level {
            ignored.push("log");
        }
        if config.audit.as_ref() != lasting.audit.as_ref().map(|a| a.config()) {
            ignored.push("audit");
        }
        // On error `lasting` keeps its tenant states: nothing of the failed file is kept but
        // client pools, which are keyed by their settings and harmless.
        let mut snapshot = compile(config, &mut lasting, &self.locks)?;
        // The sockets and the logger stay as they are; the snapshot says what really runs, so
        // the next reload compares against it.
        snapshot.server.listen = old.server.listen;
        snapshot.admin.listen = old.admin.listen;
        snapshot.server.max_connections = old.server.max_connections;
        snapshot.server.max_connections_per_address = old.server.max_connections_per_address;
        snapshot.log = crate::config::Log {
            format: old.log.format,
            level: old.log.level.clone(),
        };
        // Looked up by id, not searched for: a file of 10,000 tenants would otherwise cost
        // 10,000² comparisons here, longer than the whole load.
        let (added, removed) = (
            new_ids(&snapshot.tenants, &old.tenants),
            new_ids(&old.tenants, &snapshot.tenants),
        );
        let tenants = snapshot.tenants.len();
        drop(old);
        let old = self.current.swap(Arc::new(snapshot));
        // Freeing 10,000 tenants takes a tenth of a second: a thread of its own does it (or
        // the last request still holding the old snapshot), so the reload does not wait.
        let _ = std::thread::Builder::new()
            .name("snapshot-drop".into())
            .spawn(move || drop(old));
        Ok(Reloaded {
            tenants,
            added,
            removed,
            ignored,
        })
    }

    /// Reads, validates and puts in force the configuration file again, and logs the outcome:
    /// what SIGHUP and the admin API's reload both do. A file that `scimgate check` would
    /// refuse is refused with the same messages, and the running configuration keeps serving.
    pub fn reload_file(&self, path: &std::path::Path) -> Result<Reloaded, ReloadRefused> {
        let refused = |problems: Vec<String>| {
            tracing::error!(
                path = %path.display(),
                error = problems.join("\n"),
                "configuration reload refused; the running configuration keeps serving"
            );
            ReloadRefused { problems }
        };
        let config = match Config::load(path) {
            Ok(config) => config,
            Err(ConfigError::Invalid { problems }) => return Err(refused(problems)),
            Err(e) => return Err(refused(vec![e.to_string()])),
        };
        match self.reload(config) {
            Ok(done) => {
                for key in &done.ignored {
                    tracing::warn!(
                        key,
                        "{key} cannot change by reload; the running value stays until a restart"
                    );
                }
                tracing::info!(tenants = done.tenants, "configuration reloaded");
                Ok(done)
            }
            Err(e) => Err(refused(vec![e.to_string()])),
        }
    }
}

/// The ids of the tenants of `now` that `was` has not, sorted.
fn new_ids(now: &Tenants, was: &Tenants) -> Vec<String> {
    let mut ids: Vec<String> = now
        .iter()
        .filter(|t| was.get(&t.id).is_none())
        .map(|t| t.id.to_string())
        .collect();
    ids.sort();
    ids
}

/// Builds a snapshot from a validated configuration, taking each tenant's lasting state from
/// `lasting` (or making it). `lasting.tenants` is replaced only when the whole build succeeds.
fn compile(
    mut config: Config,
    lasting: &mut Lasting,
    locks: &Arc<Locks>,
) -> Result<Snapshot, BuildError> {
    let tls = config.server.tls.as_ref().map(server_config).transpose()?;
    let mut states = HashMap::with_capacity(config.tenants.len());
    let mut limiters = HashMap::new();
    let mut caps = Vec::new();
    let mut tenants = Vec::with_capacity(config.tenants.len());
    let mut jwks = HashMap::new();
    let mut controls = HashMap::with_capacity(config.tenants.len());
    let keep = config.admin.request_log;
    for cfg in std::mem::take(&mut config.tenants) {
        let key = match &cfg.upstream.target {
            UpstreamTarget::Memory => "memory:".to_owned(),
            UpstreamTarget::Http(uri) => uri.to_string(),
        };
        let state = match lasting.tenants.get(&cfg.id) {
            Some((was, state)) if *was == key => state.clone(),
            _ if key == "memory:" => Arc::new(TenantState::with_store()),
            _ => Arc::new(TenantState::default()),
        };
        let store = || {
            state
                .store
                .clone()
                .expect("a memory tenant's state has a store")
        };
        let breaker = &state.breaker;
        let upstream =
            Upstream::build(&cfg.id, &cfg.upstream, &mut lasting.clients, breaker, store).map_err(
                |source| BuildError::Upstream {
                    tenant: cfg.id.to_string(),
                    source,
                },
            )?;
        let limiter = cfg
            .limits
            .as_ref()
            .map(|limits| match lasting.limiters.get(&cfg.id) {
                Some(kept) if kept.limits() == limits => kept.clone(),
                _ => TenantLimiter::new(limits.clone()),
            });
        if let Some(limiter) = &limiter {
            limiters.insert(cfg.id.clone(), limiter.clone());
        }
        if let (Some(cap), UpstreamTarget::Http(_)) =
            (cfg.upstream.max_in_flight, &cfg.upstream.target)
        {
            // Keyed as `Tenant::app_key` names the app: its base URL without a trailing '/'.
            caps.push((key.trim_end_matches('/').to_owned(), cap));
        }
        states.insert(cfg.id.clone(), (key, state.clone()));
        let control = lasting.controls.get(&cfg.id).cloned();
        let control = control.unwrap_or_else(|| Arc::new(TenantControl::new(keep)));
        controls.insert(cfg.id.clone(), (control.clone(), cfg.test_mode));
        let keys = cfg
            .schemes
            .jwt
            .as_ref()
            .map(|rule| jwks_of(&rule.keys, lasting, &mut jwks))
            .transpose()?;
        let mut tenant = Tenant::from_config(cfg, upstream, state, limiter);
        tenant.jwks = keys;
        tenant.control = control;
        tenants.push(tenant);
    }
    lasting.tenants = states;
    lasting.jwks = jwks;
    lasting.limiters = limiters;
    lasting.gates.reconcile(caps);
    for t in &mut tenants {
        t.app_gate = lasting.gates.get(t.app_key());
    }
    let cap = config.server.max_upstream_calls;
    let global = match &lasting.global {
        Some(gate) if gate.cap() == cap.get() => gate.clone(),
        _ => Arc::new(Gate::new(GateScope::Global, cap)),
    };
    lasting.global = Some(global.clone());
    let throttle = match &lasting.throttle {
        Some((cfg, throttle)) if *cfg == config.server.auth_throttle => throttle.clone(),
        _ => Arc::new(AuthThrottle::new(&config.server.auth_throttle)),
    };
    lasting.throttle = Some((config.server.auth_throttle.clone(), throttle.clone()));
    let budget = config.server.max_buffered_bytes;
    let buffers = match &lasting.buffers {
        Some(b) if b.total() == budget => b.clone(),
        _ => Arc::new(Buffers::new(budget)),
    };
    lasting.buffers = Some(buffers.clone());
    let auth = Arc::new(auth_services(&config.server.token_key, lasting)?);
    // Last, once nothing can fail: a refused file changes no tenant's controls.
    for (control, test_mode) in controls.values() {
        control.set_keep(keep);
        control.configure_test_mode(*test_mode);
    }
    lasting.controls = controls.into_iter().map(|(id, (c, _))| (id, c)).collect();
    Ok(Snapshot {
        tenants: Tenants::new(tenants),
        http: HttpBuilders::new(&config.server),
        server: config.server,
        admin: config.admin,
        log: config.log,
        packs: config.packs,
        tls: tls.map(TlsAcceptor::from),
        locks: locks.clone(),
        global,
        auth_throttle: throttle,
        buffers,
        metrics: lasting.metrics.clone(),
        auth,
        audit: lasting.audit.clone(),
    })
}

/// The same bound on slow hash checks in every snapshot, and the same signing key while its
/// source stays the same: a reload must not end the tokens the proxy issued.
fn auth_services(key: &Option<TokenKey>, lasting: &mut Lasting) -> Result<Services, BuildError> {
    let secrets = lasting
        .secrets
        .get_or_insert_with(|| Arc::new(SecretVerifier::new(default_parallelism())))
        .clone();
    let signer = match (&lasting.signer, key) {
        (Some((was, signer)), now) if was == now => signer.clone(),
        (_, Some(k)) => Arc::new(Signer::with_key(k.key)),
        (_, None) => Arc::new(Signer::random().map_err(BuildError::Auth)?),
    };
    lasting.signer = Some((key.clone(), signer.clone()));
    Ok(Services { secrets, signer })
}

/// A tenant's JWT keys: a file's as loaded, a URL's kept from the last snapshot (with what was
/// fetched) or made now.
fn jwks_of(
    from: &JwksFrom,
    lasting: &mut Lasting,
    made: &mut HashMap<String, Arc<Jwks>>,
) -> Result<Arc<Jwks>, BuildError> {
    let (url, ca) = match from {
        JwksFrom::File { set, .. } => return Ok(Arc::new(Jwks::Static(set.clone()))),
        JwksFrom::Url { url, ca } => (url, ca.as_deref()),
    };
    // The same URL checked against another CA (or a CA file whose content changed) is
    // another source of keys: what was fetched under the old trust is not kept.
    let trust = match ca {
        None => String::new(),
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| BuildError::Auth(format!("JWT key set CA {}: {e}", path.display())))?;
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&pem))
        }
    };
    let key = format!("{url} {trust}");
    let kept = made.get(&key).or_else(|| lasting.jwks.get(&key)).cloned();
    let jwks = match kept {
        Some(kept) => kept,
        None => {
            let client = lasting
                .clients
                .get(ca, jwks::FETCH_TIMEOUT, DEFAULT_POOL_IDLE)
                .map_err(|e| BuildError::Auth(format!("JWT key set client: {e}")))?
                .pooled()
                .clone();
            let remote = jwks::RemoteJwks::new(url.clone(), client);
            Arc::new(Jwks::Remote(Box::new(remote)))
        }
    };
    made.insert(key, jwks.clone());
    Ok(jwks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(dir: &Path, text: &str) -> Config {
        let path = dir.join("scimgate.toml");
        Config::from_toml(text, &path).expect("valid configuration")
    }

    fn tenant(id: &str, url: &str) -> String {
        format!(
            "[[tenant]]\nid = \"{id}\"\nroute = {{ path_prefix = \"/{id}\" }}\nupstream = {{ url = \"{url}\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
            "ab".repeat(32)
        )
    }

    fn server(listen: &str, extra: &str) -> String {
        format!("[server]\nlisten = \"{listen}\"\n{extra}\n")
    }

    fn state_of(rt: &Runtime, id: &str) -> Arc<TenantState> {
        let snapshot = rt.snapshot();
        let tenant = snapshot.tenants.iter().find(|t| &*t.id == id);
        tenant.expect("tenant is configured").state.clone()
    }

    #[test]
    fn a_tenant_keeps_its_state_across_a_reload_while_its_upstream_stays() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = server("127.0.0.1:0", "")
            + &tenant("a", "memory:")
            + &tenant("b", "http://127.0.0.1:9/scim");
        let rt = Runtime::build(config(dir.path(), &first)).expect("built");
        let (a, b) = (state_of(&rt, "a"), state_of(&rt, "b"));
        let second = server("127.0.0.1:0", "")
            + &tenant("a", "memory:")
            + &tenant("b", "http://127.0.0.1:10/scim");
        let done = rt.reload(config(dir.path(), &second)).expect("reloaded");
        assert_eq!((done.tenants, done.ignored.len()), (2, 0));
        assert!(
            Arc::ptr_eq(&a, &state_of(&rt, "a")),
            "the memory store is kept"
        );
        assert!(
            !Arc::ptr_eq(&b, &state_of(&rt, "b")),
            "a new upstream starts afresh"
        );
    }

    #[test]
    fn pause_and_test_mode_survive_a_reload_that_changes_the_upstream() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = server("127.0.0.1:0", "") + &tenant("b", "http://127.0.0.1:9/scim");
        let rt = Runtime::build(config(dir.path(), &first)).expect("built");
        let control = |rt: &Runtime| {
            let snapshot = rt.snapshot();
            let tenant = snapshot.tenants.iter().find(|t| &*t.id == "b");
            tenant.expect("tenant is configured").control.clone()
        };
        control(&rt).set_paused(true);
        control(&rt).set_test_mode(true);
        let second = server("127.0.0.1:0", "") + &tenant("b", "http://127.0.0.1:10/scim");
        let done = rt.reload(config(dir.path(), &second)).expect("reloaded");
        assert!(done.added.is_empty() && done.removed.is_empty());
        let now = control(&rt).status();
        assert!(now.paused && now.test_mode);
        let gone = server("127.0.0.1:0", "") + &tenant("c", "memory:");
        let done = rt.reload(config(dir.path(), &gone)).expect("reloaded");
        assert_eq!(
            (done.added, done.removed),
            (vec!["c".to_owned()], vec!["b".to_owned()])
        );
        rt.reload(config(dir.path(), &first)).expect("reloaded");
        assert!(
            !control(&rt).is_paused(),
            "a tenant removed forgets its pause"
        );
    }

    #[test]
    fn a_tenant_removed_and_added_again_starts_afresh() {
        let dir = tempfile::tempdir().expect("temp dir");
        let both = server("127.0.0.1:0", "") + &tenant("a", "memory:") + &tenant("b", "memory:");
        let rt = Runtime::build(config(dir.path(), &both)).expect("built");
        let a = state_of(&rt, "a");
        let only_b = server("127.0.0.1:0", "") + &tenant("b", "memory:");
        rt.reload(config(dir.path(), &only_b)).expect("reloaded");
        assert!(rt.snapshot().tenants.iter().all(|t| &*t.id != "a"));
        rt.reload(config(dir.path(), &both)).expect("reloaded");
        assert!(!Arc::ptr_eq(&a, &state_of(&rt, "a")));
    }

    #[test]
    fn a_reload_that_fails_to_build_changes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("written");
        std::fs::write(dir.path().join("key.pem"), "not a key").expect("written");
        let good = server("127.0.0.1:0", "") + &tenant("a", "memory:");
        let rt = Runtime::build(config(dir.path(), &good)).expect("built");
        let a = state_of(&rt, "a");
        let tls = "tls = { cert = \"cert.pem\", key = \"key.pem\" }";
        let bad = server("127.0.0.1:0", tls) + &tenant("a", "memory:") + &tenant("c", "memory:");
        let refused = rt.reload(config(dir.path(), &bad));
        assert!(matches!(refused, Err(BuildError::Tls(_))), "{refused:?}");
        assert_eq!(rt.snapshot().tenants.iter().count(), 1);
        rt.reload(config(dir.path(), &good)).expect("reloaded");
        assert!(
            Arc::ptr_eq(&a, &state_of(&rt, "a")),
            "the failed reload dropped no state"
        );
    }

    #[test]
    fn the_audit_log_outlives_a_reload_and_its_settings_wait_for_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("audit.key"), "0123456789abcdef").expect("written");
        let audit = |max: u64| {
            format!(
                "[audit]\npath = \"audit.log\"\nkey_file = \"audit.key\"\nmax_file_bytes = {max}\n"
            )
        };
        let first = server("127.0.0.1:0", "") + &audit(65536) + &tenant("a", "memory:");
        let rt = Runtime::build(config(dir.path(), &first)).expect("built");
        let log = rt.snapshot().audit.clone().expect("an audit log");
        let same = rt.reload(config(dir.path(), &first)).expect("reloaded");
        assert!(same.ignored.is_empty(), "{:?}", same.ignored);
        let bigger = server("127.0.0.1:0", "") + &audit(1 << 20) + &tenant("a", "memory:");
        let done = rt.reload(config(dir.path(), &bigger)).expect("reloaded");
        assert_eq!(done.ignored, ["audit"]);
        let kept = rt.snapshot().audit.clone().expect("still an audit log");
        assert!(Arc::ptr_eq(&log, &kept), "the same writer");
        assert_eq!(kept.config().max_file_bytes, 65536);
        assert!(
            !dir.path().join("audit.log").exists(),
            "opened only when serving"
        );
    }

    #[test]
    fn settings_only_a_restart_applies_are_named_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = server("127.0.0.1:8080", "max_connections = 10") + &tenant("a", "memory:");
        let rt = Runtime::build(config(dir.path(), &first)).expect("built");
        let moved = server(
            "127.0.0.1:8081",
            "max_connections = 20\nmax_connections_per_address = 3\nmax_body_bytes = 4096",
        ) + &tenant("a", "memory:");
        let done = rt.reload(config(dir.path(), &moved)).expect("reloaded");
        assert_eq!(
            done.ignored,
            [
                "server.listen",
                "server.max_connections",
                "server.max_connections_per_address"
            ]
        );
        let now = rt.snapshot();
        assert_eq!(now.server.listen.port(), 8080);
        assert_eq!(now.server.max_connections, 10);
        assert_eq!(now.server.max_connections_per_address, 256);
        assert_eq!(now.server.max_body_bytes, 4096, "the rest applies");
    }
}
