//! Stage 1, listen: accepts TCP connections, terminates TLS, serves HTTP/1.1 and h2 on each,
//! enforces the connection caps (in all and per client address) and the read, idle and
//! authentication timeouts, and drains on shutdown.

pub mod http;
mod per_address;
mod stall;
pub mod tls;
mod woken;
pub mod workers;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Either;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use per_address::PerAddress;
use stall::Stall;
pub use tls::{peer_identity, server_config, TlsError};
use woken::WhenWoken;
pub use workers::Workers;

use crate::conn::{ConnInfo, TlsInfo};
use crate::pipeline;
use crate::runtime::{Runtime, Snapshot};

/// Serves until `shutdown` turns true, then stops accepting and waits up to the grace period
/// (or until `hurry` turns true) for open connections to finish their requests; says whether
/// they all did. Each connection is served by one of the `workers`, with the TLS and HTTP
/// settings of the snapshot in force when it was accepted; each request, with the snapshot in
/// force when it arrived.
pub async fn serve(
    listener: TcpListener,
    workers: &Workers,
    rt: Arc<Runtime>,
    mut shutdown: watch::Receiver<bool>,
    hurry: watch::Receiver<bool>,
) -> Drained {
    // Fixed at start: a reload cannot resize the connection cap.
    let max = rt.snapshot().server.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    let overflow = Arc::new(Semaphore::new(max / 8 + 1));
    let per_address = PerAddress::new(rt.snapshot().server.max_connections_per_address);
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
        // An address past its own cap is treated as the whole listener past its cap.
        let slot = per_address.admit(remote.ip());
        let Some((permit, overloaded)) = admit(&permits, &overflow, slot.is_some()) else {
            // Past both caps: no TLS handshake, no answer, no task; just the socket closed.
            tracing::debug!(%remote, "over the connection and overflow caps; dropped");
            continue;
        };
        let rt = rt.clone();
        let shutdown = shutdown.clone();
        workers.spawn(stream, move |stream| async move {
            connection(stream, remote, overloaded, rt, shutdown).await;
            drop((permit, slot));
        });
    }
    drop(listener);
    drain(&permits, max, rt.snapshot().server.shutdown_grace, hurry).await
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every connection finished its requests.
    All,
    /// The grace period ended, or a second signal came, with connections still open.
    Cut { open: usize },
}

/// A place among the `max_connections` (for a connection within its address's cap), else
/// among the overflow connections that are told 503 and closed (overloaded = true), else none.
/// The overflow cap bounds what a flood can cost: each overflow connection still takes a task,
/// a TLS handshake and a response.
fn admit(
    permits: &Arc<Semaphore>,
    overflow: &Arc<Semaphore>,
    within_address_cap: bool,
) -> Option<(OwnedSemaphorePermit, bool)> {
    if within_address_cap {
        if let Ok(permit) = permits.clone().try_acquire_owned() {
            return Some((permit, false));
        }
    }
    Some((overflow.clone().try_acquire_owned().ok()?, true))
}

async fn drain(
    permits: &Semaphore,
    max: usize,
    grace: Duration,
    mut hurry: watch::Receiver<bool>,
) -> Drained {
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let finished = tokio::time::timeout(grace, permits.acquire_many(all));
    let hurried = hurry.wait_for(|now| *now);
    let cause = tokio::select! {
        finished = finished => match finished {
            Ok(_) => {
                tracing::info!("all connections finished");
                return Drained::All;
            }
            Err(_) => "shutdown grace period over",
        },
        _ = hurried => "a second signal",
    };
    let open = max - permits.available_permits();
    tracing::warn!(open, "{cause}; closing remaining connections");
    Drained::Cut { open }
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    overloaded: bool,
    rt: Arc<Runtime>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let snapshot = rt.snapshot();
    let shared = Shared { rt, snapshot };
    let shared = &shared;
    let Some(acceptor) = &shared.snapshot.tls else {
        let conn = ConnInfo::new(remote, None, overloaded);
        return serve_connection(stream, conn, shared, shutdown).await;
    };
    let read_timeout = shared.snapshot.server.read_timeout;
    // In a scope of its own, so that the stream, moved into the connection, does not keep a
    // second place in this task while it is served.
    let serving = {
        let stream = match tokio::time::timeout(read_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return tracing::debug!(%remote, error = %e, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
        };
        let (_, session) = stream.get_ref();
        let tls = TlsInfo {
            sni: session.server_name().map(|s| s.to_ascii_lowercase().into()),
            peer: session.peer_certificates().and_then(peer_identity),
            verdicts: Default::default(),
        };
        let conn = ConnInfo::new(remote, Some(tls), overloaded);
        serve_connection(stream, conn, shared, shutdown)
    };
    serving.await;
}

/// What one connection is served with: the runtime for its requests, and the snapshot it was
/// accepted under for its TLS and HTTP settings.
struct Shared {
    rt: Arc<Runtime>,
    snapshot: Arc<Snapshot>,
}

/// Each byte of the returned future is paid once per open connection, for as long as it is
/// open. So this is not an `async fn`: the stream goes into the HTTP connection before the
/// future starts, and the future holds it once instead of also as an argument.
fn serve_connection<'a, S>(
    stream: S,
    conn: ConnInfo,
    shared: &'a Shared,
    mut shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(conn);
    // A client that stops taking its answer is cut off at the answer's deadline.
    let read_timeout = shared.snapshot.server.read_timeout;
    let io = TokioIo::new(Stall::new(stream, conn.activity.clone(), read_timeout));
    let rt = shared.rt.clone();
    let info = conn.clone();
    // Set once a request has its answer; an overloaded connection then closes (for HTTP/2,
    // where `Connection: close` does not exist, with a GOAWAY).
    let answered = Arc::new(Notify::new());
    let answered_in_service = answered.clone();
    let service = service_fn(move |req| {
        let (rt, conn) = (rt.clone(), info.clone());
        let answered = answered_in_service.clone();
        async move {
            let in_flight = conn.activity.request();
            let mut response = pipeline::handle(&rt, &conn, req).await;
            // A streamed answer keeps the connection busy until its last byte is handed over.
            if let Either::Left(streamed) = response.body_mut() {
                streamed.hold(in_flight);
            }
            if conn.overloaded {
                answered.notify_one();
            }
            Ok::<_, Infallible>(response)
        }
    });
    let http = if conn.overloaded {
        &shared.snapshot.http.overloaded
    } else {
        &shared.snapshot.http.normal
    };
    // Boxed: pinned where it is made, it is not moved into the task's state a second time.
    let mut served = Box::pin(http.serve_connection(io, service));
    async move {
        let mut idle = tokio::time::interval(shared.snapshot.server.idle_timeout);
        idle.reset();
        let mut closing = false;
        // A connection asked to close gets this long to finish its streams (at shutdown, the
        // shutdown grace); one whose client never reads its answer (an h2 flow-control window
        // held at zero after GOAWAY) is then dropped instead of holding its slot forever.
        let grace = shared.snapshot.server.read_timeout;
        let shutdown_grace = shared.snapshot.server.shutdown_grace;
        let force_close = tokio::time::sleep(Duration::MAX);
        tokio::pin!(force_close);
        // A connection is for an IdP that authenticates: one that has not, however busy with
        // PINGs or refused requests, is asked to close after a short while.
        let unauthenticated = tokio::time::sleep(shared.snapshot.server.unauthenticated_timeout);
        tokio::pin!(unauthenticated);
        let mut vouched = false;
        loop {
            // How long the connection gets to finish once asked to close, if it is to be.
            // The branches beside the connection are polled only when their own timer or signal
            // woke the task, not on each of the connection's reads and writes (`woken`).
            let close_within = tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(remote = %conn.remote, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = WhenWoken::new(Box::pin(shutdown.changed())), if !closing => shutdown_grace,
                _ = answered.notified(), if conn.overloaded && !closing => grace,
                _ = WhenWoken::new(Box::pin(idle.tick())), if !closing => {
                    if !conn.activity.idle_since_last_look() {
                        continue;
                    }
                    grace
                }
                _ = WhenWoken::new(&mut unauthenticated), if !closing && !vouched => {
                    if conn.activity.is_authenticated() {
                        vouched = true;
                        continue;
                    }
                    tracing::debug!(remote = %conn.remote, "no authenticated request in time; closing");
                    grace
                }
                _ = &mut force_close, if closing => {
                    tracing::debug!(remote = %conn.remote, "did not finish within the grace after being asked to close; dropped");
                    return;
                }
            };
            closing = true;
            force_close
                .as_mut()
                .reset(tokio::time::Instant::now() + close_within);
            served.as_mut().graceful_shutdown();
        }
    }
}
