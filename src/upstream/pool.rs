//! Connections to a plain-HTTP upstream, kept per worker and driven by the task of the request
//! that uses them.
//!
//! The request's own task writes the request, reads the answer's head and, through [`Stream`],
//! its body ([`h1`]): no task per connection, no channel between the two, no wake-up crossing
//! between tasks. When the body has ended, the connection goes back to the idle list of the
//! worker it was opened on (the socket is registered with that worker's reactor); an idle
//! connection is looked at once more before it is used again, so one the app has closed is
//! found and dropped there instead of failing the request. Idle connections older than the
//! idle timeout are dropped by a sweep that runs only while the list holds any.
//!
//! HTTPS upstreams keep hyper-util's client: one of them may answer in h2, whose streams share
//! a connection that must be driven apart from any one request.

use std::collections::VecDeque;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, Weak};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;
use tower_service::Service;

use super::h1::{self, Conn, Framing};
use crate::listener::workers;

/// Why a request did not get its answer's head.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No connection could be made (refused, unresolvable, past the connect timeout).
    #[error(transparent)]
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The exchange failed; [`h1::Error::unanswered`] tells whether the app can have acted.
    #[error(transparent)]
    Exchange(h1::Error),
}

/// The idle connections to one upstream (scheme, host and port), per worker.
pub struct Pool {
    connector: HttpConnector,
    /// `http://host:port/`, what the connector is asked for.
    target: Uri,
    host: HeaderValue,
    idle_timeout: Duration,
    slots: Box<[Mutex<Slot>]>,
}

#[derive(Default)]
struct Slot {
    /// Oldest at the front; taken from the back, so the warmest connection is used first.
    idle: VecDeque<Idle>,
    /// A sweep is scheduled for this slot.
    sweeping: bool,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl Pool {
    /// `base` is an `http://` URL with an authority (validated with the configuration).
    pub fn new(base: &Uri, connect_timeout: Duration, idle_timeout: Duration) -> Self {
        let authority = base.authority().expect("an http URL has an authority");
        let port = authority.port_u16();
        // As a client writes it: the default port left out (RFC 9110 §7.2).
        let host = match port {
            Some(p) if p != 80 => format!("{}:{p}", authority.host()),
            _ => authority.host().to_owned(),
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        Self {
            connector,
            target: Uri::try_from(format!("http://{authority}/")).expect("from a valid URL"),
            host: HeaderValue::try_from(host).expect("a valid authority is a valid header value"),
            idle_timeout,
            slots: (0..workers::count()).map(|_| Mutex::default()).collect(),
        }
    }

    /// Sends `req` on an idle connection of this worker, or on a new one when there is none or
    /// `reuse` is false, and waits for the answer's head. The body comes as a [`Stream`] that
    /// reads the connection and gives it back when it ends. The URI is written as it is: the
    /// path and query only (origin form, RFC 9112 §3.2.1); `Host` is the pool's.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<Full<Bytes>>,
        reuse: bool,
    ) -> Result<Response<Stream>, Failure> {
        debug_assert!(req.uri().authority().is_none(), "origin form only");
        let (mut parts, body) = req.into_parts();
        parts.headers.insert(HOST, self.host.clone());
        let req = Request::from_parts(parts, bytes_of(body));
        let worker = workers::current() % self.slots.len();
        let mut conn = match reuse.then(|| self.checkout(worker)).flatten() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let answer = conn.send(req).await.map_err(Failure::Exchange)?;
        let (head, framing) = answer.into_parts();
        let lease = Lease {
            conn,
            pool: self.clone(),
            worker,
        };
        Ok(Response::from_parts(head, Stream::pooled(framing, lease)))
    }

    async fn connect(&self) -> Result<Conn, Failure> {
        let io = self
            .connector
            .clone()
            .call(self.target.clone())
            .await
            .map_err(|e| Failure::Connect(e.into()))?;
        Ok(Conn::new(io.into_inner()))
    }

    /// The newest idle connection of `worker` that is still open and waiting for a request.
    fn checkout(&self, worker: usize) -> Option<Conn> {
        let mut slot = self.slots[worker].lock().expect("never poisoned");
        let now = Instant::now();
        while let Some(Idle { mut conn, since }) = slot.idle.pop_back() {
            if now.duration_since(since) >= self.idle_timeout {
                // The rest are older still.
                slot.idle.clear();
                return None;
            }
            if conn.ready_now() {
                return Some(conn);
            }
        }
        None
    }

    fn put_back(self: &Arc<Self>, worker: usize, conn: Conn) {
        let mut slot = self.slots[worker].lock().expect("never poisoned");
        slot.idle.push_back(Idle {
            conn,
            since: Instant::now(),
        });
        if slot.sweeping {
            return;
        }
        // Off a runtime (never on the request path) the list is swept at the next checkout.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            slot.sweeping = true;
            runtime.spawn(sweep(Arc::downgrade(self), worker));
        }
    }
}

/// The bytes of a body the proxy holds whole.
fn bytes_of(body: Full<Bytes>) -> Bytes {
    let mut body = pin!(body);
    match body
        .as_mut()
        .poll_frame(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// Drops the connections of one worker's list as they pass the idle timeout, and those the app
/// has closed, until the list is empty.
async fn sweep(pool: Weak<Pool>, worker: usize) {
    loop {
        let oldest = {
            let Some(pool) = pool.upgrade() else { return };
            let mut slot = pool.slots[worker].lock().expect("never poisoned");
            let now = Instant::now();
            slot.idle.retain_mut(|i| {
                now.duration_since(i.since) < pool.idle_timeout && i.conn.ready_now()
            });
            match slot.idle.front() {
                Some(oldest) => oldest.since + pool.idle_timeout,
                None => {
                    slot.sweeping = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(oldest).await;
    }
}

/// A connection lent to one exchange, until its answer's body has ended.
struct Lease {
    conn: Conn,
    pool: Arc<Pool>,
    worker: usize,
}

impl Lease {
    fn give_back(self) {
        if self.conn.is_reusable() {
            self.pool.put_back(self.worker, self.conn);
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An upstream answer's body. One from a [`Pool`] connection reads that connection and gives it
/// back when it ends; dropped before its end, it closes the connection.
pub struct Stream(Source);

enum Source {
    /// From hyper-util's client, whose connection runs elsewhere.
    Hyper(Incoming),
    /// From a pooled connection, lent until the body ends (`None` after).
    Pooled {
        framing: Framing,
        lease: Option<Lease>,
    },
}

impl Stream {
    /// A body whose connection runs elsewhere (hyper-util's client).
    pub fn of(body: Incoming) -> Self {
        Self(Source::Hyper(body))
    }

    fn pooled(framing: Framing, lease: Lease) -> Self {
        let mut stream = Self(Source::Pooled {
            framing,
            lease: Some(lease),
        });
        stream.give_back_at_end();
        stream
    }

    /// A body with nothing more to read (no body at all, or its last bytes handed on) ends
    /// here: the caller may never poll it again.
    fn give_back_at_end(&mut self) {
        let Source::Pooled { framing, lease } = &mut self.0 else {
            return;
        };
        if !framing.is_end() {
            return;
        }
        if let Some(mut lease) = lease.take() {
            let cx = &mut Context::from_waker(Waker::noop());
            if let Poll::Ready(None) = lease.conn.poll_body(framing, cx) {
                lease.give_back();
            }
        }
    }
}

impl Body for Stream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let (framing, lease) = match &mut this.0 {
            Source::Hyper(body) => return Pin::new(body).poll_frame(cx).map_err(Into::into),
            Source::Pooled { framing, lease } => (framing, lease),
        };
        let Some(held) = lease else {
            return Poll::Ready(None);
        };
        match ready!(held.conn.poll_body(framing, cx)) {
            Some(Ok(data)) => {
                this.give_back_at_end();
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Some(Err(e)) => {
                *lease = None;
                Poll::Ready(Some(Err(e.into())))
            }
            None => {
                if let Some(lease) = lease.take() {
                    lease.give_back();
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Source::Hyper(body) => body.is_end_stream(),
            Source::Pooled { framing, .. } => framing.is_end(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Source::Hyper(body) => body.size_hint(),
            Source::Pooled { framing, .. } => match framing.remaining() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What the test app saw: connections opened, and connections the proxy closed.
    #[derive(Default)]
    struct Seen {
        opened: AtomicUsize,
        closed_by_proxy: AtomicUsize,
    }

    /// An app that answers each request with `answer`, and closes the connection after it when
    /// `close` is set (without saying so, as an app past its keep-alive does).
    async fn app(answer: &'static str, close: bool) -> (Uri, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base =
            Uri::try_from(format!("http://{}/scim", listener.local_addr().unwrap())).unwrap();
        let seen = Arc::new(Seen::default());
        let seen_by_app = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen_by_app.clone();
                seen.opened.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            if stream.write_all(answer.as_bytes()).await.is_err() || close {
                                return;
                            }
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => {
                                seen.closed_by_proxy.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        (base, seen)
    }

    fn request(base: &Uri, method: http::Method) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(Bytes::from_static(b"{}")));
        *req.method_mut() = method;
        *req.uri_mut() = Uri::try_from(format!("{}/Users/1", base.path())).unwrap();
        req
    }

    fn get(base: &Uri) -> Request<Full<Bytes>> {
        request(base, http::Method::GET)
    }

    fn pool(base: &Uri, idle: Duration) -> Arc<Pool> {
        Arc::new(Pool::new(base, Duration::from_secs(1), idle))
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
    const LONG: &str = "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n{}";

    /// Waits (a bounded while) for `done`.
    async fn eventually(done: impl Fn() -> bool) -> bool {
        for _ in 0..200 {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_connection_is_used_again_once_its_answer_has_been_read() {
        let (base, seen) = app(OK, false).await;
        let pool = pool(&base, Duration::from_secs(5));
        for _ in 0..5 {
            let answer = pool.send(get(&base), true).await.unwrap();
            assert_eq!(answer.status(), 200);
            let body = answer.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "{}");
        }
        assert_eq!(seen.opened.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_keep_as_many_connections_as_they_need() {
        let (base, seen) = app(OK, false).await;
        let pool = pool(&base, Duration::from_secs(5));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (pool, base) = (pool.clone(), base.clone());
                tokio::spawn(async move {
                    for _ in 0..200 {
                        let answer = pool.send(get(&base), true).await.unwrap();
                        answer.into_body().collect().await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let opened = seen.opened.load(Ordering::Relaxed);
        assert!(opened <= 16, "{opened} connections for 16 at a time");
    }

    #[tokio::test]
    async fn a_connection_the_app_closed_while_idle_is_not_used_even_for_a_post() {
        let (base, seen) = app(OK, true).await;
        let pool = pool(&base, Duration::from_secs(5));
        for _ in 0..3 {
            let answer = pool.send(get(&base), true).await.unwrap();
            answer.into_body().collect().await.unwrap();
            // The app's close reaches the proxy before its next request.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let post = request(&base, http::Method::POST);
            let answer = pool.send(post, true).await.unwrap();
            assert_eq!(answer.status(), 200);
            answer.into_body().collect().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(seen.opened.load(Ordering::Relaxed), 6);
    }

    #[tokio::test]
    async fn an_answer_dropped_before_its_end_closes_its_connection() {
        let (base, seen) = app(LONG, false).await;
        let pool = pool(&base, Duration::from_secs(5));
        let answer = pool.send(get(&base), true).await.unwrap();
        drop(answer);
        assert!(eventually(|| seen.closed_by_proxy.load(Ordering::Relaxed) == 1).await);
        // The next request does not meet the half-read connection.
        let answer = pool.send(get(&base), true).await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(seen.opened.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn idle_connections_are_closed_after_the_idle_timeout() {
        let (base, seen) = app(OK, false).await;
        let pool = pool(&base, Duration::from_millis(100));
        let answer = pool.send(get(&base), true).await.unwrap();
        answer.into_body().collect().await.unwrap();
        assert_eq!(seen.closed_by_proxy.load(Ordering::Relaxed), 0);
        assert!(
            eventually(|| seen.closed_by_proxy.load(Ordering::Relaxed) == 1).await,
            "the sweep closed the idle connection"
        );
        // And the list is swept again when it fills again.
        let answer = pool.send(get(&base), true).await.unwrap();
        answer.into_body().collect().await.unwrap();
        assert!(eventually(|| seen.closed_by_proxy.load(Ordering::Relaxed) == 2).await);
    }

    #[tokio::test]
    async fn a_rude_app_costs_its_connection_never_the_next_request() {
        // Bytes after the answer, and an answer that ends with the connection (HTTP/1.0
        // without a length): neither connection may be used again.
        const TRAILING: &str =
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 500 Oops\r\n\r\n";
        const TO_THE_END: &str = "HTTP/1.0 200 OK\r\n\r\n{}";
        for (answer, close) in [(TRAILING, false), (TO_THE_END, true)] {
            let (base, seen) = app(answer, close).await;
            let pool = pool(&base, Duration::from_secs(5));
            for _ in 0..3 {
                let answer = pool.send(get(&base), true).await.unwrap();
                assert_eq!(answer.status(), 200);
                let body = answer.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body, "{}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(seen.opened.load(Ordering::Relaxed), 3, "{answer:?}");
        }
    }

    #[tokio::test]
    async fn an_app_that_cannot_be_reached_is_a_connect_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base =
            Uri::try_from(format!("http://{}/scim", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let failed = pool(&base, Duration::from_secs(5))
            .send(get(&base), true)
            .await;
        assert!(
            matches!(failed, Err(Failure::Connect(_))),
            "{:?}",
            failed.err()
        );
    }

    #[test]
    fn the_host_header_leaves_out_the_default_port() {
        let host = |url: &str| {
            Pool::new(&Uri::try_from(url).unwrap(), Duration::ZERO, Duration::ZERO).host
        };
        assert_eq!(host("http://app:80/scim"), "app");
        assert_eq!(host("http://app/scim"), "app");
        assert_eq!(host("http://app:8080/scim"), "app:8080");
        assert_eq!(host("http://[::1]:8080/scim"), "[::1]:8080");
    }
}
