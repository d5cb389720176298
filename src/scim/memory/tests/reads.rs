//! Reads: lists, searches, projection, discovery, and requests the store refuses.

use serde_json::json;

use super::*;
use crate::scim::urn;

#[test]
fn lists_page_in_creation_order_and_count_everything() {
    let store = MemoryStore::new();
    let ids: Vec<String> = (0..5)
        .map(|i| post_user(&store, &format!("u{i}")))
        .collect();
    let a = call(&store, Method::Get, "/Users?startIndex=2&count=2", None);
    assert_eq!(a.status, 200);
    assert_eq!(a.doc["schemas"][0], urn::LIST_RESPONSE);
    assert_eq!(
        (
            a.doc["totalResults"].as_u64(),
            a.doc["itemsPerPage"].as_u64()
        ),
        (Some(5), Some(2))
    );
    assert_eq!(a.doc["startIndex"], 2);
    let got: Vec<&str> = a.doc["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(got, [ids[1].as_str(), ids[2].as_str()]);
    let none = call(&store, Method::Get, "/Users?count=0", None);
    assert_eq!(
        (
            none.doc["totalResults"].as_u64(),
            none.doc["Resources"].clone()
        ),
        (Some(5), json!([]))
    );
}

#[test]
fn empty_lists_still_carry_resources() {
    let a = call(&MemoryStore::new(), Method::Get, "/Groups", None);
    assert_eq!(
        (a.doc["totalResults"].as_u64(), a.doc["Resources"].clone()),
        (Some(0), json!([]))
    );
}

#[test]
fn non_integer_paging_is_invalid_value() {
    let store = MemoryStore::new();
    assert_error(
        &call(&store, Method::Get, "/Users?count=many", None),
        400,
        Some("invalidValue"),
    );
}

#[test]
fn search_by_post_and_root_queries_span_types() {
    let store = MemoryStore::new();
    post_user(&store, "a");
    post_group(&store, "g", &[]);
    let body = json!({"schemas": [urn::SEARCH_REQUEST], "attributes": ["userName"], "count": 10});
    let a = call(&store, Method::Post, "/Users/.search", Some(body.clone()));
    assert_eq!((a.status, a.doc["totalResults"].as_u64()), (200, Some(1)));
    assert!(
        a.doc["Resources"][0].get("meta").is_none(),
        "attributes applied"
    );
    assert_eq!(
        call(&store, Method::Post, "/.search", Some(body)).doc["totalResults"],
        2
    );
    assert_eq!(call(&store, Method::Get, "/", None).doc["totalResults"], 2);
    assert_error(
        &call(&store, Method::Post, "/.search", Some(json!({"count": 1}))),
        400,
        Some("invalidSyntax"),
    );
}

#[test]
fn attributes_and_excluded_attributes_shape_single_resources() {
    let store = MemoryStore::new();
    let id = call(&store, Method::Post, "/Users", Some(enterprise_user())).doc["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let a = call(
        &store,
        Method::Get,
        &format!("/Users/{id}?attributes=name.givenName,emails"),
        None,
    );
    assert_eq!(a.doc["name"], json!({"givenName": "Barbara"}));
    assert!(a.doc.get("emails").is_some() && a.doc.get("userName").is_none());
    assert_eq!(a.doc["id"], id.as_str());
    let b = call(
        &store,
        Method::Get,
        &format!("/Users/{id}?excludedAttributes=emails,id"),
        None,
    );
    assert!(b.doc.get("emails").is_none() && b.doc.get("id").is_some());
}

#[test]
fn unsupported_operations_wrong_methods_and_paths() {
    let store = MemoryStore::new();
    let id = post_user(&store, "a");
    assert_error(
        &call(&store, Method::Post, "/Bulk", Some(json!({}))),
        501,
        None,
    );
    assert_error(&call(&store, Method::Get, "/Me", None), 501, None);
    assert_error(&call(&store, Method::Delete, "/Users", None), 405, None);
    assert_error(
        &call(&store, Method::Post, &format!("/Users/{id}"), None),
        405,
        None,
    );
    assert_error(
        &call(&store, Method::Put, "/ServiceProviderConfig", None),
        405,
        None,
    );
    assert_error(&call(&store, Method::Get, "/Devices", None), 404, None);
}

#[test]
fn discovery_describes_the_store() {
    let store = MemoryStore::new();
    let spc = call(&store, Method::Get, "/ServiceProviderConfig", None);
    assert_eq!(spc.status, 200);
    for capability in ["patch", "filter", "sort"] {
        assert_eq!(spc.doc[capability]["supported"], true, "{capability}");
    }
    assert_eq!(spc.doc["filter"]["maxResults"], MAX_COUNT);
    assert_eq!(spc.doc["bulk"]["supported"], false);
    assert_eq!(spc.doc["changePassword"]["supported"], true);
    assert_eq!(
        spc.doc["meta"]["location"],
        format!("{BASE}/ServiceProviderConfig")
    );
    let schemas = call(&store, Method::Get, "/Schemas", None);
    assert_eq!(schemas.doc["totalResults"], 6);
    let user = call(
        &store,
        Method::Get,
        &format!("/Schemas/{}", urn::USER),
        None,
    );
    assert_eq!(user.doc["name"], "User");
    assert_eq!(
        call(&store, Method::Get, "/ResourceTypes", None).doc["totalResults"],
        2
    );
    assert_eq!(
        call(&store, Method::Get, "/ResourceTypes/Group", None).doc["endpoint"],
        "/Groups"
    );
    assert_error(
        &call(&store, Method::Get, "/ResourceTypes/Device", None),
        404,
        None,
    );
    assert_error(
        &call(&store, Method::Get, "/Schemas/urn:nope", None),
        404,
        None,
    );
    assert_error(
        &call(&store, Method::Get, "/Schemas?filter=id%20pr", None),
        403,
        None,
    );
}
