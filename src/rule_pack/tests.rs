//! The engine on small inline packs: each action and builtin, per-operation rules, compile
//! errors, and the properties (idempotence, untouched bodies, no panics).

use http::{HeaderMap, Method};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::schema;
use super::trial;
use super::*;
use crate::scim::discovery::{Extensions, GROUP, USER};

const PACK: &str = r#"
name = "t"
description = "test"

[[rule]]
id = "op-case"
description = "ops in any case"
source = "RFC 7644 §3.5.2"
when = { method = ["PATCH"] }
actions = [
  { action = "lowercase", at = "$.Operations[*].op" },
  { action = "map", at = "$.Operations[*].op", table = { delete = "remove" } },
]

[[rule]]
id = "schemas"
description = "PatchOp without schemas"
source = "scimgateway#111"
when = { method = ["PATCH"] }
actions = [ { action = "default", at = "$.schemas", value = ["urn:ietf:params:scim:api:messages:2.0:PatchOp"] } ]

[[rule]]
id = "dotted"
description = "no-path values keyed by paths"
source = "entra"
when = { has_path = false }
actions = [ { action = "split_dotted_keys", at = "$.value" } ]

[[rule]]
id = "manager"
description = "manager as a bare string"
source = "SCIM-SDK#686"
when = { path = ["manager"], value = "string" }
actions = [ { action = "wrap", at = "$.value" } ]

[[rule]]
id = "members"
description = "member removes as value arrays"
source = "entra"
when = { method = ["PATCH"] }
actions = [ { action = "builtin", name = "members_remove_by_value" } ]

[[rule]]
id = "types"
description = "booleans as strings"
source = "entra"
actions = [ { action = "builtin", name = "coerce_by_schema" } ]

[[rule]]
id = "filter"
description = "filters"
source = "entra"
actions = [ { action = "builtin", name = "normalize_filter" } ]
"#;

fn pack() -> std::sync::Arc<Pack> {
    let packs = Packs::compile(vec![("t.toml".into(), PACK.into())]).expect("compiles");
    packs.get("t").expect("named t")
}

fn patch(
    rt: &'static crate::scim::discovery::ResourceTypeDef,
    body: Value,
) -> (Value, Vec<String>) {
    let headers = HeaderMap::new();
    let s = Subject {
        method: &Method::PATCH,
        resource: Some(rt),
        headers: &headers,
        shape: Shape::Patch,
        answer: None,
        extensions: Extensions::none(),
    };
    let mut body = body;
    let fired = apply(&pack(), &s, Some(&mut body), None);
    (body, fired.iter().map(|r| r.to_string()).collect())
}

#[test]
fn entra_legacy_disable_becomes_rfc_form() {
    let (body, fired) = patch(
        &USER,
        json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
    );
    assert_eq!(
        body,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": "replace", "path": "active", "value": false}]})
    );
    assert_eq!(fired, ["t/op-case", "t/schemas", "t/types"]);
}

#[test]
fn pathless_values_keyed_by_paths_and_urns_are_nested() {
    let (body, _) = patch(
        &USER,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {
            "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}}}]}),
    );
    assert_eq!(
        body["Operations"][0]["value"],
        json!({"displayName": "Bjfe", "name": {"givenName": "Kkom", "familyName": "Unua"},
               "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "employeeNumber": "Aklq"}})
    );
}

#[test]
fn a_bare_manager_id_is_wrapped_only_where_the_path_names_manager() {
    let (body, fired) = patch(
        &USER,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "2c2f"},
            {"op": "add", "path": "nickName", "value": "Babs"}]}),
    );
    assert_eq!(body["Operations"][0]["value"], json!({"value": "2c2f"}));
    assert_eq!(body["Operations"][1]["value"], "Babs");
    assert_eq!(fired, ["t/manager"]);
}

#[test]
fn member_removes_given_as_values_become_one_filtered_remove_each() {
    let (body, _) = patch(
        &GROUP,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "b\"c"}]}]}),
    );
    assert_eq!(
        body["Operations"],
        json!([{"op": "remove", "path": "members[value eq \"a\"]"},
               {"op": "remove", "path": "members[value eq \"b\\\"c\"]"}])
    );
}

#[test]
fn string_booleans_are_typed_by_the_schema_in_values_and_path_filters() {
    let (body, _) = patch(
        &USER,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "replace", "path": "roles[primary eq \"True\"].value", "value": "Admin"},
            {"op": "replace", "value": {"active": "false", "displayName": "true"}},
            {"op": "add", "path": "emails", "value": {"value": "a@b.c", "primary": "TRUE"}}]}),
    );
    assert_eq!(
        body["Operations"][0]["path"],
        "roles[primary eq true].value"
    );
    assert_eq!(
        body["Operations"][1]["value"],
        json!({"active": false, "displayName": "true"})
    );
    assert_eq!(
        body["Operations"][2]["value"],
        json!([{"value": "a@b.c", "primary": true}])
    );
}

#[test]
fn filters_are_rewritten_from_their_parse() {
    let headers = HeaderMap::new();
    let s = Subject {
        method: &Method::GET,
        resource: Some(&USER),
        headers: &headers,
        shape: Shape::Other,
        answer: None,
        extensions: Extensions::none(),
    };
    let run = |text: &str| {
        let mut f = text.to_owned();
        apply(&pack(), &s, None, Some(&mut f));
        f
    };
    assert_eq!(run("externalId eq jyoung"), "externalId eq \"jyoung\"");
    assert_eq!(
        run("emails[primary eq \"True\"]"),
        "emails[primary eq true]"
    );
    assert_eq!(
        run("userName EQ \"x\" AND active eq \"false\""),
        "userName eq \"x\" and active eq false"
    );
    assert_eq!(run("userName eq \"x\""), "userName eq \"x\"");
    // What does not parse even leniently is left for the later stages to refuse.
    assert_eq!(run("userName eq"), "userName eq");
}

#[test]
fn an_rfc_clean_request_fires_nothing() {
    let clean = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "remove", "path": "members[value eq \"a\"]"},
        {"op": "replace", "value": {"active": false}}]});
    let (body, fired) = patch(&GROUP, clean.clone());
    assert_eq!((body, fired.len()), (clean, 0));
}

#[test]
fn every_problem_of_a_pack_is_named_with_its_rule() {
    let bad = r#"
name = "bad"
description = "d"
extends = ["nowhere"]
[[rule]]
id = "a"
description = "d"
source = "s"
when = { path = ["members"] }
actions = [ { action = "builtin", name = "drop_nulls" }, { action = "shout", at = "$" } ]
[[rule]]
id = "b"
description = "d"
source = "s"
actions = [ { action = "set", at = "$.x" }, { action = "rename", at = "x", to = "y" } ]
"#;
    let problems = Packs::compile(vec![("bad.toml".into(), bad.into())]).expect_err("refused");
    let all = problems.join("\n");
    for expected in [
        "bad.toml: extends: no pack named \"nowhere\"",
        "bad.toml: rule \"a\": actions[1]: unknown action \"shout\"",
        "bad.toml: rule \"a\": a builtin works on the whole request",
        "bad.toml: rule \"b\": actions[0]: set needs `value`",
        "bad.toml: rule \"b\": actions[1]: \"x\" must start with '$'",
    ] {
        assert!(all.contains(expected), "{expected:?} missing from:\n{all}");
    }
}

#[test]
fn malformed_has_and_path_is_are_named_with_their_rule() {
    let bad = r#"
name = "bad"
description = "d"
[[rule]]
id = "c"
description = "d"
source = "s"
when = { path_is = ["members[value eq"], has = ["", " x"] }
actions = [ { action = "remove", at = "$.value" } ]
[[rule]]
id = "d"
description = "d"
source = "s"
when = { has = ["filter"] }
actions = [ { action = "remove_param", params = ["x"] } ]
"#;
    let problems = Packs::compile(vec![("bad.toml".into(), bad.into())]).expect_err("refused");
    let all = problems.join("\n");
    for expected in [
        "bad.toml: rule \"c\": when.path_is: \"members[value eq\": ",
        "bad.toml: rule \"c\": when.has: \"\" is not a member name",
        "bad.toml: rule \"c\": when.has: \" x\" is not a member name",
        "bad.toml: rule \"d\": remove_param works on a request's query",
    ] {
        assert!(all.contains(expected), "{expected:?} missing from:\n{all}");
    }
}

#[test]
fn has_and_path_is_select_without_case() {
    let pack = r#"
name = "t"
description = "d"
[[rule]]
id = "whole-manager"
description = "d"
source = "s"
when = { path_is = ["manager"], has = ["VALUE"] }
actions = [ { action = "set", at = "$.op", value = "remove" } ]
"#;
    let packs = Packs::compile(vec![("t.toml".into(), pack.into())]).expect("compiles");
    let s = Subject {
        method: &Method::PATCH,
        resource: Some(&USER),
        headers: &HeaderMap::new(),
        shape: Shape::Patch,
        answer: None,
        extensions: Extensions::none(),
    };
    let mut body = json!({"Operations": [
        {"op": "add", "path": " Manager ", "value": "1"},
        {"op": "add", "path": "manager.value", "value": "1"},
        {"op": "add", "path": "manager"},
    ]});
    let fired = apply(
        &packs.get("t").expect("compiled"),
        &s,
        Some(&mut body),
        None,
    );
    assert_eq!(fired.len(), 1);
    let ops: Vec<&str> = body["Operations"]
        .as_array()
        .expect("ops")
        .iter()
        .map(|o| o["op"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ops, ["remove", "add", "add"]);
}

#[test]
fn unknown_keys_in_a_pack_are_refused_with_their_line() {
    let bad = "name = \"x\"\ndescription = \"d\"\n[[rule]]\nid = \"a\"\ndescription = \"d\"\nsource = \"s\"\nwhen = { methd = [\"PATCH\"] }\nactions = []\n";
    let problems = Packs::compile(vec![("x.toml".into(), bad.into())]).expect_err("refused");
    assert!(
        problems[0].starts_with("x.toml: TOML parse error at line 7"),
        "{problems:?}"
    );
    assert!(problems[0].contains("methd"), "{problems:?}");
}

#[test]
fn the_built_in_packs_compile() {
    let packs = Packs::load(None).expect("built-in packs compile");
    for name in [
        "generic",
        "entra",
        "okta",
        "google",
        "onelogin",
        "jumpcloud",
        "ping",
    ] {
        assert!(packs.get(name).is_some(), "{name}");
    }
}

/// Arbitrary JSON, shallow enough for the engine's recursion and the test's time.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-zA-Z.:\\[\\] \"]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("True"),
            Just("false"),
            Just("members"),
            Just("Remove"),
            Just("active")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("op".to_owned()),
                    Just("path".to_owned()),
                    Just("value".to_owned()),
                    Just("Operations".to_owned()),
                    Just("name.givenName".to_owned()),
                    Just("active".to_owned()),
                    Just("emails".to_owned()),
                    Just("members".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_generic_pack_never_panics_and_a_second_run_changes_nothing(body in json_value(), patch in any::<bool>()) {
        let packs = Packs::load(None).expect("built-in packs compile");
        let generic = packs.get(GENERIC).expect("generic exists");
        let headers = HeaderMap::new();
        let (method, shape) = if patch { (Method::PATCH, Shape::Patch) } else { (Method::POST, Shape::Resource) };
        let s = Subject { method: &method, resource: Some(&USER), headers: &headers, shape, answer: None, extensions: Extensions::none() };
        let mut once = body;
        apply(&generic, &s, Some(&mut once), None);
        let mut twice = once.clone();
        let fired = apply(&generic, &s, Some(&mut twice), None);
        prop_assert_eq!(&twice, &once, "fired again: {:?}", fired);
    }
}

/// Every fixture under `tests/fixtures/rules/<pack>/`: the request through its pack (as
/// `scimgate rules test` runs it) gives the expected body and query, the named rule fires, and
/// the result passes the schema check.
#[test]
fn every_rule_fixture_gives_its_expected_output() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules");
    let packs = Packs::load(None).expect("built-in packs compile");
    let mut failures = Vec::new();
    let mut seen = 0;
    let mut fired_rules = std::collections::HashSet::new();
    for dir in std::fs::read_dir(&root).expect("fixtures folder").flatten() {
        let pack_name = dir.file_name().to_string_lossy().into_owned();
        let pack = packs
            .get(&pack_name)
            .unwrap_or_else(|| panic!("no pack {pack_name}"));
        for file in std::fs::read_dir(dir.path())
            .expect("pack folder")
            .flatten()
        {
            seen += 1;
            let name = format!("{pack_name}/{}", file.file_name().to_string_lossy());
            let text = std::fs::read_to_string(file.path()).expect("readable");
            let fixture: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            // A response fixture gives the app's answer; a request fixture the IdP's request.
            let out = match fixture.get("response") {
                Some(answer) => {
                    let answer = trial::TrialAnswer::from_json(answer).expect("an answer");
                    trial::run_answer(&pack, &answer, Extensions::none())
                }
                None => {
                    let request =
                        trial::TrialRequest::from_json(&fixture["request"]).expect("a request");
                    trial::run(&pack, &request, Extensions::none())
                }
            };
            let fired: Vec<String> = out.fired.iter().map(|r| r.to_string()).collect();
            fired_rules.extend(fired.iter().cloned());
            let expected = &fixture["expected"];
            if let Some(body) = expected.get("body") {
                if out.body.as_ref().unwrap_or(&Value::Null) != body {
                    failures.push(format!(
                        "{name}: body\n  got  {}\n  want {body}",
                        out.body.clone().unwrap_or_default()
                    ));
                }
            }
            if let Some(query) = expected.get("query").and_then(Value::as_str) {
                let got = out.query.clone().unwrap_or_default();
                let decode = |q: &str| {
                    form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect::<Vec<_>>()
                };
                if decode(&got) != decode(query) {
                    failures.push(format!("{name}: query {got:?}, want {query:?}"));
                }
            }
            let named = |rule: &str| {
                fired
                    .iter()
                    .any(|f| f == rule || f.ends_with(&format!("/{rule}")))
            };
            match fixture["rule"].as_str() {
                Some(rule) if !named(rule) => {
                    failures.push(format!("{name}: {rule} did not fire; fired {fired:?}"));
                }
                Some(_) => {}
                None if !fired.is_empty() => {
                    failures.push(format!("{name}: expected no rule, fired {fired:?}"))
                }
                None => {}
            }
            if let Err(e) = &out.schema {
                failures.push(format!(
                    "{name}: the result fails the schema check: {}",
                    e.detail
                ));
            }
        }
    }
    assert!(seen > 0, "no fixtures found under {}", root.display());
    assert!(
        failures.is_empty(),
        "{} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every rule of every pack has a fixture that makes it fire.
    let missing: Vec<String> = packs
        .iter()
        .flat_map(|p| p.rules.iter())
        .map(|r| r.id.to_string())
        .filter(|id| !fired_rules.contains(id))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a fixture that fires them: {missing:?}"
    );
}

#[test]
fn the_schema_check_knows_whole_extension_paths_and_leaves_foreign_ones_to_the_app() {
    let check = |ops: Value| {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        schema::check(&USER, Shape::Patch, &body, Extensions::none())
    };
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert!(
        check(json!([{"op": "add", "path": enterprise, "value": {"department": "R&D"}}])).is_ok()
    );
    assert!(check(json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:acme:2.0:User:badge", "value": 7}])).is_ok());
    let wrong = check(json!([{"op": "add", "path": enterprise, "value": {"department": 7}}]))
        .expect_err("a number is not a department");
    assert!(wrong.detail.contains("department"), "{}", wrong.detail);
    assert!(check(json!([{"op": "replace", "path": "active", "value": "maybe"}])).is_err());
}

/// Entra's custom extension (QUIRKS: `urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User`),
/// as an app's /Schemas would describe it.
fn custom_extension() -> Extensions {
    Extensions::from_document(&json!({
        "id": "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User",
        "name": "CustomExtension",
        "attributes": [
            {"name": "isContractor", "type": "boolean", "multiValued": false},
            {"name": "badge", "type": "complex", "multiValued": false,
             "subAttributes": [{"name": "number", "type": "integer"}]}
        ]
    }))
    .expect("a schema")
}

#[test]
fn extensions_the_app_describes_are_checked_and_typed_the_rest_stay_the_apps() {
    let ext = custom_extension();
    let urn = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let check = |body: &Value, ext: &Extensions| schema::check(&USER, Shape::Patch, body, ext);
    let typed =
        patch(json!([{"op": "replace", "path": format!("{urn}:isContractor"), "value": true}]));
    assert!(check(&typed, &ext).is_ok());
    let wrong = patch(
        json!([{"op": "replace", "path": format!("{urn}:isContractor"), "value": "perhaps"}]),
    );
    let e = check(&wrong, &ext).expect_err("not a boolean");
    assert_eq!(
        e.scim_type,
        Some(crate::scim::error::ScimType::InvalidValue)
    );
    assert!(e.detail.contains("isContractor"), "{}", e.detail);
    assert!(!e.detail.contains("perhaps"), "the value is never named");
    assert!(
        check(&wrong, Extensions::none()).is_ok(),
        "undescribed: the app's to judge"
    );
    let unknown = patch(json!([{"op": "add", "path": format!("{urn}:shoeSize"), "value": 44}]));
    let e = check(&unknown, &ext).expect_err("not in the schema");
    assert_eq!(e.scim_type, Some(crate::scim::error::ScimType::InvalidPath));
    let sub = patch(json!([{"op": "add", "path": format!("{urn}:badge.number"), "value": "x"}]));
    assert!(check(&sub, &ext).is_err());
    let whole = patch(json!([{"op": "add", "path": urn, "value": {"isContractor": 1}}]));
    assert!(check(&whole, &ext).is_err());
    let pathless = patch(json!([{"op": "add", "value": {urn: {"badge": {"number": "7"}}}}]));
    assert!(check(&pathless, &ext).is_err());

    let mut user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", urn],
        "userName": "bjensen", urn: {"isContractor": "yes"}});
    let e = schema::check(&USER, Shape::Resource, &user, &ext).expect_err("not a boolean");
    assert!(e.detail.contains("isContractor"), "{}", e.detail);
    user[urn]["isContractor"] = json!(false);
    assert!(schema::check(&USER, Shape::Resource, &user, &ext).is_ok());
}

#[test]
fn coerce_by_schema_types_the_values_of_described_extensions() {
    let packs = Packs::load(None).expect("built-in packs");
    let generic = packs.get("generic").expect("generic");
    let urn = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    let ext = custom_extension();
    let request = trial::TrialRequest::from_json(&json!({
        "method": "PATCH", "path": "/Users/1",
        "body": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "Replace", "path": format!("{urn}:isContractor"), "value": "False"},
            {"op": "Add", "value": {format!("{urn}:badge.number"): "42"}}
        ]}
    }))
    .expect("a request");
    let out = trial::run(&generic, &request, &ext);
    let body = out.body.expect("a body");
    assert_eq!(body["Operations"][0]["value"], json!(false));
    assert_eq!(
        body["Operations"][1]["value"][urn]["badge"]["number"],
        json!(42)
    );
    assert!(out.schema.is_ok(), "{:?}", out.schema);
    let untyped = trial::run(&generic, &request, Extensions::none());
    assert_eq!(
        untyped.body.expect("a body")["Operations"][0]["value"],
        json!("False"),
        "an undescribed extension is left as sent"
    );
}

#[test]
fn response_rules_type_the_values_of_described_extensions() {
    let packs = Packs::load(None).expect("built-in packs");
    let app = packs.get("app-generic").expect("app-generic");
    let urn = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    let answer = trial::TrialAnswer::from_json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", urn],
        "id": "1", "userName": "bjensen", "active": "true",
        urn: {"isContractor": "False", "badge": {"number": "7"}}
    }))
    .expect("an answer");
    let typed = trial::run_answer(&app, &answer, &custom_extension());
    let body = typed.body.expect("a body");
    assert_eq!(body["active"], json!(true));
    assert_eq!(body[urn]["isContractor"], json!(false));
    assert_eq!(body[urn]["badge"]["number"], json!(7));
    let untyped = trial::run_answer(&app, &answer, Extensions::none());
    let body = untyped.body.expect("a body");
    assert_eq!(
        body["active"],
        json!(true),
        "the core schema types it either way"
    );
    assert_eq!(
        body[urn]["isContractor"],
        json!("False"),
        "an undescribed extension is left as the app sent it"
    );
}

#[test]
fn a_user_agent_outweighs_a_fingerprint_in_the_body() {
    let packs = Packs::load(None).expect("built-in packs compile");
    let name = |agent: &str, body: &str| {
        let mut headers = HeaderMap::new();
        if !agent.is_empty() {
            headers.insert(http::header::USER_AGENT, agent.parse().expect("header"));
        }
        let pack = packs
            .detect(&headers, body.as_bytes(), "")
            .expect("generic exists");
        pack.name.to_string()
    };
    // Entra writes PATCH ops capitalised (QUIRKS E1).
    let entra_body = r#"{"Operations": [{"op": "Replace", "path": "active", "value": "False"}]}"#;
    assert_eq!(name("", entra_body), "entra");
    assert_eq!(name("Okta SCIM Client 1.0.0", entra_body), "okta");
    assert_eq!(name("Okta SCIM Client 1.0.0", "{}"), "okta");
    assert_eq!(name("curl/8.0", "{}"), GENERIC);
}

#[test]
fn operations_after_one_that_finds_nothing_are_still_judged() {
    let patch = |ops: Value| json!({"schemas": [crate::scim::urn::PATCH_OP], "Operations": ops});
    let check = |body: &Value| schema::check(&USER, Shape::Patch, body, Extensions::none());
    let finds_nothing = json!({"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@example.com"});
    let unknown = json!({"op": "replace", "path": "shoeSize", "value": "42"});
    // The made-up resource has no work email: that says nothing of the real one.
    assert!(check(&patch(json!([finds_nothing]))).is_ok());
    let refused =
        check(&patch(json!([finds_nothing, unknown]))).expect_err("shoeSize is no attribute");
    assert_eq!(
        refused.scim_type,
        Some(crate::scim::error::ScimType::InvalidPath)
    );
    assert!(refused.detail.contains("shoeSize"), "{}", refused.detail);
    for (op, named) in [
        (
            json!({"op": "replace", "value": {"displayName": "B", "shoeSize": 44}}),
            "shoeSize",
        ),
        (
            json!({"op": "add", "path": "name.middle", "value": "J"}),
            "name.middle",
        ),
        (
            json!({"op": "replace", "path": "emails[type eq \"work\"].address", "value": "x"}),
            "emails.address",
        ),
        (
            json!({"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"badge": "7"}}}),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badge",
        ),
        (
            json!({"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": {"department": "R&D", "badge": "7"}}),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badge",
        ),
    ] {
        let refused = check(&patch(json!([op]))).expect_err(named);
        assert_eq!(
            refused.detail,
            format!("unknown attribute {named} (not in the User schema)")
        );
    }
    let known = json!([
        {"op": "add", "path": "name.middleName", "value": "J"},
        {"op": "replace", "value": {"NAME": {"givenName": "B"}, "externalid": "7", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}}},
        {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "26"},
        {"op": "add", "path": "urn:example:app:2.0:User:badge", "value": "the app's own"},
        // An extension object describing itself, as scim2-models writes one.
        {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": {
            "schemas": ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"], "division": "Tours"}},
    ]);
    let verdict = check(&patch(known));
    assert!(verdict.is_ok(), "{:?}", verdict.err().map(|e| e.detail));
    // RFC 7644 §3.5.2.2: a remove without a path has no target whatever the resource holds.
    let pathless = check(&patch(json!([{"op": "remove"}]))).expect_err("no path");
    assert_eq!(
        pathless.scim_type,
        Some(crate::scim::error::ScimType::NoTarget)
    );
}
