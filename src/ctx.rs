//! The request context: everything the stages know of one request, owned by the pipeline from
//! its first byte to its log line. Stages read and fill it in order; the pure cores under them
//! (`scim::*`, auth's check) keep narrow signatures of their own.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, Uri};
use serde_json::Value;

use crate::body::Body;
use crate::conn::ConnInfo;
use crate::limit::Class;
use crate::runtime::Snapshot;
use crate::scim::discovery::Extensions;
use crate::scim::request::{Endpoint, Target};
use crate::tenant::table::Tenant;
use crate::upstream::caps::Capabilities;

/// What a stage decides: hand the request on, or answer it here.
// As large as the answer it may carry, which is moved out at once either way.
#[allow(clippy::large_enum_variant)]
pub enum Flow {
    Next,
    Respond(Response<Body>),
}

pub struct RequestCtx {
    pub id: HeaderValue,
    pub started: Instant,
    pub conn: Arc<ConnInfo>,
    /// The configuration this request started under, kept to its end whatever a reload does.
    pub snapshot: Arc<Snapshot>,
    pub method: Method,
    pub uri: Uri,
    /// The IdP's headers, as they came.
    pub headers: HeaderMap,
    /// 2: the routed tenant, and how much of the path is its public prefix (`/acme`).
    pub tenant: Option<Arc<Tenant>>,
    pub prefix_len: usize,
    /// 3: who proved to be the tenant's IdP.
    pub principal: Option<Principal>,
    /// 5: what the path names.
    pub target: Option<Target<'static>>,
    pub body: ReqBody,
    /// The upstream's capabilities, once looked up.
    pub caps: Option<Capabilities>,
    /// The app's extension schemas, once looked up (for stage 6).
    pub extensions: Option<Arc<Extensions>>,
    /// 4: which budget its upstream calls take permits from (deprovisioning, write, read).
    pub class: Class,
    /// What stage 11 writes.
    pub record: Record,
}

/// Which credential a request was authenticated with, named for logs and audit: the bearer
/// token's label, the client certificate's matched name, or both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Principal {
    pub token: Option<Arc<str>>,
    pub certificate: Option<Arc<str>>,
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.token, &self.certificate) {
            (Some(t), Some(c)) => write!(f, "token {t} + certificate {c}"),
            (Some(t), None) => write!(f, "token {t}"),
            (None, Some(c)) => write!(f, "certificate {c}"),
            (None, None) => f.write_str("-"),
        }
    }
}

/// What the record stage needs beyond the request itself.
#[derive(Debug, Default)]
pub struct Record {
    /// The gap the proxy filled for this request, if any (`patch`, `list`, `bulk`, …).
    pub filled: Option<&'static str>,
    /// Calls to the app the proxy made of its own for this request (stage 8), counted where
    /// they are sent, which sees the context only shared.
    pub calls: std::sync::atomic::AtomicU32,
    /// For an operation of a Bulk the proxy carried out: its place in the BulkRequest.
    pub bulk_op: Option<usize>,
    /// Stage 6: the rule pack the request went through, and the rules that changed it.
    pub pack: Option<Arc<str>>,
    pub rules: Vec<Arc<str>>,
    /// Stages 7 and 10: what the attribute policy dropped or redacted (`dropped:costCenter`).
    pub withheld: Vec<String>,
    /// Why the request failed, as the operator needs it (the caller may be told less).
    pub error: Option<String>,
}

/// The request body: its bytes as they came, parsed as JSON at most once. A body no stage
/// changed is forwarded as its original bytes.
#[derive(Debug, Default)]
pub struct ReqBody {
    bytes: Bytes,
    json: Option<Value>,
    changed: bool,
}

impl ReqBody {
    pub fn new(bytes: Bytes) -> Self {
        Self {
            bytes,
            json: None,
            changed: false,
        }
    }

    /// Bytes already parsed: `doc` is what they hold.
    pub fn with_json(bytes: Bytes, doc: Value) -> Self {
        Self {
            bytes,
            json: Some(doc),
            changed: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.json.is_none()
    }

    /// The JSON, if a stage has parsed it (and as it changed it).
    pub fn parsed(&self) -> Option<&Value> {
        self.json.as_ref()
    }

    /// The bytes as they came (a changed body is only in [`Self::to_bytes`]).
    pub fn raw(&self) -> &Bytes {
        &self.bytes
    }

    /// The body as JSON, parsed on first use.
    pub fn json(&mut self) -> Result<&Value, serde_json::Error> {
        if self.json.is_none() {
            // UTF-8 checked once for the whole body, not string by string as serde_json
            // checks bytes; bytes that are not UTF-8 are read as bytes, for its words on
            // where they fail.
            self.json = Some(match std::str::from_utf8(&self.bytes) {
                Ok(text) => serde_json::from_str(text)?,
                Err(_) => serde_json::from_slice(&self.bytes)?,
            });
        }
        Ok(self.json.as_ref().expect("parsed above"))
    }

    /// Lets `edit` change the body as JSON; it says whether it changed anything, and only
    /// then is the body serialized again on its way upstream.
    pub fn edit<T>(
        &mut self,
        edit: impl FnOnce(&mut Value) -> (bool, T),
    ) -> Result<T, serde_json::Error> {
        self.json()?;
        let doc = self.json.as_mut().expect("parsed above");
        let (changed, out) = edit(doc);
        self.changed |= changed;
        Ok(out)
    }

    /// What goes upstream: the original bytes, or the changed JSON serialized.
    pub fn to_bytes(&self) -> Bytes {
        match &self.json {
            Some(doc) if self.changed => {
                Bytes::from(crate::scim::json::to_vec(doc, self.bytes.len()))
            }
            _ => self.bytes.clone(),
        }
    }
}

impl RequestCtx {
    pub fn new(
        id: HeaderValue,
        snapshot: Arc<Snapshot>,
        conn: Arc<ConnInfo>,
        parts: http::request::Parts,
    ) -> Self {
        Self {
            id,
            started: Instant::now(),
            conn,
            snapshot,
            uri: parts.uri,
            headers: parts.headers,
            tenant: None,
            prefix_len: 0,
            principal: None,
            target: None,
            body: ReqBody::default(),
            caps: None,
            extensions: None,
            class: Class::of(&parts.method, None),
            method: parts.method,
            record: Record::default(),
        }
    }

    /// One operation of a Bulk the proxy carries out, as a request of its own from the same
    /// caller: same connection, snapshot, tenant and principal; its own method, path, body and
    /// `If-Match`. `None` when the operation's path is not a path.
    pub fn sub_request(
        &self,
        index: usize,
        method: Method,
        path: &str,
        body: Bytes,
        if_match: Option<&str>,
    ) -> Option<Self> {
        let uri = Uri::try_from(format!("{}{path}", self.prefix())).ok()?;
        let mut headers = self.headers.clone();
        for name in [
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::CONTENT_LENGTH,
        ] {
            headers.remove(name);
        }
        if let Some(tag) = if_match.and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert(header::IF_MATCH, tag);
        }
        Some(Self {
            id: self.id.clone(),
            started: Instant::now(),
            conn: self.conn.clone(),
            snapshot: self.snapshot.clone(),
            class: Class::of(&method, None),
            method,
            uri,
            headers,
            tenant: self.tenant.clone(),
            prefix_len: self.prefix_len,
            principal: self.principal.clone(),
            extensions: self.extensions.clone(),
            target: None,
            body: ReqBody::new(body),
            caps: self.caps,
            record: Record {
                bulk_op: Some(index),
                ..Record::default()
            },
        })
    }

    /// The routed tenant. Stages after routing may rely on it.
    pub fn tenant(&self) -> &Arc<Tenant> {
        self.tenant.as_ref().expect("stage 2 routed the request")
    }

    /// The app's extension schemas as far as they were looked up; none before.
    pub fn extensions(&self) -> &Extensions {
        self.extensions.as_deref().unwrap_or(Extensions::none())
    }

    /// What the path names. Stages after classification may rely on it.
    pub fn target(&self) -> &Target<'static> {
        self.target
            .as_ref()
            .expect("stage 5 classified the request")
    }

    /// Whether the request is a query, answered with a ListResponse (RFC 7644 §3.4.2,
    /// §3.4.3): a `.search`, or a GET of a collection. Any other answer is one resource,
    /// whatever its members are called; `/Me` is one too (§3.11).
    pub fn answers_a_query(&self) -> bool {
        let target = self.target();
        let read_of_many =
            self.method == Method::GET && target.id.is_none() && target.endpoint != Endpoint::Me;
        target.search || read_of_many
    }

    pub fn tenant_id(&self) -> &str {
        self.tenant.as_ref().map_or("-", |t| &t.id)
    }

    /// The tenant's public path prefix: `/acme` in `/acme/Users/1`.
    pub fn prefix(&self) -> &str {
        &self.uri.path()[..self.prefix_len]
    }

    /// The path below the tenant's base, without the query: `/Users/2819c223`.
    pub fn path(&self) -> &str {
        &self.uri.path()[self.prefix_len..]
    }

    /// The path below the tenant's base, with the query: `/Users?startIndex=1`.
    pub fn path_and_query(&self) -> &str {
        let all = self.uri.path_and_query().map_or("/", |pq| pq.as_str());
        &all[self.prefix_len..]
    }

    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// Replaces the URI's path and query (stage 5's canonical spelling, stage 6's filter);
    /// text that is not a valid path and query leaves the URI as it was.
    pub fn set_path_and_query(&mut self, pq: &str) {
        let Ok(pq) = pq.parse() else { return };
        let mut parts = self.uri.clone().into_parts();
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            self.uri = uri;
        }
    }

    /// The host the IdP addressed: the request target's authority (h2, absolute form), else
    /// `Host`.
    pub fn host(&self) -> Option<&str> {
        self.uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| self.headers.get(header::HOST)?.to_str().ok())
    }

    /// The lock every write to the resource this request names takes, forwarded or emulated.
    /// Keyed by the resource in the app, not by path text or tenant: `/Users/a%62` and
    /// `/Users/ab` are one resource, and so is one id reached through two tenants.
    pub fn resource_lock(&self) -> Arc<tokio::sync::Mutex<()>> {
        let target = self.target();
        let key = format!(
            "{}|{:?}|{}",
            self.tenant().app_key(),
            target.endpoint,
            target.id.as_deref().unwrap_or_default()
        );
        self.snapshot.locks.get(&key)
    }

    /// The client's `If-Match` (RFC 7644 §3.14).
    pub fn if_match(&self) -> Option<&str> {
        self.headers.get(header::IF_MATCH)?.to_str().ok()
    }

    /// The tenant's SCIM base as the IdP sees it, for `meta.location` and `Location`.
    pub fn public_base(&self) -> String {
        let scheme = if self.conn.https() { "https" } else { "http" };
        let host = self.host().unwrap_or("localhost");
        format!("{scheme}://{host}{}", self.prefix())
    }
}
