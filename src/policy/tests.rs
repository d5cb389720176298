//! The policy over resources, lists and query filters: every deny and allow form, both
//! directions, the detectors inside documents, and the RFC 7643 §8.2 User.

use serde_json::{json, Value};

use super::*;
use crate::scim::discovery::{GROUP, USER};
use crate::scim::filter::parse;
use crate::scim::urn::ENTERPRISE_USER;

pub(super) const ENT: &str = ENTERPRISE_USER;

/// Compiles `attributes = { … }`, written as the inside of the inline table.
pub(super) fn policy(inline: &str) -> Policy {
    #[derive(serde::Deserialize)]
    struct T {
        attributes: RawAttributes,
    }
    let t: T = toml::from_str(&format!("attributes = {{ {inline} }}")).expect("valid TOML");
    Policy::compile(&t.attributes).expect("valid policy")
}

fn inbound(p: &Policy, doc: &Value) -> (Value, Outcome) {
    let mut doc = doc.clone();
    let out = p
        .apply_resource(Direction::Inbound, &USER, &mut doc)
        .expect("not refused");
    (doc, out)
}

/// The full User of RFC 7643 §8.2 (the certificate shortened).
pub(super) fn rfc_user() -> Value {
    json!({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
      "id": "2819c223-7f76-453a-919d-413861904646",
      "externalId": "701984",
      "userName": "bjensen@example.com",
      "name": {
        "formatted": "Ms. Barbara J Jensen, III",
        "familyName": "Jensen",
        "givenName": "Barbara",
        "middleName": "Jane",
        "honorificPrefix": "Ms.",
        "honorificSuffix": "III"
      },
      "displayName": "Babs Jensen",
      "nickName": "Babs",
      "profileUrl": "https://login.example.com/bjensen",
      "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": true},
        {"value": "babs@jensen.org", "type": "home"}
      ],
      "addresses": [
        {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
         "region": "CA", "postalCode": "91608", "country": "USA",
         "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA", "primary": true},
        {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood",
         "region": "CA", "postalCode": "91608", "country": "USA",
         "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA"}
      ],
      "phoneNumbers": [
        {"value": "555-555-5555", "type": "work"},
        {"value": "555-555-4444", "type": "mobile"}
      ],
      "ims": [{"value": "someaimhandle", "type": "aim"}],
      "photos": [
        {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"},
        {"value": "https://photos.example.com/profilephoto/72930000000Ccne/T", "type": "thumbnail"}
      ],
      "userType": "Employee",
      "title": "Tour Guide",
      "preferredLanguage": "en-US",
      "locale": "en-US",
      "timezone": "America/Los_Angeles",
      "active": true,
      "password": "t1meMa$heen",
      "groups": [
        {"value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
         "$ref": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
         "display": "Tour Guides"},
        {"value": "fc348aa8-3835-40eb-a20b-c726e15c55b5",
         "$ref": "https://example.com/v2/Groups/fc348aa8-3835-40eb-a20b-c726e15c55b5",
         "display": "Employees"},
        {"value": "71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7",
         "$ref": "https://example.com/v2/Groups/71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7",
         "display": "US Employees"}
      ],
      "x509Certificates": [
        {"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMxEzARBgNVBAgMCkNhbGlmb3JuaWExFDASBgNVBAoMC2V4YW1wbGUuY29tMRQwEgYDVQQDDAtleGFtcGxlLmNvbTAeFw0xMTEwMjIwNjI0MzFaFw0xMjEwMDQwNjI0MzFa"}
      ],
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {
          "value": "26118915-6090-4610-87e4-49d8ca9f808d",
          "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
          "displayName": "John Smith"
        }
      },
      "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": "W/\"3694e05e9dff591\"",
        "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
      }
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn rfc_user_loses_employee_number_cost_center_and_addresses() {
    let p = policy(&format!(
        r#"deny = ["employeeNumber", "{ENT}:costCenter", "addresses.*"]"#
    ));
    let (doc, out) = inbound(&p, &rfc_user());
    let mut expected = rfc_user();
    expected
        .as_object_mut()
        .expect("object")
        .remove("addresses");
    let ext = expected[ENT].as_object_mut().expect("extension");
    ext.remove("employeeNumber");
    ext.remove("costCenter");
    assert_eq!(doc, expected);
    assert_eq!(
        sorted(out.dropped),
        [
            "addresses".to_string(),
            format!("{ENT}:costCenter"),
            format!("{ENT}:employeeNumber"),
        ]
    );
    assert!(out.redacted.is_empty() && !out.no_operations_left);
}

#[test]
fn rfc_user_trips_no_detector() {
    let p = policy(r#"detect = ["us_ssn", "card", "iban"], on_detect = "reject""#);
    let (doc, out) = inbound(&p, &rfc_user());
    assert_eq!(doc, rfc_user());
    assert!(out.is_empty());
}

#[test]
fn a_document_with_nothing_to_change_comes_out_as_it_went_in() {
    let p = policy(r#"deny = ["costCenter", "nickName"], detect = ["card"]"#);
    let doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "emails": [], "name": {}});
    let (after, out) = inbound(&p, &doc);
    assert_eq!(after, doc);
    assert!(out.is_empty());
}

#[test]
fn an_empty_policy_touches_nothing_not_even_garbage() {
    let p = Policy::default();
    assert!(p.is_empty());
    for mut doc in [
        json!(null),
        json!([1, "x"]),
        rfc_user(),
        json!({"Resources": 3}),
    ] {
        let before = doc.clone();
        let out = p
            .apply_resource(Direction::Outbound, &USER, &mut doc)
            .expect("ok");
        assert!(out.is_empty());
        assert_eq!(doc, before);
    }
}

#[test]
fn names_match_without_case() {
    let p = policy(r#"deny = ["EMPLOYEENUMBER", "Addresses", "NAME.GIVENNAME"]"#);
    let doc = json!({
        "userName": "a",
        "addresses": [{"locality": "x"}],
        "NAME": {"givenname": "B", "familyName": "J"},
        ENT: {"employeenumber": "1", "division": "d"}
    });
    let (doc, out) = inbound(&p, &doc);
    assert_eq!(
        doc,
        json!({"userName": "a", "NAME": {"familyName": "J"}, ENT: {"division": "d"}})
    );
    assert_eq!(out.dropped.len(), 3);
}

#[test]
fn a_sub_attribute_is_cut_from_every_element() {
    let p = policy(r#"deny = ["emails.type", "name.givenName"]"#);
    let doc = json!({
        "userName": "a",
        "name": {"givenName": "B", "familyName": "J"},
        "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "TYPE": "home"}]
    });
    let (doc, out) = inbound(&p, &doc);
    assert_eq!(
        doc,
        json!({"userName": "a", "name": {"familyName": "J"}, "emails": [{"value": "a@x"}, {"value": "b@x"}]})
    );
    assert_eq!(
        sorted(out.dropped),
        ["emails.TYPE", "emails.type", "name.givenName"]
    );
}

#[test]
fn a_cut_that_leaves_nothing_takes_the_attribute() {
    let p = policy(r#"deny = ["name.givenName", "emails.value", "phoneNumbers.value"]"#);
    let doc = json!({
        "userName": "a",
        "name": {"givenName": "B"},
        "emails": [{"value": "a@x"}, {"value": "b@x"}],
        // Bare values stand for `value` (as some IdPs send them).
        "phoneNumbers": ["555-0100", {"value": "555-0101", "type": "work"}]
    });
    let (doc, _) = inbound(&p, &doc);
    assert_eq!(
        doc,
        json!({"userName": "a", "phoneNumbers": [{"type": "work"}]})
    );
}

#[test]
fn urn_qualified_and_dotted_keys_are_the_attribute_they_name() {
    let p = policy(r#"deny = ["employeeNumber", "name.givenName"]"#);
    let doc = json!({
        "userName": "a",
        format!("{ENT}:employeeNumber"): "1",
        "employeeNumber": "2",
        "name.givenName": "B",
        "name.familyName": "J",
        "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName": "C"
    });
    let (doc, out) = inbound(&p, &doc);
    assert_eq!(doc, json!({"userName": "a", "name.familyName": "J"}));
    assert_eq!(out.dropped.len(), 4);
}

#[test]
fn a_whole_extension_can_be_denied_by_its_urn() {
    let p = policy(&format!(r#"deny = ["{ENT}"]"#));
    let (doc, out) = inbound(&p, &rfc_user());
    assert!(doc.get(ENT).is_none());
    assert_eq!(out.dropped, [ENT]);
    // Its attributes written any other way go too.
    let doc = json!({"userName": "a", "department": "d", format!("{ENT}:manager.value"): "m"});
    let (doc, _) = inbound(&p, &doc);
    assert_eq!(doc, json!({"userName": "a"}));
}

#[test]
fn a_deny_reaches_into_extensions_the_schemas_do_not_list() {
    let p = policy(r#"deny = ["employeeNumber", "badge"]"#);
    let doc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:listed:1.0:User"],
        "userName": "a",
        "urn:example:listed:1.0:User": {"badge": "B-1", "floor": 3},
        "urn:example:unlisted:1.0:User": {"employeeNumber": "1"}
    });
    let (doc, out) = inbound(&p, &doc);
    assert_eq!(
        doc,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:listed:1.0:User"],
            "userName": "a",
            "urn:example:listed:1.0:User": {"floor": 3}
        })
    );
    assert!(out
        .dropped
        .contains(&"urn:example:unlisted:1.0:User:employeeNumber".to_string()));
}

#[test]
fn a_urn_qualified_deny_spares_the_same_name_elsewhere() {
    let p = policy(&format!(r#"deny = ["{ENT}:division"]"#));
    let doc = json!({
        "userName": "a",
        "urn:example:ext:1.0:User": {"division": "kept"},
        ENT: {"division": "gone", "department": "kept"}
    });
    let (doc, _) = inbound(&p, &doc);
    assert_eq!(
        doc,
        json!({"userName": "a", "urn:example:ext:1.0:User": {"division": "kept"}, ENT: {"department": "kept"}})
    );
}

#[test]
fn allow_keeps_what_it_lists_and_what_no_resource_can_lose() {
    let p = policy(r#"allow = ["name.*", "emails", "active", "displayName", "members"]"#);
    let (doc, out) = inbound(&p, &rfc_user());
    let keys: Vec<&String> = doc.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "active",
            "displayName",
            "emails",
            "id",
            "meta",
            "name",
            "schemas",
            "userName"
        ]
    );
    assert_eq!(doc["emails"], rfc_user()["emails"]);
    assert_eq!(doc["name"], rfc_user()["name"]);
    for gone in ["addresses", "password", "externalId", ENT] {
        assert!(out.dropped.iter().any(|d| d.starts_with(gone)), "{gone}");
    }
    // A Group's displayName is required, so it passes though not listed.
    let p = policy(r#"allow = ["members"]"#);
    let mut group =
        json!({"displayName": "Tour Guides", "members": [{"value": "1"}], "externalId": "x"});
    let out = p
        .apply_resource(Direction::Outbound, &GROUP, &mut group)
        .expect("ok");
    assert_eq!(
        group,
        json!({"displayName": "Tour Guides", "members": [{"value": "1"}]})
    );
    assert_eq!(out.dropped, ["externalId"]);
}

#[test]
fn allow_of_sub_attributes_keeps_only_those() {
    let p = policy(&format!(
        r#"allow = ["emails.value", "{ENT}:manager.value", "{ENT}:department"]"#
    ));
    let (doc, out) = inbound(&p, &rfc_user());
    assert_eq!(
        doc["emails"],
        json!([{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}])
    );
    assert_eq!(
        doc[ENT],
        json!({"department": "Tour Operations", "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}})
    );
    assert!(out.dropped.contains(&format!("{ENT}:manager.displayName")));
    assert!(out.dropped.contains(&"emails.primary".to_string()));
}

#[test]
fn allow_of_a_whole_extension_and_of_unqualified_names() {
    let p = policy(&format!(r#"allow = ["{ENT}", "title"]"#));
    let (doc, _) = inbound(&p, &rfc_user());
    assert_eq!(doc[ENT], rfc_user()[ENT]);
    assert_eq!(doc["title"], "Tour Guide");
    assert!(doc.get("nickName").is_none());
    // An allow list drops keys that are no attribute at all.
    let (doc, out) = inbound(&p, &json!({"userName": "a", "not a name": 1}));
    assert_eq!(doc, json!({"userName": "a"}));
    assert_eq!(out.dropped, ["not a name"]);
}

#[test]
fn each_direction_has_its_own_rules() {
    let p = policy(r#"inbound = { deny = ["nickName"] }, outbound = { deny = ["title"] }"#);
    let doc = json!({"userName": "a", "nickName": "n", "title": "t"});
    let (inb, _) = inbound(&p, &doc);
    assert_eq!(inb, json!({"userName": "a", "title": "t"}));
    let mut out_doc = doc.clone();
    p.apply_resource(Direction::Outbound, &USER, &mut out_doc)
        .expect("ok");
    assert_eq!(out_doc, json!({"userName": "a", "nickName": "n"}));
    let both = policy(r#"deny = ["title"], inbound = { deny = ["nickName"] }"#);
    let (inb, _) = inbound(&both, &doc);
    assert_eq!(inb, json!({"userName": "a"}));
}

fn with_card_and_ssn() -> Value {
    json!({
        "id": "4111111111111111",
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "meta": {"version": "W/\"4111 1111 1111 1111\""},
        "userName": "bjensen",
        "nickName": "4111 1111 1111 1111",
        "name": {"formatted": "SSN 078-05-1120", "givenName": "Barbara"},
        "emails": [
            {"value": "078-05-1120@example.com", "type": "work"},
            {"value": "b@example.com", "display": "card 5555-5555-5555-4444"}
        ],
        "urn:example:ext:1.0:User": {"iban": "GB82 WEST 1234 5698 7654 32", "tags": ["ok", "DE89370400440532013000"]}
    })
}

#[test]
fn redact_replaces_each_recognised_string_and_names_where() {
    let p = policy(r#"detect = ["us_ssn", "card", "iban"]"#);
    let (doc, out) = inbound(&p, &with_card_and_ssn());
    let r = scan::REDACTED;
    assert_eq!(doc["nickName"], r);
    assert_eq!(doc["name"], json!({"formatted": r, "givenName": "Barbara"}));
    assert_eq!(doc["emails"][0]["value"], r);
    assert_eq!(doc["emails"][1]["display"], r);
    assert_eq!(
        doc["urn:example:ext:1.0:User"],
        json!({"iban": r, "tags": ["ok", r]})
    );
    // id, schemas and meta are never looked at.
    assert_eq!(doc["id"], "4111111111111111");
    assert_eq!(doc["meta"], with_card_and_ssn()["meta"]);
    assert_eq!(
        sorted(out.redacted),
        [
            "emails.display",
            "emails.value",
            "name.formatted",
            "nickName",
            "urn:example:ext:1.0:User:iban",
            "urn:example:ext:1.0:User:tags",
        ]
    );
    assert!(out.dropped.is_empty());
}

#[test]
fn drop_removes_the_value_and_an_element_whose_value_it_was() {
    let p = policy(r#"detect = ["us_ssn", "card", "iban"], on_detect = "drop""#);
    let (doc, out) = inbound(&p, &with_card_and_ssn());
    assert_eq!(
        doc,
        json!({
            "id": "4111111111111111",
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "meta": {"version": "W/\"4111 1111 1111 1111\""},
            "userName": "bjensen",
            "name": {"givenName": "Barbara"},
            "emails": [{"value": "b@example.com"}],
            "urn:example:ext:1.0:User": {"tags": ["ok"]}
        })
    );
    assert_eq!(out.dropped.len(), 6);
}

#[test]
fn a_required_attribute_is_redacted_rather_than_dropped() {
    let p = policy(r#"detect = ["card"], on_detect = "drop""#);
    let (doc, out) = inbound(&p, &json!({"userName": "4111111111111111"}));
    assert_eq!(doc, json!({"userName": scan::REDACTED}));
    assert_eq!(out.redacted, ["userName"]);
}

#[test]
fn reject_refuses_and_never_repeats_the_value() {
    let p = policy(r#"detect = ["us_ssn"], on_detect = "reject""#);
    let mut doc = json!({"userName": "a", "name": {"formatted": "SSN 078-05-1120"}});
    let before = doc.clone();
    let r = p
        .apply_resource(Direction::Inbound, &USER, &mut doc)
        .expect_err("refused");
    assert_eq!(r.attribute, "name.formatted");
    assert_eq!(r.scim_type().as_str(), "invalidValue");
    let detail = r.detail();
    assert!(
        detail.contains("name.formatted") && detail.contains("us_ssn"),
        "{detail}"
    );
    assert!(
        !detail.contains("078") && !detail.contains("1120"),
        "{detail}"
    );
    let err = crate::scim::error::ScimError::from(r);
    assert_eq!(err.status, 400);
    assert_eq!(doc, before);
}

#[test]
fn a_custom_detector_names_its_pattern() {
    let p =
        policy(r#"detect = [{ name = "badge", regex = "^B-[0-9]{6}$" }], on_detect = "reject""#);
    let mut doc = json!({"userName": "a", "urn:example:ext:1.0:User": {"badge": "B-123456"}});
    let r = p
        .apply_resource(Direction::Outbound, &USER, &mut doc)
        .expect_err("refused");
    assert_eq!(r.attribute, "urn:example:ext:1.0:User:badge");
    assert!(r.detail().contains("\"badge\" pattern"), "{}", r.detail());
    let mut fine = json!({"userName": "a", "title": "badge B-123456"});
    assert!(p
        .apply_resource(Direction::Outbound, &USER, &mut fine)
        .is_ok());
}

#[test]
fn lists_and_detectors_work_together() {
    let p = policy(r#"deny = ["addresses"], detect = ["card"], on_detect = "drop""#);
    let doc = json!({"userName": "a", "addresses": [{"formatted": "4111 1111 1111 1111"}], "title": "4111 1111 1111 1111"});
    let (doc, out) = inbound(&p, &doc);
    assert_eq!(doc, json!({"userName": "a"}));
    assert_eq!(sorted(out.dropped), ["addresses", "title"]);
}

#[test]
fn a_list_response_is_filtered_resource_by_resource() {
    let p = policy(r#"deny = ["employeeNumber"], detect = ["card"]"#);
    let mut list = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 3,
        "itemsPerPage": 3,
        "startIndex": 1,
        "Resources": [
            {"id": "1", "userName": "a", ENT: {"employeeNumber": "1"}},
            {"id": "2", "userName": "b", ENT: {"employeeNumber": "2"}, "title": "4111111111111111"},
            {"id": "3", "userName": "c"}
        ]
    });
    let out = p
        .apply_list(Direction::Outbound, &USER, &mut list)
        .expect("ok");
    assert_eq!(
        list["Resources"],
        json!([
            {"id": "1", "userName": "a"},
            {"id": "2", "userName": "b", "title": scan::REDACTED},
            {"id": "3", "userName": "c"}
        ])
    );
    assert_eq!(list["totalResults"], 3);
    assert_eq!(out.dropped, [format!("{ENT}:employeeNumber")]);
    assert_eq!(out.redacted, ["title"]);
    let mut untouched = json!({"totalResults": 0, "Resources": []});
    assert!(p
        .apply_list(Direction::Outbound, &USER, &mut untouched)
        .expect("ok")
        .is_empty());
}

fn filter_ok(p: &Policy, text: &str) -> Result<(), Refusal> {
    p.check_filter(&USER, &parse(text).expect("valid filter"))
}

#[test]
fn a_filter_on_a_denied_attribute_is_refused_as_an_oracle() {
    let p = policy(&format!(
        r#"deny = ["employeeNumber", "emails.value", "addresses"], outbound = {{ deny = ["{ENT}:costCenter"] }}"#
    ));
    for refused in [
        r#"employeeNumber eq "701984""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        r#"EMAILS.VALUE co "example.com""#,
        r#"emails co "example.com""#,
        r#"emails[type eq "work" and value co "@example.com"]"#,
        r#"userName eq "a" or not (addresses.locality eq "Hollywood")"#,
        r#"costCenter eq "4130""#,
        r#"addresses[type eq "work"]"#,
    ] {
        let r = filter_ok(&p, refused).expect_err(refused);
        assert_eq!(r.scim_type().as_str(), "invalidFilter");
        assert!(!r.detail().contains('"'), "{}", r.detail());
    }
    for fine in [
        r#"userName eq "bjensen""#,
        r#"emails[type eq "work"]"#,
        r#"emails.type eq "work""#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"name.familyName co "O'Malley""#,
    ] {
        assert_eq!(filter_ok(&p, fine), Ok(()), "{fine}");
    }
    let r = filter_ok(&p, r#"emails co "x""#).expect_err("refused");
    assert_eq!(r.attribute, "emails.value");
}

#[test]
fn a_filter_under_an_allow_list_may_test_only_what_passes() {
    let p = policy(r#"allow = ["emails.value", "active"]"#);
    for fine in [
        r#"userName eq "a""#,
        r#"id eq "1" and active eq true"#,
        r#"emails co "x""#,
        r#"meta.created pr"#,
    ] {
        assert_eq!(filter_ok(&p, fine), Ok(()), "{fine}");
    }
    for refused in [
        r#"nickName pr"#,
        r#"emails[type eq "work"]"#,
        r#"externalId eq "x""#,
    ] {
        assert!(filter_ok(&p, refused).is_err(), "{refused}");
    }
}

#[test]
fn detectors_do_not_refuse_filters() {
    let p = policy(r#"detect = ["card"], on_detect = "reject""#);
    assert_eq!(filter_ok(&p, r#"externalId eq "4111111111111111""#), Ok(()));
}

/// What the text walk leaves to the tree walk, and what it passes on as it came.
#[test]
fn the_text_walk_passes_unread_members_on_byte_for_byte() {
    let p = policy(r#"deny = ["employeeNumber", "name.givenName"]"#);
    let text = format!(
        "{{ \"schemas\": [\"{}\", \"{ENT}\"],\n  \"userName\": \"b\\u00e9\",\n  \"x\": 1.50e2,\n  \
         \"name\": {{\"givenName\": \"B\", \"familyName\": \"J\"}},\n  \
         \"{ENT}\": {{\"employeeNumber\": \"7\", \"costCenter\": \"4\"}} }}",
        crate::scim::urn::USER
    );
    let edit = p
        .apply_text(Direction::Outbound, &USER, &text, false)
        .expect("for the text walk")
        .expect("lists never refuse");
    assert_eq!(
        edit.out.dropped,
        ["name.givenName", &format!("{ENT}:employeeNumber")]
    );
    let out = String::from_utf8(edit.text.expect("changed")).expect("UTF-8");
    // Members no list names keep their bytes: the escape, the number as written.
    assert!(out.contains("\"userName\": \"b\\u00e9\""), "{out}");
    assert!(out.contains("\"x\": 1.50e2"), "{out}");
    let read: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(read["name"], json!({"familyName": "J"}));
    assert_eq!(read[ENT], json!({"costCenter": "4"}));

    // Nothing named: nothing rewritten, a name the lists pass written twice or not. (A
    // resource's `Resources` is one more name: only a query's answer is a list.)
    for clean in [
        r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b"}"#,
        r#"{"title": "a", "title": "b"}"#,
        r#"{"Resources": [{"employeeNumber": "7"}]}"#,
    ] {
        let edit = p.apply_text(Direction::Outbound, &USER, clean, false);
        assert!(matches!(edit, Some(Ok(Edit { text: None, .. }))), "{clean}");
    }

    // Left to the tree walk: an escaped name, a name read twice, no object.
    for other in [
        r#"{"employee\u004eumber": "7"}"#,
        r#"{"employeeNumber": "7", "employeeNumber": "8"}"#,
        r#"[{"employeeNumber": "7"}]"#,
        r#"{"employeeNumber": "7""#,
    ] {
        assert!(
            p.apply_text(Direction::Outbound, &USER, other, false)
                .is_none(),
            "{other}"
        );
    }
}

/// An object under a URN the resource type does not name is an extension if `schemas` lists
/// it, else a URN-qualified attribute: the text walk reads `schemas` to tell, as the tree walk
/// does.
#[test]
fn the_text_walk_reads_schemas_to_tell_an_extension_from_an_attribute() {
    let p = policy(r#"deny = ["urn:example:ext:1.0:User.badge"]"#);
    for listed in [false, true] {
        let mut schemas = vec![crate::scim::urn::USER];
        if listed {
            schemas.push("urn:example:ext:1.0:User");
        }
        let doc = json!({"schemas": schemas, "userName": "b", "urn:example:ext:1.0:User": {"badge": "7", "floor": "2"}});
        let mut tree = doc.clone();
        let out = p
            .apply_resource(Direction::Outbound, &USER, &mut tree)
            .expect("lists never refuse");
        let edit = p
            .apply_text(Direction::Outbound, &USER, &doc.to_string(), false)
            .expect("for the text walk")
            .expect("lists never refuse");
        let read = edit
            .text
            .map_or(doc.clone(), |t| serde_json::from_slice(&t).expect("JSON"));
        assert_eq!((edit.out, read), (out, tree.clone()), "listed: {listed}");
        let badge = &tree["urn:example:ext:1.0:User"]["badge"];
        assert_eq!(badge.is_null(), !listed, "listed: {listed}");
    }
}
