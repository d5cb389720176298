//! Running a compiled pack over one request: which rules apply, and what their actions do to
//! the body (pure functions over JSON; nothing here knows of sockets). A rule counts as fired
//! only when it changed something, so a request no rule touches stays byte-identical.

use std::sync::Arc;

use http::Method;
use serde_json::{Map, Value};

use super::builtin;
use super::envelope::each_resource;
use super::json::{coerce, contains_ci, member_mut};
use super::model::{Action, Direction, Pack, Rule, Shape, Subject, When};
use super::path::{each_mut, each_mut_creating, At};
use crate::scim::discovery::ResourceTypeDef;
use crate::scim::path::{get_ci, key_ci, remove_ci, AttrPath};

/// What a request to `endpoint` with `method` is for the rules: the resource type it is about
/// and the shape of its body.
pub fn shape_of(
    method: &Method,
    endpoint: crate::scim::request::Endpoint,
    search: bool,
) -> (Option<&'static ResourceTypeDef>, Shape) {
    use crate::scim::discovery::{GROUP, USER};
    use crate::scim::request::Endpoint;
    let resource = match endpoint {
        Endpoint::Users => Some(&USER),
        Endpoint::Groups => Some(&GROUP),
        _ => None,
    };
    let shape = match *method {
        _ if resource.is_none() || search => Shape::Other,
        Method::PATCH => Shape::Patch,
        Method::POST | Method::PUT => Shape::Resource,
        _ => Shape::Other,
    };
    (resource, shape)
}

/// Runs every rule of `pack` that applies, in order, over the body and the `filter` query
/// parameter; returns the ids of the rules that changed something.
pub fn apply(
    pack: &Pack,
    subject: &Subject<'_>,
    mut body: Option<&mut Value>,
    mut filter: Option<&mut String>,
) -> Vec<Arc<str>> {
    let mut fired = Vec::new();
    let requests = pack
        .rules
        .iter()
        .filter(|r| r.direction == Direction::Request);
    for rule in requests {
        if !applies(&rule.when, subject) {
            continue;
        }
        let changed = if rule.when.per_operation() {
            body.as_deref_mut().is_some_and(|b| per_operation(rule, b))
        } else {
            whole(rule, subject, body.as_deref_mut(), filter.as_deref_mut())
        };
        if changed {
            fired.push(rule.id.clone());
        }
    }
    fired
}

/// Runs the response rules of `pack` over an answer. A rule whose builtin sees the whole
/// answer (`list_envelope`, `endpoints_relative`) runs on it as it is; every other rule runs on
/// each resource in it: the answer itself, or each of a ListResponse's `Resources`.
pub fn apply_answer(pack: &Pack, subject: &Subject<'_>, doc: &mut Value) -> Vec<Arc<str>> {
    let status = subject.answer.map(|a| a.status);
    let mut fired = Vec::new();
    let responses = pack
        .rules
        .iter()
        .filter(|r| r.direction == Direction::Response);
    for rule in responses {
        let status_ok =
            rule.when.status.is_empty() || status.is_some_and(|s| rule.when.status.contains(&s));
        if !status_ok || !applies(&rule.when, subject) {
            continue;
        }
        let whole_answer = rule
            .actions
            .iter()
            .any(|a| matches!(a, Action::Builtin(b) if b.whole_answer()));
        let changed = if whole_answer {
            whole(rule, subject, Some(doc), None)
        } else {
            each_resource(doc, &mut |r| whole(rule, subject, Some(r), None))
        };
        if changed {
            fired.push(rule.id.clone());
        }
    }
    fired
}

/// The query parameters the request rules of `pack` that apply drop, with the rule of each.
pub fn params_to_remove<'p>(pack: &'p Pack, subject: &Subject<'_>) -> Vec<(&'p Arc<str>, &'p str)> {
    pack.rules
        .iter()
        .filter(|r| r.direction == Direction::Request && applies(&r.when, subject))
        .flat_map(|r| {
            r.actions.iter().flat_map(move |a| match a {
                Action::RemoveParam { params } => {
                    params.iter().map(|p| (&r.id, p.as_str())).collect()
                }
                _ => Vec::new(),
            })
        })
        .collect()
}

fn applies(when: &When, s: &Subject<'_>) -> bool {
    (when.methods.is_empty() || when.methods.contains(s.method))
        && (when.resources.is_empty()
            || s.resource
                .is_some_and(|rt| when.resources.iter().any(|r| r == rt.name)))
        && when.headers.iter().all(|(name, sub)| {
            s.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains(sub.as_str()))
        })
}

/// The conditions on the root's content: `has`, then `body` (the dearer test).
fn selects(when: &When, root: &Value) -> bool {
    if !when.has.is_empty() {
        let Value::Object(obj) = root else {
            return false;
        };
        if !when.has.iter().any(|name| key_ci(obj, name).is_some()) {
            return false;
        }
    }
    match &when.body {
        Some(query) => {
            jsonpath_rust::query::js_path_process(query, root).is_ok_and(|found| !found.is_empty())
        }
        None => true,
    }
}

fn whole(
    rule: &Rule,
    subject: &Subject<'_>,
    mut body: Option<&mut Value>,
    mut filter: Option<&mut String>,
) -> bool {
    let reads_body = rule.when.body.is_some() || !rule.when.has.is_empty();
    if reads_body && !body.as_deref().is_some_and(|b| selects(&rule.when, b)) {
        return false;
    }
    let mut changed = false;
    for action in &rule.actions {
        changed |= match action {
            Action::Builtin(b) => {
                builtin::run(*b, subject, body.as_deref_mut(), filter.as_deref_mut())
            }
            _ => body.as_deref_mut().is_some_and(|b| run(action, b)),
        };
    }
    changed
}

/// The rule's actions on each PATCH operation its `when` matches.
fn per_operation(rule: &Rule, body: &mut Value) -> bool {
    let Some(Value::Array(ops)) = member_mut(body, "Operations") else {
        return false;
    };
    let mut changed = false;
    for op in ops.iter_mut() {
        if operation_matches(&rule.when, op) && selects(&rule.when, op) {
            for action in &rule.actions {
                changed |= run(action, op);
            }
        }
    }
    changed
}

fn operation_matches(when: &When, op: &Value) -> bool {
    let Some(obj) = op.as_object() else {
        return false;
    };
    let get = |name: &str| get_ci(obj, name);
    let kind = get("op").and_then(Value::as_str);
    if !when.ops.is_empty()
        && !kind.is_some_and(|k| when.ops.iter().any(|o| o.eq_ignore_ascii_case(k)))
    {
        return false;
    }
    let path = get("path").and_then(Value::as_str);
    if when.has_path.is_some_and(|wanted| wanted != path.is_some()) {
        return false;
    }
    if !when.path_is.is_empty()
        && !path.is_some_and(|p| {
            when.path_is
                .iter()
                .any(|w| w.eq_ignore_ascii_case(p.trim()))
        })
    {
        return false;
    }
    if !when.paths.is_empty() {
        // Parsing a path costs more than all the other tests together: most operations are
        // ruled out by the attribute name not appearing in it at all.
        let Some(path) = path.filter(|p| when.paths.iter().any(|w| contains_ci(p, &w.name))) else {
            return false;
        };
        // The attribute is what comes before a value filter; the filter need not be parsed.
        let head = path.split('[').next().unwrap_or(path).trim();
        let Ok(attr) = AttrPath::parse(head) else {
            return false;
        };
        if !when.paths.iter().any(|w| names(w, &attr)) {
            return false;
        }
    }
    when.value.is_none_or(|kind| kind.matches(get("value")))
}

/// `pattern` names `path`'s attribute: same name (any case), same URN when the pattern gives
/// one, same sub-attribute when the pattern gives one.
fn names(pattern: &AttrPath, path: &AttrPath) -> bool {
    let eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (None, _) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (Some(_), None) => false,
    };
    pattern.name.eq_ignore_ascii_case(&path.name)
        && eq(&pattern.urn, &path.urn)
        && eq(&pattern.sub, &path.sub)
}

/// One action on one root (the body, or a PATCH operation); whether it changed anything.
fn run(action: &Action, root: &mut Value) -> bool {
    match action {
        Action::Set { at, value } => on_member(root, at, &mut |obj, key| {
            let k = key_ci(obj, key).cloned().unwrap_or_else(|| key.to_owned());
            if obj.get(&k) == Some(value) {
                return false;
            }
            obj.insert(k, value.clone());
            true
        }),
        Action::Default { at, value } => on_member(root, at, &mut |obj, key| {
            if key_ci(obj, key).is_some() {
                return false;
            }
            obj.insert(key.to_owned(), value.clone());
            true
        }),
        Action::Remove { at } => {
            let (parent, key) = at.split_last_key().expect("compiled: ends in a name");
            each_mut(root, &parent.0, &mut |v| match v {
                Value::Object(obj) => remove_ci(obj, key).is_some(),
                _ => false,
            })
        }
        Action::Rename { at, to } => {
            let (parent, key) = at.split_last_key().expect("compiled: ends in a name");
            each_mut(root, &parent.0, &mut |v| {
                let Value::Object(obj) = v else { return false };
                match key_ci(obj, key).cloned() {
                    Some(k) if k != *to => {
                        let moved = obj.remove(&k).unwrap_or(Value::Null);
                        obj.insert(to.clone(), moved);
                        true
                    }
                    _ => false,
                }
            })
        }
        Action::Move { at, to } => {
            let (parent, key) = at.split_last_key().expect("compiled: ends in a name");
            let mut taken = None;
            each_mut(root, &parent.0, &mut |v| {
                if let (Value::Object(obj), None) = (v, &taken) {
                    taken = remove_ci(obj, key);
                }
                false
            });
            let Some(value) = taken else { return false };
            let mut value = Some(value);
            on_member(root, to, &mut |obj, key| {
                obj.insert(key.to_owned(), value.take().unwrap_or(Value::Null));
                true
            });
            true
        }
        Action::Coerce { at, to } => each_mut(root, &at.0, &mut |v| coerce(v, *to)),
        Action::Lowercase { at } => each_mut(root, &at.0, &mut |v| match v {
            Value::String(s) if s.chars().any(char::is_uppercase) => {
                *s = s.to_lowercase();
                true
            }
            _ => false,
        }),
        Action::Map { at, table } => each_mut(root, &at.0, &mut |v| {
            let Value::String(s) = v else { return false };
            let found = if s.is_ascii() {
                table.iter().find(|(k, _)| k.eq_ignore_ascii_case(s))
            } else {
                let lower = s.to_lowercase();
                table.iter().find(|(k, _)| *k == lower)
            };
            match found {
                Some((_, to)) if to != v => {
                    *v = to.clone();
                    true
                }
                _ => false,
            }
        }),
        Action::Wrap { at, key } => each_mut(root, &at.0, &mut |v| wrap(v, key)),
        Action::Unwrap { at, key } => each_mut(root, &at.0, &mut |v| {
            let inner = match v {
                Value::Object(obj) => remove_ci(obj, key),
                _ => None,
            };
            match inner {
                Some(inner) => {
                    *v = inner;
                    true
                }
                None => false,
            }
        }),
        Action::SplitDottedKeys { at } => each_mut(root, &at.0, &mut split_dotted_keys),
        Action::RemoveParam { .. } => false,
        Action::Builtin(_) => false,
    }
}

/// Calls `f` with the parent object of `at` (made when missing) and the member name.
fn on_member(
    root: &mut Value,
    at: &At,
    f: &mut dyn FnMut(&mut Map<String, Value>, &str) -> bool,
) -> bool {
    let (parent, key) = at.split_last_key().expect("compiled: ends in a name");
    each_mut_creating(root, &parent.0, &mut |obj| f(obj, key))
}

/// A scalar becomes `{key: scalar}`; a one-element array of an object becomes that object.
pub(super) fn wrap(v: &mut Value, key: &str) -> bool {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            let inner = v.take();
            *v = Value::Object(Map::from_iter([(key.to_owned(), inner)]));
            true
        }
        Value::Array(items) if items.len() == 1 && items[0].is_object() => {
            let only = items.pop().unwrap_or(Value::Null);
            *v = only;
            true
        }
        _ => false,
    }
}

/// `{"name.givenName": "B"}` → `{"name": {"givenName": "B"}}`; URN-qualified attribute keys
/// (`urn:…:enterprise:2.0:User:employeeNumber`) go into their schema's container.
pub(super) fn split_dotted_keys(v: &mut Value) -> bool {
    let Value::Object(obj) = v else { return false };
    let keys: Vec<String> = obj.keys().filter(|k| splits(k)).cloned().collect();
    if keys.is_empty() {
        return false;
    }
    for key in keys {
        let value = obj.remove(&key).unwrap_or(Value::Null);
        let (container, attr) = match urn_attribute(&key) {
            Some((urn, attr)) => (Some(urn.to_owned()), attr.to_owned()),
            None => (None, key.clone()),
        };
        let target = match container {
            Some(urn) => {
                let k = key_ci(obj, &urn).cloned().unwrap_or(urn);
                let c = obj.entry(k).or_insert_with(|| Value::Object(Map::new()));
                match c {
                    Value::Object(c) => c,
                    _ => continue,
                }
            }
            None => &mut *obj,
        };
        insert_dotted(target, &attr, value);
    }
    true
}

fn splits(key: &str) -> bool {
    urn_attribute(key).is_some() || (!key.starts_with("urn:") && key.contains('.'))
}

/// `urn:…:2.0:User:manager.value` → (`urn:…:2.0:User`, `manager.value`): a URN key whose
/// schema part ends in a resource type name is an attribute, not a container.
fn urn_attribute(key: &str) -> Option<(&str, &str)> {
    if !key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        return None;
    }
    let (urn, attr) = key.rsplit_once(':')?;
    let type_name = urn.rsplit(':').next()?;
    let names_type =
        type_name.eq_ignore_ascii_case("User") || type_name.eq_ignore_ascii_case("Group");
    (names_type && !attr.is_empty()).then_some((urn, attr))
}

fn insert_dotted(obj: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        Some((head, rest)) => {
            let k = key_ci(obj, head)
                .cloned()
                .unwrap_or_else(|| head.to_owned());
            let child = obj.entry(k).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child) = child {
                insert_dotted(child, rest, value);
            }
        }
        None => {
            let k = key_ci(obj, path)
                .cloned()
                .unwrap_or_else(|| path.to_owned());
            obj.insert(k, value);
        }
    }
}
