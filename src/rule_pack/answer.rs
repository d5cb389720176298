//! Answers through packs, as stage 10 (and the calls that fill gaps) run them: the response
//! rules of every pack that applies, in order, over one answer read whole; plus the builtins
//! that only answers need (a list envelope, `meta`, relative ResourceType endpoints). Pure.

use std::sync::Arc;

use http::{HeaderMap, Method};
use serde_json::Value;

use super::apply::{apply_answer, shape_of};
use super::model::{Answer, Pack, Shape, Subject};
use crate::scim::discovery::Extensions;
use crate::scim::list::ListParams;
use crate::scim::request::{Endpoint, Target};

/// What response rules look at besides the answer's body.
pub struct AnswerTo<'a> {
    /// The request's method and endpoint.
    pub method: &'a Method,
    pub endpoint: Endpoint,
    /// The answer's headers.
    pub headers: &'a HeaderMap,
    pub answer: Answer<'a>,
    /// The app's extension schemas, which type the attributes `coerce_by_schema` meets.
    pub extensions: &'a Extensions,
}

impl<'a> Answer<'a> {
    /// What an answer with `status` to a request for `target` is: a list when the request was
    /// a GET of a collection or a `.search`, paged as `paging` (its query's or `.search`
    /// body's `startIndex` and `count`) asked.
    pub fn to_request(
        status: u16,
        base: &'a str,
        method: &Method,
        target: &Target<'_>,
        paging: &ListParams,
    ) -> Self {
        let collection = matches!(
            target.endpoint,
            Endpoint::Users
                | Endpoint::Groups
                | Endpoint::Root
                | Endpoint::Schemas
                | Endpoint::ResourceTypes
        ) && target.id.is_none();
        Answer {
            status,
            base,
            list: target.search || (*method == Method::GET && collection),
            start_index: paging.start_index,
            count: paging.count,
        }
    }
}

/// Runs the response rules of `packs`, in order, over `doc`; returns the rules that changed
/// something.
pub fn normalize<'p>(
    packs: impl IntoIterator<Item = &'p Arc<Pack>>,
    to: &AnswerTo<'_>,
    doc: &mut Value,
) -> Vec<Arc<str>> {
    let (resource, _) = shape_of(&Method::GET, to.endpoint, false);
    let subject = Subject {
        method: to.method,
        resource,
        headers: to.headers,
        shape: Shape::Resource,
        answer: Some(&to.answer),
        extensions: to.extensions,
    };
    let mut fired = Vec::new();
    for pack in packs {
        if pack.answers {
            fired.extend(apply_answer(pack, &subject, doc));
        }
    }
    fired
}
