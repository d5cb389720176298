//! The runtime: the configuration snapshot in force, swapped whole on reload, and the state
//! that outlives snapshots (memory stores, capability caches, locks, client pools). A request
//! loads the snapshot once and keeps it to its end, so a reload never changes a request halfway.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, Log, Server, UpstreamTarget};
use crate::listener::http::HttpBuilders;
use crate::listener::tls::{server_config, TlsError};
use crate::state::{Locks, TenantState};
use crate::tenant::table::{Tenant, Tenants};
use crate::upstream::client::{ClientError, Clients};
use crate::upstream::target::Upstream;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("server TLS: {0}")]
    Tls(#[from] TlsError),
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
    pub admin: SocketAddr,
    pub log: Log,
    pub tls: Option<TlsAcceptor>,
    pub http: HttpBuilders,
    /// The same locks in every snapshot: a reload never lets two writers in at once.
    pub locks: Arc<Locks>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("tenants", &self.tenants.iter().count())
            .field("listen", &self.server.listen)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
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
}

/// What a reload did, for the log.
#[derive(Debug)]
pub struct Reloaded {
    pub tenants: usize,
    /// Settings the file changed that only a restart applies (the sockets are already bound).
    pub ignored: Vec<&'static str>,
}

impl Runtime {
    /// Everything that can fail from the configuration's content happens here, before any
    /// port is bound.
    pub fn build(config: Config) -> Result<Self, BuildError> {
        let locks = Arc::new(Locks::default());
        let mut lasting = Lasting::default();
        let snapshot = compile(config, &mut lasting, &locks)?;
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
            lasting: Mutex::new(lasting),
            locks,
        })
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
        if config.admin != old.admin {
            ignored.push("admin.listen");
        }
        if config.server.max_connections != old.server.max_connections {
            ignored.push("server.max_connections");
        }
        if config.log.format != old.log.format || config.log.level != old.log.level {
            ignored.push("log");
        }
        // On error `lasting` keeps its tenant states: nothing of the failed file is kept but
        // client pools, which are keyed by their settings and harmless.
        let mut snapshot = compile(config, &mut lasting, &self.locks)?;
        // The sockets and the logger stay as they are; the snapshot says what really runs, so
        // the next reload compares against it.
        snapshot.server.listen = old.server.listen;
        snapshot.admin = old.admin;
        snapshot.server.max_connections = old.server.max_connections;
        snapshot.log = crate::config::Log {
            format: old.log.format,
            level: old.log.level.clone(),
        };
        let tenants = snapshot.tenants.iter().count();
        self.current.store(Arc::new(snapshot));
        Ok(Reloaded { tenants, ignored })
    }
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
    let mut tenants = Vec::with_capacity(config.tenants.len());
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
        let upstream =
            Upstream::build(&cfg.upstream, &mut lasting.clients, store).map_err(|source| {
                BuildError::Upstream {
                    tenant: cfg.id.to_string(),
                    source,
                }
            })?;
        states.insert(cfg.id.clone(), (key, state.clone()));
        tenants.push(Tenant::from_config(cfg, upstream, state));
    }
    lasting.tenants = states;
    Ok(Snapshot {
        tenants: Tenants::new(tenants),
        http: HttpBuilders::new(config.server.read_timeout),
        server: config.server,
        admin: config.admin,
        log: config.log,
        tls: tls.map(TlsAcceptor::from),
        locks: locks.clone(),
    })
}
