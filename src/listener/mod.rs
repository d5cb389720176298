//! Stage 1, listen: accepts TCP connections, terminates TLS, serves HTTP/1.1 and h2 on each,
//! enforces the connection cap and the read and idle timeouts, and drains on shutdown.

mod io;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

pub use io::{Activity, InFlight};
pub use tls::{peer_identity, server_config, PeerIdentity, TlsError};

use crate::config::Server;
use crate::pipeline::{self, Proxy};

/// What the pipeline knows of the connection a request came on.
#[derive(Debug)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub tls: Option<TlsInfo>,
    /// Accepted past the connection cap: every request on it is answered 503.
    pub overloaded: bool,
    pub activity: Arc<Activity>,
}

#[derive(Debug, Default)]
pub struct TlsInfo {
    pub sni: Option<Box<str>>,
    pub peer: Option<PeerIdentity>,
}

impl ConnInfo {
    pub fn sni(&self) -> Option<&str> {
        self.tls.as_ref()?.sni.as_deref()
    }

    pub fn peer(&self) -> Option<&PeerIdentity> {
        self.tls.as_ref()?.peer.as_ref()
    }
}

/// Settings shared by every connection of one listener.
struct Shared {
    proxy: Arc<Proxy>,
    tls: Option<TlsAcceptor>,
    http: auto::Builder<TokioExecutor>,
    /// For connections past the cap: HTTP/1 answers with `Connection: close`.
    http_overloaded: auto::Builder<TokioExecutor>,
    read_timeout: Duration,
    idle_timeout: Duration,
}

/// Serves until `shutdown` turns true, then stops accepting and waits up to the grace period
/// for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    proxy: Arc<Proxy>,
    server: &Server,
    mut shutdown: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        proxy,
        tls: tls.map(TlsAcceptor::from),
        http: http_builder(server.read_timeout, true),
        http_overloaded: http_builder(server.read_timeout, false),
        read_timeout: server.read_timeout,
        idle_timeout: server.idle_timeout,
    });
    let max = server.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    let overflow = Arc::new(Semaphore::new(max / 8 + 1));
    loop {
        let (stream, remote) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually out of file descriptors: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some((permit, overloaded)) = admit(&permits, &overflow) else {
            // Past both caps: no TLS handshake, no answer, no task; just the socket closed.
            tracing::debug!(%remote, "over the connection and overflow caps; dropped");
            continue;
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            connection(stream, remote, overloaded, &shared, shutdown).await;
            drop(permit);
        });
    }
    drop(listener);
    drain(&permits, max, server.shutdown_grace).await;
}

/// A place among the `max_connections`, else among the overflow connections that are told 503
/// and closed (overloaded = true), else none. The overflow cap bounds what a flood can cost:
/// each overflow connection still takes a task, a TLS handshake and a response.
fn admit(
    permits: &Arc<Semaphore>,
    overflow: &Arc<Semaphore>,
) -> Option<(OwnedSemaphorePermit, bool)> {
    match permits.clone().try_acquire_owned() {
        Ok(permit) => Some((permit, false)),
        Err(_) => Some((overflow.clone().try_acquire_owned().ok()?, true)),
    }
}

async fn drain(permits: &Semaphore, max: usize, grace: Duration) {
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    match tokio::time::timeout(grace, permits.acquire_many(all)).await {
        Ok(_) => tracing::info!("all connections finished"),
        Err(_) => {
            let open = max - permits.available_permits();
            tracing::warn!(
                open,
                "shutdown grace period over; closing remaining connections"
            );
        }
    }
}

fn http_builder(read_timeout: Duration, keep_alive: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(keep_alive)
        .header_read_timeout(read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    builder
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    overloaded: bool,
    shared: &Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::default());
    let Some(acceptor) = &shared.tls else {
        let conn = ConnInfo {
            remote,
            tls: None,
            overloaded,
            activity,
        };
        return serve_connection(stream, conn, shared, shutdown).await;
    };
    let stream = match tokio::time::timeout(shared.read_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return tracing::debug!(%remote, error = %e, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
    };
    let (_, session) = stream.get_ref();
    let tls = TlsInfo {
        sni: session.server_name().map(|s| s.to_ascii_lowercase().into()),
        peer: session
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(peer_identity),
    };
    let conn = ConnInfo {
        remote,
        tls: Some(tls),
        overloaded,
        activity,
    };
    serve_connection(stream, conn, shared, shutdown).await;
}

async fn serve_connection<S>(
    stream: S,
    conn: ConnInfo,
    shared: &Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(conn);
    let io = TokioIo::new(io::MarkedIo::new(stream, conn.activity.clone()));
    let proxy = shared.proxy.clone();
    let info = conn.clone();
    // Set once a request has its answer; an overloaded connection then closes (for HTTP/2,
    // where `Connection: close` does not exist, with a GOAWAY).
    let answered = Arc::new(Notify::new());
    let answered_in_service = answered.clone();
    let service = service_fn(move |req| {
        let (proxy, conn) = (proxy.clone(), info.clone());
        let answered = answered_in_service.clone();
        async move {
            let _in_flight = conn.activity.request();
            let response = pipeline::handle(&proxy, &conn, req).await;
            if conn.overloaded {
                answered.notify_one();
            }
            Ok::<_, Infallible>(response)
        }
    });
    let http = if conn.overloaded {
        &shared.http_overloaded
    } else {
        &shared.http
    };
    let served = http.serve_connection(io, service);
    tokio::pin!(served);
    let mut idle = tokio::time::interval(shared.idle_timeout);
    idle.reset();
    let mut closing = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(remote = %conn.remote, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            _ = answered.notified(), if conn.overloaded && !closing => {
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            _ = idle.tick(), if !closing => {
                if conn.activity.idle_since_last_look() {
                    closing = true;
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
