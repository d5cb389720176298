//! A pack tried on one request described as JSON, without a proxy: what `scimgate rules test`
//! prints and what the fixture tests check. The request is `{"method", "path", "headers",
//! "query", "body"}` (optionally under `"request"`, as in `../shared/idp/vectors.json`), or a
//! bare SCIM body: a PatchOp is tried as a PATCH, anything else as a POST.
//!
//! An answer (`rules test --response`) is `{"request": "GET /Users?count=2", "status",
//! "headers", "body"}` (optionally under `"backend_response"` or `"response"`, as in the
//! vectors' response pairs), or a bare body: an array or a ListResponse is tried as the answer
//! to `GET /Users`, anything else as the answer to `GET /Users/1`.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;

use super::answer::{self, AnswerTo};
use super::model::{Answer, Pack};
use super::request::{normalize, Request};
use super::schema;
use crate::scim::discovery::{Extensions, GROUP};
use crate::scim::error::ScimError;
use crate::scim::list::ListParams;
use crate::scim::request::{classify, Endpoint, Target};
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
        let headers = headers_of(doc)?;
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

/// Runs `pack` over the request as stage 6 would, then the schema check, which knows the
/// app's extensions `ext` besides the bundled schemas.
pub fn run(pack: &Pack, req: &TrialRequest, ext: &Extensions) -> Outcome {
    let (endpoint, search) = endpoint_of(&req.path);
    let request = Request {
        method: &req.method,
        endpoint,
        search,
        headers: &req.headers,
        query: req.query.as_deref(),
        extensions: ext,
    };
    let mut body = req.body.clone();
    let done = normalize(pack, &request, body.as_mut());
    let schema = match (done.resource, body.as_ref()) {
        (Some(rt), Some(doc)) => schema::check(rt, done.shape, doc, ext),
        _ => Ok(()),
    };
    Outcome {
        body,
        query: done.query,
        fired: done.fired,
        schema,
    }
}

/// An app's answer, and the request it answers.
pub struct TrialAnswer {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Option<Value>,
}

impl TrialAnswer {
    pub fn from_json(doc: &Value) -> Result<Self, String> {
        let doc = doc
            .get("backend_response")
            .or_else(|| doc.get("response"))
            .unwrap_or(doc);
        let described = doc.get("status").is_some_and(Value::is_u64)
            && (doc.get("body").is_some() || doc.get("request").is_some());
        if !described {
            let list = doc.is_array() || doc.get("Resources").is_some();
            return Ok(Self {
                method: Method::GET,
                path: if list { "/Users" } else { "/Users/1" }.to_owned(),
                query: None,
                status: 200,
                headers: HeaderMap::new(),
                body: Some(doc.clone()),
            });
        }
        let (method, target) = match doc.get("request") {
            Some(Value::String(line)) => line.split_once(' ').unwrap_or(("GET", line)),
            Some(Value::Object(r)) => (
                r.get("method").and_then(Value::as_str).unwrap_or("GET"),
                r.get("path").and_then(Value::as_str).unwrap_or("/Users"),
            ),
            _ => ("GET", "/Users"),
        };
        let method = Method::from_bytes(method.trim().as_bytes())
            .map_err(|_| "the request's method is not an HTTP method".to_owned())?;
        let (path, query) = match target.trim().split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.trim().to_owned(), None),
        };
        let status = doc["status"].as_u64().unwrap_or(200);
        let status = u16::try_from(status)
            .ok()
            .filter(|s| (100..600).contains(s))
            .ok_or("\"status\" is not an HTTP status")?;
        Ok(Self {
            method,
            path,
            query,
            status,
            headers: headers_of(doc)?,
            body: doc.get("body").cloned().filter(|b| !b.is_null()),
        })
    }
}

/// Runs the response rules of `pack` over the answer as stage 10 would, under the public base
/// `https://proxy.example/scim`, then checks each resource in it against its schema.
pub fn run_answer(pack: &std::sync::Arc<Pack>, ans: &TrialAnswer, ext: &Extensions) -> Outcome {
    let (endpoint, search) = endpoint_of(&ans.path);
    let params = ListParams::from_query(ans.query.as_deref()).unwrap_or_default();
    let id = has_id(&ans.path, endpoint).then(|| "1".into());
    let target = Target {
        endpoint,
        id,
        search,
    };
    let to = AnswerTo {
        method: &ans.method,
        endpoint,
        headers: &ans.headers,
        answer: Answer::to_request(
            ans.status,
            "https://proxy.example/scim",
            &ans.method,
            &target,
            &params,
        ),
        extensions: ext,
    };
    let mut body = ans.body.clone();
    let fired = match body.as_mut() {
        Some(doc) => answer::normalize([pack], &to, doc),
        None => Vec::new(),
    };
    let (resource, _) = super::apply::shape_of(&Method::GET, endpoint, false);
    let schema = match (resource, body.as_mut()) {
        (Some(rt), Some(doc)) => {
            let mut verdict = Ok(());
            super::envelope::each_resource(doc, &mut |r| {
                if verdict.is_ok() {
                    verdict = schema::check(rt, super::Shape::Resource, r, ext);
                }
                false
            });
            verdict
        }
        _ => Ok(()),
    };
    Outcome {
        body,
        query: None,
        fired,
        schema,
    }
}

/// Whether `path` names one resource of `endpoint` (`/scim/v2/Users/7`).
fn has_id(path: &str, endpoint: Endpoint) -> bool {
    let name = match endpoint {
        Endpoint::Users => "Users",
        Endpoint::Groups => "Groups",
        _ => return false,
    };
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    segs.iter()
        .rposition(|s| s.eq_ignore_ascii_case(name))
        .is_some_and(|at| at + 1 < segs.len())
}

fn headers_of(doc: &Value) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    if let Some(Value::Object(h)) = doc.get("headers") {
        for (k, v) in h {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("header {k:?}"))?;
            let value = HeaderValue::from_str(v.as_str().unwrap_or_default())
                .map_err(|_| format!("header {k:?} has a value a header cannot carry"))?;
            headers.append(name, value);
        }
    }
    Ok(headers)
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
