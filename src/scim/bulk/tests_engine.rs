//! The engine beyond the RFC's examples: references to failed or unknown POSTs, references in
//! paths, outcomes without ids or SCIM bodies, the caller's protocol, and refused requests.

use serde_json::{json, Value};

use super::tests::{run_with, BASE, LIMITS};
use super::*;

fn request(ops: Value) -> Value {
    json!({"schemas": [urn::BULK_REQUEST], "Operations": ops})
}

fn post_user(bulk_id: &str) -> Value {
    json!({"method": "POST", "path": "/Users", "bulkId": bulk_id,
           "data": {"schemas": [urn::USER], "userName": bulk_id}})
}

/// A service provider that creates everything, giving POSTs the ids "id-1", "id-2", …
fn creating() -> impl FnMut(&PlannedOp) -> OpOutcome {
    let mut n = 0;
    move |op| {
        n += 1;
        let id = format!("id-{n}");
        OpOutcome {
            status: if op.method == Method::Post { 201 } else { 200 },
            location: Some(format!("{BASE}{}/{id}", op.path)),
            body: json!({"id": id}).to_string().into_bytes(),
            ..OpOutcome::default()
        }
    }
}

fn refusal(body: &Value) -> ScimError {
    BulkRun::new(body.to_string().as_bytes(), &LIMITS).expect_err("refused")
}

#[test]
fn a_reference_to_a_failed_post_fails_without_running_and_counts_as_an_error() {
    let body = json!({
        "schemas": [urn::BULK_REQUEST], "failOnErrors": 2,
        "Operations": [
            post_user("a"),
            {"method": "PUT", "path": "/Users/bulkId:a", "data": {"userName": "x"}},
            post_user("never"),
        ]
    });
    let (asked, response) = run_with(&body, |_| OpOutcome {
        status: 409,
        ..OpOutcome::default()
    });
    assert_eq!(asked.len(), 1, "the PUT never reaches the service provider");
    let ops = response["Operations"].as_array().expect("Operations");
    assert_eq!(
        ops.len(),
        2,
        "failOnErrors 2 stops before the third operation"
    );
    assert_eq!(ops[1]["status"], "409");
    let detail = ops[1]["response"]["detail"].as_str().expect("detail");
    assert!(detail.contains("failed"), "{detail}");
    // The failed POST's answer was not a SCIM Error, so one is made from its status.
    assert_eq!(ops[0]["response"]["schemas"][0], urn::ERROR);
    assert_eq!(ops[0]["response"]["status"], "409");
}

#[test]
fn a_reference_to_no_post_at_all_is_409() {
    let ops = json!([{"method": "DELETE", "path": "/Users/bulkId:ghost"}]);
    let (asked, response) = run_with(&request(ops), creating());
    assert!(asked.is_empty());
    let op = &response["Operations"][0];
    assert_eq!(op["status"], "409");
    assert!(op.get("location").is_none(), "no resource to point at");
    let detail = op["response"]["detail"].as_str().expect("detail");
    assert!(detail.contains("no POST"), "{detail}");
}

#[test]
fn path_references_are_replaced_and_the_id_comes_from_location_without_a_body() {
    let ops = json!([
        post_user("a"),
        {"method": "PATCH", "path": "/Users/bulkId:a/", "version": "W/\"1\"",
         "data": {"schemas": [urn::PATCH_OP], "Operations": []}},
    ]);
    let mut outcomes = vec![
        OpOutcome {
            status: 201,
            location: Some(format!("{BASE}/Users/a%20b")),
            ..OpOutcome::default()
        },
        OpOutcome {
            status: 200,
            ..OpOutcome::default()
        },
    ]
    .into_iter();
    let (asked, response) = run_with(&request(ops), |_| outcomes.next().expect("scripted"));
    assert_eq!(asked[1].path, "/Users/a%20b");
    assert_eq!(
        response["Operations"][1]["location"],
        format!("{BASE}/Users/a%20b")
    );
}

#[test]
fn a_post_answered_without_any_id_leaves_its_references_unresolved() {
    let ops = json!([
        post_user("a"),
        {"method": "DELETE", "path": "/Users/bulkId:a"},
    ]);
    let (asked, response) = run_with(&request(ops), |_| OpOutcome {
        status: 201,
        ..OpOutcome::default()
    });
    assert_eq!(asked.len(), 1);
    assert_eq!(response["Operations"][0]["status"], "201");
    assert_eq!(response["Operations"][1]["status"], "409");
}

#[test]
fn meta_gives_location_and_version_when_headers_do_not() {
    let ops = json!([post_user("a")]);
    let (_, response) = run_with(&request(ops), |_| OpOutcome {
        status: 201,
        body: json!({"id": "7", "meta": {"location": "https://up/Users/7", "version": "W/\"v\""}})
            .to_string()
            .into_bytes(),
        ..OpOutcome::default()
    });
    assert_eq!(response["Operations"][0]["location"], "https://up/Users/7");
    assert_eq!(response["Operations"][0]["version"], "W/\"v\"");
}

#[test]
fn many_references_to_one_post_are_all_replaced() {
    let members: Vec<Value> = (0..5000).map(|_| json!({"value": "bulkId:a"})).collect();
    let ops = json!([
        post_user("a"),
        {"method": "POST", "path": "/Groups", "bulkId": "g",
         "data": {"schemas": [urn::GROUP], "displayName": "all", "members": members}},
    ]);
    let (asked, _) = run_with(&request(ops), creating());
    let data: Value =
        serde_json::from_slice(asked[1].data.as_deref().expect("data")).expect("json");
    let members = data["members"].as_array().expect("members");
    assert!(members.iter().all(|m| m["value"] == "id-1"));
}

#[test]
fn next_repeats_the_operation_in_flight_and_a_stray_record_is_ignored() {
    let body = request(json!([post_user("a"), post_user("b")])).to_string();
    let mut run = BulkRun::new(body.as_bytes(), &LIMITS).expect("valid");
    run.record(OpOutcome::default());
    let first = run.next().expect("first");
    assert_eq!(run.next(), Some(first));
    run.record(OpOutcome {
        status: 201,
        ..OpOutcome::default()
    });
    assert_eq!(run.next().and_then(|op| op.bulk_id).as_deref(), Some("b"));
    let response: Value = serde_json::from_slice(&run.response()).expect("json");
    assert_eq!(response["Operations"].as_array().map(Vec::len), Some(1));
}

#[test]
fn debug_output_leaves_out_data() {
    let ops = json!([{"method": "POST", "path": "/Users", "bulkId": "a",
                      "data": {"userName": "a", "password": "hunter2"}}]);
    let body = request(ops).to_string();
    let mut run = BulkRun::new(body.as_bytes(), &LIMITS).expect("valid");
    let op = run.next().expect("op");
    assert!(!format!("{run:?}{op:?}").contains("hunter2"));
}

#[test]
fn malformed_requests_are_400_and_say_where() {
    let cases = [
        (json!({"Operations": []}), "invalidSyntax", "schemas"),
        (
            json!({"schemas": [urn::BULK_REQUEST]}),
            "invalidSyntax",
            "Operations",
        ),
        (
            request(json!([{"method": "GET", "path": "/Users"}])),
            "invalidValue",
            "GET",
        ),
        (
            request(json!([{"method": "POST", "path": "/Users", "data": {}}])),
            "invalidValue",
            "bulkId",
        ),
        (
            request(json!([{"method": "PUT", "path": "/Users/1"}])),
            "invalidValue",
            "data",
        ),
        (
            request(json!([{"method": "PUT", "path": "/Users", "data": {}}])),
            "invalidValue",
            "one resource",
        ),
        (
            request(json!([{"method": "DELETE", "path": "/Users/.."}])),
            "invalidValue",
            "resource path",
        ),
        (
            request(json!([{"method": "DELETE", "path": "Users/1"}])),
            "invalidValue",
            "start",
        ),
        (
            request(json!([{"method": "DELETE", "path": "/Users/1?x=1"}])),
            "invalidValue",
            "resource path",
        ),
        (
            request(json!([{"method": "POST", "path": "/Bulk", "bulkId": "b", "data": {}}])),
            "invalidValue",
            "/Bulk",
        ),
        (
            request(json!([{"method": "DELETE", "path": 7}])),
            "invalidSyntax",
            "path",
        ),
        (
            request(json!([post_user("a"), post_user("a")])),
            "invalidValue",
            "unique",
        ),
        (
            json!({"schemas": [urn::BULK_REQUEST], "failOnErrors": 0, "Operations": []}),
            "invalidValue",
            "failOnErrors",
        ),
        (json!([urn::BULK_REQUEST]), "invalidSyntax", "object"),
    ];
    for (body, scim_type, needle) in cases {
        let e = refusal(&body);
        assert_eq!(e.status, 400, "{body}");
        assert_eq!(
            e.scim_type.map(|t| t.as_str()),
            Some(scim_type),
            "{body}: {e}"
        );
        assert!(e.detail.contains(needle), "{body}: {e}");
    }
    let e = refusal(&request(
        json!([post_user("a"), {"method": "PATCH", "path": "/Users/1"}]),
    ));
    assert!(e.detail.starts_with("Operations[2]: "), "{e}");
}

#[test]
fn not_json_and_deep_nesting_are_refused_before_building_anything() {
    let e = BulkRun::new(b"{\"schemas\": [", &LIMITS).expect_err("refused");
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let e = BulkRun::new(deep.as_bytes(), &LIMITS).expect_err("refused");
    assert!(e.detail.contains("deeper"), "{e}");
}

#[test]
fn names_and_the_schema_urn_are_matched_ignoring_case_and_methods_too() {
    let body = json!({
        "SCHEMAS": [urn::BULK_REQUEST.to_ascii_lowercase()],
        "operations": [{"Method": "delete", "PATH": "/Users/1", "Version": "W/\"1\""}],
    });
    let (asked, _) = run_with(&body, creating());
    assert_eq!(asked[0].method, Method::Delete);
    assert_eq!(asked[0].version.as_deref(), Some("W/\"1\""));
}

#[test]
fn outcomes_list_performed_and_unperformed_operations_with_their_status() {
    let body = request(json!([
        post_user("a"),
        {"method": "DELETE", "path": "/Users/bulkId:nowhere"},
    ]));
    let mut run = BulkRun::new(body.to_string().as_bytes(), &LIMITS).expect("valid");
    let mut perform = creating();
    while let Some(op) = run.next() {
        run.record(perform(&op));
    }
    let seen: Vec<_> = run.outcomes().collect();
    assert_eq!(seen, [("POST", 201), ("DELETE", 409)]);
}
