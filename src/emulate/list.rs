//! Filtering and sorting for an upstream without them (RFC 7644 §3.4.2.2, §3.4.2.3): page
//! through the upstream's list, keep what the filter matches, and answer a ListResponse of
//! the requested window. Without sorting, memory stays bounded by one upstream page plus the
//! window, whatever the directory's size; sorting must hold every match, so it is refused
//! past `MAX_SORTED` matches, or `MAX_SORTED_BYTES` of them, with `tooMany`.

use http::{Response, StatusCode};
use serde_json::Value;

use super::error::EmulateError;
use super::reply::{body_json, relay};
use crate::body::{self, Body};
use crate::ctx::{Flow, RequestCtx};
use crate::limit;
use crate::response::project::project_as;
use crate::scim::discovery::{ResourceTypeDef, SchemaInfo, GROUP, USER};
use crate::scim::filter::{self, Filter};
use crate::scim::list::{ListParams, ListResponse, SortOrder, MAX_COUNT};
use crate::scim::request::Endpoint;
use crate::scim::sort::{sort, SortSpec};
use crate::upstream::caps::{Capabilities, Form};
use crate::upstream::{self, Call};

/// Resources asked of the upstream per page while scanning.
const PAGE: usize = 100;
/// A scan stops after this many pages even if the upstream keeps answering: 1,000,000
/// resources at `PAGE` per page.
const MAX_PAGES: usize = 10_000;
/// The most matches the proxy holds to sort them.
const MAX_SORTED: usize = 10_000;
/// The most bytes of matches (as the app sent them; parsed, they take a few times more) the
/// proxy holds to sort them: 10,000 users of 800 B each, and not 10,000 of 20 KB.
const MAX_SORTED_BYTES: usize = 8 << 20;

pub async fn answer(ctx: &mut RequestCtx, caps: &Capabilities) -> Result<Flow, EmulateError> {
    let search = ctx.target().search;
    let params = if search {
        ListParams::from_search_body(body_json(ctx)?)
    } else {
        ListParams::from_query(ctx.query())
    }
    .map_err(EmulateError::Scim)?;
    let filter = match &params.filter {
        Some(text) => Some(filter::parse(text).map_err(EmulateError::scim)?),
        None => None,
    };
    let sorting = match &params.sort_by {
        Some(by) if !caps.sort => {
            Some(SortSpec::parse(by, params.sort_order).map_err(EmulateError::Scim)?)
        }
        _ => None,
    };
    let unfiltered = !caps.filter && (filter.is_some() || search);
    if unfiltered || sorting.is_some() {
        let scan = Scan {
            collections: collections(ctx.target().endpoint),
            params: &params,
            filter: filter.as_ref(),
        };
        return Ok(Flow::Respond(scan.run(ctx, sorting.as_ref()).await?));
    }
    if !search {
        return Ok(Flow::Next);
    }
    // The upstream filters itself: a search becomes the GET it understands. One that it
    // refuses (501; 404 from an app that serves no service root) is scanned after all.
    let path = format!("{}?{}", search_path(ctx.path()), to_query(&params));
    let reply = upstream::call(ctx, Call::get(&path)).await?;
    let at = ctx.target().endpoint;
    let refused = reply.status == StatusCode::NOT_IMPLEMENTED
        || (reply.status == StatusCode::NOT_FOUND && at == Endpoint::Root);
    if !refused {
        return Ok(Flow::Respond(relay(reply)));
    }
    super::learn(ctx, at, &[Form::Filter]);
    let scan = Scan {
        collections: collections(at),
        params: &params,
        filter: filter.as_ref(),
    };
    let sorting = match &params.sort_by {
        Some(by) => Some(SortSpec::parse(by, params.sort_order).map_err(EmulateError::Scim)?),
        None => None,
    };
    Ok(Flow::Respond(scan.run(ctx, sorting.as_ref()).await?))
}

/// The forms of list request this one uses that an app may refuse: a filter (a search is
/// one), a sort.
pub fn forms(ctx: &RequestCtx) -> Vec<Form> {
    let params = ListParams::from_query(ctx.query()).ok();
    let mut forms = Vec::new();
    if ctx.target().search || params.as_ref().is_some_and(|p| p.filter.is_some()) {
        forms.push(Form::Filter);
    }
    if params.as_ref().is_some_and(|p| p.sort_by.is_some()) {
        forms.push(Form::Sort);
    }
    forms
}

/// The collections a request covers: the service root lists every resource type (§3.4.2.1).
type Collections = &'static [(&'static str, &'static ResourceTypeDef)];

fn collections(endpoint: Endpoint) -> Collections {
    match endpoint {
        Endpoint::Users => &[("/Users", &USER)],
        Endpoint::Groups => &[("/Groups", &GROUP)],
        _ => &[("/Users", &USER), ("/Groups", &GROUP)],
    }
}

fn search_path(path: &str) -> &str {
    path.strip_suffix("/.search")
        .or_else(|| path.strip_suffix(".search"))
        .unwrap_or(path)
}

/// One scan of the upstream's lists on behalf of a list or search request.
struct Scan<'a> {
    collections: Collections,
    params: &'a ListParams,
    filter: Option<&'a Filter>,
}

impl Scan<'_> {
    async fn run(
        &self,
        ctx: &RequestCtx,
        sorting: Option<&SortSpec>,
    ) -> Result<Response<Body>, EmulateError> {
        let size = self.params.page_size(MAX_COUNT);
        let mut window = Window::new(self.params.start_index, size, sorting.is_some());
        for (collection, rt) in self.collections {
            if let Some(refused) =
                scan_collection(ctx, collection, rt, self.filter, &mut window).await?
            {
                return Ok(refused);
            }
        }
        let matched = window.matched;
        let kept = match sorting {
            Some(spec) if window.kept_bytes > limit::LARGE => {
                let spec = spec.clone();
                limit::off_worker(move || window.sorted(&spec)).await?
            }
            Some(spec) => window.sorted(spec)?,
            None => window.kept,
        };
        let (attributes, excluded) = (&self.params.attributes, &self.params.excluded_attributes);
        let resources = kept
            .into_iter()
            .map(|(r, rt)| project_as(rt, r, attributes, excluded))
            .collect();
        let list = ListResponse {
            total_results: matched,
            start_index: self.params.start_index,
            resources,
        };
        Ok(body::json(StatusCode::OK, &list.to_value()))
    }
}

/// What a scan keeps: the requested window of matches, or every match when they must be
/// sorted first.
struct Window {
    from: usize,
    size: usize,
    keep_all: bool,
    matched: usize,
    kept: Vec<(Value, &'static ResourceTypeDef)>,
    /// The bytes of the app's answers the kept matches came in, counted when all are kept.
    kept_bytes: usize,
}

impl Window {
    fn new(from: usize, size: usize, keep_all: bool) -> Self {
        Self {
            from,
            size,
            keep_all,
            matched: 0,
            kept: Vec::with_capacity(size.min(PAGE)),
            kept_bytes: 0,
        }
    }

    /// Offers a match that took `bytes` of the app's answer.
    fn offer(
        &mut self,
        resource: Value,
        rt: &'static ResourceTypeDef,
        bytes: usize,
    ) -> Result<(), EmulateError> {
        self.matched += 1;
        if self.keep_all {
            if self.kept.len() >= MAX_SORTED {
                return Err(EmulateError::TooManyToSort { limit: MAX_SORTED });
            }
            self.kept_bytes += bytes;
            if self.kept_bytes > MAX_SORTED_BYTES {
                return Err(EmulateError::TooLargeToSort {
                    limit: MAX_SORTED_BYTES >> 20,
                });
            }
            self.kept.push((resource, rt));
        } else if self.matched >= self.from && self.kept.len() < self.size {
            self.kept.push((resource, rt));
        }
        Ok(())
    }

    fn sorted(
        mut self,
        spec: &SortSpec,
    ) -> Result<Vec<(Value, &'static ResourceTypeDef)>, EmulateError> {
        sort(&mut self.kept, spec, |(doc, rt)| {
            Some((doc, SchemaInfo::new(rt)))
        })
        .map_err(EmulateError::Scim)?;
        Ok(self
            .kept
            .into_iter()
            .skip(self.from - 1)
            .take(self.size)
            .collect())
    }
}

/// Returns an upstream error as the answer, or `None` once the collection is scanned.
async fn scan_collection(
    ctx: &RequestCtx,
    collection: &'static str,
    rt: &'static ResourceTypeDef,
    filter: Option<&Filter>,
    window: &mut Window,
) -> Result<Option<Response<Body>>, EmulateError> {
    let info = SchemaInfo::new(rt);
    let mut start = 1;
    for _ in 0..MAX_PAGES {
        let page = format!("{collection}?startIndex={start}&count={PAGE}");
        let reply = upstream::call(ctx, Call::get(&page)).await?;
        if !reply.status.is_success() {
            return Ok(Some(relay(reply)));
        }
        let mut page: Value = serde_json::from_slice(&reply.body)
            .map_err(|_| EmulateError::Unreadable("a list request"))?;
        let total = member(&page, "totalResults")
            .and_then(Value::as_u64)
            .map(|t| t as usize);
        let resources = match page.as_object_mut().and_then(|m| {
            m.iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case("Resources"))
        }) {
            Some((_, Value::Array(items))) => std::mem::take(items),
            _ => return Ok(None),
        };
        if resources.is_empty() {
            return Ok(None);
        }
        start += resources.len();
        // Each match is charged its share of the page it came in: what holding it costs,
        // without serializing it again to measure it.
        let share = reply.body.len().div_ceil(resources.len());
        for resource in resources {
            let matched = match filter {
                Some(f) => filter::matches(f, &resource, &info).map_err(EmulateError::scim)?,
                None => true,
            };
            if matched {
                window.offer(resource, rt, share)?;
            }
        }
        if total.is_some_and(|t| start > t) {
            return Ok(None);
        }
    }
    // Out of pages before the upstream ran out of resources: a partial count would be a
    // wrong answer, so the request is refused instead.
    Err(EmulateError::TooManyToScan {
        collection,
        limit: MAX_PAGES * PAGE,
    })
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
            if o == SortOrder::Descending {
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
    ctx: &RequestCtx,
    caps: &Capabilities,
    collection: &'static str,
    rt: &'static ResourceTypeDef,
    filter: &Filter,
    except: Option<&str>,
) -> Result<bool, EmulateError> {
    let info = SchemaInfo::new(rt);
    let other = |r: &Value| except.is_none_or(|id| r.get("id").and_then(Value::as_str) != Some(id));
    if caps.filter {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &filter.to_string())
            .finish();
        let path = format!("{collection}?{query}");
        let reply = upstream::call(ctx, Call::get(&path)).await?;
        if reply.status.is_success() {
            let page: Value = serde_json::from_slice(&reply.body)
                .map_err(|_| EmulateError::Unreadable("a list request"))?;
            let resources = member(&page, "Resources").and_then(Value::as_array);
            let matching = |r: &Value| filter::matches(filter, r, &info).unwrap_or(false);
            let all = resources.map(Vec::as_slice).unwrap_or_default();
            if all.iter().any(|r| matching(r) && other(r)) {
                return Ok(true);
            }
            // An app that answers resources the filter does not match has ignored it: its
            // page says nothing about the rest, so the whole collection is scanned instead.
            if all.is_empty() || all.iter().all(matching) {
                return Ok(false);
            }
        }
    }
    // Scanned, the resource itself is left out by the filter: `… and not (id eq "except")`.
    let others = except.map(|id| {
        let itself = Filter::Compare {
            attr: crate::scim::path::AttrPath::new("id"),
            op: filter::CompareOp::Eq,
            value: filter::CompValue::Str(id.to_owned()),
        };
        Filter::and_of(vec![filter.clone(), Filter::Not(Box::new(itself))])
    });
    let mut window = Window::new(1, 1, false);
    if scan_collection(
        ctx,
        collection,
        rt,
        Some(others.as_ref().unwrap_or(filter)),
        &mut window,
    )
    .await?
    .is_some()
    {
        // Not knowing is not "no duplicate": the create fails closed, and the IdP retries.
        return Err(EmulateError::DuplicateUnknown);
    }
    Ok(window.matched > 0)
}
