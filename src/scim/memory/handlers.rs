//! Routes a store request to its operation (RFC 7644 §3.2 Figure 1) and builds the answer:
//! resource CRUD, lists and searches, and the discovery endpoints.

use serde_json::Value;

use super::precondition::{self, Outcome};
use super::projection::project;
use super::query;
use super::render::{location, render};
use super::store::{Kind, Tables};
use super::{not_found, syntax, validate, MemoryStore, StoreRequest, StoreResponse};
use crate::scim::discovery;
use crate::scim::error::ScimError;
use crate::scim::list::{ListParams, ListResponse, MAX_COUNT};
use crate::scim::patch::PatchRequest;
use crate::scim::request::{classify, Endpoint, Method, Target};

pub(super) fn route(
    store: &MemoryStore,
    req: &StoreRequest<'_>,
) -> Result<StoreResponse, ScimError> {
    let target = classify(req.path)
        .ok_or_else(|| ScimError::new(404, format!("no SCIM endpoint at {:?}", req.path)))?;
    if let Some(kind) = Kind::from_endpoint(target.endpoint) {
        return resource(store, req, kind, target.id.as_deref(), target.search);
    }
    let all = [Kind::User, Kind::Group];
    match (target.endpoint, req.method) {
        // RFC 7644 §3.4.2.1: a query at the service root spans every resource type.
        (Endpoint::Root, Method::Get) if !target.search => {
            list(store, req, &all, ListParams::from_query(req.query)?)
        }
        (Endpoint::Root, Method::Post) if target.search => search(store, req, &all),
        (
            Endpoint::ServiceProviderConfig | Endpoint::Schemas | Endpoint::ResourceTypes,
            Method::Get,
        ) => discovery(req, &target),
        // RFC 7644 §3.12: 501 when the service provider does not support an operation.
        (Endpoint::Bulk, Method::Post) => Err(ScimError::new(501, "Bulk is not supported")),
        // RFC 7644 §3.11: /Me needs an authenticated subject this store does not have.
        (Endpoint::Me, _) => Err(ScimError::new(501, "/Me is not supported")),
        _ => Err(method_not_allowed(req)),
    }
}

fn resource(
    store: &MemoryStore,
    req: &StoreRequest<'_>,
    kind: Kind,
    id: Option<&str>,
    search_path: bool,
) -> Result<StoreResponse, ScimError> {
    match (req.method, id, search_path) {
        (Method::Get, None, false) => list(store, req, &[kind], ListParams::from_query(req.query)?),
        (Method::Post, None, true) => search(store, req, &[kind]),
        (Method::Post, None, false) => create(store, req, kind),
        (Method::Get, Some(id), _) => read(store, req, kind, id),
        (Method::Put, Some(id), _) => replace(store, req, kind, id),
        (Method::Delete, Some(id), _) => {
            let mut tables = store.write();
            check_write(&tables, kind, id, req)?;
            tables.delete(kind, id)?;
            Ok(StoreResponse::empty(204))
        }
        (Method::Patch, Some(id), _) => patch(store, req, kind, id),
        _ => Err(method_not_allowed(req)),
    }
}

/// POST (RFC 7644 §3.3): 201 with the resource, its `Location` and its ETag.
fn create(
    store: &MemoryStore,
    req: &StoreRequest<'_>,
    kind: Kind,
) -> Result<StoreResponse, ScimError> {
    let attrs = validate::resource(kind.def(), req.body)?;
    let params = ListParams::from_query(req.query)?;
    let mut tables = store.write();
    let id = tables.create(kind, attrs)?;
    let mut response = one(&tables, kind, &id, req, &params, 201)?;
    response.location = Some(location(kind, &id, req.base_url));
    Ok(response)
}

/// GET of one resource (RFC 7644 §3.4.1); 304 without a body when `If-None-Match` names the
/// current version (RFC 7644 §3.14).
fn read(
    store: &MemoryStore,
    req: &StoreRequest<'_>,
    kind: Kind,
    id: &str,
) -> Result<StoreResponse, ScimError> {
    let params = ListParams::from_query(req.query)?;
    let tables = store.read();
    match precondition(&tables, kind, id, req)? {
        (Outcome::NotModified, etag) => {
            let mut response = StoreResponse::empty(304);
            response.etag = Some(etag);
            Ok(response)
        }
        (Outcome::Proceed, _) => one(&tables, kind, id, req, &params, 200),
    }
}

/// PUT (RFC 7644 §3.5.1): 200 with the replaced resource; 404 if there is none to replace.
/// Preconditions are checked before the body, as RFC 9110 §13.2.1 orders them.
fn replace(
    store: &MemoryStore,
    req: &StoreRequest<'_>,
    kind: Kind,
    id: &str,
) -> Result<StoreResponse, ScimError> {
    let params = ListParams::from_query(req.query)?;
    let mut tables = store.write();
    check_write(&tables, kind, id, req)?;
    let attrs = validate::resource(kind.def(), req.body)?;
    tables.replace(kind, id, attrs)?;
    one(&tables, kind, id, req, &params, 200)
}

/// PATCH (RFC 7644 §3.5.2): 200 with the patched resource, projected like any read.
fn patch(
    store: &MemoryStore,
    req: &StoreRequest<'_>,
    kind: Kind,
    id: &str,
) -> Result<StoreResponse, ScimError> {
    let params = ListParams::from_query(req.query)?;
    let mut tables = store.write();
    check_write(&tables, kind, id, req)?;
    let body: Value = serde_json::from_slice(req.body)
        .map_err(|e| syntax(format!("the body is not valid JSON: {e}")))?;
    let patch = PatchRequest::from_json(&body)?;
    tables.patch(kind, id, &patch, req.base_url)?;
    one(&tables, kind, id, req, &params, 200)
}

/// The preconditions of a write: they hold, or the write is refused (404, 412); only a GET
/// can be answered 304.
fn check_write(
    tables: &Tables,
    kind: Kind,
    id: &str,
    req: &StoreRequest<'_>,
) -> Result<(), ScimError> {
    precondition(tables, kind, id, req).map(|_| ())
}

/// The preconditions of `req` on the current version of a resource that must exist (a
/// missing one is 404 before any precondition, RFC 9110 §13.2.1). Writes hold the write lock
/// across the check and the write, so no other write can slip in between. Answers the
/// outcome and the current entity tag.
fn precondition(
    tables: &Tables,
    kind: Kind,
    id: &str,
    req: &StoreRequest<'_>,
) -> Result<(Outcome, String), ScimError> {
    let etag = tables
        .table(kind)
        .get(id)
        .ok_or_else(|| not_found(kind, id))?
        .etag();
    Ok((precondition::evaluate(req, &etag)?, etag))
}

/// One resource, projected per `attributes`/`excludedAttributes` (RFC 7644 §3.9).
fn one(
    tables: &Tables,
    kind: Kind,
    id: &str,
    req: &StoreRequest<'_>,
    params: &ListParams,
    status: u16,
) -> Result<StoreResponse, ScimError> {
    let stored = tables
        .table(kind)
        .get(id)
        .ok_or_else(|| not_found(kind, id))?;
    let doc = render(tables, kind, stored, req.base_url);
    let doc = project(
        kind.def(),
        doc,
        &params.attributes,
        &params.excluded_attributes,
    );
    let mut response = StoreResponse::json(status, &doc);
    response.etag = Some(stored.etag());
    Ok(response)
}

/// POST `.search` (RFC 7644 §3.4.3): the parameters come in a SearchRequest body.
fn search(
    store: &MemoryStore,
    req: &StoreRequest<'_>,
    kinds: &[Kind],
) -> Result<StoreResponse, ScimError> {
    let body: Value = serde_json::from_slice(req.body)
        .map_err(|e| syntax(format!("the body is not valid JSON: {e}")))?;
    list(store, req, kinds, ListParams::from_search_body(&body)?)
}

/// A list (RFC 7644 §3.4.2): `totalResults` counts every match, the page holds `count` of them
/// from `startIndex`, after filtering and sorting.
fn list(
    store: &MemoryStore,
    req: &StoreRequest<'_>,
    kinds: &[Kind],
    params: ListParams,
) -> Result<StoreResponse, ScimError> {
    let tables = store.read();
    let selected = query::select(&tables, kinds, &params, req.base_url)?;
    let resources = params
        .page(&selected, MAX_COUNT)
        .iter()
        .map(|row| {
            let doc = match &row.doc {
                Some(doc) => doc.clone(),
                None => render(&tables, row.kind, row.stored, req.base_url),
            };
            project(
                row.kind.def(),
                doc,
                &params.attributes,
                &params.excluded_attributes,
            )
        })
        .collect();
    let list = ListResponse {
        total_results: selected.len(),
        start_index: params.start_index,
        resources,
    };
    Ok(StoreResponse::json(200, &list.to_value()))
}

/// The discovery endpoints (RFC 7644 §4), read-only and the same for every caller.
fn discovery(req: &StoreRequest<'_>, target: &Target<'_>) -> Result<StoreResponse, ScimError> {
    let params = ListParams::from_query(req.query)?;
    // RFC 7644 §4: a filter here SHOULD get 403, so that no client believes it was applied.
    if params.filter.is_some() {
        return Err(ScimError::new(
            403,
            "discovery endpoints do not support filtering",
        ));
    }
    let base = req.base_url;
    let doc = match (target.endpoint, target.id.as_deref()) {
        (Endpoint::Schemas, None) => list_of(discovery::schemas(base)),
        (Endpoint::Schemas, Some(urn)) => discovery::schema(urn, base)
            .ok_or_else(|| ScimError::new(404, format!("no schema {urn:?}")))?,
        (Endpoint::ResourceTypes, None) => list_of(discovery::resource_types(base)),
        (Endpoint::ResourceTypes, Some(name)) => discovery::resource_type(name, base)
            .ok_or_else(|| ScimError::new(404, format!("no resource type {name:?}")))?,
        _ => discovery::service_provider_config(&MemoryStore::capabilities(), base),
    };
    Ok(StoreResponse::json(200, &doc))
}

/// Discovery lists are small and fixed, so they come whole, on one page.
fn list_of(resources: Vec<Value>) -> Value {
    ListResponse {
        total_results: resources.len(),
        start_index: 1,
        resources,
    }
    .to_value()
}

fn method_not_allowed(req: &StoreRequest<'_>) -> ScimError {
    ScimError::new(
        405,
        format!("{} is not allowed on {:?}", req.method.as_str(), req.path),
    )
}
