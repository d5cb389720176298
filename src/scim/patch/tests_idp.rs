//! The RFC-valid PATCH shapes real IdPs send (shared/idp/vectors.json and QUIRKS.md E1, E3,
//! O6, O8), and properties: applying never panics and a failed PATCH changes nothing.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::tests::{apply_to, patch};
use super::*;
use crate::scim::filter::CoreSchema;

fn group() -> Value {
    json!({"schemas": [urn::GROUP], "id": "abf4dd94", "displayName": "Test SCIMv2",
           "members": [{"value": "removeUser1"}, {"value": "removeUser2"}, {"value": "stays"}]})
}

fn user() -> Value {
    json!({"schemas": [urn::USER], "id": "9f1c", "userName": "kkom", "active": true,
           "emails": [{"type": "work", "value": "old@contoso.com", "primary": true}]})
}

#[test]
fn entra_member_add_with_capital_op_and_null_ref_adds_the_member() {
    // entra-05: {"op":"Add","path":"members","value":[{"$ref":null,"value":"f648…"}]}
    let ops = json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]);
    let out = apply_to(&group(), ops, CoreSchema::Group).expect("applies");
    assert_eq!(out["members"][3], json!({"value": "f648f8d5ea4e4cd38e9c"}));
}

#[test]
fn entra_filtered_add_creates_the_missing_value() {
    // entra-14 and entra-15: sub-attribute adds under a filter that matches nothing yet.
    let ops = json!([
        {"op": "add", "path": "addresses[type eq \"work\"].formatted", "value": "USZLTUSJXBYV"},
        {"op": "add", "path": "addresses[type eq \"work\"].locality", "value": "OSGODHEVDCVD"},
        {"op": "add", "path": "addresses[type eq \"work\"].region", "value": "YMVMOEMXAYGD"}
    ]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(
        out["addresses"],
        json!([{"type": "work", "formatted": "USZLTUSJXBYV", "locality": "OSGODHEVDCVD", "region": "YMVMOEMXAYGD"}])
    );
}

#[test]
fn entra_replace_of_filtered_sub_attribute_and_extension_add() {
    // QUIRKS E2 (laravel-scim-server#34): Replace emails[type eq "work"].value, Add …:department.
    let ops = json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"}
    ]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(out["emails"][0]["value"], "new@contoso.com");
    assert_eq!(out[urn::ENTERPRISE_USER]["department"], "Sales");
}

#[test]
fn entra_flagged_replace_with_nested_extension_object_applies() {
    // E1 normalized form: no path, sub-attributes nested, extension keyed by its URN.
    let ops = json!([{"op": "replace", "value": {
        "displayName": "Bjfe", "name": {"givenName": "Kkom", "familyName": "Unua"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "Aklq"}
    }}]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(
        out["name"],
        json!({"givenName": "Kkom", "familyName": "Unua"})
    );
    assert_eq!(out[urn::ENTERPRISE_USER]["employeeNumber"], "Aklq");
}

#[test]
fn entra_legacy_remove_with_value_array_is_refused_not_treated_as_remove_all() {
    // entra-04: the rule packs rewrite this to a filter; unnormalized it must not empty the group.
    let body = json!({"schemas": [urn::PATCH_OP], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}
    ]});
    assert_eq!(
        PatchRequest::from_json(&body)
            .map(|_| ())
            .map_err(|e| e.scim_type()),
        Err(ScimType::InvalidSyntax)
    );
}

#[test]
fn okta_deactivate_and_rename_with_echoed_id_apply() {
    // okta-04 and O6: replace without path; the read-only id is echoed unchanged.
    let out = apply_to(
        &user(),
        json!([{"op": "replace", "value": {"active": false}}]),
        CoreSchema::User,
    )
    .expect("applies");
    assert_eq!(out["active"], false);
    let rename = json!([{"op": "replace", "value": {"id": "abf4dd94", "displayName": "Renamed"}}]);
    let out = apply_to(&group(), rename, CoreSchema::Group).expect("applies");
    assert_eq!(out["displayName"], "Renamed");
}

#[test]
fn okta_remove_and_add_members_in_one_request() {
    // okta-08.
    let ops = json!([
        {"op": "remove", "path": "members[value eq \"removeUser1\"]"},
        {"op": "remove", "path": "members[value eq \"removeUser2\"]"},
        {"op": "add", "path": "members", "value": [
            {"value": "addUser1", "display": "addUser1@example.com"},
            {"value": "addUser2", "display": "addUser2@example.com"}
        ]}
    ]);
    let out = apply_to(&group(), ops, CoreSchema::Group).expect("applies");
    let values: Vec<&str> = out["members"].as_array().map_or(vec![], |m| {
        m.iter().filter_map(|v| v["value"].as_str()).collect()
    });
    assert_eq!(values, vec!["stays", "addUser1", "addUser2"]);
}

#[test]
fn okta_and_ping_replace_members_with_empty_array_clears_membership() {
    // okta-06 / ping-01 (O8): RFC-valid, means "no members".
    let out = apply_to(
        &group(),
        json!([{"op": "replace", "path": "members", "value": []}]),
        CoreSchema::Group,
    )
    .expect("applies");
    assert!(out.get("members").is_none());
}

#[test]
fn onelogin_add_of_an_existing_member_adds_no_duplicate() {
    let mut g = group();
    let ops = patch(json!([{"op": "add", "path": "members", "value": [{"value": "stays"}]}]));
    assert_eq!(ops.apply(&mut g, &CoreSchema::Group), Ok(false));
}

fn arb_op() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec!["add", "Replace", "remove", "bogus"]);
    let path = prop::option::of(prop::sample::select(vec![
        "members",
        "members[value eq \"stays\"]",
        "members[value eq \"x\"].display",
        "displayName",
        "id",
        "name.givenName",
        "emails[type eq \"work\"].primary",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "meta.version",
        "emails[value gt true]",
        "emails[",
        "members.value",
    ]));
    let value = prop::option::of(prop::sample::select(vec![
        json!("x"),
        json!(true),
        json!(null),
        json!([]),
        json!([{"value": "u", "primary": true}]),
        json!({"displayName": "g", "members": []}),
        json!({"employeeNumber": "1"}),
        json!([{"primary": true}, {"primary": true}]),
    ]));
    (op, path, value).prop_map(|(op, path, value)| {
        let mut o = json!({"op": op});
        if let Some(p) = path {
            o["path"] = json!(p);
        }
        if let Some(v) = value {
            o["value"] = v;
        }
        o
    })
}

proptest! {
    #[test]
    fn patch_never_panics_and_failure_leaves_resource_unchanged(ops in prop::collection::vec(arb_op(), 1..6)) {
        let body = json!({"schemas": [urn::PATCH_OP], "Operations": ops});
        if let Ok(request) = PatchRequest::from_json(&body) {
            for (mut resource, info) in [(group(), CoreSchema::Group), (user(), CoreSchema::User)] {
                let before = resource.clone();
                match request.apply(&mut resource, &info) {
                    Ok(changed) => prop_assert_eq!(changed, resource != before),
                    Err(_) => prop_assert_eq!(&resource, &before),
                }
            }
        }
    }

    #[test]
    fn patch_parsing_arbitrary_json_never_panics(text in "\\PC{0,200}") {
        if let Ok(body) = serde_json::from_str::<Value>(&text) {
            let _ = PatchRequest::from_json(&body);
        }
        let _ = PatchPath::parse(&text);
    }
}

#[test]
fn entra_manager_remove_by_value_filter_removes_it_or_is_no_target() {
    // Entra clears a manager with a value filter on the singular complex attribute.
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let mut with_manager = user();
    with_manager[ext] = json!({"manager": {"value": "m1"}, "department": "R&D"});
    let remove =
        |id: &str| json!([{"op": "remove", "path": format!("{ext}:manager[value eq \"{id}\"]")}]);
    let out = apply_to(&with_manager, remove("m1"), CoreSchema::User).expect("applies");
    assert_eq!(out[ext], json!({"department": "R&D"}));
    let other = apply_to(&with_manager, remove("m2"), CoreSchema::User);
    assert!(matches!(other, Err(PatchError::NoTarget(_))), "{other:?}");
}
