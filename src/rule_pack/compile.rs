//! Raw pack → compiled pack. Every problem is reported, each prefixed with the pack and rule it
//! is in (`rules/okta.toml: rule "strip-groups": …`), so one `scimgate check` shows them all.

use std::sync::Arc;

use http::{HeaderName, Method};
use serde_json::Value;

use super::model::{Action, Builtin, Coerce, Detect, Direction, Pack, Rule, ValueKind, When};
use super::path::At;
use super::raw::{RawAction, RawPack, RawRule, RawWhen};
use crate::scim::path::{AttrPath, PatchPath};

/// Compiles `raw`; `resolve` hands out the already compiled packs it extends.
pub fn compile(
    raw: RawPack,
    origin: &str,
    resolve: &dyn Fn(&str) -> Option<Arc<Pack>>,
) -> Result<Pack, Vec<String>> {
    let mut problems = Vec::new();
    let name: Arc<str> = raw.name.as_str().into();
    let mut rules: Vec<Arc<Rule>> = Vec::new();
    for base in &raw.extends {
        match resolve(base) {
            Some(pack) => {
                for rule in &pack.rules {
                    if !rules.iter().any(|r| Arc::ptr_eq(r, rule)) {
                        rules.push(rule.clone());
                    }
                }
            }
            None => problems.push(format!("{origin}: extends: no pack named {base:?}")),
        }
    }
    let mut ids = std::collections::HashSet::new();
    for rule in raw.rules {
        let at = format!("{origin}: rule {:?}", rule.id);
        if !ids.insert(rule.id.clone()) {
            problems.push(format!("{at}: the id is used twice in this pack"));
            continue;
        }
        match compile_rule(&name, rule) {
            Ok(rule) => rules.push(Arc::new(rule)),
            Err(errs) => problems.extend(errs.into_iter().map(|e| format!("{at}: {e}"))),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let detect = raw.detect.unwrap_or_default();
    let answers = rules.iter().any(|r| r.direction == Direction::Response);
    Ok(Pack {
        name,
        answers,
        description: raw.description,
        detect: Detect {
            user_agent: detect
                .user_agent
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            body: detect
                .body
                .iter()
                .map(|s| memchr::memmem::Finder::new(s.as_bytes()).into_owned())
                .collect(),
        },
        rules,
    })
}

fn compile_rule(pack: &str, raw: RawRule) -> Result<Rule, Vec<String>> {
    let mut problems = Vec::new();
    if raw.id.is_empty() || raw.id.contains(['/', ',', ' ']) {
        problems.push("the id must be non-empty, without '/', ',' or spaces".to_owned());
    }
    if raw.description.trim().is_empty() || raw.source.trim().is_empty() {
        problems.push("needs a description of the quirk and a source".to_owned());
    }
    let direction = match raw.direction.as_deref() {
        None | Some("request") => Direction::Request,
        Some("response") => Direction::Response,
        Some(other) => {
            problems.push(format!(
                "direction {other:?}; expected \"request\" or \"response\""
            ));
            Direction::Request
        }
    };
    let when = compile_when(raw.when, &mut problems);
    if direction == Direction::Request && !when.status.is_empty() {
        problems.push("when.status is for response rules".to_owned());
    }
    if direction == Direction::Response && when.per_operation() {
        problems.push(
            "op, path, path_is, has_path and value select PATCH operations: a response rule has none"
                .to_owned(),
        );
    }
    if raw.actions.is_empty() {
        problems.push("has no actions".to_owned());
    }
    let actions: Vec<Action> = raw
        .actions
        .into_iter()
        .enumerate()
        .filter_map(|(i, a)| {
            compile_action(a)
                .map_err(|e| problems.push(format!("actions[{i}]: {e}")))
                .ok()
        })
        .collect();
    let builtin = actions.iter().any(|a| matches!(a, Action::Builtin(_)));
    if builtin && when.per_operation() {
        problems.push(
            "a builtin works on the whole request: leave op, path, path_is, has_path and value out of its when"
                .to_owned(),
        );
    }
    for a in &actions {
        if let Action::Builtin(b) = a {
            if !b.works_on(direction) {
                problems.push(format!(
                    "builtin {:?} does not work on a {}",
                    b.name(),
                    match direction {
                        Direction::Request => "request",
                        Direction::Response => "response",
                    }
                ));
            }
        }
    }
    let params = actions
        .iter()
        .any(|a| matches!(a, Action::RemoveParam { .. }));
    let reads_body = when.body.is_some() || !when.has.is_empty();
    if params && (direction == Direction::Response || when.per_operation() || reads_body) {
        problems.push(
            "remove_param works on a request's query: its when may name method, resource and headers only"
                .to_owned(),
        );
    }
    let whole_answer = actions
        .iter()
        .filter(|a| matches!(a, Action::Builtin(b) if b.whole_answer()))
        .count();
    if whole_answer > 0 && actions.len() > 1 {
        problems.push(
            "list_envelope and endpoints_relative see the whole answer: give each its own rule"
                .to_owned(),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Rule {
        id: format!("{pack}/{}", raw.id).into(),
        description: raw.description,
        source: raw.source,
        direction,
        when,
        actions,
    })
}

fn compile_when(raw: RawWhen, problems: &mut Vec<String>) -> When {
    let mut when = When::default();
    for m in raw.method {
        match Method::from_bytes(m.as_bytes()) {
            Ok(method) if method.as_str().bytes().all(|b| b.is_ascii_uppercase()) => {
                when.methods.push(method)
            }
            _ => problems.push(format!(
                "when.method: {m:?} is not an upper-case HTTP method"
            )),
        }
    }
    for r in raw.resource {
        match r.as_str() {
            "User" | "Group" => when.resources.push(r),
            _ => problems.push(format!("when.resource: {r:?} is not User or Group")),
        }
    }
    when.ops = raw.op.iter().map(|o| o.to_ascii_lowercase()).collect();
    for p in raw.path {
        match AttrPath::parse(&p) {
            Ok(path) => when.paths.push(path),
            Err(e) => problems.push(format!("when.path: {p:?}: {e}")),
        }
    }
    when.has_path = raw.has_path;
    for p in raw.path_is {
        match PatchPath::parse(&p) {
            Ok(_) => when.path_is.push(p.trim().to_owned()),
            Err(e) => problems.push(format!("when.path_is: {p:?}: {e}")),
        }
    }
    for name in raw.has {
        if name.trim().is_empty() || name.trim() != name {
            problems.push(format!(
                "when.has: {name:?} is not a member name (empty, or with spaces around it)"
            ));
        } else {
            when.has.push(name);
        }
    }
    if let Some(v) = raw.value {
        match ValueKind::parse(&v) {
            Some(kind) => when.value = Some(kind),
            None => problems.push(format!(
                "when.value: {v:?} is not one of string, number, bool, null, object, array, empty_array, absent"
            )),
        }
    }
    for (name, sub) in raw.header {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => when.headers.push((h, sub.to_ascii_lowercase())),
            Err(_) => problems.push(format!("when.header: {name:?} is not a header name")),
        }
    }
    when.status = raw.status;
    if let Some(s) = when.status.iter().find(|s| !(100..600).contains(*s)) {
        problems.push(format!("when.status: {s} is not an HTTP status"));
    }
    if let Some(q) = raw.body {
        match jsonpath_rust::parser::parse_json_path(&q) {
            Ok(query) => when.body = Some(query),
            Err(e) => problems.push(format!("when.body: {q:?} is not a JSONPath query: {e}")),
        }
    }
    when
}

/// `set`, `default` and `remove` work on a member of an object: `at` ends in a name.
fn member(at: At) -> Result<At, String> {
    match at.split_last_key() {
        Some(_) => Ok(at),
        None => Err("`at` must end in a member name ('.name' or ['name'])".into()),
    }
}

fn compile_action(raw: RawAction) -> Result<Action, String> {
    let kind = raw.action.as_str();
    let allowed: &[&str] = match kind {
        "set" | "default" => &["at", "value"],
        "remove" | "lowercase" | "split_dotted_keys" => &["at"],
        "rename" | "move" | "coerce" => &["at", "to"],
        "map" => &["at", "table"],
        "wrap" | "unwrap" => &["at", "key"],
        "builtin" => &["name"],
        "remove_param" => &["params"],
        other => {
            return Err(format!(
                "unknown action {other:?}; expected set, default, remove, rename, move, coerce, lowercase, map, wrap, unwrap, split_dotted_keys, remove_param or builtin"
            ))
        }
    };
    let given = [
        ("at", raw.at.is_some()),
        ("to", raw.to.is_some()),
        ("value", raw.value.is_some()),
        ("table", raw.table.is_some()),
        ("key", raw.key.is_some()),
        ("name", raw.name.is_some()),
        ("params", raw.params.is_some()),
    ];
    if let Some((extra, _)) = given.iter().find(|(k, set)| *set && !allowed.contains(k)) {
        return Err(format!("{kind} does not take `{extra}`"));
    }
    let at = || -> Result<At, String> {
        At::parse(raw.at.as_deref().ok_or(format!("{kind} needs `at`"))?)
    };
    let to = || raw.to.clone().ok_or(format!("{kind} needs `to`"));
    let value = || -> Result<Value, String> {
        let v = raw.value.clone().ok_or(format!("{kind} needs `value`"))?;
        serde_json::to_value(v).map_err(|e| format!("value: {e}"))
    };
    let key = || raw.key.clone().unwrap_or_else(|| "value".to_owned());
    Ok(match kind {
        "set" => Action::Set {
            at: member(at()?)?,
            value: value()?,
        },
        "default" => Action::Default {
            at: member(at()?)?,
            value: value()?,
        },
        "remove" => Action::Remove { at: member(at()?)? },
        "rename" => {
            let at = at()?;
            if at.split_last_key().is_none() {
                return Err("rename needs `at` to end in a member name".into());
            }
            Action::Rename { at, to: to()? }
        }
        "move" => {
            let (at, dest) = (at()?, At::parse(&to()?)?);
            if at.split_last_key().is_none() || dest.split_last_key().is_none() {
                return Err("move needs `at` and `to` to end in a member name".into());
            }
            Action::Move { at, to: dest }
        }
        "coerce" => {
            let to = match to()?.as_str() {
                "bool" => Coerce::Bool,
                "number" => Coerce::Number,
                "string" => Coerce::String,
                other => {
                    return Err(format!(
                        "coerce to {other:?}; expected bool, number or string"
                    ))
                }
            };
            Action::Coerce { at: at()?, to }
        }
        "lowercase" => Action::Lowercase { at: at()? },
        "map" => {
            let table = raw.table.clone().ok_or("map needs `table`")?;
            let table = table
                .into_iter()
                .map(|(k, v)| {
                    Ok((
                        k.to_lowercase(),
                        serde_json::to_value(v).map_err(|e| e.to_string())?,
                    ))
                })
                .collect::<Result<_, String>>()?;
            Action::Map { at: at()?, table }
        }
        "wrap" => Action::Wrap {
            at: at()?,
            key: key(),
        },
        "unwrap" => Action::Unwrap {
            at: at()?,
            key: key(),
        },
        "split_dotted_keys" => Action::SplitDottedKeys { at: at()? },
        "remove_param" => match raw.params.clone().unwrap_or_default() {
            params if params.is_empty() => return Err("remove_param needs `params`".into()),
            params => Action::RemoveParam { params },
        },
        _ => {
            let name = raw.name.as_deref().ok_or("builtin needs `name`")?;
            let builtin = Builtin::ALL
                .into_iter()
                .find(|b| b.name() == name)
                .ok_or_else(|| {
                    let names: Vec<_> = Builtin::ALL.iter().map(|b| b.name()).collect();
                    format!("no builtin named {name:?}; there are {}", names.join(", "))
                })?;
            Action::Builtin(builtin)
        }
    })
}
