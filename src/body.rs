//! The bodies the proxy answers with: the upstream's stream, passed through unchanged but
//! bounded by the request's deadline (so an upstream that stalls mid-body cannot hold the client
//! connection forever), or bytes the proxy holds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::conn::InFlight;
use crate::limit::CallPermit;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body the proxy sends: the upstream's stream, or bytes it holds.
pub type Body = Either<UpstreamBody, Full<Bytes>>;

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
#[error("the upstream did not finish its response body in time")]
pub struct BodyTimeout;

/// A change made to a streamed answer's bytes as they pass (the app's address replaced by the
/// proxy's): each chunk in, what to send now out; what is held back comes out at the end.
pub trait Rewrite: Send + Sync {
    fn chunk(&mut self, data: Bytes) -> Bytes;
    fn finish(&mut self) -> Bytes;
}

pin_project! {
    pub struct UpstreamBody {
        #[pin]
        inner: Incoming,
        #[pin]
        deadline: Sleep,
        // The call's place in the tenant's and the app's limits, given back when the answer
        // has been passed on (or dropped).
        permit: Option<CallPermit>,
        // The request's mark on its connection: a connection streaming an answer is busy.
        in_flight: Option<InFlight>,
        // Applied to each chunk; `None` once the held-back end has been sent.
        rewrite: Option<Box<dyn Rewrite>>,
    }
}

impl UpstreamBody {
    pub fn new(inner: Incoming, deadline: Instant, permit: Option<CallPermit>) -> Self {
        Self {
            inner,
            deadline: tokio::time::sleep_until(deadline),
            permit,
            in_flight: None,
            rewrite: None,
        }
    }

    /// Rewrites the bytes as they pass. The length may change: the caller drops any
    /// `Content-Length`.
    pub fn rewrite(&mut self, rewrite: Box<dyn Rewrite>) {
        self.rewrite = Some(rewrite);
    }

    /// Keeps the request counted as in flight on its connection until this body is done.
    pub fn hold(&mut self, in_flight: InFlight) {
        self.in_flight = Some(in_flight);
    }
}

impl HttpBody for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            let frame = match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    return match this.deadline.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
                        Poll::Pending => Poll::Pending,
                    };
                }
            };
            let Some(rewrite) = this.rewrite.as_mut() else {
                return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = rewrite.chunk(data);
                        // All of it held back (it may be the start of the address): read on.
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    // Trailers would come before the held-back end; SCIM defines none, so a
                    // rewritten answer goes without them.
                    Err(_trailers) => {}
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => {
                    let rest = rewrite.finish();
                    *this.rewrite = None;
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
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
