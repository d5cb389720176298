//! What one audit line says of a change or a refusal, read from the request as forwarded
//! (after normalization and the attribute policy): the names of the attributes it changes, the
//! values of those the tenant marks loggable, and group members added or removed. Pure
//! functions over `serde_json::Value`.

use http::Method;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::policy::{Direction, Policy};
use crate::scim::discovery::{GROUP, USER};
use crate::scim::path::{get_ci, PatchPath};
use crate::scim::request::{Endpoint, Target};
use crate::scim::urn::is_urn;

/// A logged value longer than this (as JSON) is left out: loggable attributes are meant for
/// flags and names, not documents.
const MAX_VALUE_BYTES: usize = 1024;

/// One audit line before the chain numbers it. Field order is the line's.
#[derive(Debug, Default, Serialize)]
pub struct Event<'a> {
    pub time: String,
    /// `change` or `refusal`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub tenant: Option<&'a str>,
    pub principal: Option<String>,
    pub pack: Option<&'a str>,
    pub op: &'static str,
    pub resource: Option<&'static str>,
    pub id: Option<String>,
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub values: Map<String, Value>,
    #[serde(flatten)]
    pub members: Members,
    pub status: u16,
    pub latency_ms: f64,
    pub request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulk_op: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filled: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

/// Group membership a request changes, by member id.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Members {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_added: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members_removed: Vec<String>,
    /// A PUT, or a PATCH `replace` of `members`: the whole list after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members_set: Option<Vec<String>>,
    /// A PATCH `remove` of `members` without a filter or value: every member went.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub members_cleared: bool,
}

/// What a write changes, read from its body.
#[derive(Debug, Default, PartialEq)]
pub struct Changes<'a> {
    pub attributes: Vec<String>,
    /// Every attribute with the value written, for the caller to keep the loggable ones.
    pub written: Vec<(String, &'a Value)>,
    pub external_id: Option<String>,
    pub members: Members,
}

/// The operation a request is, for the line: `create`, `replace`, `patch`, `delete`, `bulk`,
/// else what it reads.
pub fn op_name(method: &Method, target: Option<&Target<'static>>) -> &'static str {
    let Some(t) = target else { return "other" };
    match (method, t.endpoint) {
        (_, Endpoint::Bulk) => "bulk",
        (&Method::POST, _) if t.search => "search",
        (&Method::GET | &Method::HEAD, _) if t.id.is_some() => "read",
        (&Method::GET | &Method::HEAD, _) => "list",
        (&Method::POST, Endpoint::Users | Endpoint::Groups) => "create",
        (&Method::PUT, _) => "replace",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "other",
    }
}

/// Whether the request changes something: a create, replace, patch or delete of a User or
/// Group, or a Bulk.
pub fn is_change(method: &Method, target: Option<&Target<'static>>) -> bool {
    matches!(
        op_name(method, target),
        "create" | "replace" | "patch" | "delete" | "bulk"
    )
}

pub fn resource_name(endpoint: Endpoint) -> Option<&'static str> {
    match endpoint {
        Endpoint::Users => Some("User"),
        Endpoint::Groups => Some("Group"),
        _ => None,
    }
}

/// The attributes a body changes. `POST`/`PUT`: its top-level and extension attributes;
/// `PATCH`: each operation's path (without its value filter), or the keys of its value.
pub fn changes<'a>(method: &Method, endpoint: Endpoint, body: &'a Value) -> Changes<'a> {
    let mut out = Changes::default();
    let group = endpoint == Endpoint::Groups;
    match *method {
        Method::POST | Method::PUT => {
            if let Some(doc) = body.as_object() {
                resource_attributes(doc, &mut out);
                if group {
                    if let Some(m) = get_ci(doc, "members") {
                        if *method == Method::POST {
                            out.members.members_added = member_ids(m);
                        } else {
                            out.members.members_set = Some(member_ids(m));
                        }
                    }
                }
            }
        }
        Method::PATCH => patch_changes(body, group, &mut out),
        _ => {}
    }
    out.external_id = out
        .written
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("externalId"))
        .and_then(|(_, v)| v.as_str().map(str::to_owned));
    out
}

const NOT_CHANGES: [&str; 3] = ["schemas", "id", "meta"];

fn resource_attributes<'a>(doc: &'a Map<String, Value>, out: &mut Changes<'a>) {
    for (key, value) in doc {
        if NOT_CHANGES.iter().any(|n| n.eq_ignore_ascii_case(key)) {
            continue;
        }
        match value {
            // An extension's attributes, each by its full name.
            Value::Object(ext) if is_urn(key) => {
                for (attr, v) in ext {
                    note(out, format!("{key}:{attr}"), v);
                }
            }
            _ => note(out, key.clone(), value),
        }
    }
}

fn patch_changes<'a>(body: &'a Value, group: bool, out: &mut Changes<'a>) {
    let ops = body
        .as_object()
        .and_then(|b| get_ci(b, "Operations"))
        .and_then(Value::as_array);
    for op in ops.into_iter().flatten() {
        let Some(op) = op.as_object() else { continue };
        let kind = get_ci(op, "op")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let value = get_ci(op, "value");
        match get_ci(op, "path").and_then(Value::as_str) {
            Some(path) => {
                let parsed = PatchPath::parse(path).ok();
                // Without its value filter: a filter may hold a value (`emails[value eq …]`).
                let name = parsed
                    .as_ref()
                    .map_or_else(|| path.to_owned(), |p| p.target().to_string());
                let is_members = parsed.as_ref().is_some_and(|p| {
                    p.attr.urn.is_none() && p.attr.name.eq_ignore_ascii_case("members")
                });
                if group && is_members {
                    member_op(&kind, parsed.as_ref(), value, &mut out.members);
                }
                match value {
                    Some(v) if kind != "remove" => note(out, name, v),
                    _ => note_name(out, name),
                }
            }
            None => {
                let Some(Value::Object(doc)) = value else {
                    continue;
                };
                resource_attributes(doc, out);
                if let (true, Some(m)) = (group, get_ci(doc, "members")) {
                    match kind.as_str() {
                        "replace" => out.members.members_set = Some(member_ids(m)),
                        _ => out.members.members_added.extend(member_ids(m)),
                    }
                }
            }
        }
    }
}

/// A PATCH operation on `members` (RFC 7644 §3.5.2): `add` with a list, `remove` with a value
/// filter (`members[value eq "…"]`), with a list (as Entra sends it), or of all, `replace`.
fn member_op(kind: &str, path: Option<&PatchPath>, value: Option<&Value>, m: &mut Members) {
    let filtered = path.and_then(|p| p.filter.as_ref()).map(|f| f.to_string());
    match (kind, filtered, value) {
        ("add", _, Some(v)) => m.members_added.extend(member_ids(v)),
        ("replace", None, Some(v)) => m.members_set = Some(member_ids(v)),
        ("remove", Some(filter), _) => m.members_removed.extend(filter_values(&filter)),
        ("remove", None, Some(v)) => m.members_removed.extend(member_ids(v)),
        ("remove", None, None) => m.members_cleared = true,
        _ => {}
    }
}

/// The `value`s of a members list (or of one member object).
fn member_ids(v: &Value) -> Vec<String> {
    let one = |m: &Value| match m {
        Value::Object(o) => get_ci(o, "value")
            .and_then(Value::as_str)
            .map(str::to_owned),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    match v {
        Value::Array(list) => list.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// The ids a members filter names: `value eq "a" or value eq "b"`.
fn filter_values(filter: &str) -> Vec<String> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r#"(?i)\bvalue\s+eq\s+"((?:[^"\\]|\\.)*)""#).expect("a valid regex")
    });
    re.captures_iter(filter)
        .map(|c| c[1].replace("\\\"", "\""))
        .collect()
}

fn note<'a>(out: &mut Changes<'a>, name: String, value: &'a Value) {
    out.written.push((name.clone(), value));
    note_name(out, name);
}

fn note_name(out: &mut Changes<'_>, name: String) {
    if !out.attributes.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
        out.attributes.push(name);
    }
}

/// The written values `may_log` lets through, small enough to log, by attribute name.
pub fn values(
    written: &[(String, &Value)],
    may_log: impl Fn(&str, &Value) -> bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in written {
        if may_log(name, value)
            && serde_json::to_string(value).is_ok_and(|s| s.len() <= MAX_VALUE_BYTES)
        {
            out.insert(name.clone(), (*value).clone());
        }
    }
    out
}

/// A one-attribute document holding `value` at `name` (`active`, `name.givenName`,
/// `urn:…:enterprise:2.0:User:department`): what the attribute policy is asked about before a
/// value is logged.
pub fn probe(name: &str, value: &Value) -> Option<Value> {
    let path = crate::scim::path::AttrPath::parse(name).ok()?;
    let leaf = match &path.sub {
        Some(sub) => serde_json::json!({ &path.name: { sub: value } }),
        None => serde_json::json!({ &path.name: value }),
    };
    Some(match &path.urn {
        Some(urn) => serde_json::json!({ urn: leaf }),
        None => leaf,
    })
}

/// The id a create's answer gives: the last segment of its `Location`, else its `id`.
pub fn created_id(location: Option<&str>, body: Option<&[u8]>) -> Option<String> {
    if let Some(loc) = location {
        let last = loc
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        if !last.is_empty() {
            let decoded: String = form_urlencoded::parse(format!("x={last}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| last.to_owned());
            return Some(decoded);
        }
    }
    // Only `id` is kept: the rest of the resource is skipped without building a tree.
    #[derive(serde::Deserialize)]
    struct Created<'a> {
        #[serde(borrow)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    let created: Created<'_> = serde_json::from_slice(body?).ok()?;
    created.id.map(std::borrow::Cow::into_owned)
}

/// Whether the tenant's attribute policy lets `value` pass at `name` both ways, unchanged: a
/// value the policy withholds, redacts or refuses is never logged.
pub(super) fn policy_passes(
    policy: &Policy,
    endpoint: Endpoint,
    name: &str,
    value: &Value,
) -> bool {
    let rt = match endpoint {
        Endpoint::Users => &USER,
        Endpoint::Groups => &GROUP,
        _ => return false,
    };
    let Some(probe) = probe(name, value) else {
        return false;
    };
    [Direction::Inbound, Direction::Outbound]
        .into_iter()
        .all(|dir| {
            let mut doc = probe.clone();
            policy
                .apply_resource(dir, rt, &mut doc)
                .is_ok_and(|o| o.is_empty() && doc == probe)
        })
}

/// Whether `value` of `name` would be logged for a tenant with this policy: for `scimgate
/// check` and the configuration's own checks.
pub fn withheld_by(policy: &Policy, name: &str) -> bool {
    let probe = Value::String("x".to_owned());
    !policy_passes(policy, Endpoint::Users, name, &probe)
        || !policy_passes(policy, Endpoint::Groups, name, &probe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_put_names_top_level_and_extension_attributes_but_not_schemas_or_id() {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1",
            "userName": "a", "active": false, "externalId": "x-1",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}});
        let c = changes(&Method::PUT, Endpoint::Users, &body);
        assert_eq!(
            c.attributes,
            [
                "active",
                "externalId",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "userName"
            ]
        );
        assert_eq!(c.external_id.as_deref(), Some("x-1"));
    }

    #[test]
    fn a_patch_names_paths_without_their_filters_and_the_keys_of_pathless_values() {
        let body = json!({"Operations": [
            {"op": "Replace", "path": "emails[type eq \"secret@example.com\"].value", "value": "b@example.com"},
            {"op": "replace", "value": {"active": false, "name.givenName": "A"}},
            {"op": "remove", "path": "title"}]});
        let c = changes(&Method::PATCH, Endpoint::Users, &body);
        assert_eq!(
            c.attributes,
            ["emails.value", "active", "name.givenName", "title"]
        );
        assert!(
            !format!("{c:?}").contains("secret@"),
            "no filter value kept"
        );
        let v = values(&c.written, |name, _| name == "active");
        assert_eq!(v, json!({"active": false}).as_object().unwrap().clone());
    }

    #[test]
    fn group_member_operations_are_read_in_every_shape_idps_send() {
        let body = json!({"Operations": [
            {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]},
            {"op": "remove", "path": "members[value eq \"u3\"]"},
            {"op": "Remove", "path": "members", "value": [{"value": "u4"}]},
            {"op": "add", "value": {"members": [{"value": "u5"}]}}]});
        let m = changes(&Method::PATCH, Endpoint::Groups, &body).members;
        assert_eq!(m.members_added, ["u1", "u2", "u5"]);
        assert_eq!(m.members_removed, ["u3", "u4"]);
        let clear = json!({"Operations": [{"op": "remove", "path": "members"}]});
        assert!(
            changes(&Method::PATCH, Endpoint::Groups, &clear)
                .members
                .members_cleared
        );
        let put = json!({"displayName": "G", "members": [{"value": "u9"}]});
        let m = changes(&Method::PUT, Endpoint::Groups, &put).members;
        assert_eq!(m.members_set, Some(vec!["u9".to_owned()]));
        let post = changes(&Method::POST, Endpoint::Groups, &put).members;
        assert_eq!(post.members_added, ["u9"]);
        // A User's `members` is no group membership.
        assert_eq!(
            changes(&Method::PUT, Endpoint::Users, &put).members,
            Members::default()
        );
    }

    #[test]
    fn large_values_and_those_refused_are_not_logged() {
        let (long, yes, boss) = (json!("x".repeat(2000)), json!(true), json!("Boss"));
        let written = vec![
            ("displayName".to_owned(), &long),
            ("active".to_owned(), &yes),
            ("title".to_owned(), &boss),
        ];
        let v = values(&written, |name, _| name != "title");
        assert_eq!(v.len(), 1);
        assert_eq!(v["active"], true);
    }

    #[test]
    fn a_probe_puts_the_value_where_its_name_says() {
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(
            probe(&format!("{urn}:department"), &json!("Ops")),
            Some(json!({urn: {"department": "Ops"}}))
        );
        assert_eq!(
            probe("name.givenName", &json!("A")),
            Some(json!({"name": {"givenName": "A"}}))
        );
        assert_eq!(probe("1bad", &json!(1)), None);
    }

    #[test]
    fn a_created_id_comes_from_the_location_else_the_body() {
        assert_eq!(
            created_id(Some("https://p/acme/Users/ab%20c"), None).as_deref(),
            Some("ab c")
        );
        assert_eq!(
            created_id(None, Some(br#"{"id":"42"}"#)).as_deref(),
            Some("42")
        );
        assert_eq!(created_id(None, Some(b"not json")), None);
    }

    #[test]
    fn operations_are_named_and_only_writes_are_changes() {
        let t = |p: &str| crate::scim::request::classify(p).map(|t| t.into_owned());
        let user = t("/Users/1");
        assert_eq!(op_name(&Method::DELETE, user.as_ref()), "delete");
        assert!(is_change(&Method::PATCH, user.as_ref()));
        assert!(!is_change(&Method::GET, user.as_ref()));
        assert!(!is_change(&Method::POST, t("/Users/.search").as_ref()));
        assert!(is_change(&Method::POST, t("/Bulk").as_ref()));
        assert!(is_change(&Method::POST, t("/Groups").as_ref()));
    }
}
