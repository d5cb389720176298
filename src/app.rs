//! Turns a validated configuration into running listeners: builds the tenants and their
//! upstreams, binds the ports, serves until SIGTERM or SIGINT, then drains.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::listener::{self, TlsError};
use crate::pipeline::Proxy;
use crate::tenant::{Tenant, Tenants};
use crate::upstream::{ClientError, Clients, Upstream};

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

pub struct App {
    config: Config,
    proxy: Arc<Proxy>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl App {
    /// Everything that can fail from the configuration's content happens here, before any
    /// port is bound.
    pub fn build(mut config: Config) -> Result<Self, BuildError> {
        let tls = config
            .server
            .tls
            .as_ref()
            .map(listener::server_config)
            .transpose()?;
        let mut clients = Clients::default();
        let mut tenants = Vec::with_capacity(config.tenants.len());
        for cfg in std::mem::take(&mut config.tenants) {
            let upstream = Upstream::build(&cfg.upstream, &mut clients).map_err(|source| {
                BuildError::Upstream {
                    tenant: cfg.id.to_string(),
                    source,
                }
            })?;
            tenants.push(Tenant::from_config(cfg, upstream));
        }
        let proxy = Proxy {
            tenants: Tenants::new(tenants),
            max_body_bytes: config.server.max_body_bytes,
            read_timeout: config.server.read_timeout,
        };
        Ok(Self {
            config,
            proxy: Arc::new(proxy),
            tls,
        })
    }

    pub async fn run(self) -> std::io::Result<()> {
        let server = &self.config.server;
        let listener = TcpListener::bind(server.listen).await?;
        let admin = TcpListener::bind(self.config.admin).await?;
        tracing::info!(
            addr = %listener.local_addr()?,
            admin = %admin.local_addr()?,
            tls = self.tls.is_some(),
            tenants = self.proxy.tenants.iter().count(),
            "listening"
        );
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(crate::admin::serve(
            admin,
            self.proxy.clone(),
            stopped.clone(),
        ));
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            let _ = stop.send(true);
        });
        listener::serve(
            listener,
            self.tls.clone(),
            self.proxy.clone(),
            server,
            stopped,
        )
        .await;
        Ok(())
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.config.server.listen
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
