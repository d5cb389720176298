//! Uniqueness for an upstream that does not enforce it: before a create, the proxy looks for
//! a resource with the same `userName` (or `externalId`), and creates of one value are
//! serialized, so two deliveries of one create at once make exactly one resource.

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
    let (collection, rt, attrs): (&'static str, _, &[&'static str]) = match ctx.target().endpoint {
        Endpoint::Groups => ("/Groups", &GROUP, &["externalId"]),
        _ => ("/Users", &USER, &["userName", "externalId"]),
    };
    let doc = body_json(ctx)?;
    let mut keys: Vec<(&'static str, String)> = Vec::new();
    for a in attrs {
        if let Some(v) = string_member(doc, a)? {
            keys.push((a, v.to_owned()));
        }
    }
    let app = ctx.tenant().app_key();
    // One lock per value, taken in a fixed order so two creates cannot wait on each other.
    let lock_keys: Vec<String> = keys
        .iter()
        .map(|(a, v)| {
            let v = if *a == "userName" {
                v.to_lowercase()
            } else {
                v.clone()
            };
            format!("{app}|{collection}|{a}|{v}")
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let locks: Vec<_> = lock_keys
        .iter()
        .map(|k| ctx.snapshot.locks.get(k))
        .collect();
    let mut held = Vec::with_capacity(locks.len());
    for lock in &locks {
        held.push(lock.lock().await);
    }
    for (attr, value) in keys.drain(..) {
        let filter = Filter::Compare {
            attr: AttrPath::new(attr),
            op: CompareOp::Eq,
            value: CompValue::Str(value),
        };
        if exists(ctx, caps, collection, rt, &filter).await? {
            return Err(EmulateError::Duplicate { attr });
        }
    }
    let create = Call {
        method: Method::POST,
        path_and_query: collection,
        body: ctx.body.to_bytes(),
        if_match: None,
    };
    Ok(relay(upstream::call(ctx, create).await?))
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
