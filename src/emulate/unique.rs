//! Uniqueness for an upstream that does not enforce it: before a create, the proxy looks for
//! a resource with the same `userName` (or `externalId`), and creates of one value are
//! serialized, so two deliveries of one create at once make exactly one resource.

use http::{Method, Response};
use serde_json::Value;

use super::{call, parse_body, relay, Capabilities, Request};
use crate::error::ProxyError;
use crate::response::Body;
use crate::scim::discovery::{GROUP, USER};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::request::Endpoint;
use crate::tenant::Tenant;
use crate::upstream::Call;

pub async fn create(
    tenant: &Tenant,
    req: &Request<'_>,
    caps: &Capabilities,
) -> Result<Response<Body>, ProxyError> {
    let (collection, rt, attrs): (&str, _, &[&str]) = match req.target.endpoint {
        Endpoint::Groups => ("/Groups", &GROUP, &["externalId"]),
        _ => ("/Users", &USER, &["userName", "externalId"]),
    };
    let doc = parse_body(req.body)?;
    let mut keys: Vec<(&str, String)> = attrs
        .iter()
        .filter_map(|a| Some((*a, string_member(&doc, a)?.to_owned())))
        .collect();
    // One lock per value, taken in a fixed order so two creates cannot wait on each other.
    let lock_keys: Vec<String> = keys
        .iter()
        .map(|(a, v)| {
            let v = if *a == "userName" {
                v.to_lowercase()
            } else {
                v.clone()
            };
            format!("{collection}:{a}:{v}")
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let locks: Vec<_> = lock_keys.iter().map(|k| tenant.gaps.lock(k)).collect();
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
        if super::list::exists(tenant, req, caps, collection, rt, &filter).await? {
            let detail = format!("a resource with this {attr} already exists");
            return Err(ProxyError::Scim(ScimError::with_type(
                409,
                ScimType::Uniqueness,
                detail,
            )));
        }
    }
    let create = Call {
        method: Method::POST,
        path_and_query: collection,
        body: req.body.clone(),
        if_match: None,
    };
    Ok(relay(call(tenant, req, create).await?))
}

/// A top-level string attribute, by name in any case (RFC 7643 §2.1).
fn string_member<'a>(doc: &'a Value, name: &str) -> Option<&'a str> {
    doc.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))?
        .1
        .as_str()
        .filter(|s| !s.is_empty())
}
