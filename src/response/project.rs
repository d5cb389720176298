//! What a resource in an answer shows: the `attributes`/`excludedAttributes` projection
//! (RFC 7644 §3.4.2.5), never a `returned: never` attribute such as `password` (RFC 7643 §7),
//! and the proxy's address where the app wrote its own in `meta.location`. Pure functions over
//! JSON, used for answers the proxy composes and for those it reads from the app.

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

/// Where the app's addresses become the proxy's: `upstream` base → `public` base.
pub struct Relocation<'a> {
    pub upstream: &'a str,
    pub public: &'a str,
}

/// A resource, or each resource of a ListResponse, projected as the query asks and relocated.
pub fn finish_answer(
    endpoint: Endpoint,
    query: Option<&str>,
    relocation: Option<&Relocation<'_>>,
    mut doc: Value,
) -> Value {
    let params = ListParams::from_query(query).unwrap_or_default();
    let (attrs, excluded) = (&params.attributes, &params.excluded_attributes);
    let finish_one = |item: Value| {
        let mut item = project(endpoint, item, attrs, excluded);
        if let Some(r) = relocation {
            relocate(&mut item, r);
        }
        item
    };
    let listed = doc
        .as_object()
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

/// A `meta.location` naming the upstream names the proxy instead, as the `Location` header
/// does: the IdP is never shown the application's own address.
pub fn relocate(resource: &mut Value, r: &Relocation<'_>) {
    let Some(Value::String(location)) = resource.pointer_mut("/meta/location") else {
        return;
    };
    if let Some(rest) = location.strip_prefix(r.upstream) {
        *location = format!("{}{rest}", r.public);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_location_naming_the_app_names_the_proxy_and_others_are_kept() {
        let r = Relocation {
            upstream: "http://10.0.0.7:3000/scim/v2",
            public: "https://scim.example.com/acme",
        };
        let mut ours = json!({"meta": {"location": "http://10.0.0.7:3000/scim/v2/Users/1"}});
        relocate(&mut ours, &r);
        assert_eq!(
            ours["meta"]["location"],
            "https://scim.example.com/acme/Users/1"
        );
        let mut other = json!({"meta": {"location": "https://elsewhere.example/Users/1"}});
        relocate(&mut other, &r);
        assert_eq!(
            other["meta"]["location"],
            "https://elsewhere.example/Users/1"
        );
    }

    #[test]
    fn every_listed_resource_is_projected_and_loses_its_password() {
        let list = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 1,
            "Resources": [{"id": "1", "userName": "b", "password": "s3cret", "displayName": "B"}],
        });
        let done = finish_answer(Endpoint::Users, Some("attributes=userName"), None, list);
        let item = &done["Resources"][0];
        assert_eq!(item["userName"], "b");
        assert!(item.get("password").is_none() && item.get("displayName").is_none());
    }
}
