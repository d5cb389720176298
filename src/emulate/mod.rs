//! Stage 8, fill gaps: what the upstream cannot do, the proxy does with what it can. PATCH
//! becomes GET + PUT, a filter becomes a scan of the list, discovery is answered locally, a
//! create is checked for duplicates, and DELETE becomes deactivation where the tenant asks.
//! A request the upstream handles itself passes through untouched.

mod bulk;
mod caps;
mod discovery;
mod list;
mod patch;
mod unique;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use serde_json::Value;

pub use caps::{Capabilities, Gaps};

use crate::error::ProxyError;
use crate::response::Body;
use crate::scim::discovery::{ResourceTypeDef, GROUP, USER};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::request::{Endpoint, Target};
use crate::scim::MEDIA_TYPE;
use crate::tenant::Tenant;
use crate::upstream::{Call, CallContext, Reply, UpstreamError};

/// One request as this stage sees it.
pub struct Request<'a> {
    pub method: &'a Method,
    pub target: &'a Target<'a>,
    /// The path below the tenant's base, without the query: `/Users/2819c223`.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: &'a Bytes,
    /// The client's `If-Match` (RFC 7644 §3.14), honoured when the proxy does the write.
    pub if_match: Option<&'a str>,
    pub ctx: &'a CallContext<'a>,
}

/// Answers the request when the upstream needs help with it; `None` lets it pass through.
pub async fn fill(
    tenant: &Tenant,
    req: &Request<'_>,
) -> Result<Option<Response<Body>>, ProxyError> {
    let Some(need) = need(tenant, req) else {
        return Ok(None);
    };
    // One limit on all the upstream calls made for one request (a scan, a Bulk), so a client
    // that waits forever cannot keep them, and the locks they hold, going.
    let deadline = tenant.upstream.gap_deadline();
    tokio::time::timeout(deadline, help(tenant, req, need))
        .await
        .map_err(|_| ProxyError::Upstream(UpstreamError::Timeout(deadline)))?
}

async fn help(
    tenant: &Tenant,
    req: &Request<'_>,
    need: Need,
) -> Result<Option<Response<Body>>, ProxyError> {
    let caps = tenant.gaps.capabilities(&tenant.upstream, req.ctx).await?;
    let answer = match need {
        Need::Discovery => discovery::answer(tenant, req, &caps).await?,
        Need::Patch if !caps.patch => Some(patch::via_put(tenant, req, &caps).await?),
        Need::Patch => patch::native_with_readback(tenant, req).await?,
        Need::List => list::answer(tenant, req, &caps).await?,
        Need::Create if !caps.uniqueness => Some(unique::create(tenant, req, &caps).await?),
        Need::Delete => Some(patch::deactivate(tenant, req, &caps).await?),
        Need::Bulk if !caps.bulk => Some(bulk::run(tenant, req, &caps).await?),
        Need::Bulk => None,
        Need::Create => None,
    };
    Ok(answer)
}

/// The kinds of request that may need help, decided from the request alone so that plain
/// traffic costs no capability lookup.
enum Need {
    Discovery,
    Patch,
    List,
    Create,
    Delete,
    Bulk,
}

fn need(tenant: &Tenant, req: &Request<'_>) -> Option<Need> {
    let t = req.target;
    let resource = matches!(t.endpoint, Endpoint::Users | Endpoint::Groups);
    let discovery = matches!(
        t.endpoint,
        Endpoint::ServiceProviderConfig | Endpoint::Schemas | Endpoint::ResourceTypes
    );
    match *req.method {
        _ if discovery => Some(Need::Discovery),
        Method::GET => match t.endpoint {
            Endpoint::Users | Endpoint::Groups | Endpoint::Root
                if t.id.is_none() && list::asks_for_more(req.query) =>
            {
                Some(Need::List)
            }
            _ => None,
        },
        Method::POST if t.search && t.id.is_none() => Some(Need::List),
        Method::POST if t.endpoint == Endpoint::Bulk => Some(Need::Bulk),
        Method::POST if resource && t.id.is_none() => Some(Need::Create),
        Method::PATCH if resource && t.id.is_some() => Some(Need::Patch),
        Method::DELETE
            if tenant.gaps.soft_delete && t.endpoint == Endpoint::Users && t.id.is_some() =>
        {
            Some(Need::Delete)
        }
        _ => None,
    }
}

/// What the upstream left undone in a successful answer it gave itself: the projection the
/// request asked for (RFC 7644 §3.4.2.5), and, from an app without discovery documents (so
/// not trusted to apply its schema's `returned` rules), `returned: never` attributes such as
/// `password` removed. Projecting an answer the upstream already projected changes nothing.
pub async fn finish(
    tenant: &Tenant,
    req: &Request<'_>,
    response: Response<Body>,
) -> Result<Response<Body>, ProxyError> {
    let status = response.status();
    let resources = matches!(
        req.target.endpoint,
        Endpoint::Users | Endpoint::Groups | Endpoint::Root
    );
    let listing = resources && req.target.id.is_none() && *req.method == Method::GET;
    if status == StatusCode::NOT_FOUND && listing && list::asks_for_more(req.query) {
        // A filter that matches nothing is an empty list, not a 404 (RFC 7644 §3.4.2; Entra
        // quarantines an app that answers 404 here).
        let empty = crate::scim::list::ListResponse {
            total_results: 0,
            start_index: 1,
            resources: Vec::new(),
        };
        return Ok(json(StatusCode::OK, &empty.to_value()));
    }
    if !status.is_success() || status == StatusCode::NO_CONTENT || !resources {
        return Ok(response);
    }
    if !list::asks_for_projection(req.query) {
        if matches!(tenant.upstream, crate::upstream::Upstream::Memory(_)) {
            return Ok(response);
        }
        // The upstream has already acted on the request: not knowing its capabilities now
        // must not turn its answer into an error, so the answer is finished as for a partial
        // app.
        let trusted = tenant
            .gaps
            .capabilities(&tenant.upstream, req.ctx)
            .await
            .is_ok_and(|c| c.discovery);
        if trusted {
            return Ok(response);
        }
    }
    let (mut parts, body) = response.into_parts();
    let bytes = http_body_util::Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| ProxyError::Upstream(crate::upstream::UpstreamError::reading(e)))?
        .to_bytes();
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(doc) => {
            let doc = project_answer(tenant, req, doc);
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::CONTENT_ENCODING);
            Bytes::from(serde_json::to_vec(&doc).expect("a JSON value always serializes"))
        }
        // Not JSON: stage 10 and the IdP see it as it came.
        Err(_) => bytes,
    };
    Ok(Response::from_parts(parts, Either::Right(Full::new(body))))
}

/// The largest upstream answer `finish` reads to rework it.
const MAX_ANSWER: usize = 32 << 20;

/// A resource or each resource of a ListResponse, projected as the query asks.
fn project_answer(tenant: &Tenant, req: &Request<'_>, mut doc: Value) -> Value {
    let params = crate::scim::list::ListParams::from_query(req.query).unwrap_or_default();
    let (attrs, excluded) = (&params.attributes, &params.excluded_attributes);
    let bases = tenant
        .upstream
        .base_url()
        .map(|up| (up, (req.ctx.public_base)()));
    let finish_one = |item: Value| {
        let mut item = project(req.target.endpoint, item, attrs, excluded);
        if let Some((upstream, public)) = &bases {
            relocate(&mut item, upstream, public);
        }
        item
    };
    let listed = doc.as_object_mut().and_then(|m| {
        m.iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case("Resources"))
    });
    if let Some((_, Value::Array(items))) = listed {
        for item in items.iter_mut() {
            *item = finish_one(item.take());
        }
        return doc;
    }
    finish_one(doc)
}

/// A `meta.location` naming the upstream names the proxy instead, as the `Location` header
/// does: the IdP is never shown the application's own address.
fn relocate(resource: &mut Value, upstream: &str, public: &str) {
    let Some(Value::String(location)) = resource.pointer_mut("/meta/location") else {
        return;
    };
    if let Some(rest) = location.strip_prefix(upstream) {
        *location = format!("{public}{rest}");
    }
}

/// Calls the upstream on the request's behalf.
async fn call(tenant: &Tenant, req: &Request<'_>, call: Call<'_>) -> Result<Reply, ProxyError> {
    Ok(tenant.upstream.call(call, req.ctx).await?)
}

fn get(path_and_query: &str) -> Call<'_> {
    Call {
        method: Method::GET,
        path_and_query,
        body: Bytes::new(),
        if_match: None,
    }
}

/// An upstream reply handed on as the answer; stage 10 rewrites it if it is an error.
fn relay(reply: Reply) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(reply.body)));
    *response.status_mut() = reply.status;
    for name in [header::CONTENT_TYPE, header::LOCATION, header::ETAG] {
        if let Some(v) = reply.headers.get(&name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    response
}

/// A JSON answer the proxy composed.
fn json(status: StatusCode, doc: &Value) -> Response<Body> {
    json_bytes(
        status,
        serde_json::to_vec(doc).expect("a JSON value always serializes"),
    )
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    response
}

/// The upstream answered 2xx with something that is not the JSON it should be.
fn unreadable(what: &str) -> ProxyError {
    ProxyError::Scim(ScimError::new(
        502,
        format!("the application's answer to {what} is not valid SCIM JSON"),
    ))
}

/// Applies `attributes`/`excludedAttributes` (RFC 7644 §3.4.2.5) to a resource the proxy
/// composed an answer from. Always applied, because it also drops `returned: never`
/// attributes such as `password` (RFC 7643 §7) that a partial app may send back.
fn project(endpoint: Endpoint, doc: Value, attributes: &[String], excluded: &[String]) -> Value {
    let rt = match endpoint {
        Endpoint::Groups => &GROUP,
        Endpoint::Users => &USER,
        _ => match doc.pointer("/meta/resourceType").and_then(Value::as_str) {
            Some("Group") => &GROUP,
            _ => &USER,
        },
    };
    project_as(rt, doc, attributes, excluded)
}

fn project_as(
    rt: &'static ResourceTypeDef,
    doc: Value,
    attributes: &[String],
    excluded: &[String],
) -> Value {
    crate::scim::memory::projection::project(rt, doc, attributes, excluded)
}

/// The projection a query asks for.
fn project_by_query(req: &Request<'_>, doc: Value) -> Value {
    match crate::scim::list::ListParams::from_query(req.query) {
        Ok(p) => project(
            req.target.endpoint,
            doc,
            &p.attributes,
            &p.excluded_attributes,
        ),
        Err(_) => doc,
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ProxyError> {
    serde_json::from_slice(body).map_err(|e| {
        ProxyError::Scim(ScimError::with_type(
            400,
            ScimType::InvalidSyntax,
            format!("the request body is not valid JSON: {e}"),
        ))
    })
}
