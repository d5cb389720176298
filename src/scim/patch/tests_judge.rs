//! `PatchRequest::judge` against the engine itself: for any single operation, judging it
//! refuses exactly what applying it to a resource without its targets refuses, with the same
//! error.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::scim::discovery::{SchemaInfo, GROUP, USER};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn paths() -> Vec<Option<String>> {
    let mut paths: Vec<Option<String>> = [
        "userName",
        "id",
        "meta",
        "meta.created",
        "groups",
        "name",
        "name.givenName",
        "nickName",
        "active",
        "emails",
        "emails.value",
        "emails[type eq \"work\"]",
        "emails[type eq \"work\"].value",
        "emails[value sw \"b\"].primary",
        "phoneNumbers",
        "password",
        "members",
        "members.value",
        "members[value eq \"2819c223\"]",
        "displayName",
        "x509Certificates",
    ]
    .iter()
    .map(|p| Some(p.to_string()))
    .collect();
    paths.push(Some(ENTERPRISE.to_string()));
    paths.push(Some(format!("{ENTERPRISE}:manager")));
    paths.push(Some(format!("{ENTERPRISE}:manager.value")));
    paths.push(Some(format!("{ENTERPRISE}:employeeNumber")));
    paths.push(None);
    paths
}

fn values() -> Vec<Option<Value>> {
    let mut values: Vec<Option<Value>> = vec![
        json!(null),
        json!("bjensen"),
        json!(true),
        json!(7),
        json!([]),
        json!(["a", "b"]),
        json!({"value": "x"}),
        json!([{"value": "a", "primary": true}, {"value": "b", "primary": true}]),
        json!([{"value": "a", "primary": true}, {"value": "b"}]),
        json!({"userName": "b", "nickName": "Babs"}),
        json!({"id": "other"}),
        json!({"name.givenName": "Barbara"}),
        json!({"userName": null}),
        json!({"emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
        json!({ENTERPRISE: {"employeeNumber": "7"}}),
        json!({ENTERPRISE: "7"}),
        json!({ENTERPRISE: {"schemas": [ENTERPRISE], "manager": {"value": "9"}}}),
        json!({"urn:example:Other:2.0:User": {"a": 1}}),
        json!({"employeeNumber": "7"}),
        json!({"members": [{"value": "1"}]}),
        json!({"displayName": null}),
    ]
    .into_iter()
    .map(Some)
    .collect();
    values.push(None);
    values
}

fn verdicts(resource_type: &str, op: &str, path: &Option<String>, value: &Option<Value>) {
    let mut operation = json!({"op": op});
    if let Some(p) = path {
        operation["path"] = json!(p);
    }
    if let Some(v) = value {
        operation["value"] = v.clone();
    }
    let body = json!({"schemas": [urn::PATCH_OP], "Operations": [operation]});
    let Ok(request) = PatchRequest::from_json(&body) else {
        return;
    };
    let (rt, schema) = match resource_type {
        "Group" => (&GROUP, urn::GROUP),
        _ => (&USER, urn::USER),
    };
    let info = SchemaInfo::new(rt);
    let mut resource = json!({"schemas": [schema]});
    let judged = request.judge(&resource, &info);
    let applied = request.apply_where_found(&mut resource, &info).map(drop);
    assert_eq!(judged, applied, "{resource_type} {operation}");
}

#[test]
fn judging_an_operation_refuses_what_applying_it_refuses() {
    for rt in ["User", "Group"] {
        for op in ["add", "replace", "remove", "Replace"] {
            for path in paths() {
                for value in values() {
                    verdicts(rt, op, &path, &value);
                }
            }
        }
    }
}

/// JSON whose keys are mostly attribute names and whose leaves include the listed values.
fn scim_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        proptest::sample::select(values()).prop_map(|v| v.unwrap_or(Value::Null)),
        any::<i32>().prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        let key = prop_oneof![
            proptest::sample::select(vec![
                "value",
                "primary",
                "type",
                "userName",
                "id",
                "meta",
                "name",
                "givenName",
                "emails",
                "active",
                "members",
                "schemas",
                "display",
                ENTERPRISE,
                "manager",
                "name.givenName",
                "urn:example:Other:2.0:User",
            ])
            .prop_map(str::to_owned),
            "[a-z]{1,5}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn judging_any_operation_refuses_what_applying_it_refuses(
        rt in prop_oneof![Just("User"), Just("Group")],
        op in prop_oneof![Just("add"), Just("replace"), Just("remove")],
        path in proptest::sample::select(paths()),
        value in scim_json(),
    ) {
        verdicts(rt, op, &path, &Some(value));
    }
}
