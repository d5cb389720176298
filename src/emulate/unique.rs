//! Uniqueness for an upstream that does not enforce it: before a create, a replace, or the PUT
//! of an emulated PATCH, the proxy looks for another resource with the same `userName` (or
//! `externalId`), and writes of one value are serialized, so two deliveries of one create at
//! once make exactly one resource and a rename cannot take a name another resource holds.

use http::{Method, Response};
use serde_json::Value;

use super::error::EmulateError;
use super::list::exists;
use super::reply::{body_json, relay};
use crate::body::Body;
use crate::ctx::RequestCtx;
use crate::scim::discovery::{GROUP, USER};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::request::Endpoint;
use crate::upstream::caps::Capabilities;
use crate::upstream::{self, Call};

pub async fn create(
    ctx: &mut RequestCtx,
    caps: &Capabilities,
) -> Result<Response<Body>, EmulateError> {
    let doc = body_json(ctx)?.clone();
    let collection = collection_of(ctx);
    let _held = claim(ctx, caps, &doc, None).await?;
    let create = Call {
        method: Method::POST,
        path_and_query: collection,
        body: ctx.body.to_bytes(),
        if_match: None,
    };
    Ok(relay(upstream::call(ctx, create).await?))
}

/// A PUT: the values it gives may be held by no other resource. The PUT is sent while they
/// are claimed, under the resource's own lock, as a forwarded PUT would be.
pub async fn replace(
    ctx: &mut RequestCtx,
    caps: &Capabilities,
) -> Result<Response<Body>, EmulateError> {
    let doc = body_json(ctx)?.clone();
    let id = ctx.target().id.clone().unwrap_or_default();
    let lock = ctx.resource_lock();
    let _resource = lock.lock().await;
    let _held = claim(ctx, caps, &doc, Some(&id)).await?;
    let put = Call {
        method: Method::PUT,
        path_and_query: ctx.path(),
        body: ctx.body.to_bytes(),
        if_match: ctx.if_match(),
    };
    Ok(relay(upstream::call(ctx, put).await?))
}

/// Values claimed for a write: while held, no other write through the proxy can claim them.
pub struct Claimed(#[allow(dead_code)] Vec<tokio::sync::OwnedMutexGuard<()>>);

/// The values uniqueness is about, to tell whether a write changes them: `userName` and
/// `externalId`, as given (a name given twice counts as changed).
pub fn values(doc: &Value) -> [Option<String>; 2] {
    ["userName", "externalId"].map(|a| match string_member(doc, a) {
        Ok(v) => v.map(str::to_owned),
        Err(_) => Some(String::new()),
    })
}

fn collection_of(ctx: &RequestCtx) -> &'static str {
    match ctx.target().endpoint {
        Endpoint::Groups => "/Groups",
        _ => "/Users",
    }
}

/// Claims the unique values `doc` gives (`userName` and `externalId` of a User, `externalId`
/// of a Group), and refuses them when a resource other than `except` already holds one. Locks
/// are taken per value, in a fixed order, so two writes cannot wait on each other.
pub async fn claim(
    ctx: &RequestCtx,
    caps: &Capabilities,
    doc: &Value,
    except: Option<&str>,
) -> Result<Claimed, EmulateError> {
    let collection = collection_of(ctx);
    let (rt, attrs): (_, &[&'static str]) = match ctx.target().endpoint {
        Endpoint::Groups => (&GROUP, &["externalId"]),
        _ => (&USER, &["userName", "externalId"]),
    };
    let mut keys: Vec<(&'static str, String)> = Vec::new();
    for a in attrs {
        if let Some(v) = string_member(doc, a)? {
            keys.push((a, v.to_owned()));
        }
    }
    let app = ctx.tenant().app_key();
    let lock_keys: std::collections::BTreeSet<String> = keys
        .iter()
        .map(|(a, v)| {
            let v = if *a == "userName" {
                v.to_lowercase()
            } else {
                v.clone()
            };
            format!("{app}|{collection}|{a}|{v}")
        })
        .collect();
    let mut held = Vec::with_capacity(lock_keys.len());
    for key in &lock_keys {
        held.push(ctx.snapshot.locks.get(key).lock_owned().await);
    }
    for (attr, value) in keys.drain(..) {
        let filter = Filter::Compare {
            attr: AttrPath::new(attr),
            op: CompareOp::Eq,
            value: CompValue::Str(value),
        };
        if exists(ctx, caps, collection, rt, &filter, except).await? {
            return Err(EmulateError::Duplicate { attr });
        }
    }
    Ok(Claimed(held))
}

/// A top-level string attribute, by name in any case (RFC 7643 §2.1). A body that names it
/// twice in different cases (`externalId` and `EXTERNALID`) is refused: which one the app
/// stores is its guess, and the check must not look at the other.
fn string_member<'a>(doc: &'a Value, name: &str) -> Result<Option<&'a str>, EmulateError> {
    let Some(obj) = doc.as_object() else {
        return Ok(None);
    };
    let mut found = obj.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
    let first = found.next();
    if found.next().is_some() {
        return Err(EmulateError::scim(ScimError::with_type(
            400,
            ScimType::InvalidSyntax,
            format!("the body names {name} more than once, in different cases"),
        )));
    }
    Ok(first
        .and_then(|(_, v)| v.as_str())
        .filter(|s| !s.is_empty()))
}
