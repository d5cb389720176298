//! The schema check after normalization (RFC 7643 §2, §7; RFC 7644 §3.5.2): what the rules
//! left must be a valid resource or PatchOp for the resource type, with the checks and errors
//! of the memory store. Extensions the bundled schemas do not define (an application's own,
//! such as Entra's `urn:…:extension:CustomExtensionName:2.0:User`) are the application's to
//! judge and are left out.

use std::borrow::Cow;

use serde_json::Value;

use super::model::Shape;
use crate::scim::discovery::{
    attribute, AttrType, AttributeDef, ResourceTypeDef, SchemaInfo, GROUP, USER,
};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::patch::PatchRequest;
use crate::scim::path::{get_ci, PatchPath};

pub fn check(rt: &'static ResourceTypeDef, shape: Shape, body: &Value) -> Result<(), ScimError> {
    match shape {
        Shape::Resource => {
            let body = without_foreign(rt, body);
            crate::scim::memory::check_resource(rt, &body)
        }
        Shape::Patch => check_patch(rt, body),
        Shape::Other => Ok(()),
    }
}

/// The PatchOp parsed, and applied to an empty resource of the type, so that paths and values
/// meet the schema as the store's PATCH would have them.
fn check_patch(rt: &'static ResourceTypeDef, body: &Value) -> Result<(), ScimError> {
    let Some(body) = own_operations(rt, body) else {
        return Ok(());
    };
    let patch = PatchRequest::from_json(&body).map_err(ScimError::from)?;
    if let Some(Value::Array(ops)) = body.get("Operations") {
        for op in ops {
            check_op_value(rt, op)?;
        }
    }
    let mut empty = serde_json::json!({"schemas": [rt.schema]});
    let info = SchemaInfo::new(if rt.name == GROUP.name { &GROUP } else { &USER });
    match patch.apply(&mut empty, &info) {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = ScimError::from(e);
            // A remove or a value filter that finds nothing in an empty resource says nothing
            // about the request.
            if e.scim_type == Some(ScimType::NoTarget) {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// The PatchOp without its operations on extensions the proxy does not bundle; `None` when
/// that leaves nothing to judge.
fn own_operations(rt: &'static ResourceTypeDef, body: &Value) -> Option<Value> {
    let mut body = body.clone();
    if let Some(Value::Array(ops)) = body.get_mut("Operations") {
        let given = ops.len();
        ops.retain(|op| !op_is_foreign(rt, op));
        if given > 0 && ops.is_empty() {
            // Every operation is on the app's own extensions: nothing here to judge.
            return None;
        }
        for op in ops.iter_mut() {
            let pathless = op_path(op).is_none();
            if let Some(v) = op.get_mut("value").filter(|v| pathless && v.is_object()) {
                *v = without_foreign(rt, v).into_owned();
            }
        }
    }
    Some(body)
}

/// What an emulated PATCH would write, judged as the memory store judges a resource: the
/// PatchOp checked as above, then applied to a resource holding only the attributes the
/// schema requires, and the result validated whole, so that a sub-attribute the schema lacks
/// (`members[].displayName`) is refused too. Stage 6 leaves that to an app that does PATCH
/// itself; the proxy, writing the PUT, must not.
pub fn check_written(rt: &'static ResourceTypeDef, body: &Value) -> Result<(), ScimError> {
    check_patch(rt, body)?;
    let Some(body) = own_operations(rt, body) else {
        return Ok(());
    };
    let patch = PatchRequest::from_json(&body).map_err(ScimError::from)?;
    let required = if rt.name == GROUP.name {
        "displayName"
    } else {
        "userName"
    };
    let mut seeded = serde_json::json!({"schemas": [rt.schema], required: "required"});
    let info = SchemaInfo::new(if rt.name == GROUP.name { &GROUP } else { &USER });
    match patch.apply(&mut seeded, &info) {
        Ok(_) => {}
        Err(e) => {
            let e = ScimError::from(e);
            return if e.scim_type == Some(ScimType::NoTarget) {
                Ok(())
            } else {
                Err(e)
            };
        }
    }
    crate::scim::memory::check_resource(rt, &without_foreign(rt, &seeded))
}

/// The value of one operation has the type the schema gives what it targets (the PATCH
/// engine checks paths and shapes, the store checks types only when it stores the result).
fn check_op_value(rt: &'static ResourceTypeDef, op: &Value) -> Result<(), ScimError> {
    let Some(value) = op.as_object().and_then(|o| get_ci(o, "value")) else {
        return Ok(());
    };
    // A path naming a whole extension (`urn:…:enterprise:2.0:User`): its value is that
    // extension's attributes.
    if let Some(ext) = op_path(op).and_then(|p| {
        rt.extensions
            .iter()
            .find(|e| e.eq_ignore_ascii_case(p.trim()))
    }) {
        return match value {
            Value::Object(obj) => {
                obj.iter()
                    .try_for_each(|(k, v)| match attribute(rt.name, &format!("{ext}:{k}")) {
                        Some(def) => fits(def, v, true, k),
                        None => Ok(()),
                    })
            }
            _ => Ok(()),
        };
    }
    match op_path(op).and_then(|p| PatchPath::parse(p).ok()) {
        Some(path) => {
            let target = path.target().to_string();
            let whole = path.filter.is_none() && path.sub.is_none();
            match attribute(rt.name, &target) {
                Some(def) => fits(def, value, whole, &target),
                None => Ok(()),
            }
        }
        None => match value {
            Value::Object(obj) => obj
                .iter()
                .try_for_each(|(k, v)| match attribute(rt.name, k) {
                    Some(def) => fits(def, v, true, k),
                    None => Ok(()),
                }),
            _ => Ok(()),
        },
    }
}

/// Whether `v` can be a value of the attribute `def` (RFC 7643 §2.3); `whole` when it stands
/// for all of a multi-valued attribute.
fn fits(def: &AttributeDef, v: &Value, whole: bool, name: &str) -> Result<(), ScimError> {
    if v.is_null() {
        return Ok(());
    }
    if def.multi_valued && whole {
        return match v {
            Value::Array(items) => items.iter().try_for_each(|i| fits(def, i, false, name)),
            _ => fits(def, v, false, name),
        };
    }
    let ok = match def.kind {
        AttrType::Boolean => v.is_boolean(),
        AttrType::Integer => v.is_i64() || v.is_u64(),
        AttrType::Decimal => v.is_number(),
        AttrType::Complex => match v {
            Value::Object(obj) => {
                for (k, sv) in obj {
                    if let Some(sub) = def.sub_attribute(k) {
                        fits(sub, sv, true, &format!("{name}.{}", sub.name))?;
                    }
                }
                true
            }
            _ => false,
        },
        _ => v.is_string(),
    };
    if ok {
        return Ok(());
    }
    let expected = match def.kind {
        AttrType::Boolean => "a boolean",
        AttrType::Integer => "an integer",
        AttrType::Decimal => "a number",
        AttrType::Complex => "an object",
        _ => "a string",
    };
    Err(ScimError::with_type(
        400,
        ScimType::InvalidValue,
        format!("{name}: expected {expected} (RFC 7643 §2.3)"),
    ))
}

fn op_path(op: &Value) -> Option<&str> {
    get_ci(op.as_object()?, "path")?.as_str()
}

/// An operation on an extension the proxy does not bundle. A path naming a whole known
/// extension (`urn:…:enterprise:2.0:User`, which parses as URN `…:2.0` and name `User`) is
/// not one.
fn op_is_foreign(rt: &ResourceTypeDef, op: &Value) -> bool {
    let Some(path) = op_path(op) else {
        return false;
    };
    let Ok(parsed) = PatchPath::parse(path) else {
        return false;
    };
    let Some(urn) = parsed.attr.urn else {
        return false;
    };
    let whole = format!("{urn}:{}", parsed.attr.name);
    foreign(rt, &urn) && foreign(rt, &whole)
}

fn foreign(rt: &ResourceTypeDef, urn: &str) -> bool {
    urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) && !rt.has_schema(urn)
}

fn without_foreign<'v>(rt: &ResourceTypeDef, body: &'v Value) -> Cow<'v, Value> {
    let has_foreign = body.as_object().is_some_and(|obj| {
        obj.keys().any(|k| foreign(rt, k))
            || obj
                .get("schemas")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|s| s.as_str().is_some_and(|s| foreign(rt, s))))
    });
    if !has_foreign {
        return Cow::Borrowed(body);
    }
    let mut body = body.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.retain(|k, _| !foreign(rt, k));
        if let Some(Value::Array(schemas)) = obj.get_mut("schemas") {
            schemas.retain(|s| !s.as_str().is_some_and(|s| foreign(rt, s)));
        }
    }
    Cow::Owned(body)
}
