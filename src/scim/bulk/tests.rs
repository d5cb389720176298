//! The examples of RFC 7644 §3.7.1 – §3.7.4, run against a scripted service provider: each
//! test says what every operation answers and checks what the engine asked and reported.

use std::collections::VecDeque;

use serde_json::{json, Value};

use super::*;
use crate::scim::error::ScimType;

pub(super) const BASE: &str = "https://example.com/v2";
pub(super) const LIMITS: BulkLimits = BulkLimits {
    max_operations: 1000,
    max_payload_bytes: 1_048_576,
};

/// Runs `request` to its end, answering every operation with `exec`; returns the operations
/// the engine asked for and the BulkResponse.
pub(super) fn run_with(
    request: &Value,
    mut exec: impl FnMut(&PlannedOp) -> OpOutcome,
) -> (Vec<PlannedOp>, Value) {
    let body = request.to_string();
    let mut run = BulkRun::new(body.as_bytes(), &LIMITS)
        .expect("a valid BulkRequest")
        .with_base_url(BASE);
    let mut asked = Vec::new();
    while let Some(op) = run.next() {
        let outcome = exec(&op);
        asked.push(op);
        run.record(outcome);
    }
    let response = serde_json::from_slice(&run.response()).expect("the response is JSON");
    (asked, response)
}

/// Answers the operations with `outcomes`, in order.
fn scripted(outcomes: Vec<OpOutcome>) -> impl FnMut(&PlannedOp) -> OpOutcome {
    let mut outcomes = VecDeque::from(outcomes);
    move |_| {
        outcomes
            .pop_front()
            .expect("no more operations than scripted")
    }
}

fn created(endpoint: &str, id: &str, version: &str) -> OpOutcome {
    OpOutcome {
        status: 201,
        location: Some(format!("{BASE}{endpoint}/{id}")),
        etag: Some(version.to_owned()),
        body: json!({"id": id}).to_string().into_bytes(),
    }
}

fn done(status: u16, version: Option<&str>) -> OpOutcome {
    OpOutcome {
        status,
        etag: version.map(str::to_owned),
        ..OpOutcome::default()
    }
}

fn failed(error: &ScimError) -> OpOutcome {
    OpOutcome {
        status: error.status,
        body: error.to_json(),
        ..OpOutcome::default()
    }
}

fn data(op: &PlannedOp) -> Value {
    serde_json::from_slice(op.data.as_deref().expect("data")).expect("JSON data")
}

fn new_error(body: &[u8], limits: &BulkLimits) -> ScimError {
    BulkRun::new(body, limits).expect_err("the request is refused")
}

const ALICE: &str = "92b725cd-9465-4e7d-8c16-01f8e146b87a";
const BOB: &str = "b7c14771-226c-4d05-8860-134711653041";
const DAVE: &str = "5d8d29d3-342c-4b5f-8683-a3cb6763ffcc";
const GONE: &str = "e9025315-6bea-44e1-899c-1e07454e468b";

/// RFC 7644 §3.7.3: add, update, patch and remove users.
fn add_update_remove(fail_on_errors: Option<u64>) -> Value {
    let mut request = json!({
        "schemas": [urn::BULK_REQUEST],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "qwerty",
             "data": {"schemas": [urn::USER], "userName": "Alice"}},
            {"method": "PUT", "path": format!("/Users/{BOB}"), "version": "W/\"3694e05e9dff591\"",
             "data": {"schemas": [urn::USER], "id": BOB, "userName": "Bob"}},
            {"method": "PATCH", "path": format!("/Users/{DAVE}"), "version": "W/\"edac3253e2c0ef2\"",
             "data": {"schemas": [urn::PATCH_OP], "Operations": [
                 {"op": "remove", "path": "nickName"},
                 {"op": "replace", "path": "userName", "value": "Dave"}]}},
            {"method": "DELETE", "path": format!("/Users/{GONE}"), "version": "W/\"0ee8add0a938e1a\""},
        ]
    });
    if let Some(n) = fail_on_errors {
        request["failOnErrors"] = json!(n);
    }
    request
}

#[test]
fn rfc_3_7_3_all_operations_succeed() {
    let (asked, response) = run_with(
        &add_update_remove(Some(1)),
        scripted(vec![
            created("/Users", ALICE, "W/\"oY4m4wn58tkVjJxK\""),
            done(200, Some("W/\"huJj29dMNgu3WXPD\"")),
            done(200, Some("W/\"huJj29dMNgu3WXPD\"")),
            done(204, None),
        ]),
    );
    assert_eq!(asked[1].version.as_deref(), Some("W/\"3694e05e9dff591\""));
    assert_eq!(asked[3].method, Method::Delete);
    assert_eq!(asked[3].data, None);
    assert_eq!(
        response,
        json!({
            "schemas": [urn::BULK_RESPONSE],
            "Operations": [
                {"location": format!("{BASE}/Users/{ALICE}"), "method": "POST",
                 "bulkId": "qwerty", "version": "W/\"oY4m4wn58tkVjJxK\"", "status": "201"},
                {"location": format!("{BASE}/Users/{BOB}"), "method": "PUT",
                 "version": "W/\"huJj29dMNgu3WXPD\"", "status": "200"},
                {"location": format!("{BASE}/Users/{DAVE}"), "method": "PATCH",
                 "version": "W/\"huJj29dMNgu3WXPD\"", "status": "200"},
                {"location": format!("{BASE}/Users/{GONE}"), "method": "DELETE", "status": "204"},
            ]
        })
    );
}

fn unparsable() -> ScimError {
    ScimError::with_type(
        400,
        ScimType::InvalidSyntax,
        "Request is unparsable, syntactically incorrect, or violates schema.",
    )
}

#[test]
fn rfc_3_7_3_fail_on_errors_stops_after_the_first_error() {
    let (asked, response) = run_with(
        &add_update_remove(Some(1)),
        scripted(vec![failed(&unparsable())]),
    );
    assert_eq!(asked.len(), 1, "the remaining operations are not performed");
    assert_eq!(
        response["Operations"],
        json!([{"method": "POST", "bulkId": "qwerty", "status": "400",
                "response": serde_json::from_slice::<Value>(&unparsable().to_json()).expect("json")}])
    );
}

#[test]
fn rfc_3_7_3_without_fail_on_errors_every_operation_runs_and_fails() {
    let changed = ScimError::new(412, "Failed to update.  Resource changed on the server.");
    let missing = ScimError::new(404, "Resource does not exist.");
    let (asked, response) = run_with(
        &add_update_remove(None),
        scripted(vec![
            failed(&unparsable()),
            failed(&changed),
            failed(&changed),
            failed(&missing),
        ]),
    );
    assert_eq!(asked.len(), 4);
    let ops = response["Operations"].as_array().expect("Operations");
    let statuses: Vec<&str> = ops.iter().filter_map(|o| o["status"].as_str()).collect();
    assert_eq!(statuses, ["400", "412", "412", "404"]);
    // A failed POST has no location; every other operation keeps its own (§3.7.3).
    assert!(ops[0].get("location").is_none());
    assert_eq!(ops[1]["location"], format!("{BASE}/Users/{BOB}"));
    assert_eq!(ops[3]["location"], format!("{BASE}/Users/{GONE}"));
    assert_eq!(ops[2]["response"]["detail"], changed.detail);
    assert_eq!(ops[3]["response"]["status"], "404");
    assert!(ops.iter().all(|o| o.get("version").is_none()));
}

/// RFC 7644 §3.7.2: a new user, and a new group holding it.
#[test]
fn rfc_3_7_2_a_group_member_refers_to_the_user_created_before() {
    let group = "e9e30dba-f08f-4109-8486-d5c6a331660a";
    let request = json!({
        "schemas": [urn::BULK_REQUEST],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "qwerty",
             "data": {"schemas": [urn::USER], "userName": "Alice"}},
            {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
             "data": {"schemas": [urn::GROUP], "displayName": "Tour Guides",
                      "members": [{"type": "User", "value": "bulkId:qwerty"}]}},
        ]
    });
    let (asked, response) = run_with(
        &request,
        scripted(vec![
            created("/Users", ALICE, "W/\"4weymY1I1K5Ne7XE\""),
            created("/Groups", group, "W/\"lha5bbazU3fNvfe5\""),
        ]),
    );
    assert_eq!(data(&asked[1])["members"][0]["value"], ALICE);
    assert_eq!(
        response["Operations"],
        json!([
            {"location": format!("{BASE}/Users/{ALICE}"), "method": "POST",
             "bulkId": "qwerty", "version": "W/\"4weymY1I1K5Ne7XE\"", "status": "201"},
            {"location": format!("{BASE}/Groups/{group}"), "method": "POST",
             "bulkId": "ytrewq", "version": "W/\"lha5bbazU3fNvfe5\"", "status": "201"},
        ])
    );
}

/// RFC 7644 §3.7.2: a reference inside an extension (the enterprise manager).
#[test]
fn rfc_3_7_2_a_reference_inside_an_extension_is_replaced() {
    let request = json!({
        "schemas": [urn::BULK_REQUEST],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "qwerty",
             "data": {"schemas": [urn::USER], "userName": "Alice"}},
            {"method": "POST", "path": "/Users", "bulkId": "ytrewq",
             "data": {"schemas": [urn::USER, urn::ENTERPRISE_USER], "userName": "Bob",
                      urn::ENTERPRISE_USER: {"employeeNumber": "11250",
                                             "manager": {"value": "bulkId:qwerty"}}}},
        ]
    });
    let (asked, _) = run_with(
        &request,
        scripted(vec![
            created("/Users", ALICE, "W/\"1\""),
            created("/Users", BOB, "W/\"2\""),
        ]),
    );
    assert_eq!(
        data(&asked[1])[urn::ENTERPRISE_USER]["manager"]["value"],
        ALICE
    );
}

/// RFC 7644 §3.7.1: groups that are members of each other. The RFC lets a service provider
/// answer 409 instead of resolving the cycle, which this engine does, performing neither.
#[test]
fn rfc_3_7_1_circular_references_fail_with_409_and_run_nothing() {
    let request = json!({
        "schemas": [urn::BULK_REQUEST],
        "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "qwerty",
             "data": {"schemas": [urn::GROUP], "displayName": "Group A",
                      "members": [{"type": "Group", "value": "bulkId:ytrewq"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
             "data": {"schemas": [urn::GROUP], "displayName": "Group B",
                      "members": [{"type": "Group", "value": "bulkId:qwerty"}]}},
        ]
    });
    let (asked, response) = run_with(&request, |_| panic!("nothing should run"));
    assert!(asked.is_empty());
    for op in response["Operations"].as_array().expect("Operations") {
        assert_eq!(op["status"], "409");
        assert_eq!(op["response"]["scimType"], "invalidValue");
        assert!(
            op.get("location").is_none(),
            "a failed POST has no location"
        );
    }
    let first = &response["Operations"][0]["response"]["detail"];
    assert!(
        first.as_str().is_some_and(|d| d.contains("later")),
        "{first}"
    );
}

#[test]
fn rfc_3_7_4_a_payload_over_the_limit_is_413_naming_it() {
    let padding = "x".repeat(LIMITS.max_payload_bytes);
    let body = json!({"schemas": [urn::BULK_REQUEST], "Operations": [], "pad": padding});
    let e = new_error(body.to_string().as_bytes(), &LIMITS);
    assert_eq!(e.status, 413);
    assert_eq!(e.scim_type, None);
    assert_eq!(
        e.detail,
        "The size of the bulk operation exceeds the maxPayloadSize (1048576)."
    );
}

#[test]
fn rfc_3_7_4_too_many_operations_is_413_naming_the_limit() {
    let op = json!({"method": "DELETE", "path": "/Users/a"});
    let body = json!({"schemas": [urn::BULK_REQUEST], "Operations": [op, op, op]});
    let limits = BulkLimits {
        max_operations: 2,
        ..LIMITS
    };
    let e = new_error(body.to_string().as_bytes(), &limits);
    assert_eq!(e.status, 413);
    assert!(e.detail.contains("maxOperations (2)"), "{}", e.detail);
}
