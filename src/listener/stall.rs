//! A client connection's socket with a bound on how long a write may wait: a client that stops
//! reading (its receive window full) cannot hold the connection, and the upstream answer
//! streaming on it, for longer than the answer's deadline (the upstream timeout), or for
//! `read_timeout` when no upstream answer is streaming. The body's own deadline cannot do it:
//! the HTTP library no longer polls a body while the socket takes nothing.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::conn::Activity;

pin_project! {
    pub struct Stall<S> {
        #[pin]
        inner: S,
        activity: Arc<Activity>,
        fallback: Duration,
        // Armed while a write waits: boxed, since only a stalled client pays for it.
        waiting: Option<Pin<Box<Sleep>>>,
    }
}

impl<S> Stall<S> {
    pub fn new(inner: S, activity: Arc<Activity>, fallback: Duration) -> Self {
        Self {
            inner,
            activity,
            fallback,
            waiting: None,
        }
    }
}

impl<S: AsyncRead> AsyncRead for Stall<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<S: AsyncWrite> AsyncWrite for Stall<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut this = self.project();
        let wrote = this.inner.as_mut().poll_write(cx, buf);
        bound(this.waiting, this.activity, *this.fallback, cx, wrote)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut this = self.project();
        let wrote = this.inner.as_mut().poll_write_vectored(cx, bufs);
        bound(this.waiting, this.activity, *this.fallback, cx, wrote)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        let flushed = this.inner.as_mut().poll_flush(cx);
        bound(this.waiting, this.activity, *this.fallback, cx, flushed)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// A write that went through disarms the timer; one that waits arms it (once) and fails when
/// it runs out.
fn bound<T>(
    waiting: &mut Option<Pin<Box<Sleep>>>,
    activity: &Activity,
    fallback: Duration,
    cx: &mut Context<'_>,
    result: Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    if result.is_ready() {
        *waiting = None;
        return result;
    }
    let timer = waiting.get_or_insert_with(|| {
        let until = activity
            .streaming_until()
            .unwrap_or_else(|| Instant::now() + fallback);
        Box::pin(tokio::time::sleep_until(until))
    });
    ready!(timer.as_mut().poll(cx));
    activity.stalled();
    Poll::Ready(Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "the client took no bytes of the answer in time",
    )))
}
