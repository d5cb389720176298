//! The policy over PatchOp bodies (RFC 7644 §3.5.2): operations with and without path, value
//! filters, URN-qualified paths, Entra's path-keyed values, and detectors in values.

use serde_json::{json, Value};

use super::scan::REDACTED;
use super::tests::{policy, ENT};
use super::*;
use crate::scim::discovery::{GROUP, USER};

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn run(p: &Policy, rt: &ResourceTypeDef, body: &Value) -> Result<(Value, Outcome), Refusal> {
    let mut body = body.clone();
    let out = p.apply_patch(Direction::Inbound, rt, &mut body)?;
    Ok((body, out))
}

fn ok(p: &Policy, body: &Value) -> (Value, Outcome) {
    run(p, &USER, body).expect("not refused")
}

#[test]
fn an_operation_on_a_denied_attribute_goes_however_its_path_is_written() {
    let p = policy(r#"deny = ["employeeNumber", "addresses.*", "name.givenName"]"#);
    let body = patch(json!([
        {"op": "replace", "path": "employeeNumber", "value": "1"},
        {"op": "Replace", "path": format!("{ENT}:employeeNumber"), "value": "2"},
        {"op": "add", "path": "ADDRESSES", "value": [{"locality": "x"}]},
        {"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "y"},
        {"op": "remove", "path": "addresses[type eq \"home\"]"},
        {"op": "replace", "path": "name.givenName", "value": "B"},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName", "value": "B"},
        {"op": "replace", "path": "name.familyName", "value": "J"},
        {"op": "remove", "path": "employeeNumber"}
    ]));
    let (after, out) = ok(&p, &body);
    assert_eq!(
        after,
        patch(json!([{"op": "replace", "path": "name.familyName", "value": "J"}]))
    );
    assert!(!out.no_operations_left);
    assert!(out.dropped.contains(&"addresses.streetAddress".to_string()));
    assert!(out.dropped.contains(&format!("{ENT}:employeeNumber")));
    // Outcome paths never carry a filter's value.
    assert!(
        out.dropped.iter().all(|d| !d.contains('[')),
        "{:?}",
        out.dropped
    );
}

#[test]
fn a_group_member_operation_goes_when_members_are_denied() {
    let p = policy(r#"deny = ["members"]"#);
    let body = patch(json!([
        {"op": "add", "path": "members", "value": [{"value": "2819c223"}]},
        {"op": "remove", "path": "members[value eq \"2819c223\"]"},
        {"op": "replace", "path": "displayName", "value": "Tour Guides"}
    ]));
    let (after, out) = run(&p, &GROUP, &body).expect("ok");
    assert_eq!(
        after,
        patch(json!([{"op": "replace", "path": "displayName", "value": "Tour Guides"}]))
    );
    assert_eq!(out.dropped, ["members"]);
}

#[test]
fn an_operation_whose_value_filter_tests_a_denied_attribute_is_refused() {
    let p = policy(r#"deny = ["emails.value"]"#);
    let body = patch(json!([
        {"op": "replace", "path": "nickName", "value": "n"},
        {"op": "remove", "path": "emails[value eq \"bjensen@example.com\"]"}
    ]));
    let r = run(&p, &USER, &body).expect_err("refused");
    assert_eq!(r.attribute, "emails.value");
    assert_eq!(r.operation, Some(2));
    assert_eq!(r.scim_type().as_str(), "invalidFilter");
    let detail = r.detail();
    assert!(detail.starts_with("Operations[2]: "), "{detail}");
    assert!(!detail.contains("bjensen"), "{detail}");
    // Selecting by another sub-attribute is fine; writing the denied one just goes.
    let body = patch(json!([
        {"op": "remove", "path": "emails[type eq \"work\"]"},
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x"},
        {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true}
    ]));
    let (after, out) = ok(&p, &body);
    assert_eq!(
        after,
        patch(json!([
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true}
        ]))
    );
    assert_eq!(out.dropped, ["emails.value"]);
}

#[test]
fn a_value_is_cut_like_a_resource_attribute() {
    let p = policy(r#"deny = ["emails.type", "name.givenName"]"#);
    let body = patch(json!([
        {"op": "replace", "path": "emails", "value": [{"value": "a@x", "type": "work"}]},
        {"op": "add", "path": "emails[primary eq true]", "value": {"value": "b@x", "type": "home"}},
        {"op": "replace", "path": "name", "value": {"givenName": "B"}}
    ]));
    let (after, out) = ok(&p, &body);
    assert_eq!(
        after,
        patch(json!([
            {"op": "replace", "path": "emails", "value": [{"value": "a@x"}]},
            {"op": "add", "path": "emails[primary eq true]", "value": {"value": "b@x"}}
        ]))
    );
    assert_eq!(out.dropped, ["emails.type", "name.givenName"]);
}

#[test]
fn a_value_without_path_is_filtered_whatever_its_keys_are() {
    let p = policy(r#"deny = ["employeeNumber", "name.givenName"]"#);
    // Entra's shape: keys that are URN-qualified or dotted paths.
    let body = patch(json!([{
        "op": "Replace",
        "value": {
            format!("{ENT}:employeeNumber"): "701984",
            format!("{ENT}:department"): "Tour Operations",
            "name.givenName": "Barbara",
            "name.familyName": "Jensen",
            "active": false
        }
    }, {
        "op": "add",
        "value": {ENT: {"employeeNumber": "1", "division": "d"}, "name": {"givenName": "B"}}
    }]));
    let (after, out) = ok(&p, &body);
    assert_eq!(
        after,
        patch(json!([{
            "op": "Replace",
            "value": {
                format!("{ENT}:department"): "Tour Operations",
                "name.familyName": "Jensen",
                "active": false
            }
        }, {
            "op": "add",
            "value": {ENT: {"division": "d"}}
        }]))
    );
    // Each path is named once, however often it went.
    assert_eq!(
        out.dropped,
        [
            "name.givenName".to_string(),
            format!("{ENT}:employeeNumber")
        ]
    );
}

#[test]
fn when_every_operation_goes_the_outcome_says_so() {
    let p = policy(r#"deny = ["employeeNumber"]"#);
    let body = patch(json!([
        {"op": "replace", "path": "employeeNumber", "value": "1"},
        {"op": "replace", "value": {format!("{ENT}:employeeNumber"): "1"}}
    ]));
    let (after, out) = ok(&p, &body);
    assert_eq!(after, patch(json!([])));
    assert!(out.no_operations_left);
    assert!(!out.is_empty());
}

#[test]
fn a_path_naming_a_whole_extension() {
    let p = policy(r#"deny = ["costCenter"]"#);
    let body = patch(
        json!([{"op": "add", "path": ENT, "value": {"costCenter": "4130", "division": "d"}}]),
    );
    let (after, _) = ok(&p, &body);
    assert_eq!(
        after,
        patch(json!([{"op": "add", "path": ENT, "value": {"division": "d"}}]))
    );
    let p = policy(&format!(r#"deny = ["{ENT}"]"#));
    let body = patch(json!([
        {"op": "add", "path": ENT, "value": {"division": "d"}},
        {"op": "remove", "path": ENT},
        {"op": "replace", "path": "department", "value": "x"},
        {"op": "replace", "path": "title", "value": "t"}
    ]));
    let (after, out) = ok(&p, &body);
    assert_eq!(
        after,
        patch(json!([{"op": "replace", "path": "title", "value": "t"}]))
    );
    assert_eq!(out.dropped, [ENT.to_string(), "department".to_string()]);
}

#[test]
fn under_an_allow_list_only_listed_and_protected_attributes_are_written() {
    let p = policy(r#"allow = ["active", "emails.value"]"#);
    let body = patch(json!([
        {"op": "replace", "path": "active", "value": false},
        {"op": "replace", "path": "userName", "value": "b"},
        {"op": "replace", "path": "nickName", "value": "n"},
        {"op": "add", "path": "emails", "value": [{"value": "a@x", "type": "work"}]},
        {"op": "replace", "value": {"active": true, "title": "t", "name.givenName": "B"}}
    ]));
    let (after, out) = ok(&p, &body);
    assert_eq!(
        after,
        patch(json!([
            {"op": "replace", "path": "active", "value": false},
            {"op": "replace", "path": "userName", "value": "b"},
            {"op": "add", "path": "emails", "value": [{"value": "a@x"}]},
            {"op": "replace", "value": {"active": true}}
        ]))
    );
    assert_eq!(
        out.dropped,
        ["nickName", "emails.type", "name.givenName", "title"]
    );
    let body = patch(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]));
    assert!(run(&p, &USER, &body).is_err());
}

#[test]
fn detectors_look_at_operation_values() {
    let body = patch(json!([
        {"op": "replace", "path": "title", "value": "4111 1111 1111 1111"},
        {"op": "add", "path": "emails", "value": [{"value": "a@x", "display": "078-05-1120"}]},
        {"op": "replace", "value": {"nickName": "GB82 WEST 1234 5698 7654 32", "active": true}}
    ]));
    let redact = policy(r#"detect = ["us_ssn", "card", "iban"]"#);
    let (after, out) = ok(&redact, &body);
    assert_eq!(
        after,
        patch(json!([
            {"op": "replace", "path": "title", "value": REDACTED},
            {"op": "add", "path": "emails", "value": [{"value": "a@x", "display": REDACTED}]},
            {"op": "replace", "value": {"nickName": REDACTED, "active": true}}
        ]))
    );
    assert_eq!(out.redacted, ["title", "emails.display", "nickName"]);
    let drop = policy(r#"detect = ["us_ssn", "card", "iban"], on_detect = "drop""#);
    let (after, _) = ok(&drop, &body);
    assert_eq!(
        after,
        patch(json!([
            {"op": "add", "path": "emails", "value": [{"value": "a@x"}]},
            {"op": "replace", "value": {"active": true}}
        ]))
    );
    let reject = policy(r#"detect = ["us_ssn", "card", "iban"], on_detect = "reject""#);
    let r = run(&reject, &USER, &body).expect_err("refused");
    assert_eq!((r.operation, r.attribute.as_str()), (Some(1), "title"));
    assert!(!r.detail().contains("4111"));
}

#[test]
fn detectors_ignore_selectors_in_paths() {
    let p = policy(r#"detect = ["card"], on_detect = "reject""#);
    let body = patch(json!([{"op": "remove", "path": "emails[value eq \"4111111111111111\"]"}]));
    let (after, out) = ok(&p, &body);
    assert_eq!(after, body);
    assert!(out.is_empty());
}

#[test]
fn an_unreadable_path_is_refused_without_echoing_it() {
    let p = policy(r#"deny = ["title"]"#);
    for path in [json!("emails[value eq \"078-05-1120\""), json!(42)] {
        let body = patch(json!([{"op": "remove", "path": path}]));
        let r = run(&p, &USER, &body).expect_err("refused");
        assert_eq!(r.scim_type().as_str(), "invalidPath");
        assert!(!r.detail().contains("078"), "{}", r.detail());
    }
}

#[test]
fn a_patch_with_nothing_to_change_comes_out_as_it_went_in() {
    let p = policy(r#"deny = ["employeeNumber"], detect = ["card"]"#);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "operations": [
            {"op": "replace", "path": "active", "value": false},
            {"op": "add", "value": {"nickName": "Babs"}},
            {"op": "remove", "path": "members[value eq \"x\"]"}
        ]
    });
    let (after, out) = ok(&p, &body);
    assert_eq!(after, body);
    assert!(out.is_empty());
    for odd in [
        json!(null),
        json!({"Operations": 3}),
        json!({"Operations": [1, "x", null]}),
    ] {
        let (after, out) = ok(&p, &odd);
        assert_eq!(after, odd);
        assert!(out.is_empty());
    }
}

#[test]
fn operation_key_names_match_without_case() {
    let p = policy(r#"deny = ["title"]"#);
    let body = json!({"Operations": [{"OP": "replace", "PATH": "Title", "VALUE": "t"}, {"op": "add", "Value": {"TITLE": "t", "nickName": "n"}}]});
    let (after, _) = ok(&p, &body);
    assert_eq!(
        after,
        json!({"Operations": [{"op": "add", "Value": {"nickName": "n"}}]})
    );
}
