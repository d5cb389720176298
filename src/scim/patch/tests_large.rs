//! PATCH at scale: the bounds on a request, and the paths that keep large requests close to
//! linear (duplicates found by hashing, a run of removals in one pass) held to the plain rules
//! they stand for, on generated values.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::tests::{apply_to, patch};
use super::values::{append_by_scan, append_indexed};
use super::*;
use crate::scim::filter::CoreSchema;

fn body(ops: Vec<Value>) -> Value {
    json!({"schemas": [urn::PATCH_OP], "Operations": ops})
}

fn refusal(e: PatchError) -> ScimError {
    ScimError::from(e)
}

#[test]
fn more_operations_than_the_bound_is_413_naming_it() {
    let op = json!({"op": "replace", "path": "displayName", "value": "x"});
    let at_bound = body(vec![op.clone(); MAX_OPERATIONS]);
    assert!(PatchRequest::from_json(&at_bound).is_ok());
    let past = body(vec![op; MAX_OPERATIONS + 1]);
    let e = refusal(PatchRequest::from_json(&past).expect_err("past the bound"));
    assert_eq!((e.status, e.scim_type), (413, None));
    assert!(e.detail.contains("1001 operations"), "{}", e.detail);
    assert!(e.detail.contains("at most 1000"), "{}", e.detail);
}

#[test]
fn an_operation_with_more_values_than_the_bound_is_413_naming_it() {
    let members =
        |n: usize| -> Vec<Value> { (0..n).map(|i| json!({"value": i.to_string()})).collect() };
    let add = |n| json!({"op": "add", "path": "members", "value": members(n)});
    assert!(PatchRequest::from_json(&body(vec![add(MAX_VALUES)])).is_ok());
    let past = body(vec![
        json!({"op": "remove", "path": "displayName"}),
        add(MAX_VALUES + 1),
    ]);
    let e = refusal(PatchRequest::from_json(&past).expect_err("past the bound"));
    assert_eq!((e.status, e.scim_type), (413, None));
    assert!(e.detail.starts_with("Operations[2]: "), "{}", e.detail);
    assert!(e.detail.contains("10001 values"), "{}", e.detail);
    // Without a path the members of the value are counted, and an array in one of them.
    let pathless =
        json!({"op": "add", "value": {"displayName": "x", "members": members(MAX_VALUES)}});
    let e = refusal(PatchRequest::from_json(&body(vec![pathless])).expect_err("past the bound"));
    assert_eq!(e.status, 413);
}

#[test]
fn growing_an_object_past_the_member_bound_is_413() {
    let group = json!({"schemas": [urn::GROUP], "id": "g", "displayName": "G"});
    let names = |n: usize| -> Map<String, Value> {
        (0..n).map(|i| (format!("x{i:04}"), json!(1))).collect()
    };
    let fits = json!([{"op": "add", "value": names(MAX_MEMBERS - 4)}]);
    assert!(apply_to(&group, fits, CoreSchema::Group).is_ok());
    let past = json!([{"op": "add", "value": names(MAX_MEMBERS)}]);
    let e = refusal(apply_to(&group, past, CoreSchema::Group).expect_err("past the bound"));
    assert_eq!((e.status, e.scim_type), (413, None));
    assert!(e.detail.contains("more than 1000 members"), "{}", e.detail);
}

#[test]
fn a_run_of_removals_fails_at_its_first_operation_as_one_by_one_would() {
    // `groups` of a User is readOnly (RFC 7643 §4.1.2).
    let user = json!({"schemas": [urn::USER], "id": "u", "userName": "u",
                      "groups": [{"value": "g1"}, {"value": "g2"}]});
    let ops = json!([
        {"op": "replace", "path": "title", "value": "t"},
        {"op": "remove", "path": "groups[value eq \"g1\"]"},
        {"op": "remove", "path": "groups[value eq \"g2\"]"}
    ]);
    let e = apply_to(&user, ops, CoreSchema::User).expect_err("readOnly");
    assert_eq!(e.scim_type(), ScimType::Mutability);
    assert!(e.to_string().starts_with("Operations[2]: "), "{e}");
}

#[test]
fn a_run_of_removals_matches_values_as_the_filter_does() {
    // emails.value is not caseExact; dateTimes compare by instant (RFC 7643 §2.3.5).
    let user = json!({"schemas": [urn::USER], "id": "u", "userName": "u", "emails": [
        {"value": "BJensen@Example.com"}, {"value": "2024-05-01T10:00:00Z"}, {"value": "stays@x"}]});
    let ops = json!([
        {"op": "remove", "path": "emails[value eq \"bjensen@example.com\"]"},
        {"op": "remove", "path": "emails[value eq \"2024-05-01T12:00:00+02:00\"]"}
    ]);
    let out = apply_to(&user, ops, CoreSchema::User).expect("applies");
    assert_eq!(out["emails"], json!([{"value": "stays@x"}]));
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("a")),
        Just(json!("A")),
        Just(json!("b")),
        Just(json!(1)),
        Just(json!(1.0)),
        Just(Value::Null),
    ]
}

/// A value of a multi-valued attribute: mostly complex, with `value` and `type` in varied
/// spellings and cases, sometimes without a `value`, sometimes simple.
fn element() -> impl Strategy<Value = Value> {
    let ty = prop_oneof![
        Just(None),
        Just(Some(json!("work"))),
        Just(Some(json!("WORK"))),
        Just(Some(json!("home"))),
        Just(Some(json!(7))),
        Just(Some(Value::Null)),
    ];
    let key = prop_oneof![Just("value"), Just("Value")];
    let display = proptest::option::of(prop_oneof![Just(json!("x")), Just(json!("y"))]);
    let complex = (proptest::option::of(scalar()), key, ty, display).prop_map(|(v, key, ty, d)| {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put(key, v);
        put("type", ty);
        put("display", d);
        Value::Object(m)
    });
    prop_oneof![4 => complex, 1 => scalar()]
}

fn email_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("b@x.org")),
        Just(json!("B@X.org")),
        Just(json!("Émile@x.org")),
        Just(json!("émile@x.org")),
        Just(json!("2024-05-01T10:00:00Z")),
        Just(json!("2024-05-01T12:00:00+02:00")),
        Just(json!(["b@x.org", "c@x.org"])),
        Just(json!(3)),
    ]
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("b@x.org".to_string()),
        Just("Émile@X.org".to_string()),
        Just("c@x.org".to_string()),
        Just("2024-05-01T11:00:00+01:00".to_string()),
        Just("3".to_string()),
    ]
}

/// A multi-valued attribute's value as a run of removals sees it.
fn listed() -> impl Strategy<Value = Value> {
    let complex = email_value().prop_map(|v| json!({"value": v, "type": "work"}));
    prop_oneof![4 => complex, 1 => email_value()]
}

/// Applies the operations one request each, so that no two form a run.
fn one_by_one(res: &Value, ops: &[Value], info: CoreSchema) -> Result<Value, ScimType> {
    let mut out = res.clone();
    for op in ops {
        patch(json!([op]))
            .apply(&mut out, &info)
            .map_err(|e| e.scim_type())?;
    }
    Ok(out)
}

proptest! {
    #[test]
    fn hashing_finds_the_duplicate_the_scan_found(
        items in proptest::collection::vec(element(), 0..12),
        incoming in proptest::collection::vec(element(), 0..12),
    ) {
        let mut by_scan = items.clone();
        let scanned = append_by_scan(&mut by_scan, incoming.clone()).expect("small values");
        let mut hashed = items;
        let written = append_indexed(&mut hashed, incoming).expect("small values");
        prop_assert_eq!(hashed, by_scan);
        prop_assert_eq!(written, scanned);
    }

    #[test]
    fn a_run_of_removals_leaves_what_one_by_one_leaves(
        emails in proptest::collection::vec(listed(), 0..10),
        literals in proptest::collection::vec(literal(), 1..6),
        members in any::<bool>(),
        added in any::<bool>(),
    ) {
        // members.value is caseExact, emails.value is not.
        let (info, schema, attr) = if members {
            (CoreSchema::Group, urn::GROUP, "members")
        } else {
            (CoreSchema::User, urn::USER, "emails")
        };
        let res = json!({"schemas": [schema], "id": "u", "userName": "u", attr: emails});
        let mut ops: Vec<Value> = literals
            .iter()
            .map(|l| json!({"op": "remove", "path": format!("{attr}[value eq {}]", Value::from(l.as_str()))}))
            .collect();
        if added {
            ops.insert(1, json!({"op": "add", "path": attr, "value": [{"value": "c@x.org"}]}));
        }
        let together = apply_to(&res, Value::Array(ops.clone()), info).map_err(|e| e.scim_type());
        prop_assert_eq!(together, one_by_one(&res, &ops, info));
    }
}

#[test]
fn passes_over_a_large_attribute_past_the_budget_are_413_at_the_operation_that_crosses_it() {
    let members: Vec<Value> = (0..20_000)
        .map(|i| json!({"value": format!("u{i}")}))
        .collect();
    let group = json!({"schemas": [urn::GROUP], "id": "g", "displayName": "G", "members": members});
    // A `co` filter is no run: each removal is a pass over the 20,000 members.
    let scan = |i: usize| json!({"op": "remove", "path": format!("members[value co \"x{i}\"]")});
    let passes = MAX_EXAMINED / 20_000;
    let fits: Vec<Value> = (0..passes).map(scan).collect();
    assert!(apply_to(&group, Value::Array(fits), CoreSchema::Group).is_ok());
    let past: Vec<Value> = (0..=passes).map(scan).collect();
    let e = refusal(apply_to(&group, Value::Array(past), CoreSchema::Group).expect_err("past"));
    assert_eq!((e.status, e.scim_type), (413, None));
    assert!(
        e.detail
            .starts_with(&format!("Operations[{}]: ", passes + 1)),
        "{}",
        e.detail
    );
    assert!(
        e.detail.contains("more than 2000000 values"),
        "{}",
        e.detail
    );
    // A run of removals is one pass, however many operations it has.
    let run: Vec<Value> = (0..MAX_OPERATIONS)
        .map(|i| json!({"op": "remove", "path": format!("members[value eq \"u{i}\"]")}))
        .collect();
    let out = apply_to(&group, Value::Array(run), CoreSchema::Group).expect("one pass");
    assert_eq!(out["members"].as_array().map(Vec::len), Some(19_000));
}
