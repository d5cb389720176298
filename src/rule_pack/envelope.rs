//! What only answers need, free of the rule engine so the builtins can use it: the resources
//! of an answer, a list envelope made whole, `meta` filled in, ResourceType endpoints made
//! relative (RFC 7644 §3.4.2, RFC 7643 §3.1, §6).

use serde_json::{Map, Value};

use super::json::member_mut;
use super::model::Answer;
use crate::scim::discovery::ResourceTypeDef;
use crate::scim::path::key_ci;
use crate::scim::urn;

/// The resources of an answer: itself, or each of a ListResponse's `Resources`; none in an
/// Error or a list without its envelope.
pub(super) fn each_resource(doc: &mut Value, f: &mut dyn FnMut(&mut Value) -> bool) -> bool {
    let Value::Object(obj) = doc else {
        return false;
    };
    if lists(obj, urn::ERROR) {
        return false;
    }
    match key_ci(obj, "Resources").cloned() {
        Some(k) => match obj.get_mut(&k) {
            Some(Value::Array(items)) => items.iter_mut().fold(false, |c, i| f(i) | c),
            _ => false,
        },
        None => f(doc),
    }
}

/// Whether the `schemas` of `obj` name `urn`.
fn lists(obj: &Map<String, Value>, urn: &str) -> bool {
    key_ci(obj, "schemas")
        .and_then(|k| obj[k].as_array())
        .is_some_and(|s| {
            s.iter()
                .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(urn)))
        })
}

/// A list answer made a ListResponse (RFC 7644 §3.4.2): a bare JSON array is the whole
/// result, unpaged (the app did not read `startIndex`/`count`), so it is paged here and
/// `totalResults` is its length; a ListResponse without `totalResults`, `itemsPerPage`,
/// `startIndex` or `Resources` gets them (numbers given as strings become numbers). An app
/// that leaves out `totalResults` has not said how many there are: the smallest total its page
/// allows is given.
pub fn list_envelope(a: &Answer<'_>, doc: &mut Value) -> bool {
    if !a.list || !(200..300).contains(&a.status) {
        return false;
    }
    match doc {
        Value::Array(items) => {
            let all = std::mem::take(items);
            let total = all.len();
            let page: Vec<Value> = all
                .into_iter()
                .skip(a.start_index.saturating_sub(1))
                .take(a.count.unwrap_or(usize::MAX))
                .collect();
            *doc = serde_json::json!({
                "schemas": [urn::LIST_RESPONSE],
                "totalResults": total,
                "startIndex": a.start_index,
                "itemsPerPage": page.len(),
                "Resources": page,
            });
            true
        }
        Value::Object(obj) => {
            let resources = key_ci(obj, "Resources").cloned();
            if resources.is_none() && !lists(obj, urn::LIST_RESPONSE) {
                return false;
            }
            let mut changed = false;
            let n = match resources {
                Some(k) if k != "Resources" => {
                    let v = obj.remove(&k).unwrap_or(Value::Null);
                    obj.insert("Resources".to_owned(), v);
                    changed = true;
                    obj["Resources"].as_array().map_or(0, Vec::len)
                }
                Some(_) => obj["Resources"].as_array().map_or(0, Vec::len),
                None => 0,
            };
            if !lists(obj, urn::LIST_RESPONSE) {
                obj.insert(
                    "schemas".to_owned(),
                    serde_json::json!([urn::LIST_RESPONSE]),
                );
                changed = true;
            }
            changed |= number(obj, "startIndex", a.start_index);
            let start = obj["startIndex"].as_u64().unwrap_or(1) as usize;
            changed |= number(obj, "itemsPerPage", n);
            changed |= number(obj, "totalResults", start.saturating_sub(1) + n);
            if n > 0 && obj.get("Resources").is_none_or(|r| !r.is_array()) {
                obj.insert("Resources".to_owned(), Value::Array(Vec::new()));
                changed = true;
            }
            changed
        }
        _ => false,
    }
}

/// `name` as an integer: read from a string if it was one, else `default` when missing or
/// not a number at all.
fn number(obj: &mut Map<String, Value>, name: &str, default: usize) -> bool {
    let key = key_ci(obj, name).cloned();
    let current = key.as_ref().and_then(|k| obj.get(k));
    let value = match current {
        Some(Value::Number(n)) if n.is_u64() && key.as_deref() == Some(name) => return false,
        Some(Value::Number(n)) if n.is_u64() => n.as_u64().unwrap_or_default() as usize,
        Some(Value::String(s)) => s.trim().parse().unwrap_or(default),
        _ => default,
    };
    if let Some(k) = key {
        obj.remove(&k);
    }
    obj.insert(name.to_owned(), Value::from(value));
    true
}

/// `meta.resourceType` and `meta.location` (RFC 7643 §3.1) filled in where the app left them
/// out, the location under the proxy's public `base`.
pub fn meta_complete(rt: &ResourceTypeDef, base: &str, doc: &mut Value) -> bool {
    let Some(id) = member_mut(doc, "id").and_then(|v| v.as_str().map(str::to_owned)) else {
        return false;
    };
    let Value::Object(obj) = doc else {
        return false;
    };
    let key = key_ci(obj, "meta")
        .cloned()
        .unwrap_or_else(|| "meta".to_owned());
    let meta = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else {
        return false;
    };
    let mut changed = false;
    if key_ci(meta, "resourceType").is_none() {
        meta.insert("resourceType".to_owned(), Value::from(rt.name));
        changed = true;
    }
    if key_ci(meta, "location").is_none() {
        let location = format!("{}{}/{}", base.trim_end_matches('/'), rt.endpoint, id);
        meta.insert("location".to_owned(), Value::String(location));
        changed = true;
    }
    changed
}

/// A ResourceType's `endpoint` given as the app's full mount path (`/scim/v2/Users`, or a
/// URL) made relative to the service provider's base, as RFC 7643 §6 has it (`/Users`).
pub fn endpoints_relative(doc: &mut Value) -> bool {
    let mut one = |rt: &mut Value| {
        let Some(Value::String(endpoint)) = member_mut(rt, "endpoint") else {
            return false;
        };
        let last = endpoint
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let relative = format!("/{last}");
        if last.is_empty() || *endpoint == relative {
            return false;
        }
        *endpoint = relative;
        true
    };
    match doc {
        Value::Object(obj) if key_ci(obj, "Resources").is_some() => each_resource(doc, &mut one),
        Value::Array(items) => items.iter_mut().fold(false, |c, i| one(i) | c),
        _ => one(doc),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::discovery::USER;

    fn listing(start_index: usize, count: Option<usize>) -> Answer<'static> {
        Answer {
            status: 200,
            base: "https://proxy.example/scim",
            list: true,
            start_index,
            count,
        }
    }

    #[test]
    fn a_bare_array_is_paged_into_a_list_response() {
        let users: Vec<Value> = (1..=250).map(|i| json!({"id": i.to_string()})).collect();
        let mut doc = Value::Array(users);
        assert!(list_envelope(&listing(101, Some(100)), &mut doc));
        assert_eq!(doc["totalResults"], 250);
        assert_eq!(doc["startIndex"], 101);
        assert_eq!(doc["itemsPerPage"], 100);
        assert_eq!(doc["Resources"][0]["id"], "101");
        assert_eq!(doc["Resources"][99]["id"], "200");
        assert_eq!(doc["schemas"], json!([urn::LIST_RESPONSE]));
    }

    #[test]
    fn a_list_response_gets_what_it_lacks_and_keeps_what_it_has() {
        let mut doc = json!({"resources": [{"id": "1"}], "totalResults": "40"});
        assert!(list_envelope(&listing(1, None), &mut doc));
        assert_eq!(
            doc,
            json!({"schemas": [urn::LIST_RESPONSE], "Resources": [{"id": "1"}], "totalResults": 40, "startIndex": 1, "itemsPerPage": 1})
        );
        assert!(!list_envelope(&listing(1, None), &mut doc), "idempotent");
    }

    #[test]
    fn a_single_resource_is_not_a_list() {
        let mut doc = json!({"id": "1", "userName": "a"});
        assert!(!list_envelope(&listing(1, None), &mut doc));
    }

    #[test]
    fn meta_is_completed_under_the_public_base() {
        let mut doc = json!({"id": "7", "meta": {"created": "2024-01-01T00:00:00Z"}});
        assert!(meta_complete(
            &USER,
            "https://proxy.example/scim/",
            &mut doc
        ));
        assert_eq!(doc["meta"]["resourceType"], "User");
        assert_eq!(
            doc["meta"]["location"],
            "https://proxy.example/scim/Users/7"
        );
        assert!(!meta_complete(
            &USER,
            "https://proxy.example/scim",
            &mut doc
        ));
    }

    #[test]
    fn endpoints_become_relative() {
        let mut doc = json!({"Resources": [{"name": "User", "endpoint": "/api/scim/v2/Users"}, {"endpoint": "/Groups"}]});
        assert!(endpoints_relative(&mut doc));
        assert_eq!(doc["Resources"][0]["endpoint"], "/Users");
        assert!(!endpoints_relative(&mut doc));
    }
}
