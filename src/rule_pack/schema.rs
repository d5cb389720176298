//! The schema check after normalization (RFC 7643 §2, §7; RFC 7644 §3.5.2): what the rules
//! left must be a valid resource or PatchOp for the resource type, with the checks and errors
//! of the memory store. Extensions the bundled schemas do not define (an application's own,
//! such as Entra's `urn:…:extension:CustomExtensionName:2.0:User`) are the application's to
//! judge and are left out.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::model::Shape;
use crate::scim::discovery::{
    attribute_in, AttrType, AttributeDef, Extensions, ResourceTypeDef, SchemaDef, SchemaInfo,
    GROUP, USER,
};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::patch::{describes_extension, PatchOperation, PatchRequest};
use crate::scim::path::PatchPath;

pub fn check(
    rt: &'static ResourceTypeDef,
    shape: Shape,
    body: &Value,
    ext: &Extensions,
) -> Result<(), ScimError> {
    match shape {
        Shape::Resource => {
            if let Value::Object(obj) = body {
                extension_values(ext, obj)?;
            }
            let body = without_foreign(rt, body);
            crate::scim::memory::check_resource(rt, &body)
        }
        Shape::Patch => check_patch(rt, body, ext),
        Shape::Other => Ok(()),
    }
}

/// The PatchOp parsed, and judged as the store's PATCH would judge it on a resource of the
/// type that holds none of the attributes it names.
fn check_patch(
    rt: &'static ResourceTypeDef,
    body: &Value,
    ext: &Extensions,
) -> Result<(), ScimError> {
    judged(rt, body, ext).map(drop)
}

/// The PatchOp's own operations (see `own_operations`), once each names attributes the schema
/// has, with values of their types, that the PATCH engine would not refuse (`judge`); `None`
/// when there are none to judge. Parsed once for both checks.
fn judged<'b>(
    rt: &'static ResourceTypeDef,
    body: &'b Value,
    ext: &Extensions,
) -> Result<Option<PatchRequest<'b>>, ScimError> {
    let Some(patch) = own_operations(rt, body, ext)? else {
        return Ok(None);
    };
    for op in &patch.operations {
        known_attributes(rt, op)?;
        check_op_value(rt, op)?;
    }
    let empty = serde_json::json!({"schemas": [rt.schema]});
    patch.judge(&empty, &info(rt))?;
    Ok(Some(patch))
}

fn info(rt: &ResourceTypeDef) -> SchemaInfo {
    SchemaInfo::new(if rt.name == GROUP.name { &GROUP } else { &USER })
}

/// Whether `patch` applied to `resource` changed it. An operation whose target is not there
/// (a remove, a value filter that finds nothing) says nothing about the request, since the
/// resource is made up: it is passed over, and the operations after it are still judged.
fn applied(
    patch: &PatchRequest,
    rt: &ResourceTypeDef,
    resource: &mut Value,
) -> Result<bool, ScimError> {
    Ok(patch.apply_where_found(resource, &info(rt))?)
}

/// The PatchOp parsed, without its operations on extensions the proxy does not bundle and
/// without their attributes in path-less values; `None` when that leaves nothing to judge.
fn own_operations<'b>(
    rt: &'static ResourceTypeDef,
    body: &'b Value,
    ext: &Extensions,
) -> Result<Option<PatchRequest<'b>>, ScimError> {
    let mut patch = PatchRequest::from_json(body)?;
    for op in &patch.operations {
        extension_op(rt, ext, op)?;
    }
    patch.operations.retain(|op| !op_is_foreign(rt, op));
    if patch.operations.is_empty() {
        // Every operation is on the app's own extensions: nothing here to judge.
        return Ok(None);
    }
    for op in &mut patch.operations {
        if let (None, Some(v)) = (&op.path, &mut op.value) {
            if let Cow::Owned(own) = without_foreign(rt, v) {
                *v = Cow::Owned(own);
            }
        }
    }
    Ok(Some(patch))
}

/// What an emulated PATCH would write, judged as the memory store judges a resource: the
/// PatchOp checked as above, then applied to a resource holding only the attributes the
/// schema requires, and the result validated whole, so that a sub-attribute the schema lacks
/// (`members[].displayName`) is refused too. Stage 6 leaves that to an app that does PATCH
/// itself; the proxy, writing the PUT, must not.
pub fn check_written(
    rt: &'static ResourceTypeDef,
    body: &Value,
    ext: &Extensions,
) -> Result<(), ScimError> {
    let Some(patch) = judged(rt, body, ext)? else {
        return Ok(());
    };
    let required = if rt.name == GROUP.name {
        "displayName"
    } else {
        "userName"
    };
    let mut seeded = serde_json::json!({"schemas": [rt.schema], required: "required"});
    if !applied(&patch, rt, &mut seeded)? {
        // Nothing written (or a remove that found nothing): nothing more to judge.
        return Ok(());
    }
    crate::scim::memory::check_resource(rt, &without_foreign(rt, &seeded))
}

/// Every attribute an operation names is one the resource type has (RFC 7644 §3.5.2: a path
/// the schema lacks is 400 `invalidPath`), as a resource's are checked: its path's attribute
/// and sub-attribute, or the top-level names of a path-less value. Extensions the proxy does
/// not bundle were taken out before; they are the app's to judge.
fn known_attributes(rt: &'static ResourceTypeDef, op: &PatchOperation) -> Result<(), ScimError> {
    let unknown = |name: &dyn std::fmt::Display| {
        ScimError::with_type(
            400,
            ScimType::InvalidPath,
            format!("unknown attribute {name} (not in the {} schema)", rt.name),
        )
    };
    let Some(path) = &op.path else {
        let Some(Value::Object(obj)) = op.value.as_deref() else {
            return Ok(());
        };
        return obj.iter().try_for_each(|(key, value)| {
            let Some(ext) = rt.extensions.iter().find(|e| e.eq_ignore_ascii_case(key)) else {
                return match attribute_in(rt, &[key]) {
                    Some(_) => Ok(()),
                    None => Err(unknown(key)),
                };
            };
            extension_keys(rt, ext, value, &unknown)
        });
    };
    if let Some(ext) = whole_extension(rt, path) {
        return match op.value.as_deref() {
            Some(value) => extension_keys(rt, ext, value, &unknown),
            None => Ok(()),
        };
    }
    let attr = &path.attr;
    // The attribute without its sub-attribute: the first three pieces.
    let top = attribute_in(rt, &attr.pieces(None)[..3]).ok_or_else(|| unknown(&attr.parent()))?;
    match path.sub.as_ref().or(attr.sub.as_ref()) {
        Some(sub) if top.sub_attribute(sub).is_none() => Err(unknown(&path.target())),
        _ => Ok(()),
    }
}

/// The names in `value`, an object of attributes of the bundled extension `ext`, are ones it
/// has. A `schemas` naming only `ext` is the object describing itself (scim2-models writes
/// one), which the PATCH engine passes over. A value that is not an object is the engine's to
/// refuse.
fn extension_keys(
    rt: &'static ResourceTypeDef,
    ext: &str,
    value: &Value,
    unknown: &dyn Fn(&dyn std::fmt::Display) -> ScimError,
) -> Result<(), ScimError> {
    let Value::Object(attrs) = value else {
        return Ok(());
    };
    attrs.iter().try_for_each(|(k, v)| {
        match describes_extension(k, v, ext) || attribute_in(rt, &[ext, ":", k]).is_some() {
            true => Ok(()),
            false => Err(unknown(&format_args!("{ext}:{k}"))),
        }
    })
}

/// The value of one operation has the type the schema gives what it targets (the PATCH
/// engine checks paths and shapes, the store checks types only when it stores the result).
fn check_op_value(rt: &'static ResourceTypeDef, op: &PatchOperation) -> Result<(), ScimError> {
    let Some(value) = &op.value else {
        return Ok(());
    };
    let attributes = |prefix: Option<&str>, value: &Value| match value {
        Value::Object(obj) => obj.iter().try_for_each(|(k, v)| {
            let def = match prefix {
                Some(ext) => attribute_in(rt, &[ext, ":", k]),
                None => attribute_in(rt, &[k]),
            };
            match def {
                Some(def) => fits(def, v, true).map_err(|m| m.error(k)),
                None => Ok(()),
            }
        }),
        _ => Ok(()),
    };
    let Some(path) = &op.path else {
        return attributes(None, value);
    };
    // A path naming a whole extension (`urn:…:enterprise:2.0:User`): its value is that
    // extension's attributes.
    if let Some(ext) = whole_extension(rt, path) {
        return attributes(Some(ext), value);
    }
    let whole = path.filter.is_none() && path.sub.is_none();
    match target_def(rt, path) {
        Some(def) => fits(def, value, whole).map_err(|m| m.error(&path.target().to_string())),
        None => Ok(()),
    }
}

/// The definition of the attribute a PATCH path finally writes (`emails[…].value` →
/// `emails.value`), found without writing the path out.
fn target_def(rt: &ResourceTypeDef, path: &PatchPath) -> Option<&'static AttributeDef> {
    attribute_in(rt, &path.attr.pieces(path.sub.as_deref()))
}

/// The extension a path names as a whole, which parses as URN `…:2.0` and name `User`.
fn whole_extension(rt: &'static ResourceTypeDef, path: &PatchPath) -> Option<&'static str> {
    let urn = path.attr.urn.as_deref()?;
    if path.attr.sub.is_some() || path.filter.is_some() || path.sub.is_some() {
        return None;
    }
    let name = &path.attr.name;
    rt.extensions.iter().copied().find(|e| {
        e.len() == urn.len() + 1 + name.len()
            && e[..urn.len()].eq_ignore_ascii_case(urn)
            && e[urn.len() + 1..].eq_ignore_ascii_case(name)
    })
}

/// What a value that does not fit its attribute should have been, and in which of its
/// sub-attributes (SCIM nests one level only, RFC 7643 §2.3.8).
struct Misfit<'d> {
    sub: Option<&'d str>,
    expected: &'static str,
}

impl Misfit<'_> {
    /// The 400 `invalidValue` naming the attribute `name` (never the value).
    fn error(&self, name: &str) -> ScimError {
        let name = match self.sub {
            Some(sub) => format!("{name}.{sub}"),
            None => name.to_owned(),
        };
        invalid_value(format!(
            "{name}: expected {} (RFC 7643 §2.3)",
            self.expected
        ))
    }
}

/// Whether `v` can be a value of the attribute `def` (RFC 7643 §2.3); `whole` when it stands
/// for all of a multi-valued attribute.
fn fits<'d>(def: &'d AttributeDef, v: &Value, whole: bool) -> Result<(), Misfit<'d>> {
    if v.is_null() {
        return Ok(());
    }
    if def.multi_valued && whole {
        return match v {
            Value::Array(items) => items.iter().try_for_each(|i| fits(def, i, false)),
            _ => fits(def, v, false),
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
                        fits(sub, sv, true).map_err(|m| Misfit {
                            sub: Some(m.sub.unwrap_or(&sub.name)),
                            ..m
                        })?;
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
    Err(Misfit {
        sub: None,
        expected,
    })
}

/// The attributes of the extensions `ext` defines, in a resource or a path-less PATCH value:
/// each must be one the extension has, with a value of its type. Extensions no one described
/// stay the app's to judge.
fn extension_values(ext: &Extensions, obj: &Map<String, Value>) -> Result<(), ScimError> {
    for (key, value) in obj {
        if let Some(schema) = ext.schema(key) {
            extension_object(schema, value, key)?;
        }
    }
    Ok(())
}

fn extension_object(schema: &SchemaDef, value: &Value, urn: &str) -> Result<(), ScimError> {
    let Value::Object(attrs) = value else {
        return Err(invalid_value(format!("{urn} must be an object")));
    };
    attrs
        .iter()
        .try_for_each(|(k, v)| match schema.attribute(k) {
            Some(def) => fits(def, v, true).map_err(|m| m.error(k)),
            None => Err(ScimError::with_type(
                400,
                ScimType::InvalidPath,
                format!("unknown attribute {urn}:{k} (not in the app's schema)"),
            )),
        })
}

/// A PATCH operation on an extension `ext` defines: its path must name an attribute the
/// extension has, and its value fit it.
fn extension_op(
    rt: &'static ResourceTypeDef,
    ext: &Extensions,
    op: &PatchOperation,
) -> Result<(), ScimError> {
    if ext.is_empty() {
        return Ok(());
    }
    let value = op.value.as_deref();
    let Some(path) = &op.path else {
        return match value {
            Some(Value::Object(obj)) => extension_values(ext, obj),
            _ => Ok(()),
        };
    };
    let Some(urn) = path.attr.urn.as_deref().filter(|u| foreign(rt, u)) else {
        return Ok(());
    };
    let whole = format!("{urn}:{}", path.attr.name);
    if let Some(schema) = ext.schema(&whole) {
        return match value {
            Some(v) if path.filter.is_none() && path.attr.sub.is_none() => {
                extension_object(schema, v, &whole)
            }
            _ => Ok(()),
        };
    }
    let Some(schema) = ext.schema(urn) else {
        return Ok(());
    };
    let unknown = || {
        ScimError::with_type(
            400,
            ScimType::InvalidPath,
            format!(
                "unknown attribute {} (not in the app's schema)",
                path.target()
            ),
        )
    };
    let top = schema.attribute(&path.attr.name).ok_or_else(unknown)?;
    let def = match path.sub.as_deref().or(path.attr.sub.as_deref()) {
        Some(sub) => top.sub_attribute(sub).ok_or_else(unknown)?,
        None => top,
    };
    let whole_value = path.filter.is_none() && path.sub.is_none() && path.attr.sub.is_none();
    match value {
        Some(v) => fits(def, v, whole_value).map_err(|m| m.error(&path.target().to_string())),
        None => Ok(()),
    }
}

fn invalid_value(detail: String) -> ScimError {
    ScimError::with_type(400, ScimType::InvalidValue, detail)
}

/// An operation on an extension the proxy does not bundle. A path naming a whole known
/// extension is not one.
fn op_is_foreign(rt: &'static ResourceTypeDef, op: &PatchOperation) -> bool {
    let Some(path) = &op.path else {
        return false;
    };
    let Some(urn) = &path.attr.urn else {
        return false;
    };
    foreign(rt, urn) && foreign(rt, &format!("{urn}:{}", path.attr.name))
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
