//! The bodies the proxy answers with: the upstream's stream, passed through unchanged but
//! bounded by the request's deadline (so an upstream that stalls mid-body cannot hold the client
//! connection forever), or bytes the proxy holds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{Either, Full};
use tokio::time::{Instant, Sleep};

use crate::conn::InFlight;
use crate::limit::CallPermit;
use crate::upstream::pool::Stream;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body the proxy sends: the upstream's stream, or bytes it holds. The stream is
/// boxed: an answer is moved several times on its way out, and the stream's state is ten times
/// the size of the rest.
pub type Body = Either<Box<UpstreamBody>, Full<Bytes>>;

/// A response the proxy makes from bytes it holds.
pub fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(body.into())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A SCIM JSON answer the proxy composed.
pub fn json(status: StatusCode, doc: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(doc).expect("a JSON value always serializes");
    full(status, crate::scim::MEDIA_TYPE, bytes)
}

/// An answer without a body (204).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    *r.status_mut() = status;
    r
}

#[derive(Debug, thiserror::Error)]
#[error("the application did not finish its answer within the upstream timeout")]
pub struct BodyTimeout;

/// A change made to a streamed answer's bytes as they pass (the app's address replaced by the
/// proxy's): each chunk in, what to send now out; what is held back comes out at the end.
pub trait Rewrite: Send + Sync {
    fn chunk(&mut self, data: Bytes) -> Bytes;
    fn finish(&mut self) -> Bytes;
}

/// An upstream answer's body on its way to the client. One that does not reach its end (the
/// app broke off or was too slow, the client went away or stopped reading) is said in the log
/// with how many bytes were passed on: the request's line has already gone out with the status
/// of the head.
pub struct UpstreamBody {
    inner: Stream,
    deadline: Instant,
    /// Set the first time the app keeps the body waiting: most answers have come whole with
    /// their head, and need no timer.
    timer: Option<Pin<Box<Sleep>>>,
    // The call's place in the tenant's and the app's limits, given back when the answer has
    // been passed on (or dropped).
    _permit: Option<CallPermit>,
    // The request's mark on its connection: a connection streaming an answer is busy.
    in_flight: Option<InFlight>,
    // Applied to each chunk; `None` once the held-back end has been sent.
    rewrite: Option<Box<dyn Rewrite>>,
    // The request id and tenant, for the log line of an answer cut off.
    label: Option<(HeaderValue, Arc<str>)>,
    passed: u64,
    // The end, or the failure, has been seen (and the failure logged).
    over: bool,
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // Unlabelled: read whole by the proxy, whose failure is the request's own.
        let Some(label) = self.label.as_ref() else {
            return;
        };
        if self.over || self.inner.is_end_stream() {
            return;
        }
        let stalled = self
            .in_flight
            .as_ref()
            .is_some_and(InFlight::client_stalled);
        let cause = if stalled {
            "the client took no bytes of the answer before its deadline"
        } else {
            "the client went away before the end of the answer"
        };
        cut_off(label, self.passed, &cause);
    }
}

impl UpstreamBody {
    pub fn new(inner: Stream, deadline: Instant, permit: Option<CallPermit>) -> Self {
        Self {
            inner,
            deadline,
            timer: None,
            _permit: permit,
            in_flight: None,
            rewrite: None,
            label: None,
            passed: 0,
            over: false,
        }
    }

    /// Rewrites the bytes as they pass. The length may change: the caller drops any
    /// `Content-Length`.
    pub fn rewrite(&mut self, rewrite: Box<dyn Rewrite>) {
        self.rewrite = Some(rewrite);
    }

    /// Keeps the request counted as in flight on its connection until this body is done, and
    /// tells the connection when the body must be done by.
    pub fn hold(&mut self, mut in_flight: InFlight) {
        in_flight.streams_until(self.deadline);
        self.in_flight = Some(in_flight);
    }

    /// Names the request this is the answer to, for the log, as it is handed to the client.
    pub fn label(&mut self, request_id: HeaderValue, tenant: Arc<str>) {
        self.label = Some((request_id, tenant));
    }
}

/// The log line of an answer passed on to the client that did not reach its end.
fn cut_off(label: &(HeaderValue, Arc<str>), passed: u64, cause: &dyn std::fmt::Display) {
    let (id, tenant) = label;
    tracing::warn!(
        request_id = id.to_str().unwrap_or_default(),
        tenant = &**tenant,
        bytes_passed_on = passed,
        cause = %cause,
        "answer cut off"
    );
}

impl HttpBody for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let failure: BoxError = loop {
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) => {
                    this.over = true;
                    // The held-back end of a rewritten answer, if any.
                    let rest = this.rewrite.take().map(|mut r| r.finish());
                    return match rest.filter(|rest| !rest.is_empty()) {
                        Some(rest) => {
                            this.passed += rest.len() as u64;
                            Poll::Ready(Some(Ok(Frame::data(rest))))
                        }
                        None => Poll::Ready(None),
                    };
                }
                Poll::Ready(Some(Err(e))) => break e,
                Poll::Pending => {
                    let deadline = this.deadline;
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    match timer.as_mut().poll(cx) {
                        Poll::Ready(()) => break BodyTimeout.into(),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            };
            let frame = match this.rewrite.as_mut() {
                None => frame,
                Some(rewrite) => match frame.into_data() {
                    // All of it held back (it may be the start of the address): read on.
                    Ok(data) => match rewrite.chunk(data) {
                        out if out.is_empty() => continue,
                        out => Frame::data(out),
                    },
                    // Trailers would come before the held-back end; SCIM defines none, so a
                    // rewritten answer goes without them.
                    Err(_trailers) => continue,
                },
            };
            if let Some(data) = frame.data_ref() {
                this.passed += data.len() as u64;
            }
            return Poll::Ready(Some(Ok(frame)));
        };
        this.over = true;
        if let Some(label) = this.label.as_ref() {
            cut_off(label, this.passed, &Causes(&*failure));
        }
        Poll::Ready(Some(Err(failure)))
    }

    fn is_end_stream(&self) -> bool {
        self.rewrite.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.rewrite {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

/// An error and its causes on one line: "error reading a body from connection: connection
/// reset by peer".
struct Causes<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}
