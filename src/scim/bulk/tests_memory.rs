//! The engine driven with the in-memory store as its service provider: what the store ends up
//! holding is what the BulkRequest meant.

use serde_json::{json, Value};

use super::tests::{run_with, BASE};
use super::*;
use crate::scim::memory::{MemoryStore, StoreRequest};

fn perform(store: &MemoryStore, op: &PlannedOp) -> OpOutcome {
    let response = store.handle(&StoreRequest {
        method: op.method,
        path: &op.path,
        query: None,
        body: op.data.as_deref().unwrap_or_default(),
        base_url: BASE,
        if_match: op.version.as_deref(),
        if_none_match: None,
    });
    OpOutcome {
        status: response.status,
        location: response.location,
        etag: response.etag,
        body: response.body,
    }
}

fn get(store: &MemoryStore, path: &str) -> Value {
    let op = PlannedOp {
        method: Method::Get,
        path: path.to_owned(),
        data: None,
        version: None,
        bulk_id: None,
    };
    let outcome = perform(store, &op);
    assert_eq!(outcome.status, 200, "GET {path}");
    serde_json::from_slice(&outcome.body).expect("JSON")
}

#[test]
fn users_and_groups_created_in_one_request_refer_to_each_other_in_the_store() {
    let store = MemoryStore::new();
    let request = json!({
        "schemas": [urn::BULK_REQUEST],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "qwerty",
             "data": {"schemas": [urn::USER], "userName": "Alice"}},
            {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
             "data": {"schemas": [urn::GROUP], "displayName": "Tour Guides",
                      "members": [{"type": "User", "value": "bulkId:qwerty"}]}},
            {"method": "PUT", "path": "/Users/bulkId:qwerty",
             "data": {"schemas": [urn::USER], "userName": "Alice", "active": false}},
            {"method": "DELETE", "path": "/Users/no-such-user"},
        ]
    });
    let (_, response) = run_with(&request, |op| perform(&store, op));
    let ops = response["Operations"].as_array().expect("Operations");
    let statuses: Vec<&str> = ops.iter().filter_map(|o| o["status"].as_str()).collect();
    assert_eq!(statuses, ["201", "201", "200", "404"]);

    let alice = get(&store, "/Users");
    let alice = &alice["Resources"][0];
    let alice_id = alice["id"].as_str().expect("id");
    assert_eq!(
        alice["active"], false,
        "the PUT reached the user the POST created"
    );
    assert_eq!(ops[0]["location"], format!("{BASE}/Users/{alice_id}"));
    // The PUT changed the user after the POST, so each reports the version it left.
    assert_eq!(ops[2]["version"], alice["meta"]["version"]);
    assert_ne!(ops[0]["version"], ops[2]["version"]);
    assert_eq!(ops[2]["location"], format!("{BASE}/Users/{alice_id}"));

    let group_path = ops[1]["location"].as_str().expect("location");
    let group_path = group_path.strip_prefix(BASE).expect("under the base");
    let group = get(&store, group_path);
    assert_eq!(group["members"][0]["value"], alice_id);
    assert_eq!(ops[3]["response"]["schemas"][0], urn::ERROR);
    assert_eq!(ops[3]["location"], format!("{BASE}/Users/no-such-user"));
}

#[test]
fn a_uniqueness_conflict_stops_the_run_at_fail_on_errors() {
    let store = MemoryStore::new();
    let user = |bulk_id: &str| {
        json!({"method": "POST", "path": "/Users", "bulkId": bulk_id,
               "data": {"schemas": [urn::USER], "userName": "bjensen"}})
    };
    let request = json!({
        "schemas": [urn::BULK_REQUEST], "failOnErrors": 1,
        "Operations": [user("a"), user("b"), user("c")],
    });
    let (asked, response) = run_with(&request, |op| perform(&store, op));
    assert_eq!(asked.len(), 2);
    let ops = response["Operations"].as_array().expect("Operations");
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[1]["status"], "409");
    assert_eq!(ops[1]["response"]["scimType"], "uniqueness");
    assert!(ops[1].get("location").is_none());
}
