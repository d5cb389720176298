//! Whether an app kept what a PATCH changed. A PATCH the proxy applies for an app without one
//! is written as a PUT of the whole resource; an app may answer 200 and still drop what it
//! does not store (a group's `members`, an attribute it has no column for). Comparing the
//! resource written with the one the app answers (or gives on a read-back), for the attributes
//! the PATCH touched, tells a change that happened from one that did not.
//!
//! The comparison is lenient where apps legitimately differ: strings without regard to case,
//! numbers by value, sub-attributes the app adds (a member's `display`, a `primary: false`)
//! and the server-made `$ref` are ignored, and `returned: never` attributes (`password`) are
//! not looked for.

use serde_json::Value;

use super::PatchRequest;
use crate::scim::discovery::{attribute, Returned};
use crate::scim::path::get_ci;

/// The attributes the PATCH changed that `answered` does not hold as `written`: dropped,
/// altered, or still holding values the PATCH removed. Only what differs between `before` (the
/// resource the PATCH was applied to) and `written` is looked at, so what the app itself made
/// (a `formatted` name, a member's `display`) is never held against it. Each is named as a path
/// (`members`, or `urn:…:User:department`).
pub fn not_kept(
    resource_type: &str,
    patch: &PatchRequest,
    before: &Value,
    written: &Value,
    answered: &Value,
) -> Vec<String> {
    let mut missing = Vec::new();
    for name in touched(patch) {
        let def = attribute(resource_type, &name);
        if def.is_some_and(|d| d.returned == Returned::Never) {
            continue;
        }
        let (b, w, a) = (
            lookup(before, &name),
            lookup(written, &name),
            lookup(answered, &name),
        );
        if !kept(b, w, a) && !missing.contains(&name) {
            missing.push(name);
        }
    }
    missing
}

/// The top-level attributes (and extension attributes, `urn:…:name`) the operations name.
fn touched(patch: &PatchRequest) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            names.push(name);
        }
    };
    for op in &patch.operations {
        match &op.path {
            Some(path) => match &path.attr.urn {
                Some(urn) if is_extension(urn) => add(format!("{urn}:{}", path.attr.name)),
                _ => add(path.attr.name.clone()),
            },
            None => {
                for (key, value) in op.value.iter().filter_map(|v| v.as_object()).flatten() {
                    match value.as_object() {
                        Some(inner) if is_extension(key) => {
                            inner.keys().for_each(|k| add(format!("{key}:{k}")));
                        }
                        _ => add(key.clone()),
                    }
                }
            }
        }
    }
    names
}

/// An extension schema's URN: core schemas name their attributes without one.
fn is_extension(urn: &str) -> bool {
    urn.len() > 4 && urn[..4].eq_ignore_ascii_case("urn:") && !urn.contains(":core:")
}

/// `name` or `urn:…:name` in a resource, without regard to case.
fn lookup<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    match name.rsplit_once(':') {
        Some((urn, attr)) => member(member(doc, urn)?, attr),
        None => member(doc, name),
    }
}

fn member<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    get_ci(doc.as_object()?, name)
}

/// Whether `answered` holds the change from `before` to `written`.
fn kept(before: Option<&Value>, written: Option<&Value>, answered: Option<&Value>) -> bool {
    if before == written {
        return true;
    }
    match (written, answered) {
        _ if absent(written) => absent(answered),
        _ if absent(answered) => false,
        (Some(Value::Array(w)), Some(Value::Array(a))) => {
            let b: &[Value] = before.and_then(Value::as_array).map_or(&[], Vec::as_slice);
            let added = w.iter().filter(|wv| !b.contains(wv));
            let gone = b.iter().filter(|bv| !w.contains(bv)).filter_map(key);
            // An element known by its `value` is there when that value is: apps drop or fill
            // in `type`, `primary` and `display` as they store things.
            added.clone().all(|wv| match key(wv) {
                Some(k) => a.iter().filter_map(key).any(|ak| same(ak, k)),
                None => a.iter().any(|av| covers(av, wv)),
            }) && gone
                .filter(|k| !w.iter().filter_map(key).any(|wk| same(wk, k)))
                .all(|k| !a.iter().filter_map(key).any(|ak| same(ak, k)))
        }
        (Some(Value::Object(w)), Some(Value::Object(a))) => {
            let b = before.and_then(Value::as_object);
            let names = w.keys().chain(b.into_iter().flat_map(|b| b.keys()));
            names
                .filter(|k| *k != "$ref")
                .all(|k| kept(b.and_then(|b| get_ci(b, k)), get_ci(w, k), get_ci(a, k)))
        }
        (Some(w), Some(a)) => covers(a, w),
        _ => false,
    }
}

/// The `value` a multi-valued attribute's element is known by, if it has one.
fn key(v: &Value) -> Option<&Value> {
    member(v, "value")
}

fn same(a: &Value, b: &Value) -> bool {
    covers(a, b) && covers(b, a)
}

/// No value: missing, null, an empty string or an empty list (RFC 7643 §2.5 treats them alike).
fn absent(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn covers(answered: &Value, written: &Value) -> bool {
    match (answered, written) {
        (Value::String(a), Value::String(w)) => a.to_lowercase() == w.to_lowercase(),
        (Value::Number(a), Value::Number(w)) => a.as_f64() == w.as_f64(),
        (Value::Array(a), Value::Array(w)) => w.iter().all(|wv| a.iter().any(|av| covers(av, wv))),
        // A single value sent where the app keeps a list of one, or the other way round.
        (Value::Array(a), w) if a.len() == 1 => covers(&a[0], w),
        (a, Value::Array(w)) if w.len() == 1 => covers(a, &w[0]),
        (Value::Object(a), Value::Object(w)) => w.iter().all(|(k, wv)| {
            k == "$ref" || get_ci(a, k).is_some_and(|av| covers(av, wv)) || absent(Some(wv))
        }),
        (a, w) => a == w,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::urn;

    fn patch(ops: Value) -> PatchRequest<'static> {
        PatchRequest::from_json(&json!({"schemas": [urn::PATCH_OP], "Operations": ops}))
            .unwrap()
            .into_owned()
    }

    fn group(members: &[&str]) -> Value {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        json!({"id": "g", "displayName": "Staff", "members": members})
    }

    #[test]
    fn members_the_app_dropped_or_kept_after_a_removal_are_named() {
        let add = patch(json!([{"op": "add", "path": "members", "value": [{"value": "b"}]}]));
        assert_eq!(
            not_kept(
                "Group",
                &add,
                &group(&["a"]),
                &group(&["a", "b"]),
                &group(&["a"])
            ),
            ["members"]
        );
        let remove = patch(json!([{"op": "remove", "path": "members[value eq \"b\"]"}]));
        assert_eq!(
            not_kept(
                "Group",
                &remove,
                &group(&["a", "b"]),
                &group(&["a"]),
                &group(&["a", "b"])
            ),
            ["members"]
        );
        let answered = json!({"id": "g", "displayName": "Staff"});
        assert_eq!(
            not_kept(
                "Group",
                &add,
                &group(&["a"]),
                &group(&["a", "b"]),
                &answered
            ),
            ["members"],
            "members dropped altogether"
        );
    }

    #[test]
    fn what_apps_add_or_spell_differently_is_kept() {
        let add = patch(json!([{"op": "add", "path": "members", "value": [{"value": "B"}]}]));
        let answered = json!({"members": [
            {"value": "a", "display": "Ann", "$ref": "https://app/Users/a"},
            {"value": "b", "display": "Bob"},
        ]});
        let roles = patch(
            json!([{"op": "add", "path": "roles", "value": [{"value": "editor", "type": "app"}]}]),
        );
        let typed = json!({"roles": [{"value": "editor", "type": "app"}]});
        let untyped = json!({"roles": [{"value": "editor"}]});
        assert!(
            not_kept("User", &roles, &json!({}), &typed, &untyped).is_empty(),
            "a value kept without its type is kept"
        );
        assert!(not_kept(
            "Group",
            &add,
            &group(&["a"]),
            &group(&["a", "B"]),
            &answered
        )
        .is_empty());
        let replace = patch(json!([
            {"op": "replace", "value": {"active": false, "Title": "Boss", "password": "s3cret"}},
        ]));
        let before = json!({"active": true, "name": {"givenName": "A", "formatted": "A B"}});
        let written = json!({"active": false, "title": "Boss", "password": "s3cret",
            "name": {"givenName": "A", "formatted": "A B"}});
        let answered = json!({"ACTIVE": false, "title": "boss", "name": {"givenName": "A", "formatted": "Mx A B"}});
        assert!(not_kept("User", &replace, &before, &written, &answered).is_empty());
        let given = patch(json!([{"op": "replace", "path": "name.givenName", "value": "C"}]));
        let written = json!({"name": {"givenName": "C", "formatted": "A B"}});
        let answered = json!({"name": {"givenName": "C", "formatted": "C B"}});
        assert!(
            not_kept("User", &given, &before, &written, &answered).is_empty(),
            "a sub-attribute the app derives is its own"
        );
    }

    #[test]
    fn an_extension_attribute_is_named_by_its_urn() {
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let op = json!([{"op": "replace", "path": format!("{ext}:department"), "value": "Ops"}]);
        let before = json!({ext: {"costCenter": "1"}});
        let written = json!({ext: {"department": "Ops", "costCenter": "1"}});
        let answered = json!({ext: {"costCenter": "1"}});
        assert_eq!(
            not_kept("User", &patch(op), &before, &written, &answered),
            [format!("{ext}:department")]
        );
        let by_value = json!([{"op": "replace", "value": {ext: {"department": "Ops"}}}]);
        assert_eq!(
            not_kept("User", &patch(by_value), &before, &written, &written),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_altered_value_and_a_removal_the_app_ignored_are_named() {
        let replace = patch(json!([{"op": "replace", "path": "title", "value": "Boss"}]));
        assert_eq!(
            not_kept(
                "User",
                &replace,
                &json!({"title": "Clerk"}),
                &json!({"title": "Boss"}),
                &json!({"title": "Clerk"})
            ),
            ["title"]
        );
        let remove = patch(json!([{"op": "remove", "path": "title"}]));
        assert_eq!(
            not_kept(
                "User",
                &remove,
                &json!({"title": "Clerk"}),
                &json!({}),
                &json!({"title": "Clerk"})
            ),
            ["title"]
        );
    }
}
