//! Lists with `filter` and `sortBy`: every filter example of RFC 7644 §3.4.2.2 against a small
//! directory, root and `.search` queries, undefined attributes, sorting rules and bad input.

use serde_json::json;

use super::*;
use crate::scim::urn;

/// Four users chosen so that each RFC example selects a different set: bjensen (RFC 7643
/// §8.3, an Employee with a work address at example.com), jsmith (an Intern with an xmpp IM),
/// JDoe (an Employee with only a home e-mail) and alice (a Contractor without e-mails).
struct Directory {
    store: MemoryStore,
    ids: [String; 4],
}

const BJENSEN: usize = 0;
const JSMITH: usize = 1;
const JDOE: usize = 2;
const ALICE: usize = 3;

fn directory() -> Directory {
    let store = MemoryStore::new();
    let mut bjensen = enterprise_user();
    bjensen["userName"] = json!("bjensen");
    let bodies = [
        bjensen,
        json!({"schemas": [urn::USER], "userName": "jsmith", "name": {"familyName": "O'Malley"},
               "title": "Intern Lead", "userType": "Intern",
               "emails": [{"value": "jsmith@example.org", "type": "work"}],
               "ims": [{"value": "js@foo.com", "type": "xmpp"}]}),
        json!({"schemas": [urn::USER], "userName": "JDoe", "userType": "Employee",
               "emails": [{"value": "jdoe@example.com", "type": "home"}]}),
        json!({"schemas": [urn::USER], "userName": "alice", "title": "Engineer",
               "userType": "Contractor"}),
    ];
    let ids = bodies.map(|body| {
        let a = call(&store, Method::Post, "/Users", Some(body));
        assert_eq!(a.status, 201, "{}", a.doc);
        a.doc["id"].as_str().expect("id").to_owned()
    });
    Directory { store, ids }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn ids_of(a: &Answer) -> Vec<String> {
    a.doc["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("a list, got {}", a.doc))
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

impl Directory {
    fn get(&self, target: &str) -> Answer {
        call(&self.store, Method::Get, target, None)
    }

    fn filter(&self, filter: &str) -> Vec<String> {
        let a = self.get(&format!("/Users?filter={}", encode(filter)));
        assert_eq!(a.status, 200, "{filter}: {}", a.doc);
        assert_eq!(
            a.doc["totalResults"].as_u64(),
            Some(ids_of(&a).len() as u64)
        );
        ids_of(&a)
    }

    fn users(&self, which: &[usize]) -> Vec<String> {
        which.iter().map(|i| self.ids[*i].clone()).collect()
    }
}

#[test]
fn every_rfc_7644_filter_example_selects_the_right_users() {
    let d = directory();
    let all = [BJENSEN, JSMITH, JDOE, ALICE];
    let cases: [(&str, &[usize]); 17] = [
        (r#"userName eq "bjensen""#, &[BJENSEN]),
        (r#"name.familyName co "O'Malley""#, &[JSMITH]),
        (r#"userName sw "J""#, &[JSMITH, JDOE]),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            &[JSMITH, JDOE],
        ),
        ("title pr", &[BJENSEN, JSMITH, ALICE]),
        (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, &all),
        (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, &all),
        (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, &[]),
        (r#"meta.lastModified le "2011-05-13T04:42:34Z""#, &[]),
        (r#"title pr and userType eq "Employee""#, &[BJENSEN]),
        (
            r#"title pr or userType eq "Intern""#,
            &[BJENSEN, JSMITH, ALICE],
        ),
        (
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            &[BJENSEN],
        ),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            &[BJENSEN, JDOE],
        ),
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            &[ALICE],
        ),
        (
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            &[BJENSEN],
        ),
        (
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            &[BJENSEN],
        ),
        (
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            &[BJENSEN, JSMITH],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(d.filter(filter), d.users(expected), "{filter}");
    }
}

#[test]
fn filters_follow_the_schemas_case_rules() {
    let d = directory();
    // userName is caseExact false, id and externalId are caseExact true (RFC 7643 §3.1, §4.1).
    assert_eq!(d.filter(r#"USERNAME eq "BJENSEN""#), d.users(&[BJENSEN]));
    assert_eq!(d.filter(r#"externalId eq "701984""#), d.users(&[BJENSEN]));
    let upper = d.ids[JDOE].to_uppercase();
    assert!(d.filter(&format!(r#"id eq "{upper}""#)).is_empty());
    let ext = format!("{}:employeeNumber eq \"701984\"", urn::ENTERPRISE_USER);
    assert_eq!(d.filter(&ext), d.users(&[BJENSEN]));
}

#[test]
fn undefined_attributes_match_nothing_whatever_the_operator() {
    let d = directory();
    for filter in [
        "shoeSize eq 44",
        "shoeSize ne 44",
        "shoeSize pr",
        r#"emails[shoeSize eq "x"]"#,
        r#"shoes[size gt 1]"#,
    ] {
        assert!(d.filter(filter).is_empty(), "{filter}");
    }
    // `not` still negates: the test inside it is false, so every user matches.
    assert_eq!(d.filter("not (shoeSize ne 44)").len(), 4);
    assert_eq!(
        d.filter(r#"shoeSize eq 1 or userName eq "alice""#),
        d.users(&[ALICE])
    );
}

#[test]
fn total_results_counts_matches_and_paging_applies_after_filtering() {
    let d = directory();
    let q = encode("title pr");
    let a = d.get(&format!("/Users?filter={q}&startIndex=2&count=1"));
    assert_eq!(a.doc["totalResults"], 3);
    assert_eq!(a.doc["itemsPerPage"], 1);
    assert_eq!(ids_of(&a), d.users(&[JSMITH]));
}

#[test]
fn filters_reach_derived_and_group_attributes() {
    let d = directory();
    let g = post_group(&d.store, "Tour Guides", &[&d.ids[BJENSEN], &d.ids[JDOE]]);
    let by_group = format!(r#"groups.value eq "{g}""#);
    assert_eq!(d.filter(&by_group), d.users(&[BJENSEN, JDOE]));
    let member = format!(r#"members[value eq "{}"]"#, d.ids[JDOE]);
    let a = d.get(&format!("/Groups?filter={}", encode(&member)));
    assert_eq!(ids_of(&a), std::slice::from_ref(&g));
    let a = d.get(&format!(
        "/Groups?filter={}",
        encode(r#"displayName eq "tour guides""#)
    ));
    assert_eq!(ids_of(&a), [g]);
}

#[test]
fn root_and_search_filters_span_both_resource_types() {
    let d = directory();
    let g = post_group(&d.store, "Engineers", &[]);
    let a = d.get(&format!(
        "/?filter={}",
        encode(r#"meta.resourceType eq "Group" or userName eq "alice""#)
    ));
    assert_eq!(ids_of(&a), [d.ids[ALICE].clone(), g.clone()]);
    let body = json!({"schemas": [urn::SEARCH_REQUEST], "filter": "displayName sw \"eng\"",
                      "attributes": ["displayName"]});
    let a = call(&d.store, Method::Post, "/.search", Some(body.clone()));
    assert_eq!(ids_of(&a), [g]);
    assert_eq!(a.doc["Resources"][0]["displayName"], "Engineers");
    let a = call(&d.store, Method::Post, "/Users/.search", Some(body));
    assert_eq!(a.doc["totalResults"], 0);
}

#[test]
fn bad_filters_are_invalid_filter() {
    let d = directory();
    for filter in [
        "userName eq",
        r#"userName xx "a""#,
        r#"(userName eq "a""#,
        "active gt true",
        r#"name gt "a""#,
    ] {
        let a = d.get(&format!("/Users?filter={}", encode(filter)));
        assert_error(&a, 400, Some("invalidFilter"));
    }
    let body = json!({"schemas": [urn::SEARCH_REQUEST], "filter": "emails[type eq"});
    let a = call(&d.store, Method::Post, "/Users/.search", Some(body));
    assert_error(&a, 400, Some("invalidFilter"));
}

fn user_names(a: &Answer) -> Vec<String> {
    assert_eq!(a.status, 200, "{}", a.doc);
    a.doc["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["userName"].as_str().unwrap_or("-").to_owned())
        .collect()
}

#[test]
fn sort_by_user_name_ignores_case_in_both_orders() {
    let d = directory();
    let asc = d.get("/Users?sortBy=userName");
    assert_eq!(user_names(&asc), ["alice", "bjensen", "JDoe", "jsmith"]);
    let desc = d.get("/Users?sortBy=username&sortOrder=descending");
    assert_eq!(user_names(&desc), ["jsmith", "JDoe", "bjensen", "alice"]);
}

#[test]
fn resources_without_the_value_sort_last_ascending_and_first_descending() {
    let d = directory();
    // title: bjensen "Tour Guide", jsmith "Intern Lead", alice "Engineer", JDoe none.
    let asc = d.get("/Users?sortBy=title");
    assert_eq!(user_names(&asc), ["alice", "jsmith", "bjensen", "JDoe"]);
    let desc = d.get("/Users?sortBy=title&sortOrder=descending");
    assert_eq!(user_names(&desc), ["JDoe", "bjensen", "jsmith", "alice"]);
}

#[test]
fn multi_valued_sorts_by_primary_value_and_ties_keep_creation_order() {
    let d = directory();
    // bjensen's primary e-mail is bjensen@example.com, not her first-listed one.
    let a = d.get("/Users?sortBy=emails");
    assert_eq!(user_names(&a), ["bjensen", "JDoe", "jsmith", "alice"]);
    let a = d.get("/Users?sortBy=emails.type&sortOrder=descending");
    assert_eq!(user_names(&a), ["alice", "bjensen", "jsmith", "JDoe"]);
    // Equal keys (userType Employee) keep creation order, in either direction.
    let a = d.get("/Users?sortBy=userType&sortOrder=descending");
    assert_eq!(user_names(&a), ["jsmith", "bjensen", "JDoe", "alice"]);
}

#[test]
fn sorting_filtering_and_paging_compose() {
    let d = directory();
    let body = json!({"schemas": [urn::SEARCH_REQUEST], "filter": "title pr",
                      "sortBy": "title", "sortOrder": "descending", "startIndex": 2, "count": 1});
    let a = call(&d.store, Method::Post, "/Users/.search", Some(body));
    assert_eq!(
        (user_names(&a), a.doc["totalResults"].as_u64()),
        (vec!["jsmith".to_owned()], Some(3))
    );
    post_group(&d.store, "Aardvarks", &[]);
    let a = d.get("/?sortBy=meta.resourceType&count=1");
    assert_eq!(a.doc["Resources"][0]["displayName"], "Aardvarks");
}

#[test]
fn bad_sort_parameters_are_invalid_value() {
    let d = directory();
    for q in [
        "sortBy=name",
        "sortBy=a.b.c",
        "sortBy=userName&sortOrder=up",
    ] {
        assert_error(&d.get(&format!("/Users?{q}")), 400, Some("invalidValue"));
    }
    // An attribute the schema does not define gives every resource no value: creation order.
    let a = d.get("/Users?sortBy=shoeSize");
    assert_eq!(user_names(&a), ["bjensen", "jsmith", "JDoe", "alice"]);
}
