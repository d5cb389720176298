//! Small helpers over JSON that the actions and the builtins share.

use serde_json::Value;

use super::model::Coerce;
use crate::scim::path::get_mut_ci;

/// A member of an object by name, in any case.
pub(super) fn member_mut<'a>(v: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    get_mut_ci(v.as_object_mut()?, name)
}

pub(super) fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len().max(1))
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `"True"` → `true`, `"42"` → `42`, and back to strings; what does not convert stays.
pub(super) fn coerce(v: &mut Value, to: Coerce) -> bool {
    let next = match (to, &*v) {
        (Coerce::Bool, Value::String(s)) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
        (Coerce::Bool, Value::String(s)) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
        (Coerce::Number, Value::String(s)) => {
            match serde_json::from_str::<serde_json::Number>(s.trim()) {
                Ok(n) => Value::Number(n),
                Err(_) => return false,
            }
        }
        (Coerce::String, Value::Bool(b)) => Value::String(b.to_string()),
        (Coerce::String, Value::Number(n)) => Value::String(n.to_string()),
        _ => return false,
    };
    *v = next;
    true
}
