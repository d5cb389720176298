//! Filtering for an upstream without it (RFC 7644 §3.4.2.2): page through the upstream's
//! list, keep what the filter matches, and answer a ListResponse of the requested window.
//! Memory stays bounded by one upstream page plus the window, whatever the directory's size.

use http::{Response, StatusCode};
use serde_json::Value;

use super::{call, get, json, parse_body, relay, unreadable, Capabilities, Request};
use crate::error::ProxyError;
use crate::response::Body;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::filter::{self, CoreSchema, Filter};
use crate::scim::list::{ListParams, ListResponse, MAX_COUNT};
use crate::scim::request::Endpoint;
use crate::tenant::Tenant;

/// Resources asked of the upstream per page while scanning.
const PAGE: usize = 100;
/// A scan stops after this many pages even if the upstream keeps answering: 1,000,000
/// resources at `PAGE` per page.
const MAX_PAGES: usize = 10_000;

/// Whether a list request asks for something a plain upstream list may not do.
pub fn asks_for_more(query: Option<&str>) -> bool {
    has_param(query, &["filter", "sortby"])
}

/// Whether the request names the attributes to return (RFC 7644 §3.4.2.5).
pub fn asks_for_projection(query: Option<&str>) -> bool {
    has_param(query, &["attributes", "excludedattributes"])
}

fn has_param(query: Option<&str>, names: &[&str]) -> bool {
    let Some(q) = query else { return false };
    form_urlencoded::parse(q.as_bytes())
        .any(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
}

pub async fn answer(
    tenant: &Tenant,
    req: &Request<'_>,
    caps: &Capabilities,
) -> Result<Option<Response<Body>>, ProxyError> {
    let params = if req.target.search {
        ListParams::from_search_body(&parse_body(req.body)?)
    } else {
        ListParams::from_query(req.query)
    }
    .map_err(ProxyError::Scim)?;
    if params.sort_by.is_some() && !caps.sort {
        let e = ScimError::with_type(
            400,
            ScimType::InvalidValue,
            "sorting is not supported for this application",
        );
        return Err(ProxyError::Scim(e));
    }
    let collections = collections(req.target.endpoint);
    let filter = match &params.filter {
        Some(text) => Some(filter::parse(text).map_err(|e| ProxyError::Scim(e.into()))?),
        None => None,
    };
    if !caps.filter && (filter.is_some() || req.target.search) {
        return Ok(Some(
            scan(tenant, req, collections, &params, filter.as_ref()).await?,
        ));
    }
    if !req.target.search {
        return Ok(None);
    }
    // The upstream filters itself: a search becomes the GET it understands.
    let path = format!("{}?{}", search_path(req), to_query(&params));
    Ok(Some(relay(call(tenant, req, get(&path)).await?)))
}

/// The collections a request covers: the service root lists every resource type (§3.4.2.1).
fn collections(endpoint: Endpoint) -> &'static [(&'static str, CoreSchema)] {
    match endpoint {
        Endpoint::Users => &[("/Users", CoreSchema::User)],
        Endpoint::Groups => &[("/Groups", CoreSchema::Group)],
        _ => &[("/Users", CoreSchema::User), ("/Groups", CoreSchema::Group)],
    }
}

fn search_path<'a>(req: &Request<'a>) -> &'a str {
    req.path
        .strip_suffix("/.search")
        .or_else(|| req.path.strip_suffix(".search"))
        .unwrap_or(req.path)
}

/// Counts the matches of `filter` in the collections and keeps the requested window.
async fn scan(
    tenant: &Tenant,
    req: &Request<'_>,
    collections: &[(&str, CoreSchema)],
    params: &ListParams,
    filter: Option<&Filter>,
) -> Result<Response<Body>, ProxyError> {
    let mut window = Window::new(params.start_index, params.page_size(MAX_COUNT));
    for (collection, info) in collections {
        if let Some(refused) =
            scan_collection(tenant, req, collection, info, filter, &mut window).await?
        {
            return Ok(refused);
        }
    }
    let (attributes, excluded) = (&params.attributes, &params.excluded_attributes);
    let endpoint = req.target.endpoint;
    let resources = window
        .kept
        .into_iter()
        .map(|r| super::project(endpoint, r, attributes, excluded))
        .collect();
    let list = ListResponse {
        total_results: window.matched,
        start_index: params.start_index,
        resources,
    };
    Ok(json(StatusCode::OK, &list.to_value()))
}

struct Window {
    from: usize,
    size: usize,
    matched: usize,
    kept: Vec<Value>,
}

impl Window {
    fn new(from: usize, size: usize) -> Self {
        Self {
            from,
            size,
            matched: 0,
            kept: Vec::with_capacity(size.min(PAGE)),
        }
    }

    fn offer(&mut self, resource: Value) {
        self.matched += 1;
        if self.matched >= self.from && self.kept.len() < self.size {
            self.kept.push(resource);
        }
    }
}

/// Returns an upstream error as the answer, or `None` once the collection is scanned.
async fn scan_collection(
    tenant: &Tenant,
    req: &Request<'_>,
    collection: &str,
    info: &CoreSchema,
    filter: Option<&Filter>,
    window: &mut Window,
) -> Result<Option<Response<Body>>, ProxyError> {
    let mut start = 1;
    for _ in 0..MAX_PAGES {
        let reply = call(
            tenant,
            req,
            get(&format!("{collection}?startIndex={start}&count={PAGE}")),
        )
        .await?;
        if !reply.status.is_success() {
            return Ok(Some(relay(reply)));
        }
        let page: Value =
            serde_json::from_slice(&reply.body).map_err(|_| unreadable("a list request"))?;
        let total = member(&page, "totalResults")
            .and_then(Value::as_u64)
            .map(|t| t as usize);
        let Some(Value::Array(resources)) = member(&page, "Resources").cloned() else {
            break;
        };
        if resources.is_empty() {
            break;
        }
        start += resources.len();
        for resource in resources {
            let matched = match filter {
                Some(f) => {
                    filter::matches(f, &resource, info).map_err(|e| ProxyError::Scim(e.into()))?
                }
                None => true,
            };
            if matched {
                window.offer(resource);
            }
        }
        if total.is_some_and(|t| start > t) {
            break;
        }
    }
    Ok(None)
}

/// A ListResponse member by name, in any case: legacy servers send `resources` too.
fn member<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The query string of a list request, for an upstream that takes the parameters itself.
fn to_query(p: &ListParams) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("startIndex", &p.start_index.to_string());
    if let Some(count) = p.count {
        q.append_pair("count", &count.to_string());
    }
    if let Some(f) = &p.filter {
        q.append_pair("filter", f);
    }
    if let Some(s) = &p.sort_by {
        q.append_pair("sortBy", s);
    }
    if let Some(o) = p.sort_order {
        q.append_pair(
            "sortOrder",
            if o == crate::scim::list::SortOrder::Descending {
                "descending"
            } else {
                "ascending"
            },
        );
    }
    if !p.attributes.is_empty() {
        q.append_pair("attributes", &p.attributes.join(","));
    }
    if !p.excluded_attributes.is_empty() {
        q.append_pair("excludedAttributes", &p.excluded_attributes.join(","));
    }
    q.finish()
}

/// Whether any resource of `collection` has `attr` equal to `value` (SCIM's `eq`, with the
/// attribute's case rule), asking the upstream to filter when it can and checking its answer
/// either way: an upstream that ignores `filter` returns everything.
pub async fn exists(
    tenant: &Tenant,
    req: &Request<'_>,
    caps: &Capabilities,
    collection: &str,
    info: &CoreSchema,
    filter: &Filter,
) -> Result<bool, ProxyError> {
    if caps.filter {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &filter.to_string())
            .finish();
        let reply = call(tenant, req, get(&format!("{collection}?{query}"))).await?;
        if reply.status.is_success() {
            let page: Value =
                serde_json::from_slice(&reply.body).map_err(|_| unreadable("a list request"))?;
            let found = member(&page, "Resources")
                .and_then(Value::as_array)
                .is_some_and(|rs| {
                    rs.iter()
                        .any(|r| filter::matches(filter, r, info).unwrap_or(false))
                });
            return Ok(found);
        }
    }
    let mut window = Window::new(1, 1);
    scan_collection(tenant, req, collection, info, Some(filter), &mut window).await?;
    Ok(window.matched > 0)
}
