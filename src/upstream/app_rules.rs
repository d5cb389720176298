//! The packs that fix the app behind a tenant (`app_rules`), on the requests the proxy makes
//! itself while filling gaps and on the answers it reads back: the PUT of an emulated PATCH
//! is adapted to the app like a forwarded PUT, and a page read for an emulated filter is made
//! a clean ListResponse before the proxy evaluates it.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap};

use super::call::{Call, Reply};
use crate::rule_pack::answer::{self, AnswerTo};
use crate::rule_pack::model::Answer;
use crate::rule_pack::request::{normalize, Request};
use crate::rule_pack::Pack;
use crate::scim::discovery::Extensions;
use crate::scim::json;
use crate::scim::list::ListParams;
use crate::scim::request::{classify, Target};

/// The request rules of `packs` over the body of `call`.
pub fn request(
    packs: &[Arc<Pack>],
    headers: &HeaderMap,
    extensions: &Extensions,
    call: &mut Call<'_>,
) {
    if call.body.is_empty() {
        return;
    }
    let (path, query) = split(call.path_and_query);
    let Some(target) = classify(path) else { return };
    let Some(mut doc) = crate::scim::json::read(&call.body) else {
        return;
    };
    let req = Request {
        method: &call.method,
        endpoint: target.endpoint,
        search: target.search,
        headers,
        query,
        extensions,
    };
    let mut changed = false;
    for pack in packs {
        changed |= normalize(pack, &req, Some(&mut doc)).body_changed;
    }
    if changed {
        call.body = Bytes::from(json::to_vec(&doc, call.body.len()));
    }
}

/// The response rules of `packs` over a successful JSON answer to `method path_and_query`.
pub fn answer(
    packs: &[Arc<Pack>],
    method: &http::Method,
    path_and_query: &str,
    base: &str,
    extensions: &Extensions,
    reply: &mut Reply,
) {
    let ok = reply.status.is_success() && !reply.body.is_empty();
    if !ok || !packs.iter().any(|p| p.answers) {
        return;
    }
    let (path, query) = split(path_and_query);
    let Some(target): Option<Target<'_>> = classify(path) else {
        return;
    };
    let Some(mut doc) = crate::scim::json::read(&reply.body) else {
        return;
    };
    let paging = ListParams::from_query(query).unwrap_or_default();
    let to = AnswerTo {
        method,
        endpoint: target.endpoint,
        headers: &reply.headers,
        answer: Answer::to_request(reply.status.as_u16(), base, method, &target, &paging),
        extensions,
    };
    if answer::normalize(packs, &to, &mut doc).is_empty() {
        return;
    }
    reply.body = Bytes::from(json::to_vec(&doc, reply.body.len()));
    reply.headers.remove(header::CONTENT_LENGTH);
}

fn split(path_and_query: &str) -> (&str, Option<&str>) {
    match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    }
}
