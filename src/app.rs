//! Turns a validated configuration into running listeners: builds the runtime, binds the
//! ports, serves until SIGTERM or SIGINT, then drains. SIGHUP reloads the configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::listener::{Drained, Workers};
use crate::runtime::{BuildError, Runtime};

pub struct App {
    runtime: Arc<Runtime>,
    /// The file to read again on SIGHUP.
    config_path: PathBuf,
}

impl App {
    /// Everything that can fail from the configuration's content happens here, before any
    /// port is bound.
    pub fn build(config: Config, config_path: PathBuf) -> Result<Self, BuildError> {
        Ok(Self {
            runtime: Arc::new(Runtime::build(config)?),
            config_path,
        })
    }

    /// Serves until SIGTERM or SIGINT, then drains; a second signal ends the drain at once.
    /// The accept loop, the admin API and the signals run on the calling thread's runtime,
    /// the first of the `workers`.
    pub async fn run(&self, workers: &Workers) -> std::io::Result<Drained> {
        // Before "listening" is logged: a SIGHUP that arrives once the proxy says it is up
        // must reload, not take the default action of ending the process.
        let signals = Signals::install()?;
        let snapshot = self.runtime.snapshot();
        let listener = TcpListener::bind(snapshot.server.listen).await?;
        let admin = TcpListener::bind(snapshot.admin.listen).await?;
        tracing::info!(
            addr = %listener.local_addr()?,
            admin = %admin.local_addr()?,
            tls = snapshot.tls.is_some(),
            workers = workers.count(),
            tenants = snapshot.tenants.len(),
            "listening"
        );
        drop(snapshot);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(crate::admin::serve(
            admin,
            self.runtime.clone(),
            Arc::from(self.config_path.as_path()),
            stopped.clone(),
        ));
        // Housekeeping: addresses whose failed authentications are forgiven are forgotten.
        let runtime = self.runtime.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                runtime.snapshot().auth_throttle.sweep();
            }
        });
        let (hurry, hurried) = watch::channel(false);
        let (runtime, path) = (self.runtime.clone(), self.config_path.clone());
        tokio::spawn(async move {
            let mut signals = signals;
            signals.until_stop(&runtime, &path).await;
            tracing::info!("shutting down: no new connections, finishing requests in flight (a second signal stops at once)");
            let _ = stop.send(true);
            signals.until_stop(&runtime, &path).await;
            let _ = hurry.send(true);
        });
        let drained =
            crate::listener::serve(listener, workers, self.runtime.clone(), stopped, hurried).await;
        Ok(drained)
    }

    /// Seals the audit log with its closing checkpoint. Only once no request can run any more
    /// (every worker and the serving runtime shut down): a drain that was cut short leaves
    /// connections open on the workers, whose requests would otherwise meet a closed log.
    pub async fn close_audit(&self) {
        self.runtime.close_audit().await;
    }

    /// Opens the audit log (when configured) and starts its writer: before serving, after
    /// `build`, so that `scimgate check` never touches the log.
    pub fn start_audit(&self) -> std::io::Result<()> {
        self.runtime.start_audit()
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.runtime.snapshot().server.listen
    }
}

/// The signals the proxy acts on: SIGHUP reloads, SIGTERM and SIGINT stop.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Reloads on SIGHUP; returns on SIGTERM or SIGINT.
    async fn until_stop(&mut self, runtime: &Arc<Runtime>, path: &std::path::Path) {
        #[cfg(unix)]
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = tokio::signal::ctrl_c() => return,
                // A large file takes a moment to load: it is read on the blocking pool, so
                // that no connection of this worker waits on the reload.
                _ = self.hup.recv() => {
                    let (runtime, path) = (runtime.clone(), path.to_owned());
                    let _ = tokio::task::spawn_blocking(move || reload(&runtime, &path)).await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (runtime, path);
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Reads, validates and puts in force the configuration file again, as the admin API's reload
/// does; the outcome is logged.
pub fn reload(runtime: &Runtime, path: &std::path::Path) {
    let _ = runtime.reload_file(path);
}
