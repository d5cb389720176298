use std::future::poll_fn;
use std::time::Duration;

use proptest::prelude::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::*;

/// What one exchange with an app that answers `answer` gave: the head, the body (or the error
/// that ended it), whether the connection could carry another request, and the request as the
/// app read it.
struct Outcome {
    head: Result<Response<()>, Error>,
    body: Result<Vec<u8>, Error>,
    reusable: bool,
    request: Vec<u8>,
}

/// An app that reads one request head (and the body its Content-Length announces), writes
/// `answer`, and then closes the connection if `close`, else holds it open.
async fn exchange(method: Method, body: &'static [u8], answer: &[u8], close: bool) -> Outcome {
    let answer = answer.to_vec();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await;
        let _ = seen_tx.send(request);
        tokio::io::AsyncWriteExt::write_all(&mut stream, &answer)
            .await
            .unwrap();
        if !close {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let mut conn = Conn::new(TcpStream::connect(addr).await.unwrap());
    let req = Request::builder()
        .method(method)
        .uri("/scim/v2/Users?count=1")
        .header("host", "app")
        .header("accept", "application/scim+json")
        .body(Bytes::from_static(body))
        .unwrap();
    let (head, body) = match conn.send(req).await {
        Ok(answer) => {
            let (head, mut framing) = answer.into_parts();
            let mut read = Vec::new();
            let body = loop {
                match poll_fn(|cx| conn.poll_body(&mut framing, cx)).await {
                    Some(Ok(piece)) => read.extend_from_slice(&piece),
                    Some(Err(e)) => break Err(e),
                    None => break Ok(read),
                }
            };
            (Ok(Response::from_parts(head, ())), body)
        }
        Err(e) => (Err(e), Ok(Vec::new())),
    };
    let request = tokio::time::timeout(Duration::from_secs(5), seen_rx)
        .await
        .unwrap()
        .unwrap();
    Outcome {
        head,
        body,
        reusable: conn.is_reusable(),
        request,
    }
}

async fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + length {
                return buf;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn get(answer: &[u8]) -> Outcome {
    exchange(Method::GET, b"", answer, false).await
}

#[tokio::test]
async fn a_request_is_written_in_origin_form_with_the_length_of_its_body() {
    let ok = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}";
    let post = exchange(Method::POST, b"{\"userName\":\"bjensen\"}", ok, false).await;
    let text = String::from_utf8(post.request).unwrap();
    assert!(
        text.starts_with("POST /scim/v2/Users?count=1 HTTP/1.1\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nhost: app\r\n"), "{text}");
    assert!(
        text.contains("\r\ncontent-length: 22\r\n\r\n{\"userName\":\"bjensen\"}"),
        "{text}"
    );
    // A POST with no body still says so; a GET does not.
    let empty_post = exchange(Method::POST, b"", ok, false).await;
    assert!(String::from_utf8(empty_post.request)
        .unwrap()
        .contains("content-length: 0\r\n"));
    let get = get(ok).await;
    assert!(!String::from_utf8(get.request)
        .unwrap()
        .contains("content-length"));
}

#[tokio::test]
async fn a_body_framed_by_its_length_is_read_and_the_connection_kept() {
    let out = get(b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: 13\r\n\r\n{\"id\":\"2819\"}").await;
    let head = out.head.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "application/scim+json");
    assert_eq!(out.body.unwrap(), b"{\"id\":\"2819\"}");
    assert!(out.reusable);
}

#[tokio::test]
async fn a_chunked_body_is_decoded_with_its_extensions_and_trailers_left_out() {
    let out = get(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"id\r\n6\r\n\":\"a\"}\r\n0\r\nX-Checksum: 1\r\n\r\n").await;
    assert_eq!(out.body.unwrap(), b"{\"id\":\"a\"}");
    assert!(out.reusable);
}

#[tokio::test]
async fn a_body_to_the_connections_end_is_read_whole_and_the_connection_not_kept() {
    let out = exchange(
        Method::GET,
        b"",
        b"HTTP/1.1 200 OK\r\n\r\n{\"id\":\"a\"}",
        true,
    )
    .await;
    assert_eq!(out.body.unwrap(), b"{\"id\":\"a\"}");
    assert!(!out.reusable);
    // HTTP/1.0, with a length, and an app that says close: read, not kept.
    for answer in [
        &b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}"[..],
        b"HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 2\r\n\r\n{}",
    ] {
        let out = get(answer).await;
        assert_eq!(out.body.unwrap(), b"{}");
        assert!(!out.reusable, "{}", String::from_utf8_lossy(answer));
    }
}

#[tokio::test]
async fn answers_without_a_body_end_at_their_head() {
    for (method, answer) in [
        (
            Method::HEAD,
            &b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"[..],
        ),
        (Method::DELETE, b"HTTP/1.1 204 No Content\r\n\r\n"),
        (
            Method::GET,
            b"HTTP/1.1 304 Not Modified\r\netag: W/\"1\"\r\n\r\n",
        ),
    ] {
        let out = exchange(method, b"", answer, false).await;
        assert!(out.body.unwrap().is_empty());
        assert!(out.reusable, "{}", String::from_utf8_lossy(answer));
    }
}

#[tokio::test]
async fn interim_answers_are_skipped_for_the_final_one() {
    let out = get(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
    assert_eq!(out.head.unwrap().status(), 200);
    assert_eq!(out.body.unwrap(), b"{}");
}

#[tokio::test]
async fn an_answer_that_cannot_be_framed_with_certainty_is_an_error() {
    for answer in [
        // Both lengths: which one the app meant is a guess (RFC 9112 §6.3).
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n{}"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\ncontent-length: -2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n{}",
        b"HTTP/1.1 2000 OK\r\ncontent-length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n{}",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    ] {
        let out = get(answer).await;
        assert!(
            matches!(out.head, Err(Error::Malformed(_))),
            "{}: {:?}",
            String::from_utf8_lossy(answer),
            out.head.map(|h| h.status())
        );
    }
}

#[tokio::test]
async fn equal_repeated_lengths_are_one_length() {
    let out = get(b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\ncontent-length: 2\r\n\r\n{}").await;
    assert_eq!(out.body.unwrap(), b"{}");
}

#[tokio::test]
async fn a_malformed_chunk_ends_the_body_in_error_and_the_connection() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2 junk\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffff\r\n{}",
    ] {
        let out = get(answer).await;
        assert!(
            matches!(out.body, Err(Error::Malformed(_))),
            "{}",
            String::from_utf8_lossy(answer)
        );
        assert!(!out.reusable);
    }
}

#[tokio::test]
async fn bytes_after_the_answer_cost_the_connection() {
    let out = get(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 500 Oops\r\n\r\n").await;
    assert_eq!(out.body.unwrap(), b"{}");
    assert!(!out.reusable);
}

#[tokio::test]
async fn an_answer_cut_short_is_an_error_that_says_how_far_it_came() {
    let out = exchange(
        Method::GET,
        b"",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}",
        true,
    )
    .await;
    assert!(matches!(out.body, Err(Error::Closed(Progress::Begun))));
    assert!(!out.reusable);
    let out = exchange(Method::GET, b"", b"HTTP/1.1 200 OK\r\ncontent-le", true).await;
    let e = out.head.unwrap_err();
    assert!(matches!(e, Error::Closed(Progress::Begun)));
    assert!(!e.unanswered(true), "an answer had begun: the app acted");
    let out = exchange(Method::GET, b"", b"", true).await;
    let e = out.head.unwrap_err();
    assert!(matches!(e, Error::Closed(Progress::NotBegun)));
    assert!(e.unanswered(true), "a GET may be sent again");
    assert!(!e.unanswered(false), "a POST may have been acted on");
}

#[tokio::test]
async fn a_head_past_64_kib_is_refused() {
    let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
    while answer.len() <= MAX_HEAD {
        answer.extend_from_slice(format!("x-filler: {}\r\n", "a".repeat(1000)).as_bytes());
    }
    let out = get(&answer).await;
    assert!(matches!(out.head, Err(Error::Malformed(_))));
}

#[tokio::test]
async fn an_idle_connection_the_app_closed_or_wrote_to_is_not_ready() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = oneshot::channel::<&'static [u8]>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await;
        tokio::io::AsyncWriteExt::write_all(
            &mut stream,
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
        let unasked = go_rx.await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut stream, unasked)
            .await
            .unwrap();
    });
    let mut conn = Conn::new(TcpStream::connect(addr).await.unwrap());
    let req = Request::get("/x")
        .header("host", "app")
        .body(Bytes::new())
        .unwrap();
    let (_, mut framing) = conn.send(req).await.unwrap().into_parts();
    while poll_fn(|cx| conn.poll_body(&mut framing, cx))
        .await
        .is_some()
    {}
    assert!(conn.ready_now());
    go_tx.send(b"HTTP/1.1 408 Request Timeout\r\n\r\n").unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!conn.ready_now(), "bytes nobody asked for");
}

/// Reads a chunked body fed in the pieces given, as a connection's reads would deliver it.
fn decode(pieces: &[&[u8]]) -> Result<Vec<u8>, Error> {
    let mut chunked = Chunked::Size;
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        while let Some(step) = chunked.step(&mut buf) {
            match step? {
                Some(n) => out.extend_from_slice(&buf.split_to(n)),
                None => return Ok(out),
            }
        }
    }
    Err(Error::Closed(Progress::Begun))
}

proptest! {
    /// The chunked coding decodes to what was encoded, however the bytes are cut into reads.
    #[test]
    fn the_chunked_coding_decodes_whatever_the_reads(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        sizes in proptest::collection::vec(1usize..80, 1..40),
        cuts in proptest::collection::vec(0usize..2000, 0..30),
        upper in any::<bool>(),
    ) {
        let mut wire = Vec::new();
        let mut rest = &data[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            let size = if upper { format!("{n:X}") } else { format!("{n:x};e=\"v\"") };
            wire.extend_from_slice(size.as_bytes());
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        wire.extend_from_slice(b"0\r\nx-t: 1\r\n\r\n");
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([wire.len()]) {
            pieces.push(&wire[at..c]);
            at = c;
        }
        prop_assert_eq!(decode(&pieces).unwrap(), data);
    }
}
