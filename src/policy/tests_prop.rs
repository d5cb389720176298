//! Properties: nothing on a deny list survives any resource or PATCH shape generated here
//! (names in any case, with or without URN, dotted, in extension objects, behind value
//! filters); the engine never panics on arbitrary JSON; a second pass changes nothing; and an
//! empty Outcome means an unchanged document.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::tests::{policy, ENT};
use super::*;
use crate::scim::discovery::{schema_def, GROUP, USER};
use crate::scim::path::PatchPath;

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const OTHER: &str = "urn:example:ext:1.0:User";

/// Deny entries the generator draws from; each is deniable.
const DENIABLE: [&str; 13] = [
    "nickName",
    "title",
    "emails",
    "emails.value",
    "emails.type",
    "name.givenName",
    "addresses.*",
    "employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "badge",
    "externalId",
];

const NAMES: [&str; 14] = [
    "userName",
    "nickName",
    "title",
    "name",
    "emails",
    "addresses",
    "externalId",
    "employeeNumber",
    "costCenter",
    "department",
    "manager",
    "badge",
    "locale",
    "id",
];

const SUBS: [&str; 6] = [
    "value",
    "type",
    "givenName",
    "streetAddress",
    "display",
    "primary",
];

/// `name` with each letter's case flipped where `flips` says so (RFC 7643 §2.1).
fn cased(name: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), name.len()).prop_map(move |flips| {
        name.chars()
            .zip(flips)
            .map(|(c, f)| {
                if f {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

fn any_name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES.to_vec()).prop_flat_map(cased)
}

fn any_sub() -> impl Strategy<Value = String> {
    prop::sample::select(SUBS.to_vec()).prop_flat_map(cased)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z]{0,6}".prop_map(Value::from),
        Just(Value::from("4111 1111 1111 1111")),
        Just(Value::from("078-05-1120")),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn complex() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(any_sub(), leaf(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A value as attributes have them: simple, complex, multi-valued.
fn attr_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        leaf(),
        complex(),
        prop::collection::vec(prop_oneof![complex(), leaf()], 0..3).prop_map(Value::Array),
    ]
}

/// A key naming an attribute in one of the ways documents do.
fn attr_key() -> impl Strategy<Value = String> {
    (any_name(), any_sub(), 0..6u8).prop_map(|(name, sub, form)| match form {
        0 | 1 => name,
        2 => format!("{name}.{sub}"),
        3 => format!("{ENT}:{name}"),
        4 => format!("{ENT}:{name}.{sub}"),
        _ => format!("{CORE}:{name}"),
    })
}

fn extension() -> impl Strategy<Value = (String, Value)> {
    let urn = prop_oneof![
        Just(ENT.to_string()),
        Just(ENT.to_uppercase()),
        Just(OTHER.to_string())
    ];
    let attrs = prop::collection::btree_map(any_name(), attr_value(), 0..4);
    (urn, attrs).prop_map(|(u, a)| (u, Value::Object(a.into_iter().collect())))
}

/// The members of a resource (or of a PATCH value without path).
fn members() -> impl Strategy<Value = Map<String, Value>> {
    let member = prop_oneof![3 => (attr_key(), attr_value()), 1 => extension()];
    prop::collection::vec(member, 0..8).prop_map(|m| m.into_iter().collect())
}

fn resource() -> impl Strategy<Value = Value> {
    (members(), any::<bool>()).prop_map(|(mut m, listed)| {
        let mut schemas = vec![Value::from(CORE)];
        if listed {
            schemas.push(Value::from(OTHER));
        }
        m.insert("schemas".into(), Value::Array(schemas));
        Value::Object(m)
    })
}

fn deny_list() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(DENIABLE.to_vec(), 1..5)
}

fn patch_path() -> impl Strategy<Value = String> {
    (attr_key(), any_name(), any_sub(), any_sub(), 0..5u8).prop_map(|(key, name, s1, s2, form)| {
        match form {
            0 | 1 => key,
            2 => format!("{name}[{s1} eq \"x\"]"),
            3 => format!("{name}[{s1} eq \"x\"].{s2}"),
            _ => format!("{ENT}:{name}[{s1} pr]"),
        }
    })
}

fn operation() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec!["add", "replace", "Replace", "remove"]);
    prop_oneof![
        (op.clone(), patch_path(), attr_value()).prop_map(|(op, path, value)| {
            if op == "remove" {
                serde_json::json!({"op": op, "path": path})
            } else {
                serde_json::json!({"op": op, "path": path, "value": value})
            }
        }),
        (op, members()).prop_map(|(op, m)| serde_json::json!({"op": op, "value": m})),
    ]
}

fn patch_body() -> impl Strategy<Value = Value> {
    prop::collection::vec(operation(), 0..6).prop_map(|ops| {
        serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
    })
}

/// Arbitrary JSON, with keys that look like attribute paths and values detectors look for.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        attr_key(),
        Just("Operations".to_string()),
        Just("Resources".to_string()),
        Just("path".to_string()),
        Just("value".to_string()),
        Just(ENT.to_string()),
        "\\PC{0,8}",
    ];
    let leaf = prop_oneof![
        leaf(),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(Value::from("emails[value eq \"x\"].type")),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One deny entry, read independently of the engine: `(schema, name, sub)`.
struct Entry {
    schema: Option<String>,
    name: String,
    sub: Option<String>,
}

fn entry(text: &str) -> Entry {
    let text = text.strip_suffix(".*").unwrap_or(text);
    let (schema, rest) = match text.rfind(':') {
        Some(i) => (Some(text[..i].to_string()), &text[i + 1..]),
        None => (None, text),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n.to_string(), Some(s.to_string())),
        None => (rest.to_string(), None),
    };
    Entry { schema, name, sub }
}

/// Whether an attribute found in a document, `(schema, name, sub)`, is one `deny` withholds.
fn withheld(deny: &[Entry], schema: Option<&str>, name: &str, sub: Option<&str>) -> bool {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    deny.iter().any(|e| {
        let whole_extension = e.sub.is_none()
            && e.schema
                .as_deref()
                .is_some_and(|s| eq(&format!("{s}:{}", e.name), ENT));
        if whole_extension {
            let in_ent = schema.is_some_and(|s| eq(s, ENT))
                || (schema.is_none()
                    && schema_def(ENT).is_some_and(|d| d.attribute(name).is_some()));
            return in_ent;
        }
        let schema_ok = match (&e.schema, schema) {
            (None, _) | (Some(_), None) => true,
            (Some(a), Some(b)) => eq(a, b),
        };
        let sub_ok = match (&e.sub, sub) {
            (None, _) => true,
            (Some(a), Some(b)) => eq(a, b),
            (Some(_), None) => false,
        };
        schema_ok && eq(&e.name, name) && sub_ok
    })
}

/// Splits a key into `(schema, name, sub)` the simple way.
fn split(key: &str) -> (Option<&str>, &str, Option<&str>) {
    let (schema, rest) = match key.rfind(':') {
        Some(i) if key.get(..4).is_some_and(|h| h.eq_ignore_ascii_case("urn:")) => {
            (Some(&key[..i]), &key[i + 1..])
        }
        _ => (None, key),
    };
    match rest.split_once('.') {
        Some((n, s)) => (schema, n, Some(s)),
        None => (schema, rest, None),
    }
}

/// The sub-attribute names of a complex or multi-valued complex value.
fn subs_of(v: &Value) -> Vec<&str> {
    match v {
        Value::Object(o) => o.keys().map(String::as_str).collect(),
        Value::Array(a) => a.iter().flat_map(subs_of).collect(),
        _ => Vec::new(),
    }
}

/// The first withheld attribute still in a resource-shaped object, if any. Objects under a
/// URN are read both as an extension and as a URN-qualified complex attribute.
fn survivor(deny: &[Entry], obj: &Map<String, Value>) -> Option<String> {
    let found = |schema: Option<&str>, name: &str, sub: Option<&str>| {
        withheld(deny, schema, name, sub).then(|| format!("{schema:?} {name} {sub:?}"))
    };
    for (key, value) in obj {
        let (schema, name, sub) = split(key);
        if let Some(hit) = found(schema, name, sub) {
            return Some(hit);
        }
        if sub.is_none() {
            if let Some(hit) = subs_of(value)
                .into_iter()
                .find_map(|s| found(schema, name, Some(s)))
            {
                return Some(hit);
            }
        }
        if key.get(..4).is_some_and(|h| h.eq_ignore_ascii_case("urn:")) {
            if let Value::Object(inner) = value {
                for (ik, iv) in inner {
                    let (_, n, s) = split(ik);
                    if let Some(hit) = found(Some(key), n, s) {
                        return Some(hit);
                    }
                    if s.is_none() {
                        let deep = subs_of(iv)
                            .into_iter()
                            .find_map(|s| found(Some(key), n, Some(s)));
                        if deep.is_some() {
                            return deep;
                        }
                    }
                }
            }
        }
    }
    None
}

fn deny_policy(deny: &[&str], extra: &str) -> Policy {
    let list: Vec<String> = deny.iter().map(|d| format!("{d:?}")).collect();
    policy(&format!("deny = [{}]{extra}", list.join(", ")))
}

/// Whether the refused operation's value filter really tests a withheld attribute.
fn refusal_is_justified(deny: &[Entry], body: &Value, r: &Refusal) -> bool {
    let Some(op) = r.operation.and_then(|n| body["Operations"].get(n - 1)) else {
        return false;
    };
    let Some(path) = op["path"].as_str().and_then(|p| PatchPath::parse(p).ok()) else {
        return false;
    };
    let tested = path.filter.as_ref().map(filter_names).unwrap_or_default();
    tested
        .iter()
        .any(|t| withheld(deny, path.attr.urn.as_deref(), &path.attr.name, Some(t)))
}

fn filter_names(f: &crate::scim::filter::Filter) -> Vec<String> {
    use crate::scim::filter::Filter;
    match f {
        Filter::Compare { attr, .. } | Filter::Present(attr) => vec![attr.name.clone()],
        Filter::Not(i) => filter_names(i),
        Filter::And(v) | Filter::Or(v) => v.iter().flat_map(filter_names).collect(),
        Filter::ValuePath { filter, .. } => filter_names(filter),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn nothing_denied_survives_in_a_resource(deny in deny_list(), doc in resource()) {
        let p = deny_policy(&deny, "");
        let entries: Vec<Entry> = deny.iter().map(|d| entry(d)).collect();
        for dir in [Direction::Inbound, Direction::Outbound] {
            let mut d = doc.clone();
            p.apply_resource(dir, &USER, &mut d).expect("lists alone never refuse");
            let obj = d.as_object().expect("still an object");
            prop_assert_eq!(survivor(&entries, obj), None, "{}", d);
        }
    }

    #[test]
    fn nothing_denied_survives_in_a_patch(deny in deny_list(), body in patch_body()) {
        let p = deny_policy(&deny, "");
        let entries: Vec<Entry> = deny.iter().map(|d| entry(d)).collect();
        let mut b = body.clone();
        match p.apply_patch(Direction::Inbound, &USER, &mut b) {
            Err(r) => prop_assert!(refusal_is_justified(&entries, &body, &r), "{:?} {}", r, body),
            Ok(out) => {
                let ops = b["Operations"].as_array().expect("operations");
                prop_assert_eq!(out.no_operations_left, ops.is_empty() && !body["Operations"].as_array().expect("ops").is_empty());
                for op in ops {
                    match op["path"].as_str() {
                        Some(text) => {
                            let path = PatchPath::parse(text).expect("kept paths parse");
                            let t = path.target();
                            prop_assert!(!withheld(&entries, t.urn.as_deref(), &t.name, t.sub.as_deref()), "{}", op);
                            if t.sub.is_none() {
                                for s in subs_of(&op["value"]) {
                                    prop_assert!(!withheld(&entries, t.urn.as_deref(), &t.name, Some(s)), "{}", op);
                                }
                            }
                        }
                        None => {
                            let value = op["value"].as_object().expect("object value");
                            prop_assert_eq!(survivor(&entries, value), None, "{}", op);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_second_pass_changes_nothing(deny in deny_list(), doc in resource(), drop in any::<bool>()) {
        let on = if drop { "drop" } else { "redact" };
        let p = deny_policy(&deny, &format!(r#", detect = ["us_ssn", "card", "iban"], on_detect = "{on}""#));
        let mut once = doc.clone();
        let first = p.apply_resource(Direction::Inbound, &USER, &mut once).expect("ok");
        prop_assert_eq!(first.is_empty(), once == doc);
        let mut twice = once.clone();
        let second = p.apply_resource(Direction::Inbound, &USER, &mut twice).expect("ok");
        prop_assert!(second.is_empty(), "{:?}", second);
        prop_assert_eq!(twice, once);
    }

    /// The walk over a resource's text gives what the walk over its tree gives: the same
    /// Outcome, and text that reads as the walked tree (unchanged, the text itself).
    #[test]
    fn the_text_walk_is_the_tree_walk(
        list in deny_list(),
        allow in any::<bool>(),
        doc in resource(),
        pretty in any::<bool>(),
        group in any::<bool>(),
    ) {
        let p = if allow {
            let entries: Vec<String> = list.iter().map(|d| format!("{d:?}")).collect();
            policy(&format!("allow = [{}]", entries.join(", ")))
        } else {
            deny_policy(&list, "")
        };
        let rt = if group { &GROUP } else { &USER };
        let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap();
        for dir in [Direction::Inbound, Direction::Outbound] {
            let mut tree = doc.clone();
            let expected = p.apply_resource(dir, rt, &mut tree);
            let edit = p.apply_text(dir, rt, &text, false).expect("a resource without detectors is for the text walk");
            let edit = edit.map(|e| {
                let read = e.text.map(|t| serde_json::from_slice::<Value>(&t).expect("the edit is JSON"));
                (e.out, read.unwrap_or_else(|| doc.clone()))
            });
            prop_assert_eq!(edit, expected.map(|out| (out, tree)));
        }
        let detecting = deny_policy(&list, r#", detect = ["card"]"#);
        prop_assert!(detecting.apply_text(Direction::Outbound, rt, &text, false).is_none());
    }

    /// The same for a ListResponse: each resource walked as the tree walk walks it.
    #[test]
    fn the_text_walk_of_a_list_is_the_tree_walk(
        list in deny_list(),
        docs in prop::collection::vec(resource(), 0..4),
        pretty in any::<bool>(),
    ) {
        let p = deny_policy(&list, "");
        let doc = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": docs.len(),
            "Resources": docs,
        });
        let text = if pretty { serde_json::to_string_pretty(&doc) } else { serde_json::to_string(&doc) }.unwrap();
        let mut tree = doc.clone();
        let expected = p.apply_list(Direction::Outbound, &USER, &mut tree);
        let edit = p.apply_text(Direction::Outbound, &USER, &text, true).expect("for the text walk");
        let edit = edit.map(|e| {
            let read = e.text.map(|t| serde_json::from_slice::<Value>(&t).expect("the edit is JSON"));
            (e.out, read.unwrap_or_else(|| doc.clone()))
        });
        prop_assert_eq!(edit, expected.map(|out| (out, tree)));
    }

    #[test]
    fn an_empty_outcome_means_an_unchanged_patch(deny in deny_list(), body in patch_body()) {
        let p = deny_policy(&deny, r#", detect = ["card"], on_detect = "drop""#);
        let mut b = body.clone();
        if let Ok(out) = p.apply_patch(Direction::Inbound, &USER, &mut b) {
            prop_assert_eq!(out.is_empty(), b == body);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(doc in arb_json(), deny in deny_list(), reject in any::<bool>()) {
        let on = if reject { "reject" } else { "drop" };
        let policies = [
            deny_policy(&deny, &format!(r#", detect = ["us_ssn", "card", "iban", {{ name = "x", regex = "x" }}], on_detect = "{on}""#)),
            policy(r#"allow = ["emails.value", "title", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"], detect = ["card"]"#),
        ];
        for p in &policies {
            for dir in [Direction::Inbound, Direction::Outbound] {
                let _ = p.apply_resource(dir, &USER, &mut doc.clone());
                let _ = p.apply_patch(dir, &USER, &mut doc.clone());
                let _ = p.apply_list(dir, &USER, &mut doc.clone());
                let mut wrapped = serde_json::json!({"Operations": [doc.clone()], "Resources": [doc.clone()]});
                let _ = p.apply_patch(dir, &USER, &mut wrapped);
                let _ = p.apply_list(dir, &USER, &mut wrapped);
            }
        }
    }
}
