//! The named normalizers: what a path selector cannot say, because it needs the resource's
//! schema (RFC 7643 §7), splits one PATCH operation into several, or rewrites a filter. Each
//! works on the whole request and reports whether it changed anything.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::envelope::{self, list_envelope};
use super::json::{coerce, contains_ci, member_mut};
use super::model::{Builtin, Coerce};
use super::model::{Shape, Subject};
use crate::scim::discovery::{
    attribute, common_attributes, schema_def, split_urn, AttrType, AttributeDef, Extensions,
    Mutability, ResourceTypeDef,
};
use crate::scim::filter::{self, CompValue, Filter};
use crate::scim::path::{get_ci, key_ci, AttrPath, PatchPath};

pub fn run(
    b: Builtin,
    s: &Subject<'_>,
    body: Option<&mut Value>,
    filter: Option<&mut String>,
) -> bool {
    if b == Builtin::NormalizeFilter {
        return filter.is_some_and(|f| normalize_filter(s.resource, f));
    }
    let Some(body) = body else {
        return false;
    };
    match (b, s.answer) {
        (Builtin::DropEmpty, _) => return drop_empty(body),
        (Builtin::ListEnvelope, Some(answer)) => return list_envelope(answer, body),
        (Builtin::EndpointsRelative, _) => return envelope::endpoints_relative(body),
        _ => {}
    }
    let Some(rt) = s.resource else {
        return false;
    };
    let patch = s.shape == Shape::Patch;
    let resource = s.shape == Shape::Resource;
    match b {
        Builtin::CoerceBySchema if patch => each_op(body, |op| coerce_op(rt, s.extensions, op)),
        Builtin::CoerceBySchema if resource => coerce_resource(rt, s.extensions, body),
        Builtin::DropNulls if patch => each_op(body, |op| {
            member_mut(op, "value").is_some_and(|v| match v {
                Value::Object(_) => drop_nulls(v, false),
                Value::Array(items) => items
                    .iter_mut()
                    .fold(false, |c, i| drop_nulls(i, false) | c),
                _ => false,
            })
        }),
        Builtin::DropNulls if resource => drop_nulls(body, true),
        Builtin::DropReadOnly if patch => each_op(body, |op| {
            let pathless = member_mut(op, "path").is_none();
            pathless && member_mut(op, "value").is_some_and(|v| drop_read_only(rt, v))
        }),
        Builtin::DropReadOnly if resource => drop_read_only(rt, body),
        Builtin::SchemasComplete if resource => schemas_complete(rt, body),
        Builtin::MembersRemoveByValue if patch => members_remove_by_value(body),
        Builtin::RoleValuesJson if patch => each_op(body, |op| {
            let named = member_mut(op, "path")
                .and_then(|p| p.as_str())
                .is_some_and(|p| contains_ci(p, "roles"));
            let roles = named
                && op_path(op).is_some_and(|p| {
                    p.filter.is_none()
                        && p.attr.urn.is_none()
                        && p.attr.name.eq_ignore_ascii_case("roles")
                });
            roles && member_mut(op, "value").is_some_and(role_values_json)
        }),
        Builtin::RoleValuesJson if resource => {
            member_mut(body, "roles").is_some_and(role_values_json)
        }
        Builtin::MetaComplete if resource => s
            .answer
            .is_some_and(|a| envelope::meta_complete(rt, a.base, body)),
        _ => false,
    }
}

fn each_op(body: &mut Value, mut f: impl FnMut(&mut Value) -> bool) -> bool {
    let Some(Value::Array(ops)) = member_mut(body, "Operations") else {
        return false;
    };
    ops.iter_mut().fold(false, |changed, op| f(op) | changed)
}

fn op_path(op: &Value) -> Option<PatchPath> {
    let obj = op.as_object()?;
    let text = obj.get(key_ci(obj, "path")?)?.as_str()?;
    PatchPath::parse(text).ok()
}

/// One PATCH operation's value, and the literals of its path filter, typed by the schema.
fn coerce_op(rt: &'static ResourceTypeDef, ext: &Extensions, op: &mut Value) -> bool {
    // Most paths have no value filter: the attribute is looked up by its text, unparsed.
    let plain = member_mut(op, "path")
        .and_then(|p| p.as_str())
        .filter(|p| !p.contains('['))
        .map(|p| {
            let p = p.trim();
            match attribute(rt.name, p) {
                Some(def) => Some((def, !split_urn(rt, p).1.contains('.'))),
                None => ext
                    .split(p)
                    .and_then(|(_, rest)| Some((ext.attribute(p)?, !rest.contains('.')))),
            }
        });
    if let Some(found) = plain {
        return match (found, member_mut(op, "value")) {
            (Some((def, whole)), Some(v)) => coerce_value(def, v, whole),
            _ => false,
        };
    }
    // A value filter whose literals could not be mistyped (`type eq "work"`) is left unparsed
    // too: the attribute is what surrounds the brackets.
    let filtered = member_mut(op, "path")
        .and_then(|p| p.as_str())
        .and_then(|p| filtered_target(rt, ext, p));
    if let Some(def) = filtered {
        return member_mut(op, "value").is_some_and(|v| coerce_value(def, v, false));
    }
    let Some(mut path) = op_path(op) else {
        // No path (or one that does not parse, which the PATCH engine refuses): the value is
        // a partial resource.
        return member_mut(op, "value").is_some_and(|v| coerce_resource(rt, ext, v));
    };
    let mut changed = false;
    if let Some(f) = &mut path.filter {
        if coerce_filter(rt, Some(&path.attr), f) {
            if let Some(p) = member_mut(op, "path") {
                *p = Value::String(path.to_string());
            }
            changed = true;
        }
    }
    let target = path.target();
    let target_text = target.to_string();
    let Some(def) = attribute(rt.name, &target_text).or_else(|| ext.attribute(&target_text)) else {
        return changed;
    };
    // A path naming the whole multi-valued attribute takes an array (RFC 7644 §3.5.2.1).
    let whole = path.filter.is_none() && path.sub.is_none() && target.sub.is_none();
    if let Some(v) = member_mut(op, "value") {
        changed |= coerce_value(def, v, whole);
    }
    changed
}

/// The attribute a filtered path (`emails[type eq "work"].value`) writes, when nothing in its
/// filter is a quoted literal that the schema could retype (`"True"`, `"42"`); `None` when
/// the filter must be parsed and coerced, or the text is no such path.
fn filtered_target<'d>(
    rt: &'static ResourceTypeDef,
    ext: &'d Extensions,
    path: &str,
) -> Option<&'d AttributeDef> {
    let (head, rest) = path.trim().split_once('[')?;
    let (filter, tail) = rest.rsplit_once(']')?;
    if quoted_literals(filter).any(retypable) {
        return None;
    }
    let head = head.trim_end();
    let attr = match attribute(rt.name, head) {
        Some(def) => def,
        None => ext.attribute(head)?,
    };
    match tail.trim() {
        "" => Some(attr),
        sub => attr.sub_attribute(sub.strip_prefix('.')?),
    }
}

/// The quoted strings of a filter's text, without their quotes (escapes left as written).
fn quoted_literals(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find('"')? + 1;
        let bytes = rest.as_bytes();
        let mut end = start;
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let literal = rest.get(start..end.min(bytes.len()))?;
        rest = rest.get(end + 1..).unwrap_or("");
        Some(literal)
    })
}

/// A literal `coerce_filter` may turn into a boolean or a number.
fn retypable(literal: &str) -> bool {
    let t = literal.trim();
    t.eq_ignore_ascii_case("true")
        || t.eq_ignore_ascii_case("false")
        || t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.')
}

fn coerce_resource(rt: &'static ResourceTypeDef, ext: &Extensions, doc: &mut Value) -> bool {
    let Value::Object(obj) = doc else {
        return false;
    };
    let core = schema_def(rt.schema);
    let mut changed = false;
    for (key, v) in obj.iter_mut() {
        // Most keys are plain names: no schema to find, no path to split.
        if !key.contains([':', '.']) {
            if let Some(def) = core.and_then(|c| c.top_level(key)) {
                changed |= coerce_value(def, v, true);
            }
            continue;
        }
        let schema = match schema_def(key) {
            Some(bundled) => rt.has_schema(key).then_some(bundled),
            None => ext.schema(key),
        };
        if let Some(schema) = schema {
            if let Value::Object(attrs) = v {
                for (sub, sv) in attrs.iter_mut() {
                    if let Some(def) = schema.attribute(sub) {
                        changed |= coerce_value(def, sv, true);
                    }
                }
            }
        } else if let Some(def) = attribute(rt.name, key) {
            changed |= coerce_value(def, v, true);
        }
    }
    changed
}

fn coerce_value(def: &AttributeDef, v: &mut Value, whole: bool) -> bool {
    if def.multi_valued && whole {
        let mut changed = false;
        if !v.is_array() && !v.is_null() {
            *v = Value::Array(vec![v.take()]);
            changed = true;
        }
        if let Value::Array(items) = v {
            for item in items {
                changed |= coerce_single(def, item);
            }
        }
        return changed;
    }
    coerce_single(def, v)
}

fn coerce_single(def: &AttributeDef, v: &mut Value) -> bool {
    match (def.kind, v) {
        (AttrType::Boolean, v) => coerce(v, Coerce::Bool),
        (AttrType::Integer | AttrType::Decimal, v) => coerce(v, Coerce::Number),
        // An id or a manager's value given as a number (`"id": 7`).
        (AttrType::String | AttrType::Reference, v @ Value::Number(_)) => coerce(v, Coerce::String),
        (AttrType::Complex, Value::Object(obj)) => {
            let mut changed = false;
            for (name, sv) in obj.iter_mut() {
                if let Some(sub) = def.sub_attribute(name) {
                    changed |= coerce_value(sub, sv, true);
                }
            }
            changed
        }
        _ => false,
    }
}

/// Literals typed as the attributes they are compared with: `primary eq "True"` →
/// `primary eq true`. `within` is the attribute of a value path (`roles[…]`).
fn coerce_filter(rt: &'static ResourceTypeDef, within: Option<&AttrPath>, f: &mut Filter) -> bool {
    match f {
        Filter::Compare { attr, value, .. } => {
            let full = match within {
                Some(outer) => outer.with_sub(&attr.name).to_string(),
                None => attr.to_string(),
            };
            let Some(def) = attribute(rt.name, &full) else {
                return false;
            };
            let CompValue::Str(s) = value else {
                return false;
            };
            let typed = match def.kind {
                AttrType::Boolean if s.eq_ignore_ascii_case("true") => CompValue::Bool(true),
                AttrType::Boolean if s.eq_ignore_ascii_case("false") => CompValue::Bool(false),
                AttrType::Integer | AttrType::Decimal => match serde_json::from_str(s.trim()) {
                    Ok(n) => CompValue::Num(n),
                    Err(_) => return false,
                },
                _ => return false,
            };
            *value = typed;
            true
        }
        Filter::Present(_) => false,
        Filter::Not(inner) => coerce_filter(rt, within, inner),
        Filter::And(items) | Filter::Or(items) => items
            .iter_mut()
            .fold(false, |c, i| coerce_filter(rt, within, i) | c),
        Filter::ValuePath { attr, filter } => {
            let attr = attr.clone();
            coerce_filter(rt, Some(&attr), filter)
        }
    }
}

/// The `filter` parameter read leniently and printed canonically (RFC 7644 §3.4.2.2): operator
/// case, quoting of unquoted literals, literals typed by the schema. A filter that does not
/// parse even leniently is left for the stages after to refuse.
fn normalize_filter(rt: Option<&'static ResourceTypeDef>, text: &mut String) -> bool {
    let Ok(mut parsed) = filter::parse_lenient(text) else {
        return false;
    };
    if let Some(rt) = rt {
        coerce_filter(rt, None, &mut parsed);
    }
    let canonical = parsed.to_string();
    if canonical == *text {
        return false;
    }
    *text = canonical;
    true
}

/// Nulls removed at every depth; at the top (`top`), empty arrays too, inside extension
/// containers as well.
fn drop_nulls(v: &mut Value, top: bool) -> bool {
    let Value::Object(obj) = v else { return false };
    let before = obj.len();
    let empty = |v: &Value| v.is_null() || (top && v.as_array().is_some_and(Vec::is_empty));
    // A map's retain takes each entry out and back in; most objects hold nothing to drop.
    if obj.values().any(empty) {
        obj.retain(|_, v| !empty(v));
    }
    let mut changed = obj.len() != before;
    for (key, child) in obj.iter_mut() {
        let container = top && key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        changed |= match child {
            Value::Object(_) => drop_nulls(child, container),
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |c, i| drop_nulls(i, false) | c),
            _ => false,
        };
    }
    changed
}

/// Empty placeholders (`"externalId": ""`, `"emails": [{"value": ""}]`) removed: an element of a
/// multi-valued attribute whose `value` is empty goes whole, and what is left empty goes too.
/// Some apps answer such placeholders and then refuse them when a client sends them back.
fn drop_empty(v: &mut Value) -> bool {
    let Value::Object(obj) = v else { return false };
    let mut changed = false;
    obj.retain(|key, child| {
        if key == "schemas" || key == "id" {
            return true;
        }
        changed |= match child {
            Value::Object(_) => drop_empty(child),
            Value::Array(items) => {
                let before = items.len();
                items.retain_mut(|item| {
                    let placeholder = item.as_object().is_some_and(|o| {
                        key_ci(o, "value").is_some_and(|k| o[k].as_str() == Some(""))
                    });
                    if placeholder {
                        return false;
                    }
                    drop_empty(item);
                    !matches!(item, Value::String(s) if s.is_empty())
                        && !matches!(item, Value::Object(o) if o.is_empty())
                });
                items.len() != before
            }
            _ => false,
        };
        let empty = match child {
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        changed |= empty;
        !empty
    });
    changed
}

/// readOnly attributes (RFC 7643 §2.2: `id`, `meta`, a User's `groups`) removed.
fn drop_read_only(rt: &'static ResourceTypeDef, v: &mut Value) -> bool {
    let Value::Object(obj) = v else { return false };
    let names = read_only_names(rt);
    let before = obj.len();
    obj.retain(|key, _| !names.iter().any(|n| n.eq_ignore_ascii_case(key)));
    obj.len() != before
}

/// The top-level readOnly attributes of a resource type, found once from its schemas.
fn read_only_names(rt: &'static ResourceTypeDef) -> &'static [String] {
    static USERS: OnceLock<Vec<String>> = OnceLock::new();
    static GROUPS: OnceLock<Vec<String>> = OnceLock::new();
    let cell = if rt.name == "Group" { &GROUPS } else { &USERS };
    cell.get_or_init(|| {
        let core = schema_def(rt.schema)
            .map(|s| s.attributes.as_slice())
            .unwrap_or_default();
        common_attributes()
            .iter()
            .chain(core)
            .filter(|d| d.mutability == Mutability::ReadOnly)
            .map(|d| d.name.clone())
            .collect()
    })
}

/// `schemas` lists the core schema and every extension the body uses; entries that are neither
/// a schema of the resource type nor used are removed (RFC 7643 §3).
fn schemas_complete(rt: &'static ResourceTypeDef, body: &mut Value) -> bool {
    let Value::Object(obj) = body else {
        return false;
    };
    let used: Vec<&String> = obj
        .iter()
        .filter(|(k, v)| {
            v.is_object() && k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        })
        .map(|(k, _)| k)
        .collect();
    let known = |s: &str| rt.has_schema(s) || used.iter().any(|u| u.eq_ignore_ascii_case(s));
    let key = key_ci(obj, "schemas");
    let before = key.and_then(|k| obj.get(k));
    let mut list: Vec<Value> = match before {
        Some(Value::Array(items)) => items
            .iter()
            .filter(|i| i.as_str().is_some_and(known))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let has = |list: &[Value], u: &str| {
        list.iter()
            .any(|i| i.as_str().is_some_and(|s| s.eq_ignore_ascii_case(u)))
    };
    if !has(&list, rt.schema) {
        list.insert(0, Value::String(rt.schema.to_owned()));
    }
    for u in &used {
        if !has(&list, u) {
            list.push(Value::String((*u).clone()));
        }
    }
    // Compared with what is there before anything is copied: most bodies list their schemas.
    if before.and_then(Value::as_array) == Some(&list) {
        return false;
    }
    let key = key.cloned().unwrap_or_else(|| "schemas".to_owned());
    obj.insert(key, Value::Array(list));
    true
}

/// `remove` of `members` with a value array → one `remove members[value eq "…"]` per member:
/// RFC 7644 §3.5.2.2 reads a remove without a filter as "remove all".
fn members_remove_by_value(body: &mut Value) -> bool {
    let Some(Value::Array(ops)) = member_mut(body, "Operations") else {
        return false;
    };
    let mut out = Vec::with_capacity(ops.len());
    let mut changed = false;
    for mut op in ops.drain(..) {
        match split_member_removes(&mut op) {
            Some(split) => {
                out.extend(split);
                changed = true;
            }
            None => out.push(op),
        }
    }
    *ops = out;
    changed
}

fn split_member_removes(op: &mut Value) -> Option<Vec<Value>> {
    if !member_mut(op, "op")?
        .as_str()?
        .eq_ignore_ascii_case("remove")
    {
        return None;
    }
    if !member_mut(op, "path")?
        .as_str()?
        .trim()
        .eq_ignore_ascii_case("members")
    {
        return None;
    }
    let Value::Array(items) = member_mut(op, "value")? else {
        return None;
    };
    let ids: Vec<String> = items
        .iter()
        .map(|i| {
            let obj = i.as_object()?;
            obj.get(key_ci(obj, "value")?)?.as_str().map(str::to_owned)
        })
        .collect::<Option<_>>()?;
    if ids.is_empty() {
        return None;
    }
    let ops = ids
        .into_iter()
        .map(|id| {
            let literal = Value::String(id).to_string();
            Value::Object(Map::from_iter([
                ("op".to_owned(), Value::String("remove".into())),
                (
                    "path".to_owned(),
                    Value::String(format!("members[value eq {literal}]")),
                ),
            ]))
        })
        .collect();
    Some(ops)
}

/// Entra's role values written as JSON strings (`"{\"id\":…,\"value\":\"25\",\"displayName\":…}"`)
/// → `{"value": "25", "display": …}`; the Entra app-role id is dropped.
fn role_values_json(roles: &mut Value) -> bool {
    let Value::Array(items) = roles else {
        return false;
    };
    let mut changed = false;
    for item in items {
        let Some(obj) = item.as_object_mut() else {
            continue;
        };
        let Some(k) = key_ci(obj, "value").cloned() else {
            continue;
        };
        let Some(Value::Object(inner)) = obj
            .get(&k)
            .and_then(Value::as_str)
            .filter(|s| s.trim_start().starts_with('{'))
            .and_then(|s| serde_json::from_str(s).ok())
        else {
            continue;
        };
        let field = |name: &str| get_ci(&inner, name).cloned();
        let value = match field("value") {
            Some(Value::Number(n)) => Value::String(n.to_string()),
            Some(v) => v,
            None => continue,
        };
        obj.insert(k, value);
        if let Some(display) = field("display").or_else(|| field("displayName")) {
            obj.insert("display".to_owned(), display);
        }
        if let Some(kind) = field("type") {
            obj.entry("type").or_insert(kind);
        }
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::discovery::USER;

    #[test]
    fn quoted_literals_are_found_with_escapes() {
        let found: Vec<&str> =
            quoted_literals(r#"type eq "work" and value co "a\"b" or x eq "]""#).collect();
        assert_eq!(found, ["work", r#"a\"b"#, "]"]);
        assert_eq!(quoted_literals("primary eq true").count(), 0);
        assert_eq!(quoted_literals(r#"type eq "unterminated"#).count(), 1);
    }

    #[test]
    fn a_filter_with_a_mistyped_literal_is_parsed_and_one_without_is_not() {
        let none = Extensions::none();
        let value = filtered_target(&USER, none, r#"emails[type eq "work"].value"#);
        assert_eq!(value.map(|d| d.name.as_str()), Some("value"));
        let whole = filtered_target(&USER, none, r#"emails[type eq "work"]"#);
        assert_eq!(whole.map(|d| d.name.as_str()), Some("emails"));
        assert!(filtered_target(&USER, none, r#"emails[primary eq "True"].value"#).is_none());
        assert!(filtered_target(&USER, none, r#"x509Certificates[value eq "42"]"#).is_none());
        assert!(filtered_target(&USER, none, "userName").is_none());

        // Both ways give the same coerced operation.
        let mut fast = serde_json::json!({"op": "replace", "path": "phoneNumbers[type eq \"work\"].primary", "value": "True"});
        let mut parsed = serde_json::json!({"op": "replace", "path": "phoneNumbers[type eq \"work\" and primary eq \"false\"].primary", "value": "True"});
        assert!(coerce_op(&USER, none, &mut fast));
        assert!(coerce_op(&USER, none, &mut parsed));
        assert_eq!(fast["value"], true);
        assert_eq!(parsed["value"], true);
        assert!(parsed["path"]
            .as_str()
            .unwrap()
            .contains("primary eq false"));
    }
}
