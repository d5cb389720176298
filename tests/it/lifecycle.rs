//! The listener's limits and life: connection cap, read and idle timeouts, health endpoints and
//! graceful shutdown.

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
    let seen = format!("http://{legacy}/_debug/last-headers");
    let arrived = async {
        loop {
            let last: serde_json::Value = c.get(&seen).send().await.unwrap().json().await.unwrap();
            if last["x-scimgate-tenant"] == "t" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(LIMIT, arrived)
        .await
        .expect("the request reaches the app");
    proxy.terminate();
    let resp = slow.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(proxy.wait().await.success());
    assert!(
        TcpStream::connect(proxy.addr).await.is_err(),
        "still accepting after shutdown"
    );
    assert!(proxy.logs().contains("all connections finished"));
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
