//! Conditional requests (RFC 7644 §3.14): the example flow of the RFC, 412 on every write
//! with a stale `If-Match`, 304 on a GET with a current `If-None-Match`, and their order.

use serde_json::{json, Value};

use super::*;
use crate::scim::urn;

fn if_match(tag: &str) -> Conditions<'_> {
    Conditions {
        if_match: Some(tag),
        if_none_match: None,
    }
}

fn if_none_match(tag: &str) -> Conditions<'_> {
    Conditions {
        if_match: None,
        if_none_match: Some(tag),
    }
}

fn title(value: &str) -> Value {
    json!({"schemas": [urn::PATCH_OP],
           "Operations": [{"op": "replace", "path": "title", "value": value}]})
}

#[test]
fn rfc_7644_etag_flow() {
    let store = MemoryStore::new();
    let id = post_user(&store, "bjensen");
    let target = format!("/Users/{id}");
    // The version comes in the ETag header and in meta.version, alike.
    let got = call(&store, Method::Get, &target, None);
    let v1 = got.etag.clone().expect("ETag");
    assert_eq!(got.doc["meta"]["version"], v1.as_str());

    // A client holding the current version gets 304 with no body, and the tag again.
    let cached = call_if(&store, Method::Get, &target, None, if_none_match(&v1));
    assert_eq!((cached.status, &cached.doc), (304, &Value::Null));
    assert_eq!(cached.etag.as_deref(), Some(v1.as_str()));

    // A write naming the current version succeeds and yields a new one.
    let a = call_if(
        &store,
        Method::Patch,
        &target,
        Some(title("Tour Guide")),
        if_match(&v1),
    );
    assert_eq!(a.status, 200, "{}", a.doc);
    let v2 = a.etag.expect("ETag");
    assert_ne!(v1, v2);

    // The old version no longer holds: 412 for the write, and a full answer for the read.
    let stale = call_if(
        &store,
        Method::Patch,
        &target,
        Some(title("Clown")),
        if_match(&v1),
    );
    assert_error(&stale, 412, None);
    let fresh = call_if(&store, Method::Get, &target, None, if_none_match(&v1));
    assert_eq!(
        (fresh.status, fresh.doc["title"].as_str()),
        (200, Some("Tour Guide"))
    );
}

#[test]
fn every_write_with_a_stale_if_match_is_refused_and_changes_nothing() {
    let store = MemoryStore::new();
    let id = post_user(&store, "a");
    let target = format!("/Users/{id}");
    let stale = "W/\"0\"";
    let put = json!({"schemas": [urn::USER], "userName": "b"});
    for (method, body) in [
        (Method::Put, Some(put.clone())),
        (Method::Patch, Some(title("t"))),
        (Method::Delete, None),
    ] {
        let a = call_if(&store, method, &target, body, if_match(stale));
        assert_error(&a, 412, None);
    }
    let now = call(&store, Method::Get, &target, None);
    assert_eq!(
        (now.doc["userName"].as_str(), now.etag.as_deref()),
        (Some("a"), Some("W/\"1\""))
    );

    let put = call_if(&store, Method::Put, &target, Some(put), if_match("W/\"1\""));
    assert_eq!(put.status, 200, "{}", put.doc);
    let gone = call_if(&store, Method::Delete, &target, None, if_match("W/\"2\""));
    assert_eq!(gone.status, 204);
}

#[test]
fn star_lists_and_strong_forms_of_the_current_tag_match() {
    let store = MemoryStore::new();
    let id = post_group(&store, "g", &[]);
    let target = format!("/Groups/{id}");
    for tag in ["*", "W/\"7\", W/\"1\"", "\"1\""] {
        let a = call_if(&store, Method::Get, &target, None, if_match(tag));
        assert_eq!(a.status, 200, "{tag}");
        let a = call_if(&store, Method::Get, &target, None, if_none_match(tag));
        assert_eq!(a.status, 304, "{tag}");
    }
    // A garbled If-Match names no version, so it never lets a write through.
    let a = call_if(&store, Method::Delete, &target, None, if_match("1"));
    assert_error(&a, 412, None);
}

#[test]
fn if_none_match_on_a_write_is_a_failed_precondition() {
    // RFC 9110 §13.1.2: "If-None-Match: *" on a PUT means "only if it does not exist yet",
    // and a PUT never creates, so it cannot hold for an existing resource.
    let store = MemoryStore::new();
    let id = post_user(&store, "a");
    let body = json!({"schemas": [urn::USER], "userName": "b"});
    let a = call_if(
        &store,
        Method::Put,
        &format!("/Users/{id}"),
        Some(body),
        if_none_match("*"),
    );
    assert_error(&a, 412, None);
}

#[test]
fn not_found_comes_before_and_bad_bodies_after_preconditions() {
    let store = MemoryStore::new();
    let a = call_if(
        &store,
        Method::Patch,
        "/Users/nope",
        Some(title("t")),
        if_match("W/\"1\""),
    );
    assert_error(&a, 404, None);
    let id = post_user(&store, "a");
    let target = format!("/Users/{id}");
    let bad = json!({"schemas": [urn::USER]});
    let a = call_if(
        &store,
        Method::Put,
        &target,
        Some(bad.clone()),
        if_match("W/\"9\""),
    );
    assert_error(&a, 412, None);
    let a = call_if(&store, Method::Put, &target, Some(bad), if_match("W/\"1\""));
    assert_error(&a, 400, Some("invalidValue"));
}

#[test]
fn lists_and_creates_ignore_conditions_and_etag_is_announced() {
    let store = MemoryStore::new();
    let a = call_if(&store, Method::Get, "/Users", None, if_none_match("*"));
    assert_eq!(a.status, 200);
    let body = json!({"schemas": [urn::USER], "userName": "a"});
    let a = call_if(
        &store,
        Method::Post,
        "/Users",
        Some(body),
        if_match("W/\"5\""),
    );
    assert_eq!(a.status, 201);
    let spc = call(&store, Method::Get, "/ServiceProviderConfig", None);
    assert_eq!(spc.doc["etag"]["supported"], true);
}
