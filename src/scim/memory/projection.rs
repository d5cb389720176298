//! The `attributes` and `excludedAttributes` parameters (RFC 7644 §3.4.2.5, §3.9) applied to
//! a rendered resource, honouring each attribute's `returned` characteristic (RFC 7643 §7).

use serde_json::{Map, Value};

use crate::scim::discovery::{
    attribute, schema_def, split_urn, AttributeDef, ResourceTypeDef, Returned,
};

/// Projects `doc` for the client. With `attributes`, only those (and `returned: always` ones,
/// such as `id` and `schemas`) remain; otherwise `excludedAttributes` are removed, except
/// `returned: always` ones. `returned: request` attributes appear only when asked for.
pub fn project(
    rt: &ResourceTypeDef,
    doc: Value,
    attributes: &[String],
    excluded: &[String],
) -> Value {
    let Value::Object(map) = doc else { return doc };
    let wanted = Wanted {
        included: attributes.iter().filter_map(|p| parse(rt, p)).collect(),
        excluded: excluded.iter().filter_map(|p| parse(rt, p)).collect(),
        listed: !attributes.is_empty(),
    };
    Value::Object(project_map(rt, None, map, &wanted))
}

/// One requested path: schema (`None` for the core schema and common attributes), attribute
/// and sub-attribute, lower-cased because names are case-insensitive (RFC 7643 §2.1).
struct Path {
    schema: Option<&'static str>,
    attr: Option<String>,
    sub: Option<String>,
}

struct Wanted {
    included: Vec<Path>,
    excluded: Vec<Path>,
    listed: bool,
}

/// What a list of paths says about one attribute.
enum Pick {
    All,
    Subs(Vec<String>),
    Nothing,
}

fn parse(rt: &ResourceTypeDef, path: &str) -> Option<Path> {
    if let Some(ext) = rt.extensions.iter().find(|u| u.eq_ignore_ascii_case(path)) {
        return Some(Path {
            schema: Some(ext),
            attr: None,
            sub: None,
        });
    }
    let (schema, rest) = split_urn(rt, path);
    let schema = schema.filter(|s| *s != rt.schema);
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s.to_lowercase())),
        None => (rest, None),
    };
    (!attr.is_empty()).then(|| Path {
        schema,
        attr: Some(attr.to_lowercase()),
        sub,
    })
}

fn pick(paths: &[Path], schema: Option<&str>, name: &str) -> Pick {
    let name = name.to_lowercase();
    let mut subs = Vec::new();
    for p in paths.iter().filter(|p| p.schema == schema) {
        match (&p.attr, &p.sub) {
            (None, _) => return Pick::All,
            (Some(a), None) if *a == name => return Pick::All,
            (Some(a), Some(s)) if *a == name => subs.push(s.clone()),
            _ => {}
        }
    }
    if subs.is_empty() {
        Pick::Nothing
    } else {
        Pick::Subs(subs)
    }
}

fn project_map(
    rt: &ResourceTypeDef,
    schema: Option<&'static str>,
    map: Map<String, Value>,
    wanted: &Wanted,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in map {
        let ext = rt.extensions.iter().find(|u| u.eq_ignore_ascii_case(&key));
        if let (None, Some(ext), Value::Object(inner)) = (schema, ext, &value) {
            let inner = project_map(rt, Some(ext), inner.clone(), wanted);
            if !inner.is_empty() {
                out.insert(key, Value::Object(inner));
            }
            continue;
        }
        let def = match schema {
            Some(urn) => schema_def(urn).and_then(|s| s.attribute(&key)),
            None => attribute(rt.name, &key),
        };
        if let Some(v) = keep(def, value, &key, schema, wanted) {
            out.insert(key, v);
        }
    }
    out
}

fn keep(
    def: Option<&AttributeDef>,
    value: Value,
    key: &str,
    schema: Option<&str>,
    wanted: &Wanted,
) -> Option<Value> {
    match def.map_or(Returned::Default, |d| d.returned) {
        Returned::Never => None,
        Returned::Always => Some(value),
        _ if wanted.listed => match pick(&wanted.included, schema, key) {
            Pick::All => Some(value),
            Pick::Subs(subs) => select_subs(def, value, &subs, true),
            Pick::Nothing => None,
        },
        Returned::Request => None,
        Returned::Default => match pick(&wanted.excluded, schema, key) {
            Pick::All => None,
            Pick::Subs(subs) => select_subs(def, value, &subs, false),
            Pick::Nothing => Some(value),
        },
    }
}

/// Keeps (`keep_listed`) or removes the listed sub-attributes of a complex value, or of each
/// value of a multi-valued one. `returned: always` sub-attributes stay either way.
fn select_subs(
    def: Option<&AttributeDef>,
    value: Value,
    subs: &[String],
    keep_listed: bool,
) -> Option<Value> {
    let always = |k: &str| {
        def.and_then(|d| d.sub_attribute(k))
            .is_some_and(|s| s.returned == Returned::Always)
    };
    let select = |obj: Map<String, Value>| -> Map<String, Value> {
        obj.into_iter()
            .filter(|(k, _)| always(k) || subs.contains(&k.to_lowercase()) == keep_listed)
            .collect()
    };
    match value {
        Value::Object(obj) => Some(select(obj))
            .filter(|m| !m.is_empty())
            .map(Value::Object),
        Value::Array(items) => {
            let items: Vec<Value> = items
                .into_iter()
                .filter_map(|v| match v {
                    Value::Object(o) => {
                        Some(select(o)).filter(|m| !m.is_empty()).map(Value::Object)
                    }
                    other => Some(other),
                })
                .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::discovery::{GROUP, USER};
    use crate::scim::urn;

    fn user() -> Value {
        json!({
            "schemas": [urn::USER, urn::ENTERPRISE_USER],
            "id": "2819c223",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work"}],
            "meta": {"resourceType": "User", "version": "W/\"1\""},
            (urn::ENTERPRISE_USER): {"employeeNumber": "701984", "costCenter": "4130"}
        })
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn attributes_keep_only_requested_plus_id_and_schemas() {
        let v = project(&USER, user(), &strings(&["userName"]), &[]);
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["id", "schemas", "userName"]);
    }

    #[test]
    fn sub_attribute_paths_select_inside_complex_and_multi_valued() {
        let v = project(
            &USER,
            user(),
            &strings(&["NAME.givenName", "emails.value"]),
            &[],
        );
        assert_eq!(v["name"], json!({"givenName": "Barbara"}));
        assert_eq!(v["emails"], json!([{"value": "bjensen@example.com"}]));
    }

    #[test]
    fn urn_qualified_paths_reach_core_and_extension_attributes() {
        let core = format!("{}:userName", urn::USER);
        let ext = format!("{}:employeeNumber", urn::ENTERPRISE_USER);
        let v = project(&USER, user(), &[core, ext], &[]);
        assert_eq!(v["userName"], "bjensen");
        assert_eq!(v[urn::ENTERPRISE_USER], json!({"employeeNumber": "701984"}));
        let v = project(&USER, user(), &strings(&[urn::ENTERPRISE_USER]), &[]);
        assert_eq!(v[urn::ENTERPRISE_USER]["costCenter"], "4130");
        assert!(v.get("userName").is_none());
    }

    #[test]
    fn excluded_attributes_never_remove_id_or_schemas() {
        let v = project(
            &USER,
            user(),
            &[],
            &strings(&["emails", "id", "schemas", "name.familyName", "meta"]),
        );
        assert!(v.get("emails").is_none() && v.get("meta").is_none());
        assert_eq!(v["id"], "2819c223");
        assert!(v.get("schemas").is_some());
        assert_eq!(v["name"], json!({"givenName": "Barbara"}));
    }

    #[test]
    fn never_returned_attributes_are_dropped_even_when_asked_for() {
        let mut doc = user();
        doc["password"] = json!("t1meMa$heen");
        assert!(project(&USER, doc.clone(), &strings(&["password"]), &[])
            .get("password")
            .is_none());
        assert!(project(&USER, doc, &[], &[]).get("password").is_none());
    }

    #[test]
    fn no_parameters_return_the_document_unchanged() {
        assert_eq!(project(&USER, user(), &[], &[]), user());
        let group = json!({"schemas": [urn::GROUP], "id": "g", "displayName": "Tour Guides"});
        assert_eq!(
            project(&GROUP, group.clone(), &[], &strings(&["members"])),
            group
        );
    }

    #[test]
    fn unknown_requested_names_yield_only_always_returned() {
        let v = project(&USER, user(), &strings(&["shoeSize", "urn:x:y:z"]), &[]);
        assert_eq!(v.as_object().map(Map::len), Some(2));
    }
}
