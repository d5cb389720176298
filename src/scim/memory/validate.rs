//! Turns a POST or PUT body into the resource the store keeps: checked against the resource
//! type's schemas, attribute names in their canonical case, readOnly and unassigned values
//! dropped (RFC 7643 §2.2, §2.5; RFC 7644 §3.3, §3.5.1).

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{invalid, syntax};
use crate::scim::discovery::{
    schema_def, AttrType, AttributeDef, Mutability, ResourceTypeDef, SchemaDef,
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
    walk(Mode::Copy, rt, value)
}

/// The checks of [`document`] alone, for a request that goes on as it is: nothing is copied.
pub(super) fn check(rt: &ResourceTypeDef, value: &Value) -> Result<(), ScimError> {
    walk(Mode::Check, rt, value).map(drop)
}

/// Whether a walk copies what it checks (the store keeps the result), or only checks it. A
/// check keeps, of each valid value, a stand-in holding what the checks after the walk read:
/// booleans (is an element the primary one?) and whether a string is blank (is a required
/// attribute given?); of a complex value, its boolean sub-attributes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Copy,
    Check,
}

fn walk(mode: Mode, rt: &ResourceTypeDef, value: &Value) -> Result<Map<String, Value>, ScimError> {
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
            let attrs = object(mode, Name::Top(ext), value, |name| ext_def.attribute(name))?;
            if let (Some(attrs), Mode::Copy) = (attrs, mode) {
                out.insert((*ext).to_owned(), Value::Object(attrs));
            }
            continue;
        }
        let def = core
            .top_level(key)
            .ok_or_else(|| invalid(format!("unknown attribute {key:?}")))?;
        if let Some(v) = attribute(mode, def, value, Name::Top(&def.name))? {
            if mode == Mode::Copy || def.required {
                out.insert(def.name.clone(), v);
            }
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
    mode: Mode,
    def: &AttributeDef,
    value: &Value,
    path: Name<'_>,
) -> Result<Option<Value>, ScimError> {
    // RFC 7643 §2.2: a readOnly value sent by the client SHALL be ignored.
    if def.mutability == Mutability::ReadOnly || value.is_null() {
        return Ok(None);
    }
    if !def.multi_valued {
        return single(mode, def, value, path);
    }
    let items = value
        .as_array()
        .ok_or_else(|| invalid(format!("{path} must be an array")))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.extend(single(mode, def, item, path)?);
    }
    check_one_primary(&out, path)?;
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// One value of the attribute's type (RFC 7643 §2.3).
fn single(
    mode: Mode,
    def: &AttributeDef,
    value: &Value,
    path: Name<'_>,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    let ok = match def.kind {
        AttrType::Complex => {
            let attrs = object(mode, path, value, |name| def.sub_attribute(name))?;
            return Ok(attrs.map(Value::Object));
        }
        AttrType::String | AttrType::Binary | AttrType::Reference => value.is_string(),
        AttrType::Boolean => value.is_boolean(),
        AttrType::Integer => value.is_i64() || value.is_u64(),
        AttrType::Decimal => value.is_number(),
        AttrType::DateTime => value
            .as_str()
            .is_some_and(|s| OffsetDateTime::parse(s, &Rfc3339).is_ok()),
    };
    if !ok {
        return Err(invalid(format!("{path} must be of type {:?}", def.kind)));
    }
    Ok(Some(match (mode, value) {
        (Mode::Copy, _) => value.clone(),
        (Mode::Check, Value::Bool(b)) => Value::Bool(*b),
        (Mode::Check, Value::String(s)) if s.trim().is_empty() => Value::String(String::new()),
        (Mode::Check, _) => Value::Null,
    }))
}

/// A complex value or an extension object: every key must name a known (sub-)attribute.
/// `None` when nothing of it is kept (every value readOnly, null or empty).
fn object<'d>(
    mode: Mode,
    path: Name<'_>,
    value: &Value,
    lookup: impl Fn(&str) -> Option<&'d AttributeDef>,
) -> Result<Option<Map<String, Value>>, ScimError> {
    let obj = value
        .as_object()
        .ok_or_else(|| invalid(format!("{path} must be an object")))?;
    let mut out = Map::new();
    let mut kept = false;
    for (key, v) in obj {
        let def = lookup(key).ok_or_else(|| invalid(format!("unknown attribute {path}.{key}")))?;
        if let Some(v) = attribute(mode, def, v, Name::Sub(&path, &def.name))? {
            kept = true;
            if mode == Mode::Copy || v.is_boolean() {
                out.insert(def.name.clone(), v);
            }
        }
    }
    Ok(kept.then_some(out))
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

    mod check_alone {
        use proptest::prelude::*;

        use super::*;
        use crate::scim::memory::validate;

        /// Leaves and shapes that meet the User schema's checks in every way: wrong types,
        /// blanks, nulls, duplicates of `primary`, unknown sub-attributes, names in any case.
        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i32>().prop_map(Value::from),
                prop::sample::select(vec!["", " ", "a", "2024-01-01T00:00:00Z", "x@y"])
                    .prop_map(Value::from),
            ];
            let sub = prop::sample::select(vec![
                "value",
                "PRIMARY",
                "primary",
                "type",
                "givenName",
                "display",
                "$ref",
                "nope",
            ]);
            let object = prop::collection::btree_map(sub, leaf.clone(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.into(), v)).collect()));
            prop_oneof![
                leaf,
                object.clone(),
                prop::collection::vec(prop_oneof![object, Just(Value::Null)], 0..4)
                    .prop_map(Value::Array),
            ]
        }

        fn document() -> impl Strategy<Value = Value> {
            let key = prop::sample::select(vec![
                "userName",
                "USERNAME",
                "name",
                "emails",
                "active",
                "displayName",
                "id",
                "meta",
                "nickName",
                "phoneNumbers",
                "x509Certificates",
                "members",
                "groups",
                "unknown",
                urn::ENTERPRISE_USER,
            ]);
            let schemas = prop::sample::select(vec![
                json!([urn::USER]),
                json!([urn::USER, urn::ENTERPRISE_USER]),
                json!([urn::GROUP]),
                json!("x"),
            ]);
            (schemas, prop::collection::btree_map(key, value(), 0..6)).prop_map(|(s, m)| {
                let mut obj: Map<String, Value> =
                    m.into_iter().map(|(k, v)| (k.into(), v)).collect();
                obj.insert("schemas".into(), s);
                Value::Object(obj)
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            /// The check alone refuses exactly what the copying walk refuses, for the same
            /// reason, for Users and Groups.
            #[test]
            fn the_check_alone_agrees_with_the_copy(doc in document()) {
                for rt in [&USER, &GROUP] {
                    prop_assert_eq!(validate::check(rt, &doc), validate::document(rt, &doc).map(drop));
                }
            }
        }
    }
}
