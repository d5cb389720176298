//! Renders a stored resource as clients see it: `id`, `meta` (RFC 7643 §3.1), the derived
//! `groups` of a User (§4.1.2), members' `$ref` and `display`, and no `returned: never` values.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::store::{Kind, Stored, Table, Tables};
use crate::scim::discovery::{join, schema_def, Returned};

/// The full representation of `stored`, before any `attributes` projection.
pub(super) fn render(tables: &Tables, kind: Kind, stored: &Stored, base_url: &str) -> Value {
    let rt = kind.def();
    let mut doc = stored.attrs.clone();
    strip_never_returned(rt.schema, &mut doc);
    for ext in rt.extensions {
        if let Some(Value::Object(ext_doc)) = doc.get_mut(*ext) {
            strip_never_returned(ext, ext_doc);
        }
    }
    doc.insert("id".into(), Value::from(stored.id.as_str()));
    doc.insert("meta".into(), meta(kind, stored, base_url));
    match kind {
        Kind::User => {
            let groups = memberships(tables, &stored.id, base_url);
            if !groups.is_empty() {
                doc.insert("groups".into(), Value::Array(groups));
            }
        }
        Kind::Group => {
            if let Some(Value::Array(members)) = doc.get_mut("members") {
                members
                    .iter_mut()
                    .for_each(|m| complete_member(tables, m, base_url));
            }
        }
    }
    Value::Object(doc)
}

/// The server-maintained `meta` of a resource (RFC 7643 §3.1).
pub(super) fn meta(kind: Kind, stored: &Stored, base_url: &str) -> Value {
    json!({
        "resourceType": kind.def().name,
        "created": stored.created,
        "lastModified": stored.last_modified,
        "location": location(kind, &stored.id, base_url),
        "version": stored.etag(),
    })
}

/// `meta.location`, also the `Location` header of a POST answer (RFC 7644 §3.3).
pub(super) fn location(kind: Kind, id: &str, base_url: &str) -> String {
    join(base_url, &format!("{}/{id}", kind.def().endpoint))
}

/// `returned: never` (e.g. `password`) is never part of a representation (RFC 7643 §7).
fn strip_never_returned(schema: &str, doc: &mut Map<String, Value>) {
    let Some(schema) = schema_def(schema) else {
        return;
    };
    for def in schema
        .attributes
        .iter()
        .filter(|a| a.returned == Returned::Never)
    {
        doc.remove(&def.name);
    }
}

/// The groups a resource belongs to: `direct` where a group lists it, `indirect` where a
/// group lists one of those groups, transitively (RFC 7643 §4.1.2).
fn memberships(tables: &Tables, id: &str, base_url: &str) -> Vec<Value> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    let mut frontier: HashSet<&str> = HashSet::from([id]);
    let mut kind = "direct";
    while !frontier.is_empty() {
        let mut next = HashSet::new();
        for group in tables.groups.iter().filter(|g| has_member_in(g, &frontier)) {
            if group.id != id && seen.insert(&group.id) {
                out.push(group_ref(group, kind, base_url));
                next.insert(group.id.as_str());
            }
        }
        frontier = next;
        kind = "indirect";
    }
    out
}

/// Whether one of the group's members is in `ids`: one pass over the members, however many
/// ids the level of the walk has.
fn has_member_in(group: &Stored, ids: &HashSet<&str>) -> bool {
    let members = group.attrs.get("members").and_then(Value::as_array);
    members
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("value").and_then(Value::as_str))
        .any(|m| ids.contains(m))
}

fn group_ref(group: &Stored, kind: &str, base_url: &str) -> Value {
    let mut r = json!({
        "value": group.id,
        "$ref": location(Kind::Group, &group.id, base_url),
        "type": kind,
    });
    if let Some(display) = group.attrs.get("displayName") {
        r["display"] = display.clone();
    }
    r
}

/// A member naming a stored resource gets that resource's `$ref` (this store's own URL for
/// it), its `type`, and a `display` unless the client gave one. Other members stay as sent.
fn complete_member(tables: &Tables, member: &mut Value, base_url: &str) {
    let Some(value) = member
        .get("value")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let Some(kind) = tables.kind_of(&value) else {
        return;
    };
    member["$ref"] = Value::from(location(kind, &value, base_url));
    member["type"] = Value::from(kind.def().name);
    if member.get("display").is_none() {
        if let Some(display) = display_name(tables.table(kind), kind, &value) {
            member["display"] = display;
        }
    }
}

fn display_name(table: &Table, kind: Kind, id: &str) -> Option<Value> {
    let attrs = &table.get(id)?.attrs;
    let name = attrs.get("displayName");
    let name = if kind == Kind::User {
        name.or_else(|| attrs.get("userName"))
    } else {
        name
    };
    name.cloned()
}
