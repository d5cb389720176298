//! PATCH through the store: the examples of RFC 7644 §3.5.2.1-§3.5.2.3, the result held to
//! the rules of a PUT, versions, derived group memberships and bad requests.

use serde_json::{json, Value};

use super::*;
use crate::scim::urn;

/// The member ids of RFC 7644 §3.5.2's examples.
const BABS: &str = "2819c223-7f76-453a-919d-413861904646";
const JAMES: &str = "08e1d05d-121c-4561-8b96-473d93df9210";
const OTHER: &str = "9067729b3d-ee533c-40d4-a70c-43bdcd4ec2";

fn patch_op(ops: Value) -> Value {
    json!({"schemas": [urn::PATCH_OP], "Operations": ops})
}

fn patch(store: &MemoryStore, target: &str, ops: Value) -> Answer {
    call(store, Method::Patch, target, Some(patch_op(ops)))
}

fn ok(a: Answer) -> Value {
    assert_eq!(a.status, 200, "{}", a.doc);
    a.doc
}

fn members(doc: &Value) -> Vec<&str> {
    doc["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str())
        .collect()
}

fn babs(store: &MemoryStore) -> String {
    let a = call(store, Method::Post, "/Users", Some(enterprise_user()));
    assert_eq!(a.status, 201, "{}", a.doc);
    a.doc["id"].as_str().expect("id").to_owned()
}

#[test]
fn rfc_add_member_then_remove_it_keeps_the_users_groups_right() {
    // RFC 7644 §3.5.2.1, first example, with the store's own id for Babs.
    let store = MemoryStore::new();
    let user = babs(&store);
    let group = post_group(&store, "Tour Guides", &[]);
    let add = json!([{"op": "add", "path": "members", "value": [{"display": "Babs Jensen",
        "$ref": format!("https://example.com/v2/Users/{user}"), "value": user}]}]);
    let doc = ok(patch(&store, &format!("/Groups/{group}"), add));
    assert_eq!(members(&doc), [user.as_str()]);
    assert_eq!(doc["members"][0]["$ref"], format!("{BASE}/Users/{user}"));
    assert_eq!(doc["meta"]["version"], "W/\"2\"");
    let u = call(&store, Method::Get, &format!("/Users/{user}"), None).doc;
    assert_eq!(u["groups"][0]["value"], group.as_str());
    assert_eq!(u["groups"][0]["display"], "Tour Guides");

    // RFC 7644 §3.5.2.2: remove one member by a value filter.
    let remove = json!([{"op": "remove", "path": format!("members[value eq \"{user}\"]")}]);
    let doc = ok(patch(&store, &format!("/Groups/{group}"), remove));
    assert!(doc.get("members").is_none(), "{doc}");
    let u = call(&store, Method::Get, &format!("/Users/{user}"), None).doc;
    assert!(u.get("groups").is_none(), "{u}");
}

#[test]
fn rfc_add_without_path_merges_attributes() {
    // RFC 7644 §3.5.2.1: "nickname" in any case names nickName.
    let store = MemoryStore::new();
    let id = post_user(&store, "bjensen");
    let ops = json!([{"op": "add", "value": {
        "emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}}]);
    let doc = ok(patch(&store, &format!("/Users/{id}"), ops));
    assert_eq!(doc["nickName"], "Babs");
    assert_eq!(
        doc["emails"],
        json!([{"value": "babs@jensen.org", "type": "home"}])
    );
    assert_eq!(doc["userName"], "bjensen");
}

#[test]
fn rfc_remove_examples() {
    let store = MemoryStore::new();
    let group = post_group(&store, "G", &[BABS, JAMES, OTHER]);
    let target = format!("/Groups/{group}");
    // Remove one member and add another in one request (RFC 7644 §3.5.2.2).
    let ops = json!([
        {"op": "remove", "path": format!("members[value eq \"{BABS}\"]")},
        {"op": "add", "path": "members", "value": [{"display": "Babs Jensen", "value": "new-one"}]}
    ]);
    assert_eq!(
        members(&ok(patch(&store, &target, ops))),
        [JAMES, OTHER, "new-one"]
    );
    // Remove all members, then replace them with a new set.
    let ops = json!([
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": BABS}, {"value": OTHER}]}
    ]);
    assert_eq!(members(&ok(patch(&store, &target, ops))), [BABS, OTHER]);
    let doc = ok(patch(
        &store,
        &target,
        json!([{"op": "remove", "path": "members"}]),
    ));
    assert!(doc.get("members").is_none());

    // Remove values of a multi-valued attribute selected by a filter.
    let user = babs(&store);
    let ops =
        json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]);
    let doc = ok(patch(&store, &format!("/Users/{user}"), ops));
    assert_eq!(
        doc["emails"],
        json!([{"value": "babs@jensen.org", "type": "home"}])
    );
    // Remove an extension attribute by its URN-qualified path.
    let path = format!("{}:manager", urn::ENTERPRISE_USER);
    let doc = ok(patch(
        &store,
        &format!("/Users/{user}"),
        json!([{"op": "remove", "path": path}]),
    ));
    assert!(doc[urn::ENTERPRISE_USER].get("manager").is_none());
    assert_eq!(doc[urn::ENTERPRISE_USER]["employeeNumber"], "701984");
}

#[test]
fn rfc_replace_examples() {
    let store = MemoryStore::new();
    let group = post_group(&store, "G", &[OTHER]);
    // RFC 7644 §3.5.2.3: replace all members.
    let ops = json!([{"op": "replace", "path": "members", "value": [
        {"display": "Babs Jensen", "$ref": format!("https://example.com/v2/Users/{BABS}"), "value": BABS},
        {"display": "James Smith", "$ref": format!("https://example.com/v2/Users/{JAMES}"), "value": JAMES}]}]);
    let doc = ok(patch(&store, &format!("/Groups/{group}"), ops));
    assert_eq!(members(&doc), [BABS, JAMES]);
    assert_eq!(doc["members"][1]["display"], "James Smith");

    let user = babs(&store);
    let target = format!("/Users/{user}");
    // Replace one value of a multi-valued complex attribute, selected by a filter.
    let ops = json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": {
        "type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood",
        "region": "CA", "postalCode": "91608", "country": "US",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US", "primary": true}}]);
    let doc = ok(patch(&store, &target, ops));
    assert_eq!(
        doc["addresses"][0]["streetAddress"],
        "911 Universal City Plaza"
    );
    assert_eq!(doc["addresses"].as_array().map(Vec::len), Some(1));
    // Replace one sub-attribute of that value.
    let ops = json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress",
                      "value": "1010 Broadway Ave"}]);
    let doc = ok(patch(&store, &target, ops));
    assert_eq!(doc["addresses"][0]["streetAddress"], "1010 Broadway Ave");
    assert_eq!(doc["addresses"][0]["locality"], "Hollywood");
    // Replace several attributes without a path.
    let ops = json!([{"op": "replace", "value": {"emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": true},
        {"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}}]);
    let doc = ok(patch(&store, &target, ops));
    assert_eq!(doc["emails"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["nickName"], "Babs");
}

#[test]
fn version_moves_only_when_something_changed() {
    let store = MemoryStore::new();
    let id = post_user(&store, "bjensen");
    let target = format!("/Users/{id}");
    let set = json!([{"op": "replace", "path": "title", "value": "Tour Guide"}]);
    let first = ok(patch(&store, &target, set.clone()));
    assert_eq!(first["meta"]["version"], "W/\"2\"");
    let again = patch(&store, &target, set);
    assert_eq!(again.etag.as_deref(), Some("W/\"2\""));
    assert_eq!(again.doc["meta"], first["meta"]);
    // Echoing readOnly values unchanged is no change either (Okta resends `id`).
    let echo = json!([{"op": "replace", "value": {"id": id, "userName": "BJENSEN"}}]);
    assert_eq!(
        ok(patch(&store, &target, echo))["meta"]["version"],
        "W/\"3\""
    );
}

#[test]
fn renaming_a_group_by_patch_renames_it_in_its_members_groups() {
    let store = MemoryStore::new();
    let user = post_user(&store, "a");
    let group = post_group(&store, "Old", &[&user]);
    let ops = json!([{"op": "replace", "path": "displayName", "value": "New"}]);
    ok(patch(&store, &format!("/Groups/{group}"), ops));
    let u = call(&store, Method::Get, &format!("/Users/{user}"), None).doc;
    assert_eq!(u["groups"][0]["display"], "New");
}

#[test]
fn extension_attributes_added_by_patch_declare_their_schema() {
    let store = MemoryStore::new();
    let id = post_user(&store, "a");
    let path = format!("{}:employeeNumber", urn::ENTERPRISE_USER);
    let doc = ok(patch(
        &store,
        &format!("/Users/{id}"),
        json!([{"op": "add", "path": path, "value": "42"}]),
    ));
    assert_eq!(doc[urn::ENTERPRISE_USER]["employeeNumber"], "42");
    assert_eq!(doc["schemas"], json!([urn::USER, urn::ENTERPRISE_USER]));
    let doc = ok(patch(
        &store,
        &format!("/Users/{id}"),
        json!([{"op": "remove", "path": path}]),
    ));
    assert_eq!(doc["schemas"], json!([urn::USER]));
    assert!(doc.get(urn::ENTERPRISE_USER).is_none());
    // The whole extension as one value, describing itself the way scim2-models sends it.
    let value = json!({"schemas": [urn::ENTERPRISE_USER], "costCenter": "4130"});
    let doc = ok(patch(
        &store,
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": urn::ENTERPRISE_USER, "value": value}]),
    ));
    assert_eq!(doc[urn::ENTERPRISE_USER], json!({"costCenter": "4130"}));
}

#[test]
fn write_only_password_survives_other_patches_and_can_be_replaced() {
    let store = MemoryStore::new();
    let id = babs(&store);
    let target = format!("/Users/{id}");
    let stored_password = |store: &MemoryStore| {
        let tables = store.read();
        tables
            .users
            .get(&id)
            .and_then(|s| s.attrs.get("password").cloned())
    };
    ok(patch(
        &store,
        &target,
        json!([{"op": "replace", "path": "title", "value": "x"}]),
    ));
    assert_eq!(stored_password(&store), Some(json!("t1meMa$heen")));
    let doc = ok(patch(
        &store,
        &target,
        json!([{"op": "replace", "path": "password", "value": "n3w"}]),
    ));
    assert!(doc.get("password").is_none());
    assert_eq!(stored_password(&store), Some(json!("n3w")));
}

#[test]
fn attributes_parameter_shapes_the_patch_answer() {
    let store = MemoryStore::new();
    let id = post_user(&store, "a");
    let ops = json!([{"op": "add", "path": "title", "value": "t"}]);
    let a = call(
        &store,
        Method::Patch,
        &format!("/Users/{id}?attributes=title"),
        Some(patch_op(ops)),
    );
    let keys: Vec<&String> = a.doc.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["id", "schemas", "title"]);
    assert_eq!(a.etag.as_deref(), Some("W/\"2\""));
}

#[test]
fn a_patch_cannot_make_an_invalid_resource_and_failures_change_nothing() {
    let store = MemoryStore::new();
    let id = post_user(&store, "bjensen");
    let other = post_user(&store, "other");
    let target = format!("/Users/{id}");
    let cases = [
        (
            json!([{"op": "replace", "path": "userName", "value": "  "}]),
            400,
            "invalidValue",
        ),
        (
            json!([{"op": "add", "path": "shoeSize", "value": 44}]),
            400,
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "yes"}]),
            400,
            "invalidValue",
        ),
        (
            json!([{"op": "add", "path": "emails", "value": [
            {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]}]),
            400,
            "invalidValue",
        ),
        (
            json!([{"op": "remove", "path": "userName"}]),
            400,
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "id", "value": "mine"}]),
            400,
            "mutability",
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": other}]}]),
            400,
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": "OTHER"}]),
            409,
            "uniqueness",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x"}]),
            400,
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq]", "value": "x"}]),
            400,
            "invalidPath",
        ),
        // All or nothing: the first operation is valid, the second is not.
        (
            json!([{"op": "replace", "path": "title", "value": "t"},
                {"op": "remove", "path": "userName"}]),
            400,
            "mutability",
        ),
    ];
    for (ops, status, scim_type) in cases {
        let a = patch(&store, &target, ops.clone());
        assert_error(&a, status, Some(scim_type));
        let now = call(&store, Method::Get, &target, None);
        assert_eq!(
            (now.doc["meta"]["version"].as_str(), now.doc.get("title")),
            (Some("W/\"1\""), None),
            "{ops}"
        );
    }
}

#[test]
fn group_patches_are_held_to_group_rules() {
    let store = MemoryStore::new();
    let group = post_group(&store, "G", &["m1"]);
    let target = format!("/Groups/{group}");
    let a = patch(
        &store,
        &target,
        json!([{"op": "remove", "path": "displayName"}]),
    );
    assert_error(&a, 400, Some("mutability"));
    let a = patch(
        &store,
        &target,
        json!([{"op": "add", "path": "members", "value": [{"display": "no value"}]}]),
    );
    assert_error(&a, 400, Some("invalidValue"));
    // members.value is immutable: a member cannot be turned into another one.
    let a = patch(
        &store,
        &target,
        json!([{"op": "replace", "path": "members[value eq \"m1\"].value", "value": "m2"}]),
    );
    assert_error(&a, 400, Some("mutability"));
    // Adding a member twice keeps one.
    let twice =
        json!([{"op": "add", "path": "members", "value": [{"value": "m1"}, {"value": "m1"}]}]);
    assert_eq!(members(&ok(patch(&store, &target, twice))), ["m1"]);
}

#[test]
fn bad_patch_requests() {
    let store = MemoryStore::new();
    let id = post_user(&store, "a");
    let target = format!("/Users/{id}");
    let ops = json!([{"op": "add", "path": "title", "value": "t"}]);
    assert_error(&patch(&store, "/Users/nope", ops.clone()), 404, None);
    let no_schema = json!({"Operations": ops});
    let a = call(&store, Method::Patch, &target, Some(no_schema));
    assert_error(&a, 400, Some("invalidSyntax"));
    let a = call(&store, Method::Patch, &target, Some(patch_op(json!([]))));
    assert_error(&a, 400, Some("invalidSyntax"));
    let req = StoreRequest {
        method: Method::Patch,
        path: &target,
        query: None,
        body: b"{not json",
        base_url: BASE,
        if_match: None,
        if_none_match: None,
    };
    let r = store.handle(&req);
    assert_eq!(r.status, 400);
    let a = patch(&store, &target, json!([{"op": "move", "path": "title"}]));
    assert_error(&a, 400, Some("invalidSyntax"));
    let a = patch(&store, &target, json!([{"op": "remove"}]));
    assert_error(&a, 400, Some("noTarget"));
    assert_error(&patch(&store, "/Users", ops), 405, None);
}
