//! Uniqueness for an upstream that does not enforce it: before a create, a replace, a PATCH
//! that gives a new value (sent as the app's own PATCH or as the PUT of an emulated one), the
//! proxy looks for another resource with the same `userName` (or
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
use crate::scim::patch::{OpKind, PatchRequest};
use crate::scim::path::AttrPath;
use crate::scim::request::Endpoint;
use crate::scim::urn;
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

/// What a PATCH gives `userName` and `externalId`, as a document [`claim`] reads: the values
/// of `add` and `replace` operations, by path (the core schema's URN or none) or as members of
/// a value without a path, the last operation winning. `None` when it gives neither.
pub fn set_by_patch(patch: &PatchRequest) -> Option<Value> {
    const NAMES: [&str; 2] = ["userName", "externalId"];
    let named = |name: &str| NAMES.into_iter().find(|n| n.eq_ignore_ascii_case(name));
    let mut doc = serde_json::Map::new();
    for op in patch.operations.iter().filter(|op| op.op != OpKind::Remove) {
        let Some(value) = &op.value else { continue };
        match &op.path {
            Some(path) if path.filter.is_none() && path.sub.is_none() => {
                let attr = &path.attr;
                let core = attr.urn.as_deref().is_none_or(|u| {
                    u.eq_ignore_ascii_case(urn::USER) || u.eq_ignore_ascii_case(urn::GROUP)
                });
                if let (true, None, Some(name)) = (core, &attr.sub, named(&attr.name)) {
                    doc.insert(name.to_owned(), value.clone().into_owned());
                }
            }
            Some(_) => {}
            // Kept as spelled: two spellings of one name are refused by `claim`.
            None => {
                for (key, v) in value.as_object().into_iter().flatten() {
                    if let Some(name) = named(key) {
                        doc.remove(name);
                        doc.insert(key.clone(), v.clone());
                    }
                }
            }
        }
    }
    (!doc.is_empty()).then_some(Value::Object(doc))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn given(ops: Value) -> Option<Value> {
        let body = json!({"schemas": [urn::PATCH_OP], "Operations": ops});
        set_by_patch(&PatchRequest::from_json(&body).unwrap())
    }

    #[test]
    fn values_given_by_path_in_any_case_and_with_the_core_urn() {
        let ops = json!([
            {"op": "Replace", "path": "USERNAME", "value": "a@example.com"},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User:externalId", "value": "e1"},
        ]);
        assert_eq!(
            given(ops),
            Some(json!({"userName": "a@example.com", "externalId": "e1"}))
        );
    }

    #[test]
    fn values_given_without_a_path_keep_their_spelling_and_the_last_operation_wins() {
        let ops = json!([
            {"op": "replace", "path": "externalId", "value": "first"},
            {"op": "replace", "value": {"EXTERNALID": "second", "displayName": "x"}},
        ]);
        assert_eq!(given(ops), Some(json!({"EXTERNALID": "second"})));
    }

    #[test]
    fn removals_other_attributes_and_sub_attributes_give_nothing() {
        let ops = json!([
            {"op": "remove", "path": "externalId"},
            {"op": "replace", "path": "active", "value": false},
            {"op": "replace", "path": "name.givenName", "value": "userName"},
            {"op": "add", "path": "emails[type eq \"work\"].value", "value": "x@example.com"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:externalId", "value": "other"},
        ]);
        assert_eq!(given(ops), None);
    }
}
