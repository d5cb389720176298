//! The listener's limits and life: connection cap, read and idle timeouts, health endpoints and
//! graceful shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_then_exits() {
    let legacy = legacy_app("legacy-secret").await;
    let config = format!(
        "{}{}",
        server(""),
        tenant("t", &format!("http://{legacy}/_test/sleep"), "tok")
    );
    let mut proxy = Proxy::start(&config).await;
    let c = client();
    let slow = tokio::spawn(
        c.get(proxy.url("/t/Users?ms=800"))
            .bearer_auth("tok")
            .send(),
    );
    // The signal comes once the request is in the app's hands: the app records the headers
    // of the last request it received.
    until_legacy_has_request_of(legacy, "t").await;
    proxy.terminate();
    let resp = slow.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(proxy.wait().await.success());
    assert!(
        TcpStream::connect(proxy.addr).await.is_err(),
        "still accepting after shutdown"
    );
    // The lines reach the log a moment after the process wrote them, even after it exited.
    proxy.wait_for_log("all connections finished", 1).await;
}

#[tokio::test]
async fn connections_past_the_cap_get_503() {
    let config = format!(
        "{}{}",
        server("max_connections = 1"),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let held = client();
    assert_eq!(
        held.get(proxy.url("/t/Users"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // `held` keeps its connection open; this one is past the cap. Its 503 ends the
    // connection, so an overflow connection is not kept (and answered 503) for as long as its
    // client likes.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /t/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tok\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut answer))
        .await
        .expect("the proxy closes the connection after the 503")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("\r\nretry-after: 5\r\n"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(
        answer.contains("\r\ncontent-type: application/scim+json\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("urn:ietf:params:scim:api:messages:2.0:error"),
        "{answer}"
    );
    drop(held);
}

#[tokio::test]
async fn overflow_connections_are_bounded_too() {
    let config = format!(
        "{}{}",
        server("max_connections = 1"),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let held = client();
    let resp = held
        .get(proxy.url("/t/Users"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // One overflow connection is allowed for max_connections = 1 (1/8 + 1); it sends nothing
    // and so keeps its place until the read timeout.
    let _overflow = TcpStream::connect(proxy.addr).await.unwrap();
    let mut past = TcpStream::connect(proxy.addr).await.unwrap();
    let _ = past
        .write_all(b"GET /t/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tok\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(LIMIT, past.read_to_end(&mut answer))
        .await
        .expect("dropped in time");
    assert!(
        read.is_err() || answer.is_empty(),
        "answered instead of dropped: {}",
        String::from_utf8_lossy(&answer)
    );
    drop(held);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let config = format!(
        "{}{}",
        server("read_timeout = \"300ms\""),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /t/Users HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(LIMIT, stream.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408")
    );
}

#[tokio::test]
async fn a_body_that_never_arrives_is_408() {
    let config = format!(
        "{}{}",
        server("read_timeout = \"300ms\""),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let answer = raw_exchange(
        proxy.addr,
        b"POST /t/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tok\r\ncontent-length: 100\r\n\r\n{\"userName\":",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// Sends one request on a fresh connection, reads its answer, then waits for the proxy to
/// close the quiet connection on its own.
async fn closes_after_one_request(server_settings: &str) {
    let config = format!(
        "{}{}",
        server(server_settings),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /t/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tok\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let read = tokio::time::timeout(LIMIT, stream.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    closes_after_one_request("idle_timeout = \"200ms\"").await;
}

/// hyper times the next HTTP/1 request head from the end of the previous answer, so a
/// keep-alive connection waits at most `read_timeout` for it (docs/config.md, "Timeouts").
#[tokio::test]
async fn a_keep_alive_http1_connection_waits_read_timeout_for_its_next_request() {
    closes_after_one_request("read_timeout = \"300ms\"\nidle_timeout = \"1h\"").await;
}

#[tokio::test]
async fn health_and_readiness_follow_the_upstreams() {
    let legacy = legacy_app("s").await;
    let down = closed_port().await;
    let up_only = format!(
        "{}{}{}",
        server(""),
        tenant("a", &format!("http://{legacy}"), "t"),
        tenant("m", "memory:", "t")
    );
    let proxy = Proxy::start(&up_only).await;
    let c = client();
    let admin = |p: &str| format!("http://{}{p}", proxy.admin);
    assert_eq!(c.get(admin("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(admin("/readyz")).send().await.unwrap().status(), 200);

    let with_down = format!("{}{}", up_only, tenant("b", &format!("http://{down}"), "t"));
    let proxy = Proxy::start(&with_down).await;
    let resp = c
        .get(format!("http://{}/readyz", proxy.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["unreachable"][0]["tenants"][0], "b");
    assert_eq!(
        c.get(format!("http://{}/healthz", proxy.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// RFC 9113 §6.9: a client that opens its flow-control window at zero receives the answer's
/// headers but none of its body. Asked to close (GOAWAY) when idle, it used to keep its
/// connection, and its slot, for as long as it liked; now it is dropped after `read_timeout`.
#[tokio::test]
async fn an_h2_client_that_never_reads_its_answer_loses_the_connection_after_goaway() {
    let config = format!(
        "{}{}",
        server("idle_timeout = \"500ms\"\nread_timeout = \"500ms\""),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let url = proxy.url("/t/Users");
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(&url)
        .header("authorization", "Bearer tok")
        .body(())
        .unwrap();
    let (answer, _) = client.send_request(request, true).unwrap();
    let answer = answer.await.unwrap();
    assert_eq!(answer.status(), 200, "the headers are not flow-controlled");
    let closed = tokio::time::timeout(Duration::from_secs(10), connection).await;
    assert!(closed.is_ok(), "the proxy dropped the connection");
}

/// An h2 connection over loopback to the proxy, driven in the background; the task ends when
/// the proxy closes the connection.
async fn h2_connection(
    proxy: &Proxy,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    h2::PingPong,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let (client, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let ping_pong = connection.ping_pong().unwrap();
    (client, ping_pong, tokio::spawn(connection))
}

async fn h2_get(client: &mut h2::client::SendRequest<bytes::Bytes>, url: &str, token: &str) -> u16 {
    let request = http::Request::get(url)
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    let (answer, _) = client.send_request(request, true).unwrap();
    answer.await.unwrap().status().as_u16()
}

/// Only requests are activity: an h2 client that PINGs more often than the idle timeout, and
/// sends nothing else, used to keep its connection and slot for ever.
#[tokio::test]
async fn an_h2_client_that_only_pings_is_closed_when_idle() {
    let config = format!(
        "{}{}",
        server("idle_timeout = \"400ms\"\nread_timeout = \"400ms\""),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let (mut client, mut ping_pong, connection) = h2_connection(&proxy).await;
    assert_eq!(
        h2_get(&mut client, &proxy.url("/t/Users"), "tok").await,
        200
    );
    let pinging = tokio::spawn(async move {
        while ping_pong.ping(h2::Ping::opaque()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let closed = tokio::time::timeout(LIMIT, connection).await;
    assert!(closed.is_ok(), "PINGs kept the connection open");
    pinging.abort();
}

/// A TCP connection that never says anything is not an IdP: it loses its slot after
/// `unauthenticated_timeout`, not after the idle timeout.
#[tokio::test]
async fn a_silent_connection_is_closed_after_the_unauthenticated_timeout() {
    let config = format!(
        "{}{}",
        server(
            "idle_timeout = \"1h\"\nread_timeout = \"300ms\"\nunauthenticated_timeout = \"300ms\""
        ),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(LIMIT, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the silent connection is still open");
    assert!(answer.is_empty(), "nothing was asked, nothing is answered");
}

/// Refused requests are activity of a kind that keeps no connection: sent more often than the
/// idle timeout, they do not hold the connection past `unauthenticated_timeout`. One
/// authenticated request, and the connection is the IdP's for as long as it is busy.
#[tokio::test]
async fn only_an_authenticated_connection_outlives_the_unauthenticated_timeout() {
    let config = format!(
        "{}{}",
        server("idle_timeout = \"1h\"\nunauthenticated_timeout = \"300ms\""),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let url = proxy.url("/t/Users");

    let (mut refused, _, refused_conn) = h2_connection(&proxy).await;
    let guessing = async {
        while !refused_conn.is_finished() {
            let request = http::Request::get(&url)
                .header("authorization", "Bearer wrong")
                .body(())
                .unwrap();
            let Ok((answer, _)) = refused.send_request(request, true) else {
                return;
            };
            if let Ok(answer) = answer.await {
                assert_eq!(answer.status(), 401);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(LIMIT, guessing)
        .await
        .expect("the connection that never authenticated was closed");

    let (mut vouched, _, vouched_conn) = h2_connection(&proxy).await;
    assert_eq!(h2_get(&mut vouched, &url, "tok").await, 200);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(h2_get(&mut vouched, &url, "tok").await, 200);
    assert!(!vouched_conn.is_finished());
}

/// One address cannot take every slot: past `max_connections_per_address` its connections are
/// treated as past the connection cap (503, `Retry-After`, closed), and each connection it
/// closes gives a place back.
#[tokio::test]
async fn connections_past_the_per_address_cap_get_503() {
    let config = format!(
        "{}{}",
        server("max_connections_per_address = 2"),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let request = b"GET /t/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer tok\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(stream);
    }
    let mut third = TcpStream::connect(proxy.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, third.read_to_end(&mut answer))
        .await
        .expect("the connection past the cap is closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 5"), "{answer}");
    drop(held.pop());
    let got_in = async {
        loop {
            let resp = client()
                .get(proxy.url("/t/Users"))
                .bearer_auth("tok")
                .send()
                .await;
            if matches!(&resp, Ok(r) if r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(LIMIT, got_in)
        .await
        .expect("a closed connection gives its place back");
}

/// A socket whose far end stops reading and answering at the flip of a switch, without closing:
/// what a peer that vanished (a host that lost power, a NAT that forgot the flow) looks like.
struct Vanishing {
    inner: TcpStream,
    gone: Arc<AtomicBool>,
}

impl tokio::io::AsyncRead for Vanishing {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.gone.load(Ordering::Relaxed) {
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Vanishing {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.gone.load(Ordering::Relaxed) {
            return std::task::Poll::Ready(Ok(data.len()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An h2 peer that vanishes while its request is still being served is PINGed, and its
/// connection closed when the PING goes unanswered, long before the request's own deadline.
#[tokio::test]
async fn an_h2_peer_that_vanishes_mid_request_is_closed_by_keep_alive() {
    let (app, arrived) = counting_upstream(Duration::from_secs(60)).await;
    let config = format!(
        "{}[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nupstream = {{ url = \"http://{app}\", timeout = \"60s\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server("idle_timeout = \"400ms\"\nread_timeout = \"300ms\""),
        hash("tok")
    );
    let proxy = Proxy::start(&config).await;
    let tcp = std::net::TcpStream::connect(proxy.addr).unwrap();
    let watch = tcp.try_clone().unwrap();
    tcp.set_nonblocking(true).unwrap();
    let gone = Arc::new(AtomicBool::new(false));
    let io = Vanishing {
        inner: TcpStream::from_std(tcp).unwrap(),
        gone: gone.clone(),
    };
    let (mut client, connection) = h2::client::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(proxy.url("/t/Users"))
        .header("authorization", "Bearer tok")
        .body(())
        .unwrap();
    let (_answer, _) = client.send_request(request, true).unwrap();
    let in_the_app = async {
        while arrived.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(LIMIT, in_the_app)
        .await
        .expect("the request reaches the app");
    gone.store(true, Ordering::Relaxed);
    // What the proxy still sends (its PINGs) is drained here; the end of the stream is the
    // proxy closing the connection.
    let mut watch = TcpStream::from_std(watch).unwrap();
    let drained = async {
        let mut buf = [0u8; 4096];
        loop {
            match watch.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(20), drained)
        .await
        .is_ok();
    assert!(closed, "the vanished peer's connection is still open");
}

/// An answer still being passed on is the connection's activity, however few bytes move: a
/// slow app's answer is not cut off by the idle timeout.
#[tokio::test]
async fn an_answer_still_streaming_keeps_its_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"slow@example.com"}"#;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: {}\r\n\r\n",
                    user.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                for chunk in user.as_bytes().chunks(user.len() / 8 + 1) {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    let _ = stream.write_all(chunk).await;
                }
            });
        }
    });
    // An app that says it does everything: its answer streams through unread.
    let config = format!(
        "{}[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}\", supports = {{ patch = true, filter = true, sort = true, bulk = true, etag = true, discovery = true }} }}\n",
        server("idle_timeout = \"100ms\"\nread_timeout = \"200ms\""),
        hash("tok")
    );
    let proxy = Proxy::start(&config).await;
    let resp = client()
        .get(proxy.url("/t/Users/1"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), user);
}

/// A second SIGTERM during the drain ends it at once, and the exit code says that requests
/// were cut; `scimgate check` whose reader went away does not panic.
#[tokio::test]
async fn a_second_signal_ends_the_drain_at_once_and_says_so() {
    let legacy = legacy_app("legacy-secret").await;
    let config = format!(
        "{}[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nupstream = {{ url = \"http://{legacy}/_test/sleep\", timeout = \"60s\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server("shutdown_grace = \"60s\""),
        hash("tok")
    );
    let mut proxy = Proxy::start(&config).await;
    let c = client();
    let _slow = tokio::spawn(
        c.get(proxy.url("/t/Users?ms=30000"))
            .bearer_auth("tok")
            .send(),
    );
    until_legacy_has_request_of(legacy, "t").await;
    proxy.terminate();
    tokio::time::timeout(LIMIT, async {
        while !proxy.logs().contains("shutting down") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first signal starts the drain");
    proxy.terminate();
    let status = tokio::time::timeout(LIMIT, proxy.wait())
        .await
        .expect("the second signal ends the drain before its grace period");
    assert_eq!(status.code(), Some(3), "requests were cut");
    // The lines reach the log a moment after the process wrote them, even after it exited.
    proxy
        .wait_for_log("a second signal; closing remaining connections", 1)
        .await;
}

#[test]
fn check_does_not_panic_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    // Enough tenants that the output fills the pipe: the writes must meet the closed end.
    let tenants: String = (0..2000)
        .map(|i| tenant(&format!("t{i}"), "memory:", "tok"))
        .collect();
    let path = dir.path().join("many.toml");
    std::fs::write(&path, format!("{}{tenants}", server(""))).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#""$0" check --config "$1" | head -n 1 > /dev/null; echo "${PIPESTATUS[0]}""#)
        .arg(BIN)
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{stderr}");
}
