//! What a resource in an answer shows: the `attributes`/`excludedAttributes` projection
//! (RFC 7644 §3.4.2.5), never a `returned: never` attribute such as `password` (RFC 7643 §7).
//! Pure functions over JSON, used for answers the proxy composes and for those it reads from
//! the app. (The app's address in them is replaced on the bytes, by `upstream::relocate`.)

use serde_json::Value;

use crate::scim::discovery::{ResourceTypeDef, GROUP, USER};
use crate::scim::list::ListParams;
use crate::scim::path::key_ci;
use crate::scim::request::Endpoint;

/// A resource projected as `attributes`/`excluded` ask; always drops `returned: never`.
pub fn project(
    endpoint: Endpoint,
    doc: Value,
    attributes: &[String],
    excluded: &[String],
) -> Value {
    let rt = match endpoint {
        Endpoint::Groups => &GROUP,
        Endpoint::Users => &USER,
        _ => match doc.pointer("/meta/resourceType").and_then(Value::as_str) {
            Some("Group") => &GROUP,
            _ => &USER,
        },
    };
    project_as(rt, doc, attributes, excluded)
}

pub fn project_as(
    rt: &'static ResourceTypeDef,
    doc: Value,
    attributes: &[String],
    excluded: &[String],
) -> Value {
    crate::scim::memory::projection::project(rt, doc, attributes, excluded)
}

/// The projection a query asks for.
pub fn project_by_query(endpoint: Endpoint, query: Option<&str>, doc: Value) -> Value {
    match ListParams::from_query(query) {
        Ok(p) => project(endpoint, doc, &p.attributes, &p.excluded_attributes),
        Err(_) => doc,
    }
}

/// A resource, or each resource of a ListResponse (`list`: the answer to a query), projected
/// as the query asks. A resource is projected whole, even with a member named `Resources`.
pub fn finish_answer(endpoint: Endpoint, query: Option<&str>, mut doc: Value, list: bool) -> Value {
    let params = ListParams::from_query(query).unwrap_or_default();
    let (attrs, excluded) = (&params.attributes, &params.excluded_attributes);
    let finish_one = |item: Value| project(endpoint, item, attrs, excluded);
    let listed = doc
        .as_object()
        .filter(|_| list)
        .and_then(|m| key_ci(m, "Resources"))
        .cloned();
    if let Some(Value::Array(items)) = listed.and_then(|k| doc.get_mut(&k)) {
        for item in items.iter_mut() {
            *item = finish_one(item.take());
        }
        return doc;
    }
    finish_one(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_listed_resource_is_projected_and_loses_its_password() {
        let list = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 1,
            "Resources": [{"id": "1", "userName": "b", "password": "s3cret", "displayName": "B"}],
        });
        let done = finish_answer(Endpoint::Users, Some("attributes=userName"), list, true);
        let item = &done["Resources"][0];
        assert_eq!(item["userName"], "b");
        assert!(item.get("password").is_none() && item.get("displayName").is_none());
    }
}
