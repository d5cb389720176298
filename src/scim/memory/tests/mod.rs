//! Scenario tests of the memory store through `handle`, including the RFC 7643 §8 examples:
//! shared helpers here, resource writes in `resources.rs`, reads and endpoints in `reads.rs`,
//! filters and sorting in `query.rs`, PATCH in `patch.rs` (on large groups in `large.rs`),
//! conditional requests in `etag.rs`.

mod etag;
mod large;
mod patch;
mod query;
mod reads;
mod resources;

use super::*;
use crate::scim::urn;
use serde_json::{json, Value};

pub(super) const BASE: &str = "https://proxy.example/acme";

pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) doc: Value,
    pub(super) location: Option<String>,
    pub(super) etag: Option<String>,
}

pub(super) fn call(
    store: &MemoryStore,
    method: Method,
    target: &str,
    body: Option<Value>,
) -> Answer {
    call_if(store, method, target, body, Conditions::default())
}

/// The conditional-request headers of a call (RFC 7644 §3.14).
#[derive(Clone, Copy, Default)]
pub(super) struct Conditions<'a> {
    pub(super) if_match: Option<&'a str>,
    pub(super) if_none_match: Option<&'a str>,
}

pub(super) fn call_if(
    store: &MemoryStore,
    method: Method,
    target: &str,
    body: Option<Value>,
    conditions: Conditions<'_>,
) -> Answer {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = StoreRequest {
        method,
        path,
        query,
        body: body.as_bytes(),
        base_url: BASE,
        if_match: conditions.if_match,
        if_none_match: conditions.if_none_match,
    };
    let r = store.handle(&req);
    let doc = if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).expect("JSON body")
    };
    Answer {
        status: r.status,
        doc,
        location: r.location,
        etag: r.etag,
    }
}

pub(super) fn post_user(store: &MemoryStore, user_name: &str) -> String {
    let a = call(
        store,
        Method::Post,
        "/Users",
        Some(json!({"schemas": [urn::USER], "userName": user_name})),
    );
    assert_eq!(a.status, 201, "{}", a.doc);
    a.doc["id"].as_str().expect("id").to_owned()
}

pub(super) fn post_group(store: &MemoryStore, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let body = json!({"schemas": [urn::GROUP], "displayName": name, "members": members});
    let a = call(store, Method::Post, "/Groups", Some(body));
    assert_eq!(a.status, 201, "{}", a.doc);
    a.doc["id"].as_str().expect("id").to_owned()
}

pub(super) fn assert_error(a: &Answer, status: u16, scim_type: Option<&str>) {
    assert_eq!(a.status, status, "{}", a.doc);
    assert_eq!(a.doc["schemas"][0], urn::ERROR);
    assert_eq!(a.doc["status"], status.to_string());
    assert_eq!(a.doc.get("scimType").and_then(Value::as_str), scim_type);
}

/// RFC 7643 §8.3: the enterprise user example, as a POST body.
pub(super) fn enterprise_user() -> Value {
    json!({
        "schemas": [urn::USER, urn::ENTERPRISE_USER],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara",
                 "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"},
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                   {"value": "babs@jensen.org", "type": "home"}],
        "addresses": [{"streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "region": "CA",
                       "postalCode": "91608", "country": "USA", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "password": "t1meMa$heen",
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
        (urn::ENTERPRISE_USER): {
            "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
            "division": "Theme Park", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d",
                        "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        "meta": {"resourceType": "User", "version": "W/\"3694e05e9dff591\""}
    })
}
