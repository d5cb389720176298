//! The HTTP/1.1 and h2 server settings of one listener, built with each configuration snapshot
//! so a reload's timeouts apply to the connections accepted after it.

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use crate::config::Server;

/// The largest header section the proxy reads, counted as HTTP/2 counts it (RFC 9113 §6.5.2:
/// each field's name and value and 32 bytes). The HTTP library's own limits are looser, so that
/// the proxy's SCIM Error is what a client gets.
pub const MAX_HEADER_BYTES: usize = 32 << 10;
/// The most header fields a request may have. HTTP/1.1's parser stops at 100 on its own, with a
/// bare 431.
pub const MAX_HEADER_COUNT: usize = 64;
/// The longest request target, path and query.
pub const MAX_URI_BYTES: usize = 8 << 10;

/// For connections within the cap, and for those past it (HTTP/1 answers with
/// `Connection: close`).
pub struct HttpBuilders {
    pub normal: auto::Builder<TokioExecutor>,
    pub overloaded: auto::Builder<TokioExecutor>,
}

impl HttpBuilders {
    pub fn new(server: &Server) -> Self {
        Self {
            normal: builder(server, true),
            overloaded: builder(server, false),
        }
    }
}

impl std::fmt::Debug for HttpBuilders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBuilders").finish_non_exhaustive()
    }
}

/// HTTP/1.1 waits at most `read_timeout` for a request's headers, the next one's included. An
/// h2 connection that has received nothing for half the idle timeout is PINGed, and closed when
/// the PING goes unanswered for `read_timeout`: a peer that vanished with a stream open does not
/// keep its slot until the stream's own deadline. The PINGs are not activity (see
/// [`crate::conn::Activity`]), so they keep no connection open.
fn builder(server: &Server, keep_alive: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(keep_alive)
        .header_read_timeout(server.read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        // Looser than the proxy's own bound, so that it answers a SCIM Error.
        .max_header_list_size(2 * MAX_HEADER_BYTES as u32)
        .keep_alive_interval(server.idle_timeout / 2)
        .keep_alive_timeout(server.read_timeout);
    builder
}
