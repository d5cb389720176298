//! PATCH scenarios: the examples of RFC 7644 §3.5.2.1-3.5.2.3 and the error cases of §3.5.2
//! and §3.12.

use serde_json::{json, Value};

use super::*;
use crate::scim::filter::CoreSchema;

const BABS: &str = "2819c223-7f76-453a-919d-413861904646";
const JAMES: &str = "08e1d05d-121c-4561-8b96-473d93df9210";

pub(super) fn patch(ops: Value) -> PatchRequest<'static> {
    let body = json!({"schemas": [urn::PATCH_OP], "Operations": ops});
    PatchRequest::from_json(&body)
        .expect("valid PatchOp")
        .into_owned()
}

pub(super) fn apply_to(
    resource: &Value,
    ops: Value,
    info: CoreSchema,
) -> Result<Value, PatchError> {
    let mut out = resource.clone();
    patch(ops).apply(&mut out, &info)?;
    Ok(out)
}

fn group() -> Value {
    json!({
        "schemas": [urn::GROUP],
        "id": "acbf3ae7-8463-4692-b4fd-9b4da3f908ce",
        "displayName": "Tour Guides",
        "members": [
            {"value": BABS, "$ref": format!("https://example.com/v2/Users/{BABS}"), "display": "Babs Jensen"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"}
        ]
    })
}

fn user() -> Value {
    json!({
        "schemas": [urn::USER],
        "id": BABS,
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@old.example.com", "type": "work"}
        ],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"}],
        "meta": {"resourceType": "User", "version": "W/\"a330bc54f0671c9\""}
    })
}

fn member_values(group: &Value) -> Vec<&str> {
    group["members"].as_array().map_or(vec![], |m| {
        m.iter().filter_map(|m| m["value"].as_str()).collect()
    })
}

fn scim_type(result: Result<Value, PatchError>) -> ScimType {
    result.expect_err("patch must fail").scim_type()
}

#[test]
fn rfc_3_5_2_1_add_member_to_group() {
    let ops = json!([{"op": "add", "path": "members", "value": [
        {"display": "James Smith", "$ref": format!("https://example.com/v2/Users/{JAMES}"), "value": JAMES}
    ]}]);
    let out = apply_to(&group(), ops, CoreSchema::Group).expect("applies");
    assert_eq!(
        member_values(&out),
        vec![BABS, "902c246b-6245-4190-8e05-00816be7344a", JAMES]
    );
}

#[test]
fn rfc_3_5_2_1_add_without_path_appends_emails_and_sets_nickname() {
    let ops = json!([{"op": "add", "value": {
        "emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"
    }}]);
    let out = apply_to(&user(), ops.clone(), CoreSchema::User).expect("applies");
    assert_eq!(out["emails"].as_array().map(Vec::len), Some(3));
    assert_eq!(out["nickname"], "Babs");
    // Adding the same again changes nothing (RFC 7644 §3.5.2.1).
    let mut again = out;
    assert_eq!(patch(ops).apply(&mut again, &CoreSchema::User), Ok(false));
}

#[test]
fn rfc_3_5_2_2_remove_all_members() {
    let out = apply_to(
        &group(),
        json!([{"op": "remove", "path": "members"}]),
        CoreSchema::Group,
    )
    .expect("applies");
    assert!(out.get("members").is_none());
}

#[test]
fn rfc_3_5_2_2_remove_one_member() {
    let ops = json!([{"op": "remove", "path": format!("members[value eq \"{BABS}\"]")}]);
    let out = apply_to(&group(), ops, CoreSchema::Group).expect("applies");
    assert_eq!(
        member_values(&out),
        vec!["902c246b-6245-4190-8e05-00816be7344a"]
    );
}

#[test]
fn rfc_3_5_2_2_remove_emails_matching_a_compound_filter() {
    let mut u = user();
    u["emails"] = json!([
        {"value": "a@example.com", "type": "work"},
        {"value": "b@example2.com", "type": "work"},
        {"value": "c@example.com", "type": "home"}
    ]);
    let ops =
        json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]);
    let out = apply_to(&u, ops, CoreSchema::User).expect("applies");
    assert_eq!(
        out["emails"],
        json!([{"value": "b@example2.com", "type": "work"}, {"value": "c@example.com", "type": "home"}])
    );
}

#[test]
fn rfc_3_5_2_2_remove_all_members_then_add_new_ones() {
    let ops = json!([
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [
            {"display": "Babs Jensen", "value": BABS},
            {"display": "James Smith", "value": JAMES}
        ]}
    ]);
    let out = apply_to(&group(), ops, CoreSchema::Group).expect("applies");
    assert_eq!(member_values(&out), vec![BABS, JAMES]);
}

#[test]
fn rfc_3_5_2_3_replace_all_members() {
    let ops = json!([{"op": "replace", "path": "members", "value": [
        {"display": "Babs Jensen", "value": BABS}, {"display": "James Smith", "value": JAMES}
    ]}]);
    let out = apply_to(&group(), ops, CoreSchema::Group).expect("applies");
    assert_eq!(
        out["members"],
        json!([{"display": "Babs Jensen", "value": BABS}, {"display": "James Smith", "value": JAMES}])
    );
}

#[test]
fn rfc_3_5_2_3_replace_the_work_address() {
    let address = json!({"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood",
        "region": "CA", "postalCode": "91608", "country": "US", "primary": true});
    let ops = json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": address}]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(out["addresses"], json!([address]));
}

#[test]
fn rfc_3_5_2_3_replace_one_sub_attribute_of_the_work_address() {
    let ops = json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(out["addresses"][0]["streetAddress"], "1010 Broadway Ave");
    assert_eq!(out["addresses"][0]["locality"], "Hollywood");
}

#[test]
fn rfc_3_5_2_3_replace_without_path_sets_emails_and_nickname() {
    let emails = json!([{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}]);
    let ops = json!([{"op": "replace", "value": {"emails": emails, "nickname": "Babs"}}]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(out["emails"], emails);
    assert_eq!(out["nickname"], "Babs");
}

#[test]
fn replace_with_filter_that_matches_nothing_is_no_target() {
    let ops = json!([{"op": "replace", "path": "addresses[type eq \"home\"].locality", "value": "Rochester"}]);
    assert_eq!(
        scim_type(apply_to(&user(), ops, CoreSchema::User)),
        ScimType::NoTarget
    );
}

#[test]
fn filtered_add_on_a_singular_attribute_is_no_target_and_keeps_it() {
    let ops = json!([{"op": "add", "path": "name[givenName eq \"x\"].middleName", "value": "y"}]);
    assert_eq!(
        scim_type(apply_to(&user(), ops, CoreSchema::User)),
        ScimType::NoTarget
    );
}

#[test]
fn remove_without_path_is_no_target() {
    assert_eq!(
        scim_type(apply_to(
            &user(),
            json!([{"op": "remove"}]),
            CoreSchema::User
        )),
        ScimType::NoTarget
    );
}

#[test]
fn remove_with_filter_that_matches_nothing_changes_nothing() {
    let mut g = group();
    let ops = patch(json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}]));
    assert_eq!(ops.apply(&mut g, &CoreSchema::Group), Ok(false));
}

#[test]
fn read_only_and_required_attributes_refuse_changes_with_mutability() {
    let cases = [
        json!([{"op": "replace", "path": "id", "value": "other"}]),
        json!([{"op": "remove", "path": "id"}]),
        json!([{"op": "remove", "path": "userName"}]),
        json!([{"op": "replace", "path": "meta.version", "value": "W/\"1\""}]),
        json!([{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]),
        json!([{"op": "replace", "value": {"meta": {"resourceType": "Group"}}}]),
        json!([{"op": "replace", "path": "userName", "value": null}]),
    ];
    for ops in cases {
        assert_eq!(
            scim_type(apply_to(&user(), ops.clone(), CoreSchema::User)),
            ScimType::Mutability,
            "{ops}"
        );
    }
}

#[test]
fn writing_a_read_only_attribute_its_current_value_is_a_no_op() {
    let ops = json!([{"op": "replace", "value": {"id": BABS, "userName": "babs"}}]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(
        (out["id"].as_str(), out["userName"].as_str()),
        (Some(BABS), Some("babs"))
    );
}

#[test]
fn setting_primary_clears_it_on_the_other_values() {
    let ops = json!([{"op": "replace", "path": "emails[value eq \"babs@old.example.com\"].primary", "value": true}]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(out["emails"][0]["primary"], false);
    assert_eq!(out["emails"][1]["primary"], true);
    let added = json!([{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "primary": true}]}]);
    let out = apply_to(&user(), added, CoreSchema::User).expect("applies");
    assert_eq!(out["emails"][0]["primary"], false);
}

#[test]
fn two_primary_values_are_invalid_value() {
    let ops = json!([{"op": "replace", "path": "emails", "value": [
        {"value": "a@example.com", "primary": true}, {"value": "b@example.com", "primary": true}
    ]}]);
    assert_eq!(
        scim_type(apply_to(&user(), ops, CoreSchema::User)),
        ScimType::InvalidValue
    );
}

#[test]
fn a_failing_operation_leaves_the_resource_untouched() {
    let mut u = user();
    let before = u.clone();
    let ops = patch(json!([
        {"op": "replace", "path": "userName", "value": "changed"},
        {"op": "replace", "path": "addresses[type eq \"home\"].locality", "value": "x"}
    ]));
    let err = ops
        .apply(&mut u, &CoreSchema::User)
        .expect_err("second op fails");
    assert!(err.to_string().starts_with("Operations[2]:"), "{err}");
    assert_eq!(u, before);
}

#[test]
fn sub_attribute_paths_create_and_remove_complex_attributes() {
    let ops = json!([
        {"op": "add", "path": "name.middleName", "value": "Jane"},
        {"op": "remove", "path": "name.givenName"},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "m1"}
    ]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(
        out["name"],
        json!({"familyName": "Jensen", "middleName": "Jane"})
    );
    assert_eq!(out[urn::ENTERPRISE_USER]["manager"], json!({"value": "m1"}));
    assert!(out["schemas"]
        .as_array()
        .is_some_and(|s| s.contains(&json!(urn::ENTERPRISE_USER))));
    let cleared = apply_to(
        &out,
        json!([{"op": "remove", "path": format!("{}:manager", urn::ENTERPRISE_USER)}]),
        CoreSchema::User,
    )
    .expect("applies");
    assert!(cleared.get(urn::ENTERPRISE_USER).is_none());
    assert_eq!(cleared["schemas"], json!([urn::USER]));
}

#[test]
fn whole_extension_paths_add_and_remove_the_extension_object() {
    let ext = "urn:example:params:scim:schemas:extension:acme:2.0:User";
    let ops = json!([{"op": "add", "path": ext, "value": {"costCenter": "42"}}]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(out[ext], json!({"costCenter": "42"}));
    assert_eq!(out["schemas"], json!([urn::USER, ext]));
    let removed = apply_to(
        &out,
        json!([{"op": "remove", "path": ext}]),
        CoreSchema::User,
    )
    .expect("applies");
    assert_eq!(removed, user());
}

#[test]
fn extension_values_naming_their_own_schema_set_only_their_attributes() {
    // scim2-models serializes an extension value with its own `schemas`; that member
    // describes the object and is not an attribute of the extension.
    let value = json!({"schemas": [urn::ENTERPRISE_USER], "employeeNumber": "7"});
    for (path, value) in [
        (Some(urn::ENTERPRISE_USER), value.clone()),
        (None, json!({(urn::ENTERPRISE_USER): value})),
    ] {
        let ops = json!([{"op": "add", "path": path, "value": value}]);
        let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
        assert_eq!(out[urn::ENTERPRISE_USER], json!({"employeeNumber": "7"}));
        assert_eq!(out["schemas"], json!([urn::USER, urn::ENTERPRISE_USER]));
    }
    // Naming another schema there is no self-description: it is an attribute like any other,
    // here one the enterprise schema has as singular, so it is refused, not dropped.
    let other = json!({"schemas": [urn::USER], "employeeNumber": "7"});
    let ops = json!([{"op": "add", "path": urn::ENTERPRISE_USER, "value": other}]);
    assert_eq!(
        scim_type(apply_to(&user(), ops, CoreSchema::User)),
        ScimType::InvalidValue
    );
}

#[test]
fn enterprise_attributes_are_single_valued() {
    let path = format!("{}:manager", urn::ENTERPRISE_USER);
    let ops = json!([{"op": "add", "path": path, "value": [{"value": "m1"}]}]);
    assert_eq!(
        scim_type(apply_to(&user(), ops, CoreSchema::User)),
        ScimType::InvalidValue
    );
}

#[test]
fn names_in_paths_and_values_are_case_insensitive() {
    let ops = json!([{"op": "replace", "path": "NAME.GIVENNAME", "value": "Babs"}, {"op": "add", "value": {"USERNAME": "b"}}]);
    let out = apply_to(&user(), ops, CoreSchema::User).expect("applies");
    assert_eq!(
        (out["name"]["givenName"].as_str(), out["userName"].as_str()),
        (Some("Babs"), Some("b"))
    );
}

#[test]
fn malformed_bodies_are_refused_with_the_right_scim_type() {
    let cases = [
        (
            json!({"Operations": [{"op": "add", "path": "a", "value": 1}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [urn::PATCH_OP], "Operations": []}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [urn::PATCH_OP], "Operations": [{"op": "delete", "path": "a"}]}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [urn::PATCH_OP], "Operations": [{"op": "add", "path": "a"}]}),
            ScimType::InvalidValue,
        ),
        (
            json!({"schemas": [urn::PATCH_OP], "Operations": [{"op": "add", "path": "a b", "value": 1}]}),
            ScimType::InvalidPath,
        ),
        (
            json!({"schemas": [urn::PATCH_OP], "Operations": [{"op": "add", "path": "emails[type eq]", "value": 1}]}),
            ScimType::InvalidPath,
        ),
        (
            json!({"schemas": [urn::PATCH_OP], "Operations": [{"op": "remove", "path": "members", "value": [{"value": "x"}]}]}),
            ScimType::InvalidSyntax,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            PatchRequest::from_json(&body)
                .map(|_| ())
                .map_err(|e| e.scim_type()),
            Err(want),
            "{body}"
        );
    }
}

#[test]
fn invalid_values_are_refused() {
    let cases = [
        json!([{"op": "add", "value": "not an object"}]),
        json!([{"op": "replace", "value": {"name.givenName": "x"}}]),
        json!([{"op": "replace", "value": {(urn::ENTERPRISE_USER.to_string() + ":employeeNumber"): "1"}}]),
    ];
    for ops in cases {
        assert_eq!(
            scim_type(apply_to(&user(), ops.clone(), CoreSchema::User)),
            ScimType::InvalidValue,
            "{ops}"
        );
    }
    let sub_of_multi = json!([{"op": "replace", "path": "emails.value", "value": "x"}]);
    assert_eq!(
        scim_type(apply_to(&user(), sub_of_multi, CoreSchema::User)),
        ScimType::InvalidPath
    );
}

#[test]
fn patch_errors_convert_to_scim_errors() {
    let e: ScimError = PatchError::NoTarget("x".into()).into();
    assert_eq!((e.status, e.scim_type), (400, Some(ScimType::NoTarget)));
}
