//! A pack tried on one request described as JSON, without a proxy: what `scimgate rules test`
//! prints and what the fixture tests check. The request is `{"method", "path", "headers",
//! "query", "body"}` (optionally under `"request"`, as in `../shared/idp/vectors.json`), or a
//! bare SCIM body: a PatchOp is tried as a PATCH, anything else as a POST.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;

use super::model::Pack;
use super::request::{normalize, Request};
use super::schema;
use crate::scim::discovery::GROUP;
use crate::scim::error::ScimError;
use crate::scim::request::{classify, Endpoint};
use crate::scim::urn;

pub struct TrialRequest {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Option<Value>,
}

pub struct Outcome {
    pub body: Option<Value>,
    /// The query with its `filter` normalized, when a rule changed it.
    pub query: Option<String>,
    pub fired: Vec<Arc<str>>,
    /// What the schema check says of the normalized body: RFC 7643 for a resource, RFC 7644
    /// §3.5.2 for a PatchOp.
    pub schema: Result<(), ScimError>,
}

impl TrialRequest {
    pub fn from_json(doc: &Value) -> Result<Self, String> {
        let doc = doc.get("request").unwrap_or(doc);
        let described = doc.get("method").is_some() && doc.get("path").is_some();
        if !described {
            return Ok(Self::bare(doc.clone()));
        }
        let text = |k: &str| doc.get(k).and_then(Value::as_str);
        let method = Method::from_bytes(text("method").unwrap_or_default().as_bytes())
            .map_err(|_| "\"method\" is not an HTTP method".to_owned())?;
        let mut headers = HeaderMap::new();
        if let Some(Value::Object(h)) = doc.get("headers") {
            for (k, v) in h {
                let name =
                    HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("header {k:?}"))?;
                let value = HeaderValue::from_str(v.as_str().unwrap_or_default())
                    .map_err(|_| format!("header {k:?} has a value a header cannot carry"))?;
                headers.append(name, value);
            }
        }
        let path = text("path").unwrap_or_default();
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (path, text("query").map(str::to_owned)),
        };
        Ok(Self {
            method,
            path: path.to_owned(),
            headers,
            query,
            body: doc.get("body").cloned().filter(|b| !b.is_null()),
        })
    }

    fn bare(body: Value) -> Self {
        let listed = |u: &str| {
            body.get("schemas")
                .and_then(Value::as_array)
                .is_some_and(|s| {
                    s.iter()
                        .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(u)))
                })
        };
        let (method, path) = match () {
            _ if listed(urn::PATCH_OP) || body.get("Operations").is_some() => {
                (Method::PATCH, "/Users/1")
            }
            _ if listed(GROUP.schema) => (Method::POST, "/Groups"),
            _ => (Method::POST, "/Users"),
        };
        Self {
            method,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            query: None,
            body: Some(body),
        }
    }
}

/// Runs `pack` over the request as stage 6 would, then the schema check.
pub fn run(pack: &Pack, req: &TrialRequest) -> Outcome {
    let (endpoint, search) = endpoint_of(&req.path);
    let request = Request {
        method: &req.method,
        endpoint,
        search,
        headers: &req.headers,
        query: req.query.as_deref(),
    };
    let mut body = req.body.clone();
    let done = normalize(pack, &request, body.as_mut());
    let schema = match (done.resource, body.as_ref()) {
        (Some(rt), Some(doc)) => schema::check(rt, done.shape, doc),
        _ => Ok(()),
    };
    Outcome {
        body,
        query: done.query,
        fired: done.fired,
        schema,
    }
}

/// The endpoint a path names: the vectors carry the app's own prefix (`/scim/v2/Users/1`), so
/// the first suffix that is a SCIM path counts.
fn endpoint_of(path: &str) -> (Endpoint, bool) {
    let mut rest = path;
    loop {
        if let Some(t) = classify(rest).filter(|t| t.endpoint != Endpoint::Root || rest == "/") {
            return (t.endpoint, t.search);
        }
        match rest[1..].find('/') {
            Some(i) => rest = &rest[i + 1..],
            None => return (Endpoint::Root, false),
        }
    }
}
