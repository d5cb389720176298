//! Stage 7, filter, and the outbound half of stage 10: the tenant's attribute policy
//! (`crate::policy`, pure) applied to what the IdP sends and to what goes back to it. What
//! was dropped or redacted is named (attribute, never value) on the request's log line.

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde_json::Value;

use crate::ctx::{ReqBody, RequestCtx};
use crate::policy::{Direction, Outcome, Policy, Refusal};
use crate::rule_pack::request::bulk_ops;
use crate::rule_pack::{shape_of, Shape};
use crate::scim::discovery::{ResourceTypeDef, GROUP, USER};
use crate::scim::filter::{self, Filter};
use crate::scim::list::ListParams;
use crate::scim::path::{key_ci, AttrPath};
use crate::scim::request::Endpoint;
use crate::scim::urn;

/// Stage 7: filters that test a withheld attribute are refused (they would be an oracle for
/// its value), and the body loses what may not reach the app. A PATCH left with no operation
/// at all becomes a read of the resource: the app is asked to change nothing, and the IdP gets
/// the resource as it is.
pub fn inbound(ctx: &mut RequestCtx) -> Result<(), Refusal> {
    let policy = ctx.tenant().policy.clone();
    if policy.is_empty() {
        return Ok(());
    }
    filter_inbound(ctx, &policy).inspect_err(|_| refused(ctx, Direction::Inbound))
}

fn filter_inbound(ctx: &mut RequestCtx, policy: &Arc<Policy>) -> Result<(), Refusal> {
    let target = ctx.target();
    let (endpoint, search) = (target.endpoint, target.search);
    let (resource, shape) = shape_of(&ctx.method, endpoint, search);
    check_query(ctx, policy, endpoint, resource)?;
    if ctx.body.is_empty() || policy.rules(Direction::Inbound).is_empty() {
        return Ok(());
    }
    let bulk = ctx.method == Method::POST && endpoint == Endpoint::Bulk;
    if let (Some(rt), Shape::Resource, None) = (resource, shape, ctx.body.parsed()) {
        // A resource no stage has read (no rule pack): read only what the lists name.
        let text = std::str::from_utf8(ctx.body.raw()).ok();
        if let Some(done) = text.and_then(|t| policy.apply_text(Direction::Inbound, rt, t, false)) {
            let edit = done?;
            note(ctx, Direction::Inbound, &edit.out);
            if let Some(text) = edit.text {
                ctx.body = ReqBody::new(Bytes::from(text));
            }
            return Ok(());
        }
    }
    let edited = ctx.body.edit(|doc| {
        let done = match (resource, shape) {
            (Some(rt), Shape::Resource) => policy.apply_resource(Direction::Inbound, rt, doc),
            (Some(rt), Shape::Patch) => policy.apply_patch(Direction::Inbound, rt, doc),
            _ if bulk => bulk_inbound(policy, doc),
            _ => Ok(Outcome::default()),
        };
        (done.as_ref().is_ok_and(|o| !o.is_empty()), done)
    });
    // A body serde cannot read was refused by stage 5; nothing to judge here.
    let Ok(done) = edited else { return Ok(()) };
    let done = done?;
    note(ctx, Direction::Inbound, &done);
    if done.no_operations_left && shape == Shape::Patch {
        ctx.method = Method::GET;
        ctx.body = Default::default();
        ctx.record.filled = Some("policy");
    }
    Ok(())
}

/// Each operation of a Bulk the app carries out itself, as the request it stands for.
fn bulk_inbound(policy: &Policy, doc: &mut Value) -> Result<Outcome, Refusal> {
    let mut all = Outcome::default();
    for op in bulk_ops(doc) {
        let (Some(rt), shape) = shape_of(&op.method, op.endpoint, false) else {
            continue;
        };
        let done = match shape {
            Shape::Resource => policy.apply_resource(Direction::Inbound, rt, op.data)?,
            Shape::Patch => policy.apply_patch(Direction::Inbound, rt, op.data)?,
            Shape::Other => continue,
        };
        all.dropped.extend(done.dropped);
        all.redacted.extend(done.redacted);
    }
    Ok(all)
}

/// `filter` and `sortBy`, in the query or a `.search` body: sorting by an attribute tells its
/// order, so it counts as a test of it.
fn check_query(
    ctx: &mut RequestCtx,
    policy: &Policy,
    endpoint: Endpoint,
    resource: Option<&'static ResourceTypeDef>,
) -> Result<(), Refusal> {
    let types: Vec<&'static ResourceTypeDef> = match (resource, endpoint) {
        (Some(rt), _) => vec![rt],
        (None, Endpoint::Root) => vec![&USER, &GROUP],
        _ => return Ok(()),
    };
    let params = if ctx.target().search && ctx.method == Method::POST {
        ctx.body
            .json()
            .ok()
            .and_then(|b| ListParams::from_search_body(b).ok())
    } else {
        ListParams::from_query(ctx.query()).ok()
    };
    let Some(params) = params else { return Ok(()) };
    let mut tests = Vec::new();
    // A filter that does not parse is refused by the stages after this one.
    if let Some(f) = params.filter.as_deref().and_then(|f| filter::parse(f).ok()) {
        tests.push(f);
    }
    if let Some(attr) = params
        .sort_by
        .as_deref()
        .and_then(|s| AttrPath::parse(s).ok())
    {
        tests.push(Filter::Present(attr));
    }
    for f in &tests {
        for rt in &types {
            policy.check_filter(rt, f)?;
        }
    }
    Ok(())
}

fn note(ctx: &mut RequestCtx, direction: Direction, done: &Outcome) {
    let work = &ctx.snapshot.metrics.work;
    work.withheld(
        &ctx.tenant().id,
        direction,
        done.dropped.len(),
        done.redacted.len(),
    );
    let dropped = done.dropped.iter().map(|p| format!("dropped:{p}"));
    let redacted = done.redacted.iter().map(|p| format!("redacted:{p}"));
    ctx.record.withheld.extend(dropped.chain(redacted));
}

/// Stage 10, outbound: an answered resource, or each resource of a ListResponse, loses what
/// may not reach the IdP. `Err` when a detector refuses a value: the caller decides what the
/// IdP gets instead.
pub fn outbound(ctx: &mut RequestCtx, doc: &mut Value) -> Result<bool, Refusal> {
    filter_outbound(ctx, doc).inspect_err(|_| refused(ctx, Direction::Outbound))
}

fn filter_outbound(ctx: &mut RequestCtx, doc: &mut Value) -> Result<bool, Refusal> {
    let policy = ctx.tenant().policy.clone();
    let endpoint = ctx.target().endpoint;
    let mut all = Outcome::default();
    let mut one = |r: &mut Value| -> Result<(), Refusal> {
        let Some(rt) = type_of(endpoint, r) else {
            return Ok(());
        };
        all.merge(policy.apply_resource(Direction::Outbound, rt, r)?);
        Ok(())
    };
    // A list is what a query answers; any other answer is one resource, walked whole even if
    // it has a member named `Resources`, which could otherwise hide the rest from the walk.
    let list = doc
        .as_object_mut()
        .filter(|_| ctx.answers_a_query())
        .and_then(|o| key_ci(o, "Resources").cloned().map(|k| (o, k)));
    match list {
        Some((obj, key)) => {
            if let Some(Value::Array(items)) = obj.get_mut(&key) {
                for item in items {
                    one(item)?;
                }
            }
        }
        None => one(doc)?,
    }
    let changed = !all.is_empty();
    note(ctx, Direction::Outbound, &all);
    Ok(changed)
}

/// [`outbound`] for an answered resource or ListResponse kept as text, when the policy can
/// judge it without reading all of it (`Policy::apply_text`): `Some(Ok(text))` with
/// the text that replaces the answer (`None` if nothing changed); `None` when the answer is to
/// be read whole.
pub fn outbound_text(ctx: &mut RequestCtx, text: &str) -> Option<Result<Option<Vec<u8>>, Refusal>> {
    let rt = type_of_endpoint(ctx.target().endpoint)?;
    let policy = ctx.tenant().policy.clone();
    match policy.apply_text(Direction::Outbound, rt, text, ctx.answers_a_query())? {
        Ok(edit) => {
            note(ctx, Direction::Outbound, &edit.out);
            Some(Ok(edit.text))
        }
        Err(refusal) => {
            refused(ctx, Direction::Outbound);
            Some(Err(refusal))
        }
    }
}

/// A document the policy refused whole, for the metrics.
fn refused(ctx: &RequestCtx, direction: Direction) {
    ctx.snapshot
        .metrics
        .work
        .refused(&ctx.tenant().id, direction);
}

/// Whether the tenant withholds anything from the IdP, so answers must be read.
pub fn has_outbound(ctx: &RequestCtx) -> bool {
    !ctx.tenant().policy.rules(Direction::Outbound).is_empty()
}

/// What a resource in an answer is: by the endpoint, or at the root by its `schemas`.
fn type_of(endpoint: Endpoint, r: &Value) -> Option<&'static ResourceTypeDef> {
    match endpoint {
        Endpoint::Root => {
            let schemas = r.get("schemas").and_then(Value::as_array)?;
            let lists = |u: &str| {
                schemas
                    .iter()
                    .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(u)))
            };
            if lists(urn::GROUP) {
                Some(&GROUP)
            } else if lists(urn::USER) {
                Some(&USER)
            } else {
                None
            }
        }
        _ => type_of_endpoint(endpoint),
    }
}

/// What the resources an endpoint answers are, where the endpoint alone says (`/Me` a User).
fn type_of_endpoint(endpoint: Endpoint) -> Option<&'static ResourceTypeDef> {
    match endpoint {
        Endpoint::Users | Endpoint::Me => Some(&USER),
        Endpoint::Groups => Some(&GROUP),
        _ => None,
    }
}

/// An error's `detail` a detector recognises a value in is withheld: the IdP learns that the
/// app failed and why in general terms, never the value.
pub fn screen_detail(ctx: &RequestCtx, doc: &mut Value) -> bool {
    let policy = &ctx.tenant().policy;
    let Some(Value::String(detail)) = doc.get_mut("detail") else {
        return false;
    };
    if !policy.detects(Direction::Outbound, detail) {
        return false;
    }
    *detail = "the application's error message is withheld: it holds a value the attribute policy does not pass".to_owned();
    true
}
