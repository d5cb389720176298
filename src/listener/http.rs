//! The HTTP/1.1 and h2 server settings of one listener, built with each configuration snapshot
//! so a reload's timeouts apply to the connections accepted after it.

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

/// For connections within the cap, and for those past it (HTTP/1 answers with
/// `Connection: close`).
pub struct HttpBuilders {
    pub normal: auto::Builder<TokioExecutor>,
    pub overloaded: auto::Builder<TokioExecutor>,
}

impl HttpBuilders {
    pub fn new(read_timeout: Duration) -> Self {
        Self {
            normal: builder(read_timeout, true),
            overloaded: builder(read_timeout, false),
        }
    }
}

impl std::fmt::Debug for HttpBuilders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBuilders").finish_non_exhaustive()
    }
}

fn builder(read_timeout: Duration, keep_alive: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(keep_alive)
        .header_read_timeout(read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    builder
}
