//! Turns a POST or PUT body into the resource the store keeps: checked against the resource
//! type's schemas, attribute names in their canonical case, readOnly and unassigned values
//! dropped (RFC 7643 §2.2, §2.5; RFC 7644 §3.3, §3.5.1).

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{invalid, syntax};
use crate::scim::discovery::{
    schema_def, top_level, AttrType, AttributeDef, Mutability, ResourceTypeDef, SchemaDef,
};
use crate::scim::error::{ScimError, ScimType};

/// Parses and validates a resource body. The result has no readOnly attributes (id, meta,
/// groups): those are the server's to set.
pub(super) fn resource(rt: &ResourceTypeDef, body: &[u8]) -> Result<Map<String, Value>, ScimError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| syntax(format!("the body is not valid JSON: {e}")))?;
    document(rt, &value)
}

/// Validates a resource representation: a parsed body, or the result of a PATCH, which must
/// pass the same checks as a PUT of it would.
pub(super) fn document(
    rt: &ResourceTypeDef,
    value: &Value,
) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(obj) = value else {
        return Err(syntax("the body must be a JSON object"));
    };
    let schemas = declared_schemas(rt, obj.get("schemas"))?;
    let core = schema_def(rt.schema).expect("every resource type's core schema is bundled");
    let mut out = Map::new();
    for (key, value) in obj {
        if key == "schemas" {
            continue;
        }
        if let Some(ext) = rt.extensions.iter().find(|u| u.eq_ignore_ascii_case(key)) {
            if !schemas.iter().any(|s| s == ext) {
                return Err(invalid(format!(
                    "{ext} is used but not listed in \"schemas\""
                )));
            }
            let ext_def = schema_def(ext).expect("every extension schema is bundled");
            let attrs = object(Name::Top(ext), value, |name| ext_def.attribute(name))?;
            insert_unless_empty(&mut out, ext, attrs);
            continue;
        }
        let def =
            top_level(rt, key).ok_or_else(|| invalid(format!("unknown attribute {key:?}")))?;
        if let Some(v) = attribute(def, value, Name::Top(&def.name))? {
            out.insert(def.name.clone(), v);
        }
    }
    check_required(core, &out)?;
    out.insert("schemas".into(), Value::from(schemas));
    Ok(out)
}

/// `schemas` must be an array of URIs naming the core schema and only schemas of this type
/// (RFC 7643 §3: "schemas" is REQUIRED).
fn declared_schemas(
    rt: &ResourceTypeDef,
    schemas: Option<&Value>,
) -> Result<Vec<String>, ScimError> {
    let list = schemas
        .and_then(Value::as_array)
        .ok_or_else(|| syntax("\"schemas\" is required and must be an array of schema URIs"))?;
    let mut out: Vec<String> = Vec::new();
    for item in list {
        let s = item
            .as_str()
            .ok_or_else(|| invalid("\"schemas\" must hold strings"))?;
        let known = std::iter::once(&rt.schema).chain(rt.extensions);
        let urn = known
            .copied()
            .find(|u| u.eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                invalid(format!(
                    "schema {s:?} is not one of the {} resource type",
                    rt.name
                ))
            })?;
        if !out.iter().any(|o| o == urn) {
            out.push(urn.to_owned());
        }
    }
    if !out.iter().any(|u| u == rt.schema) {
        return Err(invalid(format!("\"schemas\" must include {}", rt.schema)));
    }
    Ok(out)
}

/// Where a value sits (`name.givenName`), for error messages: written out only when one is.
#[derive(Clone, Copy)]
enum Name<'a> {
    Top(&'a str),
    Sub(&'a Name<'a>, &'a str),
}

impl std::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Top(name) => f.write_str(name),
            Name::Sub(parent, name) => write!(f, "{parent}.{name}"),
        }
    }
}

/// Checks one attribute; `None` means unassigned (readOnly, null or empty).
fn attribute(
    def: &AttributeDef,
    value: &Value,
    path: Name<'_>,
) -> Result<Option<Value>, ScimError> {
    // RFC 7643 §2.2: a readOnly value sent by the client SHALL be ignored.
    if def.mutability == Mutability::ReadOnly || value.is_null() {
        return Ok(None);
    }
    if !def.multi_valued {
        return single(def, value, path);
    }
    let items = value
        .as_array()
        .ok_or_else(|| invalid(format!("{path} must be an array")))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.extend(single(def, item, path)?);
    }
    check_one_primary(&out, path)?;
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// One value of the attribute's type (RFC 7643 §2.3).
fn single(def: &AttributeDef, value: &Value, path: Name<'_>) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    let ok = match def.kind {
        AttrType::Complex => {
            let attrs = object(path, value, |name| def.sub_attribute(name))?;
            return Ok((!attrs.is_empty()).then_some(Value::Object(attrs)));
        }
        AttrType::String | AttrType::Binary | AttrType::Reference => value.is_string(),
        AttrType::Boolean => value.is_boolean(),
        AttrType::Integer => value.is_i64() || value.is_u64(),
        AttrType::Decimal => value.is_number(),
        AttrType::DateTime => value
            .as_str()
            .is_some_and(|s| OffsetDateTime::parse(s, &Rfc3339).is_ok()),
    };
    if ok {
        Ok(Some(value.clone()))
    } else {
        Err(invalid(format!("{path} must be of type {:?}", def.kind)))
    }
}

/// A complex value or an extension object: every key must name a known (sub-)attribute.
fn object<'d>(
    path: Name<'_>,
    value: &Value,
    lookup: impl Fn(&str) -> Option<&'d AttributeDef>,
) -> Result<Map<String, Value>, ScimError> {
    let obj = value
        .as_object()
        .ok_or_else(|| invalid(format!("{path} must be an object")))?;
    let mut out = Map::new();
    for (key, v) in obj {
        let def = lookup(key).ok_or_else(|| invalid(format!("unknown attribute {path}.{key}")))?;
        if let Some(v) = attribute(def, v, Name::Sub(&path, &def.name))? {
            out.insert(def.name.clone(), v);
        }
    }
    Ok(out)
}

/// RFC 7643 §2.4: the primary value "true" MUST appear no more than once.
fn check_one_primary(items: &[Value], path: Name<'_>) -> Result<(), ScimError> {
    let primaries = items
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(invalid(format!("{path} has more than one primary value")));
    }
    Ok(())
}

/// Required attributes a client can write must be present (RFC 7643 §2.2 "required"); a
/// blank string does not count as a value (an empty `userName` identifies no one).
fn check_required(core: &SchemaDef, out: &Map<String, Value>) -> Result<(), ScimError> {
    let writable_required = core
        .attributes
        .iter()
        .filter(|a| a.required && a.mutability != Mutability::ReadOnly);
    for def in writable_required {
        let blank = |v: &Value| v.as_str().is_some_and(|s| s.trim().is_empty());
        if out.get(&def.name).is_none_or(blank) {
            return Err(invalid(format!("{} is required", def.name)));
        }
    }
    Ok(())
}

fn insert_unless_empty(out: &mut Map<String, Value>, key: &str, attrs: Map<String, Value>) {
    if !attrs.is_empty() {
        out.insert(key.to_owned(), Value::Object(attrs));
    }
}

/// PUT (RFC 7644 §3.5.1): an immutable value already set must not change, and a writeOnly
/// value the client omitted is kept (it could never have read it back to resend it).
pub(super) fn carry_over(
    schema: &SchemaDef,
    old: &Map<String, Value>,
    new: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    for def in &schema.attributes {
        let Some(old_value) = old.get(&def.name) else {
            continue;
        };
        match (def.mutability, new.get(&def.name)) {
            (Mutability::Immutable, Some(v)) if v != old_value => {
                return Err(ScimError::with_type(
                    400,
                    ScimType::Mutability,
                    format!("{} is immutable and already set", def.name),
                ));
            }
            (Mutability::Immutable | Mutability::WriteOnly, None) => {
                new.insert(def.name.clone(), old_value.clone());
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::discovery::{GROUP, USER};
    use crate::scim::urn;

    fn check(rt: &ResourceTypeDef, v: Value) -> Result<Map<String, Value>, ScimError> {
        resource(rt, v.to_string().as_bytes())
    }

    fn err_type(rt: &ResourceTypeDef, v: Value) -> Option<ScimType> {
        check(rt, v).expect_err("must be refused").scim_type
    }

    #[test]
    fn names_are_canonicalized_and_read_only_dropped() {
        let out = check(
            &USER,
            json!({
                "schemas": [urn::USER], "USERNAME": "bjensen", "id": "x", "meta": {"version": "1"},
                "name": {"GIVENNAME": "Barbara"}, "groups": [{"value": "g"}], "nickName": null
            }),
        )
        .expect("valid");
        assert_eq!(out["userName"], "bjensen");
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
        assert!(
            !out.contains_key("id") && !out.contains_key("meta") && !out.contains_key("groups")
        );
        assert!(!out.contains_key("nickName"));
    }

    #[test]
    fn malformed_json_is_invalid_syntax() {
        let e = resource(&USER, b"{\"userName\":").expect_err("truncated");
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidSyntax))
        );
        assert_eq!(
            resource(&USER, b"[]").expect_err("array").scim_type,
            Some(ScimType::InvalidSyntax)
        );
    }

    #[test]
    fn schemas_must_name_the_core_schema_of_the_endpoint() {
        assert_eq!(
            err_type(&USER, json!({"userName": "a"})),
            Some(ScimType::InvalidSyntax)
        );
        assert_eq!(
            err_type(&USER, json!({"schemas": [urn::GROUP], "userName": "a"})),
            Some(ScimType::InvalidValue)
        );
        let ext_only = json!({"schemas": [urn::ENTERPRISE_USER], "userName": "a"});
        assert_eq!(err_type(&USER, ext_only), Some(ScimType::InvalidValue));
    }

    #[test]
    fn wrong_json_types_are_invalid_value() {
        for bad in [
            json!({"active": "true"}),
            json!({"emails": {"value": "a@b"}}),
            json!({"name": "Bob"}),
            json!({"emails": [{"value": 5}]}),
            json!({"shoeSize": 44}),
        ] {
            let mut body = json!({"schemas": [urn::USER], "userName": "a"});
            body.as_object_mut()
                .expect("object")
                .extend(bad.as_object().expect("object").clone());
            assert_eq!(err_type(&USER, body), Some(ScimType::InvalidValue));
        }
    }

    #[test]
    fn required_attributes_are_enforced() {
        assert_eq!(
            err_type(&USER, json!({"schemas": [urn::USER]})),
            Some(ScimType::InvalidValue)
        );
        assert_eq!(
            err_type(&GROUP, json!({"schemas": [urn::GROUP]})),
            Some(ScimType::InvalidValue)
        );
        let blank = json!({"schemas": [urn::USER], "userName": "  "});
        assert_eq!(err_type(&USER, blank), Some(ScimType::InvalidValue));
    }

    #[test]
    fn extension_needs_its_urn_in_schemas() {
        let ext = json!({"employeeNumber": "701984"});
        let body = json!({"schemas": [urn::USER], "userName": "a", (urn::ENTERPRISE_USER): ext});
        assert_eq!(err_type(&USER, body), Some(ScimType::InvalidValue));
        let body = json!({"schemas": [urn::USER, urn::ENTERPRISE_USER], "userName": "a", (urn::ENTERPRISE_USER): ext});
        assert_eq!(
            check(&USER, body).expect("valid")[urn::ENTERPRISE_USER]["employeeNumber"],
            "701984"
        );
    }

    #[test]
    fn two_primary_values_are_refused() {
        let emails = json!([{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]);
        let body = json!({"schemas": [urn::USER], "userName": "a", "emails": emails});
        assert_eq!(err_type(&USER, body), Some(ScimType::InvalidValue));
    }

    #[test]
    fn put_keeps_write_only_values_and_refuses_changed_immutables() {
        let schema = schema_def(urn::USER).expect("User");
        let old = json!({"userName": "a", "password": "s3cret"});
        let mut new = json!({"userName": "b"})
            .as_object()
            .expect("object")
            .clone();
        carry_over(schema, old.as_object().expect("object"), &mut new).expect("no immutables");
        assert_eq!(new["password"], "s3cret");

        let schema: SchemaDef = serde_json::from_value(json!({"id": "urn:x", "name": "X",
            "attributes": [{"name": "badge", "mutability": "immutable"}]}))
        .expect("schema");
        let old = json!({"badge": "7"});
        let old = old.as_object().expect("object");
        let mut same = json!({"badge": "7"}).as_object().expect("object").clone();
        carry_over(&schema, old, &mut same).expect("unchanged immutable is fine");
        let mut omitted = Map::new();
        carry_over(&schema, old, &mut omitted).expect("omitted immutable is kept");
        assert_eq!(omitted["badge"], "7");
        let mut changed = json!({"badge": "8"}).as_object().expect("object").clone();
        let e = carry_over(&schema, old, &mut changed).expect_err("changed immutable");
        assert_eq!(e.scim_type, Some(ScimType::Mutability));
    }
}
