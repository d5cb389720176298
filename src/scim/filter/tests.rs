//! Filter scenarios: every example of RFC 7644 §3.4.2.2, precedence, evaluation rules, hostile
//! input, and properties (never panics; the canonical form re-parses to the same tree).

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// The filter examples of RFC 7644 §3.4.2.2 (without `filter=` and line folding).
const RFC_EXAMPLES: [&str; 17] = [
    r#"userName eq "bjensen""#,
    r#"name.familyName co "O'Malley""#,
    r#"userName sw "J""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    r#"title pr"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
    r#"title pr and userType eq "Employee""#,
    r#"title pr or userType eq "Intern""#,
    r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType eq "Employee" and (emails.type eq "work")"#,
    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
];

/// Abridged RFC 7643 §8.2 User, with one second e-mail and an IM of type xmpp.
fn bjensen() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [{"value": "babs@foo.com", "type": "xmpp"}],
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z",
                 "lastModified": "2011-05-13T04:42:34Z"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984", "manager": {"value": "26118915-6090"}
        }
    })
}

fn eval(filter: &str, resource: &Value) -> Result<bool, FilterError> {
    matches(
        &parse(filter).expect("filter parses"),
        resource,
        &CoreSchema::User,
    )
}

fn is_match(filter: &str) -> bool {
    eval(filter, &bjensen()).expect("evaluates")
}

#[test]
fn filter_parses_every_rfc_7644_example_and_prints_it_back() {
    for example in RFC_EXAMPLES {
        let parsed = parse(example).expect(example);
        assert_eq!(
            parse(&parsed.to_string()).as_ref(),
            Ok(&parsed),
            "{example}"
        );
    }
    // Already canonical examples print unchanged.
    assert_eq!(
        parse(RFC_EXAMPLES[15]).expect("parses").to_string(),
        RFC_EXAMPLES[15]
    );
}

#[test]
fn filter_evaluates_rfc_examples_against_bjensen() {
    let expected = [
        false, false, false, false, true, false, true, false, true, true, true, true, true, false,
        true, true, true,
    ];
    for (example, want) in RFC_EXAMPLES.iter().zip(expected) {
        assert_eq!(is_match(example), want, "{example}");
    }
    assert!(
        is_match(r#"userName sw "BJ""#)
            && is_match(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "b""#)
    );
}

#[test]
fn filter_precedence_and_binds_tighter_than_or() {
    let f = parse(r#"a eq "1" or b eq "2" and c eq "3""#).expect("parses");
    let Filter::Or(items) = &f else {
        panic!("top must be or: {f:?}")
    };
    assert!(matches!(items[1], Filter::And(_)));
    assert_eq!(f.to_string(), r#"a eq "1" or b eq "2" and c eq "3""#);
    let grouped = parse(r#"(a eq "1" or b eq "2") and c eq "3""#).expect("parses");
    assert_eq!(
        grouped.to_string(),
        r#"(a eq "1" or b eq "2") and c eq "3""#
    );
}

#[test]
fn filter_not_binds_tightest_and_needs_parentheses() {
    let f = parse(r#"not (a pr) and b pr"#).expect("parses");
    assert!(matches!(&f, Filter::And(items) if matches!(items[0], Filter::Not(_))));
    assert!(parse("not a pr").is_err());
}

#[test]
fn filter_keywords_and_literals_are_case_insensitive() {
    let f = parse(r#"userName EQ "x" AND active Eq TRUE Or title PR"#).expect("parses");
    assert_eq!(
        f.to_string(),
        r#"userName eq "x" and active eq true or title pr"#
    );
    assert_eq!(parse("x eq NULL").expect("parses").to_string(), "x eq null");
}

#[test]
fn filter_groups_of_the_same_operator_flatten_canonically() {
    let f = parse(r#"(a pr or (b pr or c pr)) or ((d pr))"#).expect("parses");
    assert_eq!(f.to_string(), "a pr or b pr or c pr or d pr");
}

#[test]
fn filter_numbers_strings_and_escapes_round_trip() {
    for src in [
        r#"n gt -1.5e3"#,
        r#"n eq 42"#,
        r#"s eq "quote\" backslash\\ tab\t é""#,
    ] {
        let f = parse(src).expect(src);
        assert_eq!(parse(&f.to_string()), Ok(f), "{src}");
    }
}

#[test]
fn filter_rejects_bad_input_with_invalid_filter() {
    let cases = [
        (r#"userName eq "abc"#, "unterminated"),
        (r#"userName xx "abc""#, "unknown operator"),
        (r#"userName eq abc"#, "unquoted"),
        (r#"userName eq"#, "missing value"),
        (r#"(userName pr"#, "unclosed group"),
        (r#"userName pr)"#, "stray paren"),
        (r#"emails[type eq "work""#, "unclosed bracket"),
        (
            r#"emails[type eq "work"].value eq "x""#,
            "sub-attribute after value path",
        ),
        (r#"emails[ims[type pr]]"#, "nested value path"),
        (r#"emails[name.given pr]"#, "dotted name in value path"),
        (r#"active gt true"#, "ordering a boolean"),
        (r#"title co 5"#, "substring of a number"),
        (r#"n eq 1e999"#, "number out of range"),
        ("", "empty"),
        (r#"a pr and"#, "dangling and"),
        (r#"1a pr"#, "bad attribute name"),
    ];
    for (src, why) in cases {
        let err = parse(src).expect_err(why);
        assert_eq!(
            ScimError::from(err).scim_type,
            Some(ScimType::InvalidFilter),
            "{why}"
        );
    }
}

#[test]
fn filter_rejects_deep_nesting_and_huge_input() {
    let deep = format!(
        "{}a pr{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(parse(&deep), Err(FilterError::TooDeep));
    let nots = format!("{}a pr{}", "not (".repeat(10_000), ")".repeat(10_000));
    assert_eq!(parse(&nots), Err(FilterError::TooLong));
    let shallow = format!("{}a pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse(&shallow).is_ok());
    let wide = vec!["a pr"; 2000].join(" or ");
    assert!(matches!(parse(&wide), Ok(Filter::Or(items)) if items.len() == 2000));
}

#[test]
fn filter_string_comparison_respects_case_exactness() {
    assert!(is_match(r#"userName eq "BJENSEN@example.com""#));
    assert!(!is_match(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
    assert!(is_match(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
    assert!(is_match(r#"emails[type eq "WORK"]"#));
}

#[test]
fn filter_multi_valued_attributes_match_any_value() {
    assert!(is_match(r#"emails.value ew "jensen.org""#));
    assert!(is_match(r#"emails co "jensen.org""#));
    assert!(is_match(r#"emails[type eq "home" and value co "babs"]"#));
    assert!(!is_match(r#"emails[type eq "work" and value co "babs"]"#));
    assert!(is_match(r#"emails.primary eq true"#));
}

#[test]
fn filter_presence_ignores_null_and_empty_values() {
    let r = json!({"a": null, "b": "", "c": [], "d": {}, "e": "x", "f": [null], "g": false});
    let want = [
        ("a", false),
        ("b", false),
        ("c", false),
        ("d", false),
        ("e", true),
        ("f", false),
        ("g", true),
        ("z", false),
    ];
    for (attr, present) in want {
        assert_eq!(eval(&format!("{attr} pr"), &r), Ok(present), "{attr}");
    }
}

#[test]
fn filter_missing_attribute_matches_only_ne() {
    assert!(
        !is_match(r#"nickName eq "Babs""#)
            && !is_match(r#"nickName co "B""#)
            && !is_match(r#"nickName gt "A""#)
    );
    assert!(is_match(r#"nickName ne "Babs""#));
    assert!(
        is_match("nickName eq null") && !is_match("title eq null") && is_match("title ne null")
    );
    assert!(!is_match(r#"emails.value ne "babs@jensen.org""#));
}

#[test]
fn filter_orders_datetimes_by_instant_and_numbers_numerically() {
    assert!(is_match(
        r#"meta.lastModified gt "2011-05-13T06:42:33+02:00""#
    ));
    assert!(is_match(
        r#"meta.lastModified eq "2011-05-13T04:42:34.000Z""#
    ));
    let r = json!({"n": 10, "s": "b"});
    assert_eq!(eval("n gt 9.5", &r), Ok(true));
    assert_eq!(eval("n le 10", &r), Ok(true));
    assert_eq!(eval(r#"s lt "C""#, &r), Ok(true));
    assert_eq!(eval(r#"n gt "9""#, &r), Ok(false));
}

#[test]
fn filter_ordering_a_boolean_or_complex_attribute_is_invalid_filter() {
    assert!(matches!(
        eval(r#"active gt "a""#, &bjensen()),
        Err(FilterError::Unsupported { .. })
    ));
    assert!(matches!(
        eval(r#"name lt "a""#, &bjensen()),
        Err(FilterError::Unsupported { .. })
    ));
}

#[test]
fn filter_urn_prefix_reaches_extension_attributes() {
    assert!(is_match(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
    ));
    assert!(is_match(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr"#
    ));
    assert!(!is_match(
        r#"urn:ietf:params:scim:schemas:extension:other:2.0:User:employeeNumber pr"#
    ));
}

#[test]
fn filter_errors_never_echo_string_literals() {
    let err = parse(r#"userName eq "secret@example.com" "secret""#).expect_err("trailing string");
    assert!(!err.to_string().contains("secret"), "{err}");
    let err = parse("externalId eq jyoung").expect_err("unquoted value");
    assert!(!err.to_string().contains("jyoung"), "{err}");
}

/// Small filters built from a grammar, so the round-trip property explores real structure.
fn arb_filter() -> impl Strategy<Value = Filter> {
    let name = prop::sample::select(vec!["userName", "emails", "title", "meta", "Type", "$ref"]);
    let sub = prop::option::of(prop::sample::select(vec![
        "value",
        "lastModified",
        "givenName",
    ]));
    let attr = (
        prop::option::of(Just("urn:ietf:params:scim:schemas:core:2.0:User")),
        name,
        sub,
    )
        .prop_map(|(urn, name, sub)| AttrPath {
            urn: urn.map(str::to_string),
            name: name.into(),
            sub: sub.map(str::to_string),
        });
    let value = prop_oneof![
        any::<String>().prop_map(CompValue::Str),
        any::<i64>().prop_map(|n| CompValue::Num(n.into())),
        any::<bool>().prop_map(CompValue::Bool),
        Just(CompValue::Null),
    ];
    let op = prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Gt,
    ]);
    let leaf = prop_oneof![
        attr.clone().prop_map(Filter::Present),
        (attr, op, value).prop_filter_map("valid operand", |(attr, op, value)| {
            let f = Filter::Compare { attr, op, value };
            parse(&f.to_string()).ok()
        }),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::and_of),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::or_of),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

proptest! {
    #[test]
    fn filter_parsing_never_panics(input in "\\PC{0,200}") {
        let _ = parse(&input);
    }

    #[test]
    fn filter_parsing_grammar_soup_never_panics(parts in prop::collection::vec(
        prop::sample::select(vec!["(", ")", "[", "]", "not", "and", "or", "eq", "pr", "gt", "a", "b.c", "\"x\"", "1", "true", " ", "\"", "\\"]),
        0..60,
    )) {
        let input: String = parts.concat();
        if let Ok(f) = parse(&input) {
            let _ = matches(&f, &bjensen(), &CoreSchema::User);
        }
    }

    #[test]
    fn filter_canonical_form_reparses_to_the_same_tree(f in arb_filter()) {
        let printed = f.to_string();
        prop_assert_eq!(parse(&printed), Ok(f));
        let reparsed = parse(&printed).map(|g| g.to_string());
        prop_assert_eq!(reparsed, Ok(printed));
    }

    #[test]
    fn filter_parsed_text_prints_canonically_and_stably(input in "\\PC{0,120}") {
        if let Ok(f) = parse(&input) {
            prop_assert_eq!(parse(&f.to_string()), Ok(f));
        }
    }
}
