//! Writes: POST, PUT, DELETE, uniqueness, validation and group membership.

use serde_json::{json, Value};

use super::*;
use crate::scim::urn;

#[test]
fn post_minimal_user_answers_201_with_id_meta_location_and_etag() {
    // RFC 7643 §8.1: the minimal user; the id it carries is readOnly and ignored.
    let store = MemoryStore::new();
    let body = json!({"schemas": [urn::USER], "id": "2819c223-7f76-453a-919d-413861904646", "userName": "bjensen@example.com"});
    let a = call(&store, Method::Post, "/Users", Some(body));
    assert_eq!(a.status, 201);
    let id = a.doc["id"].as_str().expect("id");
    assert_ne!(id, "2819c223-7f76-453a-919d-413861904646");
    assert_eq!(
        a.location.as_deref(),
        Some(format!("{BASE}/Users/{id}").as_str())
    );
    assert_eq!(
        a.doc["meta"]["location"],
        a.location.clone().expect("location")
    );
    assert_eq!(a.doc["meta"]["resourceType"], "User");
    assert_eq!(a.doc["meta"]["version"], "W/\"1\"");
    assert_eq!(a.etag.as_deref(), Some("W/\"1\""));
    assert_eq!(a.doc["meta"]["created"], a.doc["meta"]["lastModified"]);
}

#[test]
fn enterprise_user_example_round_trips_without_password_or_read_only_values() {
    let store = MemoryStore::new();
    let a = call(&store, Method::Post, "/Users", Some(enterprise_user()));
    assert_eq!(a.status, 201, "{}", a.doc);
    let id = a.doc["id"].as_str().expect("id");
    let got = call(&store, Method::Get, &format!("/Users/{id}"), None);
    assert_eq!(got.status, 200);
    assert_eq!(got.doc, a.doc);
    let ext = &got.doc[urn::ENTERPRISE_USER];
    assert_eq!(ext["employeeNumber"], "701984");
    assert!(
        ext["manager"].get("displayName").is_none(),
        "manager.displayName is readOnly"
    );
    assert!(
        got.doc.get("password").is_none(),
        "password is returned never"
    );
    assert_eq!(got.doc["name"]["honorificSuffix"], "III");
}

#[test]
fn get_of_unknown_id_is_a_404_scim_error() {
    let a = call(&MemoryStore::new(), Method::Get, "/Users/nope", None);
    assert_error(&a, 404, None);
}

#[test]
fn put_never_creates_a_resource() {
    let body = json!({"schemas": [urn::USER], "userName": "x"});
    assert_error(
        &call(&MemoryStore::new(), Method::Put, "/Users/nope", Some(body)),
        404,
        None,
    );
}

#[test]
fn put_replaces_keeps_created_and_bumps_version() {
    let store = MemoryStore::new();
    let a = call(&store, Method::Post, "/Users", Some(enterprise_user()));
    let id = a.doc["id"].as_str().expect("id");
    let body = json!({"schemas": [urn::USER], "id": "ignored", "userName": "babs", "meta": {"created": "2000-01-01T00:00:00Z"}});
    let b = call(&store, Method::Put, &format!("/Users/{id}"), Some(body));
    assert_eq!(b.status, 200, "{}", b.doc);
    assert_eq!(
        (b.doc["id"].as_str(), b.doc["userName"].as_str()),
        (Some(id), Some("babs"))
    );
    assert_eq!(b.doc["meta"]["created"], a.doc["meta"]["created"]);
    assert_eq!(b.etag.as_deref(), Some("W/\"2\""));
    assert!(
        b.doc.get("nickName").is_none() && b.doc.get(urn::ENTERPRISE_USER).is_none(),
        "omitted means cleared"
    );
}

#[test]
fn delete_answers_204_then_the_resource_is_gone() {
    let store = MemoryStore::new();
    let id = post_user(&store, "gone");
    let a = call(&store, Method::Delete, &format!("/Users/{id}"), None);
    assert_eq!((a.status, a.doc), (204, Value::Null));
    assert_error(
        &call(&store, Method::Get, &format!("/Users/{id}"), None),
        404,
        None,
    );
    assert_error(
        &call(&store, Method::Delete, &format!("/Users/{id}"), None),
        404,
        None,
    );
}

#[test]
fn user_name_is_unique_case_insensitively() {
    let store = MemoryStore::new();
    post_user(&store, "bjensen");
    let dup = json!({"schemas": [urn::USER], "userName": "BJensen"});
    assert_error(
        &call(&store, Method::Post, "/Users", Some(dup)),
        409,
        Some("uniqueness"),
    );
}

#[test]
fn external_id_may_repeat_as_its_schema_says_and_user_name_may_not() {
    // RFC 7643 §3.1: externalId has uniqueness "none"; userName is server-unique, in any case.
    let store = MemoryStore::new();
    let body = json!({"schemas": [urn::USER], "userName": "a", "externalId": "E1"});
    assert_eq!(call(&store, Method::Post, "/Users", Some(body)).status, 201);
    let same_external = json!({"schemas": [urn::USER], "userName": "b", "externalId": "E1"});
    assert_eq!(
        call(&store, Method::Post, "/Users", Some(same_external)).status,
        201
    );
    let same_name = json!({"schemas": [urn::USER], "userName": "A", "externalId": "E2"});
    assert_error(
        &call(&store, Method::Post, "/Users", Some(same_name)),
        409,
        Some("uniqueness"),
    );
}

#[test]
fn bad_bodies_are_refused_with_the_right_scim_type() {
    let store = MemoryStore::new();
    let req = StoreRequest {
        method: Method::Post,
        path: "/Users",
        query: None,
        body: b"{not json",
        base_url: BASE,
        if_match: None,
        if_none_match: None,
    };
    let r = store.handle(&req);
    assert_eq!(r.status, 400);
    let no_name = json!({"schemas": [urn::GROUP]});
    assert_error(
        &call(&store, Method::Post, "/Groups", Some(no_name)),
        400,
        Some("invalidValue"),
    );
    let wrong_type = json!({"schemas": [urn::USER], "userName": "a", "active": "yes"});
    assert_error(
        &call(&store, Method::Post, "/Users", Some(wrong_type)),
        400,
        Some("invalidValue"),
    );
    let group_schema = json!({"schemas": [urn::GROUP], "userName": "a"});
    assert_error(
        &call(&store, Method::Post, "/Users", Some(group_schema)),
        400,
        Some("invalidValue"),
    );
}

#[test]
fn groups_show_members_and_users_show_derived_groups() {
    let store = MemoryStore::new();
    let user = post_user(&store, "bjensen");
    let inner = post_group(&store, "Tour Guides", &[&user]);
    let outer = post_group(&store, "Staff", &[&inner, "not-yet-provisioned"]);
    let g = call(&store, Method::Get, &format!("/Groups/{inner}"), None);
    let member = &g.doc["members"][0];
    assert_eq!(
        (member["type"].as_str(), member["display"].as_str()),
        (Some("User"), Some("bjensen"))
    );
    assert_eq!(member["$ref"], format!("{BASE}/Users/{user}"));
    let u = call(&store, Method::Get, &format!("/Users/{user}"), None);
    let groups = u.doc["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(
        (groups[0]["value"].as_str(), groups[0]["type"].as_str()),
        (Some(inner.as_str()), Some("direct"))
    );
    assert_eq!(
        (groups[1]["value"].as_str(), groups[1]["type"].as_str()),
        (Some(outer.as_str()), Some("indirect"))
    );
    assert_eq!(groups[1]["display"], "Staff");
}

#[test]
fn deleting_a_user_removes_it_from_its_groups() {
    let store = MemoryStore::new();
    let user = post_user(&store, "leaver");
    let group = post_group(&store, "Team", &[&user]);
    call(&store, Method::Delete, &format!("/Users/{user}"), None);
    let g = call(&store, Method::Get, &format!("/Groups/{group}"), None);
    assert!(g.doc.get("members").is_none());
    assert_eq!(g.doc["meta"]["version"], "W/\"2\"");
}

#[test]
fn groups_read_only_on_users_cannot_be_written() {
    let store = MemoryStore::new();
    let body = json!({"schemas": [urn::USER], "userName": "a", "groups": [{"value": "x"}]});
    let a = call(&store, Method::Post, "/Users", Some(body));
    assert_eq!(a.status, 201);
    assert!(a.doc.get("groups").is_none());
}

#[test]
fn members_are_deduplicated_and_unknown_ones_kept_as_sent() {
    let store = MemoryStore::new();
    let user = post_user(&store, "m");
    let elsewhere =
        json!({"value": "ext-1", "$ref": "https://other.example/Users/ext-1", "type": "User"});
    let body = json!({"schemas": [urn::GROUP], "displayName": "G",
                      "members": [{"value": user}, {"value": user, "display": "dup"}, elsewhere]});
    let a = call(&store, Method::Post, "/Groups", Some(body));
    let members = a.doc["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["$ref"], format!("{BASE}/Users/{user}"));
    assert_eq!(members[1], elsewhere);
    let no_value =
        json!({"schemas": [urn::GROUP], "displayName": "G", "members": [{"display": "x"}]});
    assert_error(
        &call(&store, Method::Post, "/Groups", Some(no_value)),
        400,
        Some("invalidValue"),
    );
}
