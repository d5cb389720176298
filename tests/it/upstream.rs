//! The forward path against apps that fail in the ordinary ways: keep-alive connections the
//! app closes while they sit idle (retried, not 502), a dead app (the breaker answers at once
//! and lets the app back in when it recovers), answers cut off mid-body (bounded in time
//! and said in the log), and answers framed each way HTTP/1.1 allows, or in none it allows.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// A tenant "t" in front of `app` (said to do everything, so that requests are forwarded as
/// they are), with `extra` keys added to its `upstream` table.
fn config(app: SocketAddr, extra: &str) -> String {
    format!(
        "{}[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", {extra} supports = {{ patch = true, filter = true, sort = true, bulk = true, etag = false, discovery = true }} }}\n",
        server(""),
        hash("tok")
    )
}

/// Reads one request (head and a body of `content-length` bytes) and gives its head; `None`
/// when the peer closed.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                buf.drain(..end + 4 + length);
                return Some(head);
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// An app with a keep-alive of one second: a connection idle for longer is closed without an
/// answer when its next request arrives, as when the app's close and the proxy's request cross
/// on the wire. Returns how many requests met such a connection.
async fn keep_alive_app() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stale = Arc::new(AtomicUsize::new(0));
    let seen = stale.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let stale = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut answered: Option<Instant> = None;
                loop {
                    if stream.readable().await.is_err() {
                        return;
                    }
                    if answered.is_some_and(|at| at.elapsed() > Duration::from_secs(1)) {
                        stale.fetch_add(1, Ordering::Relaxed);
                        return; // closed with the request unread: the proxy sees a reset
                    }
                    if read_request(&mut stream, &mut buf).await.is_none() {
                        return;
                    }
                    let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"a"}"#;
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: {}\r\n\r\n", body.len());
                    if stream.write_all((head + body).as_bytes()).await.is_err() {
                        return;
                    }
                    answered = Some(Instant::now());
                }
            });
        }
    });
    (addr, stale)
}

fn user() -> serde_json::Value {
    serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a"})
}

#[tokio::test]
async fn idle_connections_the_app_closed_are_retried_on_a_fresh_one_not_answered_502() {
    let (app, stale) = keep_alive_app().await;
    let proxy = Proxy::start(&config(app, "")).await;
    let c = client();
    let mut failed = Vec::new();
    // A steady stream with pauses just over the app's keep-alive: the proxy's pool (4 s by
    // default) still holds the connections the app has given up on.
    for round in 0..4 {
        let url = proxy.url("/t/Users/1");
        let sends = [
            c.get(&url),
            c.put(&url).json(&user()),
            c.delete(&url),
            c.get(proxy.url("/t/Users")),
        ];
        let answers = futures_join(sends.into_iter().map(|r| r.bearer_auth("tok").send())).await;
        for answer in answers {
            let status = answer.unwrap().status();
            if !status.is_success() {
                failed.push((round, status));
            }
        }
        tokio::time::sleep(Duration::from_millis(1150)).await;
    }
    assert_eq!(failed, [], "{}", proxy.logs());
    assert!(
        stale.load(Ordering::Relaxed) > 0,
        "the app closed connections under requests"
    );
}

#[tokio::test]
async fn a_pool_idle_timeout_below_the_apps_keep_alive_keeps_posts_off_closed_connections() {
    let (app, stale) = keep_alive_app().await;
    let proxy = Proxy::start(&config(app, "pool_idle_timeout = \"700ms\",")).await;
    let c = client();
    for _ in 0..3 {
        let post = c
            .post(proxy.url("/t/Users"))
            .bearer_auth("tok")
            .json(&user());
        let status = post.send().await.unwrap().status();
        assert!(status.is_success(), "{status}: {}", proxy.logs());
        tokio::time::sleep(Duration::from_millis(1150)).await;
    }
    assert_eq!(
        stale.load(Ordering::Relaxed),
        0,
        "no POST met a closed connection"
    );
}

/// An app that closes each connection 200 ms after its answer, on its own (a short keep-alive),
/// and keeps the request heads it read.
async fn closing_app() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let heads = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let read = read_request(&mut stream, &mut buf);
                    // Idle too long, or the proxy closed: the socket is dropped.
                    let Ok(Some(head)) =
                        tokio::time::timeout(Duration::from_millis(200), read).await
                    else {
                        return;
                    };
                    heads.lock().unwrap().push(head);
                    let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"a"}"#;
                    let answer = format!("HTTP/1.1 201 Created\r\ncontent-type: application/scim+json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, heads)
}

#[tokio::test]
async fn a_post_never_meets_a_connection_the_app_closed_while_it_sat_idle() {
    // The default pool idle timeout (4 s) is far longer than this app's keep-alive: the proxy
    // must notice the close itself before it writes a POST, which is never retried.
    let (app, heads) = closing_app().await;
    let proxy = Proxy::start(&config(app, "")).await;
    let c = client();
    for _ in 0..4 {
        let post = c
            .post(proxy.url("/t/Users"))
            .bearer_auth("tok")
            .json(&user());
        let status = post.send().await.unwrap().status();
        assert_eq!(status, 201, "{}", proxy.logs());
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 4, "each POST reached the app once: {heads:?}");
    for head in &heads {
        assert!(
            head.starts_with("POST /scim/v2/Users HTTP/1.1\r\n"),
            "{head}"
        );
        let host = format!("host: {app}");
        assert!(head.to_ascii_lowercase().contains(&host), "{head}");
    }
}

/// Sends all at once and waits for every answer.
async fn futures_join<F: std::future::Future + Send + 'static>(
    sends: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = sends.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_dead_app_opens_the_breaker_and_a_recovered_one_closes_it() {
    let port = closed_port().await;
    let extra = "connect_timeout = \"500ms\", timeout = \"1s\", breaker = { failures = 3, cool_down = \"2s\" },";
    let proxy = Proxy::start(&config(port, extra)).await;
    let get = || {
        client()
            .get(proxy.url("/t/Users/1"))
            .bearer_auth("tok")
            .send()
    };
    for _ in 0..3 {
        let resp = get().await.unwrap();
        assert_eq!(resp.headers()["retry-after"], "5");
        scim_error(resp, 503).await;
    }
    // Open: answered at once, with the cool-down left.
    let asked = Instant::now();
    let resp = get().await.unwrap();
    assert!(asked.elapsed() < Duration::from_millis(300));
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    let e = scim_error(resp, 503).await;
    assert!(e["detail"]
        .as_str()
        .unwrap()
        .contains("not sending it requests"));
    proxy.wait_for_log("circuit breaker open", 1).await;
    // The app comes back on its port; after the cool-down a trial request finds it.
    let app = TcpListener::bind(port).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = app.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while read_request(&mut stream, &mut buf).await.is_some() {
                    let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"a"}"#;
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: {}\r\n\r\n", body.len());
                    let _ = stream.write_all((head + body).as_bytes()).await;
                }
            });
        }
    });
    assert_eq!(get().await.unwrap().status(), 503, "still cooling down");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    for _ in 0..3 {
        assert_eq!(get().await.unwrap().status(), 200, "{}", proxy.logs());
    }
    proxy.wait_for_log("circuit breaker closed", 1).await;
    let logs = proxy.logs();
    assert!(logs.contains("circuit breaker half-open"), "{logs}");
}

/// An app that answers every request with a head announcing `length` bytes and the first `sent`
/// of them, then holds the connection open (`hold`) or closes it. An answer announced over
/// 256 KiB streams through the proxy (a smaller one it reads whole).
async fn cut_app(length: usize, sent: usize, hold: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                if read_request(&mut stream, &mut buf).await.is_none() {
                    return;
                }
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: {length}\r\n\r\n{{\"schemas\":[");
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&vec![b' '; sent - 12]).await;
                if hold {
                    tokio::time::sleep(LIMIT).await;
                }
            });
        }
    });
    addr
}

/// The "answer cut off" lines of the log, parsed.
fn cut_off_lines(proxy: &Proxy) -> Vec<serde_json::Value> {
    proxy
        .log_json()
        .into_iter()
        .filter(|l| l["message"] == "answer cut off")
        .collect()
}

#[tokio::test]
async fn a_truncated_answer_ends_the_clients_answer_in_error_and_is_logged() {
    let app = cut_app(1 << 20, 400, false).await;
    let proxy = Proxy::start(&config(app, "timeout = \"2s\",")).await;
    let sent = client()
        .get(proxy.url("/t/Schemas"))
        .bearer_auth("tok")
        .send();
    // The head goes out with the first bytes of the body; when the cut comes before they are
    // flushed, the connection ends with nothing. Either way the client sees the cut.
    if let Ok(resp) = sent.await {
        assert_eq!(resp.status(), 200);
        assert!(resp.bytes().await.is_err(), "the client sees the cut");
    }
    proxy.wait_for_log("answer cut off", 1).await;
    let line = &cut_off_lines(&proxy)[0];
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["tenant"], "t");
    // What was handed on: the 400 bytes sent, but for the tail held back in case it begins
    // the app's address (which the proxy replaces in a streamed answer).
    let passed = line["bytes_passed_on"].as_u64().unwrap();
    assert!(passed > 0 && passed <= 400, "{passed}");
    assert!(line["request_id"].as_str().is_some());
}

#[tokio::test]
async fn an_answer_stalled_mid_body_is_cut_at_the_upstream_timeout_and_logged() {
    // The app holds the connection for LIMIT: an answer that ends within LIMIT was cut by the
    // proxy's own 1 s timeout.
    let app = cut_app(1 << 20, 300, true).await;
    let proxy = Proxy::start(&config(app, "timeout = \"1s\",")).await;
    let read = async {
        let resp = client()
            .get(proxy.url("/t/Schemas"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        resp.bytes().await
    };
    let read = tokio::time::timeout(LIMIT - Duration::from_secs(2), read)
        .await
        .expect("cut before the app let go");
    assert!(read.is_err());
    proxy.wait_for_log("answer cut off", 1).await;
    let line = &cut_off_lines(&proxy)[0];
    let passed = line["bytes_passed_on"].as_u64().unwrap();
    assert!(passed > 0 && passed <= 300, "{passed}");
    let cause = line["cause"].as_str().unwrap();
    assert!(cause.contains("upstream timeout"), "{cause}");
}

#[tokio::test]
async fn a_client_that_never_reads_a_large_answer_is_cut_off_and_the_app_let_go() {
    // More than the sockets on the way hold, sent as fast as the proxy takes it.
    const SIZE: usize = 256 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        assert!(read_request(&mut stream, &mut buf).await.is_some());
        let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: {SIZE}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b' '; 1 << 20];
        let mut sent = 0;
        while sent < SIZE && stream.write_all(&chunk).await.is_ok() {
            sent += chunk.len();
        }
        let _ = done_tx.send(sent);
    });
    let proxy = Proxy::start(&config(app, "timeout = \"1s\",")).await;
    // A client that sends its request and then reads nothing.
    let mut idp = TcpStream::connect(proxy.addr).await.unwrap();
    let request = format!(
        "GET /t/Schemas HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer tok\r\n\r\n",
        proxy.addr
    );
    idp.write_all(request.as_bytes()).await.unwrap();
    let asked = Instant::now();
    let sent = tokio::time::timeout(LIMIT, done_rx)
        .await
        .expect("the app's connection is let go in time")
        .unwrap();
    assert!(sent < SIZE, "the app was cut off after {sent} bytes");
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );
    proxy.wait_for_log("answer cut off", 1).await;
    let line = &cut_off_lines(&proxy)[0];
    let cause = line["cause"].as_str().unwrap();
    assert!(cause.contains("client took no bytes"), "{cause}");
    drop(idp);
}

/// An app that answers the requests it is sent, on whatever connection, with `answers` in turn
/// (each written as it is, the connection closed after it when its flag says so). Returns how
/// many connections the proxy opened.
async fn scripted_app(answers: &'static [(&'static str, bool)]) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opened = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let counted = opened.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::Relaxed);
            let next = next.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while read_request(&mut stream, &mut buf).await.is_some() {
                    let (answer, close) =
                        answers[next.fetch_add(1, Ordering::Relaxed) % answers.len()];
                    if stream.write_all(answer.as_bytes()).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (addr, opened)
}

async fn get_user(proxy: &Proxy) -> reqwest::Response {
    client()
        .get(proxy.url("/t/Users/1"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn answers_framed_each_way_http_allows_reach_the_idp_whole() {
    const ANSWERS: &[(&str, bool)] = &[
        // The chunked coding, with an extension and a trailer (RFC 9112 §7.1).
        ("HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ntransfer-encoding: chunked\r\n\r\n1a;x=1\r\n{\"schemas\":[\"urn:ietf:para\r\n29\r\nms:scim:schemas:core:2.0:User\"],\"id\":\"1\"}\r\n0\r\nx-sum: 1\r\n\r\n", false),
        // To the connection's end, which the app then closes.
        ("HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\n\r\n{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"1\"}", true),
        // A length, then bytes nobody asked for: the connection is not used again.
        ("HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: 67\r\n\r\n{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"1\"}HTTP/1.1 200 OK\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: 67\r\n\r\n{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"id\":\"1\"}", false),
    ];
    let (app, opened) = scripted_app(ANSWERS).await;
    let proxy = Proxy::start(&config(app, "")).await;
    for round in 0..ANSWERS.len() {
        let resp = get_user(&proxy).await;
        assert_eq!(resp.status(), 200, "answer {round}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["id"], "1", "answer {round}");
        assert_eq!(
            body["schemas"][0], "urn:ietf:params:scim:schemas:core:2.0:User",
            "answer {round}"
        );
    }
    // The chunked answer's connection carried the close-delimited one, which ended it; the
    // third answer's trailing bytes cost its connection too.
    assert_eq!(opened.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn an_answer_that_cannot_be_framed_with_certainty_is_a_scim_error() {
    const ANSWERS: &[(&str, bool)] = &[(
        "HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        false,
    )];
    let (app, _) = scripted_app(ANSWERS).await;
    let proxy = Proxy::start(&config(app, "")).await;
    let resp = get_user(&proxy).await;
    assert_eq!(resp.status(), 502);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(body["status"], "502");
}
