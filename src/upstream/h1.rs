//! HTTP/1.1 to a plain-HTTP app, for the one way the proxy speaks to it: one request at a time
//! on a connection, written whole in one write; the answer's head parsed whole; its body
//! framed as RFC 9112 §6.3 says (a length, the chunked coding, or the connection's end) and
//! handed on in the pieces it arrives in, without copying them.
//!
//! A general client (hyper's) runs a dispatcher and a channel between the request's task and
//! the connection, and keeps a write buffer and a channel block for each connection; on the
//! pass-through path those were a fifth of the instructions of a request, and an eighth of the
//! memory of a connection. Whatever this module cannot frame with certainty (a `Content-Length`
//! beside a `Transfer-Encoding`, lengths that disagree, a malformed chunk) is an error and the
//! connection is closed: it is never guessed at.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The largest answer head read; a larger one is an error.
const MAX_HEAD: usize = 64 << 10;
/// The most header fields an answer head may have.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (with extensions) and trailer section accepted.
const MAX_CHUNK_LINE: usize = 4 << 10;
const MAX_TRAILERS: usize = 16 << 10;
/// The first read of an exchange takes up to this much; a read that fills what it was given
/// doubles the next, up to `MAX_READ`. A SCIM answer's head and body mostly fit in the first.
const FIRST_READ: usize = 4 << 10;
const MAX_READ: usize = 64 << 10;
/// A request body up to this size goes out in the same write as the head.
const WRITE_TOGETHER: usize = 16 << 10;

/// Why an exchange failed. Whether the app can have acted on the request is told by
/// [`Error::unanswered`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the request to the app: {0}")]
    Write(io::Error),
    #[error("the connection to the app failed {1}: {0}")]
    Read(io::Error, Progress),
    #[error("the app closed the connection {0}")]
    Closed(Progress),
    #[error("the app's answer is not valid HTTP/1.1: {0}")]
    Malformed(&'static str),
}

/// How far the answer had come when the exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// No byte of it had come.
    NotBegun,
    /// Some of it had.
    Begun,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotBegun => "before its answer began",
            Self::Begun => "in the middle of its answer",
        })
    }
}

impl Error {
    /// Whether the app is known not to have acted on the request: it was not written whole (a
    /// request cut short is not acted on), or the connection closed or was reset before any
    /// byte of the answer and the request may be repeated (RFC 9110 §9.2.2): an app closing a
    /// connection that sat idle as the request went out.
    pub fn unanswered(&self, idempotent: bool) -> bool {
        use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        match self {
            Self::Write(_) => true,
            Self::Closed(Progress::NotBegun) => idempotent,
            Self::Read(e, Progress::NotBegun) => {
                idempotent && matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
            }
            _ => false,
        }
    }
}

/// One connection to the app.
pub struct Conn {
    io: TcpStream,
    /// What has been read and not yet used. Emptied between exchanges, so an idle connection
    /// holds no buffer.
    buf: BytesMut,
    next_read: usize,
    /// False once the connection must carry no further request: the app said `close`, the
    /// answer ran to the connection's end, an exchange failed or was left unfinished.
    reusable: bool,
}

impl Conn {
    pub fn new(io: TcpStream) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            next_read: FIRST_READ,
            reusable: true,
        }
    }

    /// Ready for a request without waiting: open, nothing unasked-for from the app, and the
    /// last exchange wholly done. An idle connection the app closed, or wrote to, is not.
    pub fn ready_now(&mut self) -> bool {
        if !self.reusable {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        // The socket's readiness is cleared by a read that found less than it asked for, which
        // is how an answer's last read ends: a readable idle connection has something to say
        // (its end, or bytes nobody asked for), else its readiness is stale and one read tells.
        if self.io.poll_read_ready(&mut cx).is_pending() {
            return true;
        }
        let mut probe = [0u8; 1];
        let open =
            matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        self.reusable = open;
        open
    }

    pub fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// Writes `req` (origin form: its URI is a path and query; `Host` is among its headers) and
    /// reads the answer's head. Its body is read with [`Conn::poll_body`] and the [`Framing`]
    /// the answer carries.
    pub async fn send(&mut self, req: Request<Bytes>) -> Result<Response<Framing>, Error> {
        debug_assert!(self.reusable && self.buf.is_empty());
        let (parts, body) = req.into_parts();
        let head_request = parts.method == Method::HEAD;
        // Not reusable until the answer has been read to its end.
        self.reusable = false;
        let mut out = Vec::with_capacity(
            256 + if body.len() <= WRITE_TOGETHER {
                body.len()
            } else {
                0
            },
        );
        encode_head(
            &parts.method,
            &parts.uri,
            &parts.headers,
            body.len(),
            &mut out,
        );
        let write = async {
            if body.len() <= WRITE_TOGETHER {
                out.extend_from_slice(&body);
                self.io.write_all(&out).await
            } else {
                self.io.write_all(&out).await?;
                self.io.write_all(&body).await
            }
        };
        write.await.map_err(Error::Write)?;
        loop {
            let parsed = parse_head(&self.buf)?;
            let Some((len, head)) = parsed else {
                if self.buf.len() > MAX_HEAD {
                    return Err(Error::Malformed("the answer's head is larger than 64 KiB"));
                }
                let progress = match self.buf.is_empty() {
                    true => Progress::NotBegun,
                    false => Progress::Begun,
                };
                let n = poll_fn(|cx| self.poll_fill(cx))
                    .await
                    .map_err(|e| Error::Read(e, progress))?;
                if n == 0 {
                    return Err(Error::Closed(progress));
                }
                continue;
            };
            self.buf.advance(len);
            // 1xx answers before the final one (100 Continue, 103 Early Hints) are not passed on.
            if head.status().is_informational() {
                if head.status() == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(Error::Malformed(
                        "101 Switching Protocols was not asked for",
                    ));
                }
                continue;
            }
            // The request never says `close` (its `Connection` is not written): the answer
            // alone decides.
            let (state, keep) = framing(&head, head_request)?;
            return Ok(head.map(|()| Framing { state, keep }));
        }
    }

    /// Reads more into the buffer; `Ok(0)` at the connection's end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < self.next_read / 2 {
            self.buf.reserve(self.next_read);
        }
        let room = self.buf.capacity() - self.buf.len();
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            &mut self.buf
        ))?;
        if n == room {
            self.next_read = (self.next_read * 2).min(MAX_READ);
        }
        Poll::Ready(Ok(n))
    }

    /// The next piece of the body framed by `framing`; `None` at its end, after which the
    /// connection may carry another request if [`Conn::is_reusable`] says so.
    pub fn poll_body(
        &mut self,
        framing: &mut Framing,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            match &mut framing.state {
                State::Done => return Poll::Ready(None),
                State::Length(0) => {
                    self.end(framing);
                    return Poll::Ready(None);
                }
                State::Length(rest) => {
                    if !self.buf.is_empty() {
                        let n = self
                            .buf
                            .len()
                            .min(usize::try_from(*rest).unwrap_or(usize::MAX));
                        *rest -= n as u64;
                        return Poll::Ready(Some(Ok(self.take(n))));
                    }
                }
                State::Eof => {
                    if !self.buf.is_empty() {
                        let n = self.buf.len();
                        return Poll::Ready(Some(Ok(self.take(n))));
                    }
                }
                State::Chunked(chunk) => {
                    if let Some(step) = chunk.step(&mut self.buf) {
                        match step {
                            Ok(Some(n)) => return Poll::Ready(Some(Ok(self.take(n)))),
                            Ok(None) => {
                                self.end(framing);
                                return Poll::Ready(None);
                            }
                            Err(e) => return Poll::Ready(Some(Err(self.fail(framing, e)))),
                        }
                    }
                }
            }
            let n = match ready!(self.poll_fill(cx)) {
                Ok(n) => n,
                Err(e) => {
                    return Poll::Ready(Some(Err(
                        self.fail(framing, Error::Read(e, Progress::Begun))
                    )))
                }
            };
            if n == 0 {
                if matches!(framing.state, State::Eof) {
                    // The connection's end is the body's end; the connection is spent.
                    framing.state = State::Done;
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(
                    Err(self.fail(framing, Error::Closed(Progress::Begun))),
                ));
            }
        }
    }

    fn take(&mut self, n: usize) -> Bytes {
        self.buf.split_to(n).freeze()
    }

    /// The body has ended: the connection may be used again if the answer allowed it and
    /// nothing came after it (bytes past the answer are an app out of step: never trusted).
    fn end(&mut self, framing: &mut Framing) {
        framing.state = State::Done;
        self.reusable = framing.keep && self.buf.is_empty();
        // The pieces handed on keep their part of the buffer alive; the idle connection holds
        // none of it.
        self.buf = BytesMut::new();
    }

    fn fail(&mut self, framing: &mut Framing, e: Error) -> Error {
        framing.state = State::Done;
        self.reusable = false;
        e
    }
}

/// How the body of one answer is delimited, and whether the connection may carry another
/// request after it.
#[derive(Debug)]
pub struct Framing {
    state: State,
    keep: bool,
}

#[derive(Debug)]
enum State {
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunked),
    /// Everything until the app closes the connection.
    Eof,
    Done,
}

impl Framing {
    pub fn is_end(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    /// The bytes still to come, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            State::Chunked(_) | State::Eof => None,
        }
    }
}

/// Writes the request line and header section. `Content-Length` is the body's own: a method
/// that defines a meaning for a body says its length even when it is empty (RFC 9110 §8.6).
fn encode_head(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: usize,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if body > 0 || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The head at the start of `buf`, and its length; `None` while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Response<()>)>, Error> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut fields);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Error::Malformed("more than 100 header fields"))
        }
        Err(_) => {
            return Err(Error::Malformed(
                "the status line or a header field is malformed",
            ))
        }
    };
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(Error::Malformed("the status code is out of range"))?;
    let mut head = Response::new(());
    *head.status_mut() = status;
    *head.version_mut() = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let headers = head.headers_mut();
    headers.reserve(parsed.headers.len());
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| Error::Malformed("a header name is not a token"))?;
        let value = HeaderValue::from_bytes(field.value)
            .map_err(|_| Error::Malformed("a header value holds a control character"))?;
        headers.append(name, value);
    }
    Ok(Some((len, head)))
}

/// How the answer's body is delimited (RFC 9112 §6.3), and whether the connection may be kept.
fn framing(head: &Response<()>, head_request: bool) -> Result<(State, bool), Error> {
    let headers = head.headers();
    let status = head.status();
    let keep = head.version() == Version::HTTP_11 && !asks_to_close(headers);
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((State::Length(0), keep));
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(Error::Malformed(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        // Chunked must be the last coding; without it the body ends with the connection.
        let last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("?").split(','))
            .map(str::trim)
            .rfind(|c| !c.is_empty());
        return Ok(match last {
            Some(c) if c.eq_ignore_ascii_case("chunked") => (State::Chunked(Chunked::Size), keep),
            _ => (State::Eof, false),
        });
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let value = value
            .to_str()
            .map_err(|_| Error::Malformed("Content-Length is not a number"))?;
        for part in value.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::Malformed("Content-Length is not a number"));
            }
            let n: u64 = part
                .parse()
                .map_err(|_| Error::Malformed("Content-Length is out of range"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Error::Malformed("Content-Length values disagree"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => (State::Length(n), keep),
        None => (State::Eof, false),
    })
}

/// Whether a `Connection` header names `close`.
fn asks_to_close(headers: &HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .unwrap_or_default()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
    })
}

/// Where the chunked coding is (RFC 9112 §7.1).
#[derive(Debug)]
enum Chunked {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk's data, this much still to come.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// In the trailer section, this much of it read.
    Trailers(usize),
}

impl Chunked {
    /// Moves on over what `buf` holds: `Some(Ok(Some(n)))` when the next `n` bytes of `buf`
    /// are data to hand on, `Some(Ok(None))` at the end of the coding, `None` when more must be
    /// read first.
    fn step(&mut self, buf: &mut BytesMut) -> Option<Result<Option<usize>, Error>> {
        loop {
            match self {
                Self::Size => {
                    let Some(eol) = memchr::memchr(b'\n', buf) else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Some(Err(Error::Malformed("a chunk-size line is too long")));
                        }
                        return None;
                    };
                    let size = match chunk_size(&buf[..eol]) {
                        Ok(size) => size,
                        Err(e) => return Some(Err(e)),
                    };
                    buf.advance(eol + 1);
                    *self = match size {
                        0 => Self::Trailers(0),
                        n => Self::Data(n),
                    };
                }
                Self::Data(0) => *self = Self::DataEnd,
                Self::Data(rest) => {
                    if buf.is_empty() {
                        return None;
                    }
                    let n = buf.len().min(usize::try_from(*rest).unwrap_or(usize::MAX));
                    *rest -= n as u64;
                    return Some(Ok(Some(n)));
                }
                Self::DataEnd => {
                    // CRLF, or a bare LF, as the size lines allow.
                    let end = match (buf.first(), buf.get(1)) {
                        (None, _) | (Some(b'\r'), None) => return None,
                        (Some(b'\n'), _) => 1,
                        (Some(b'\r'), Some(b'\n')) => 2,
                        _ => return Some(Err(Error::Malformed("a chunk does not end with CRLF"))),
                    };
                    buf.advance(end);
                    *self = Self::Size;
                }
                Self::Trailers(read) => {
                    let Some(eol) = memchr::memchr(b'\n', buf) else {
                        if *read + buf.len() > MAX_TRAILERS {
                            return Some(Err(Error::Malformed("the trailer section is too long")));
                        }
                        return None;
                    };
                    let line = &buf[..eol];
                    let empty = line.is_empty() || line == b"\r";
                    *read += eol + 1;
                    buf.advance(eol + 1);
                    if empty {
                        // Trailers are not passed on: SCIM defines none.
                        return Some(Ok(None));
                    }
                    if *read > MAX_TRAILERS {
                        return Some(Err(Error::Malformed("the trailer section is too long")));
                    }
                }
            }
        }
    }
}

/// The size of a chunk-size line (without its LF): hex digits, then optional extensions after
/// `;`, which are ignored.
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let end = line
        .iter()
        .position(|b| matches!(b, b';' | b' ' | b'\t'))
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(end);
    // After the size, only whitespace and then extensions (RFC 9112 §7.1.1).
    let rest = rest.trim_ascii_start();
    if digits.is_empty() || digits.len() > 15 || !(rest.is_empty() || rest[0] == b';') {
        return Err(Error::Malformed("a chunk size is not a hex number"));
    }
    let mut size = 0u64;
    for &b in digits {
        let d = (b as char)
            .to_digit(16)
            .ok_or(Error::Malformed("a chunk size is not a hex number"))?;
        size = size * 16 + u64::from(d);
    }
    Ok(size)
}

#[cfg(test)]
mod tests;
