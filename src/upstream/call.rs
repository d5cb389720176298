//! Requests the proxy makes on its own behalf while filling an upstream's gaps (a GET before
//! a PUT, a page of a list): buffered, bounded in size and time, and carrying the same
//! credential and forwarding headers as the IdP request that caused them.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode, Version};
use http_body_util::Full;
use tokio::time::Instant;

use super::error::UpstreamError;
use super::headers::{self, Forwarded};
use super::target::HttpUpstream;
use crate::limit::{self, Buffers, Held};
use crate::scim::error::ScimError;
use crate::scim::memory::{MemoryStore, StoreRequest, StoreResponse};
use crate::scim::request::Method as ScimMethod;
use crate::scim::MEDIA_TYPE;

/// The largest reply read from the upstream: a page of a list is the biggest thing asked for.
const MAX_REPLY: usize = 32 << 20;

pub struct Call<'a> {
    pub method: Method,
    /// Below the upstream's base: `/Users/2819c223`, `/Users?startIndex=101&count=100`.
    pub path_and_query: &'a str,
    pub body: Bytes,
    pub if_match: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn get(path_and_query: &'a str) -> Self {
        Self {
            method: Method::GET,
            path_and_query,
            body: Bytes::new(),
            if_match: None,
        }
    }
}

/// A whole upstream answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body's bytes in the process's budget for buffered answers, while the reply lives
    /// (`None` for the embedded store's answers, which the proxy holds anyway).
    pub held: Option<Held>,
}

impl HttpUpstream {
    pub(super) async fn call(
        &self,
        call: Call<'_>,
        forwarded: &Forwarded<'_>,
        buffers: &Buffers,
    ) -> Result<Reply, UpstreamError> {
        let uri = self.uri(call.path_and_query)?;
        // Made again only to retry on a fresh connection.
        let make = || {
            let mut request = Request::builder()
                .method(call.method.clone())
                .uri(uri.clone())
                .version(Version::HTTP_11);
            let headers = request.headers_mut().expect("the builder has no error yet");
            headers.insert(header::ACCEPT, HeaderValue::from_static(MEDIA_TYPE));
            if !call.body.is_empty() {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
            }
            if let Some(tag) = call.if_match.and_then(|t| HeaderValue::from_str(t).ok()) {
                headers.insert(header::IF_MATCH, tag);
            }
            headers::prepare_request(headers, self.credential.as_ref(), forwarded);
            request
                .body(Full::new(call.body.clone()))
                .expect("method, URI and headers are valid")
        };
        let deadline = Instant::now() + self.timeout;
        let response = self.send(make, deadline).await?;
        let (parts, body) = response.into_parts();
        let (body, held) = tokio::time::timeout_at(deadline, buffers.read(body, MAX_REPLY))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))?
            .map_err(UpstreamError::from)?;
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
            held: Some(held),
        })
    }
}

pub(super) async fn memory_call(store: &Arc<MemoryStore>, call: Call<'_>, base_url: &str) -> Reply {
    let ask = MemoryAsk {
        method: call.method,
        path_and_query: call.path_and_query.into(),
        body: call.body,
        base_url: base_url.into(),
        if_match: call.if_match.map(Cow::Borrowed),
        if_none_match: None,
    };
    memory_reply(store, ask).await
}

/// One request to the in-process store, forwarded or made by the proxy itself.
pub(super) struct MemoryAsk<'a> {
    pub method: Method,
    pub path_and_query: Cow<'a, str>,
    pub body: Bytes,
    pub base_url: Cow<'a, str>,
    pub if_match: Option<Cow<'a, str>>,
    pub if_none_match: Option<Cow<'a, str>>,
}

/// The store's answer as an HTTP answer: status, media type, `Location`, `ETag`.
pub(super) async fn memory_reply(store: &Arc<MemoryStore>, ask: MemoryAsk<'_>) -> Reply {
    let Some(method) = ScimMethod::parse(ask.method.as_str()) else {
        let e = ScimError::new(405, format!("{} is not a SCIM method", ask.method));
        return reply_of(StoreResponse {
            status: 405,
            body: e.to_json(),
            location: None,
            etag: None,
        });
    };
    // A large body is long work under the store's lock, and a busy store is a wait for it:
    // neither may hold up the other connections of this worker.
    let long = ask.body.len() > limit::LARGE || store.busy(method != ScimMethod::Get);
    if !long {
        return reply_of(store.handle(&ask.request(method)));
    }
    let (store, ask) = (store.clone(), ask.into_owned());
    reply_of(limit::off_worker(move || store.handle(&ask.request(method))).await)
}

impl MemoryAsk<'_> {
    fn request(&self, method: ScimMethod) -> StoreRequest<'_> {
        let (path, query) = match self.path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (&*self.path_and_query, None),
        };
        StoreRequest {
            method,
            path,
            query,
            body: &self.body,
            base_url: &self.base_url,
            if_match: self.if_match.as_deref(),
            if_none_match: self.if_none_match.as_deref(),
        }
    }

    /// For work that moves to another thread.
    fn into_owned(self) -> MemoryAsk<'static> {
        let owned = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        MemoryAsk {
            method: self.method,
            path_and_query: owned(self.path_and_query),
            body: self.body,
            base_url: owned(self.base_url),
            if_match: self.if_match.map(owned),
            if_none_match: self.if_none_match.map(owned),
        }
    }
}

fn reply_of(answer: StoreResponse) -> Reply {
    let mut headers = HeaderMap::new();
    if !answer.body.is_empty() {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    }
    if let Some(etag) = answer.etag.and_then(|e| HeaderValue::try_from(e).ok()) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(location) = answer.location.and_then(|l| HeaderValue::try_from(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    Reply {
        status: StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        headers,
        body: Bytes::from(answer.body),
        held: None,
    }
}
