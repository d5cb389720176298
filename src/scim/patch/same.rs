//! Which value of a multi-valued attribute an added value is "the same" as (RFC 7644
//! §3.5.2.1: a value already present is not added again), found through hash maps rather than
//! by comparing it with every value, so adding K values to an attribute of N costs
//! O((N + K) log N) instead of O(N·K).

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::scim::path::get_ci;

/// Two values are the same if equal, or if complex with equal `value`s and compatible
/// `type`s (equal ignoring ASCII case, or one of them absent): Okta and Entra add
/// `{"value": id}` members that are already present with a `display` or `type`.
/// [`SameValues`] answers with the first value this holds for; the rule is spelt out here as
/// the reference the index is tested against.
#[cfg(test)]
pub(super) fn same_value(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return false;
    };
    let same_type = match (get_ci(a, "type"), get_ci(b, "type")) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.eq_ignore_ascii_case(y),
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    matches!((get_ci(a, "value"), get_ci(b, "value")), (Some(x), Some(y)) if x == y) && same_type
}

/// The positions of an attribute's values, filed so that the first one the rule above matches
/// is a lookup. A complex value with a `value` can only be the same as another with an equal
/// `value` (an equal whole has an equal `value` too), so those are filed by `value` and then
/// by `type`; anything else can only be the same as an equal whole, and is filed whole.
#[derive(Default)]
pub(super) struct SameValues {
    whole: HashMap<Value, BTreeSet<usize>>,
    by_value: HashMap<Value, Typed>,
}

/// The positions of the complex values with one `value`.
#[derive(Default)]
struct Typed {
    all: BTreeSet<usize>,
    untyped: BTreeSet<usize>,
    by_type: HashMap<Type, BTreeSet<usize>>,
}

/// A `type` as the rule compares it: strings ignoring ASCII case, anything else as JSON.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Type {
    Text(String),
    Other(Value),
}

impl Type {
    fn of(v: &Value) -> Self {
        match v {
            Value::String(s) => Self::Text(s.to_ascii_lowercase()),
            other => Self::Other(other.clone()),
        }
    }
}

/// How a value is filed: its `value` and `type` if it is complex with a `value`, else whole.
enum Parts<'a> {
    Whole(&'a Value),
    Valued(&'a Value, Option<&'a Value>),
}

fn parts(v: &Value) -> Parts<'_> {
    match v {
        Value::Object(fields) => match get_ci(fields, "value") {
            Some(value) => Parts::Valued(value, get_ci(fields, "type")),
            None => Parts::Whole(v),
        },
        other => Parts::Whole(other),
    }
}

impl SameValues {
    pub(super) fn new(items: &[Value]) -> Self {
        let mut index = Self::default();
        for (i, item) in items.iter().enumerate() {
            index.insert(i, item);
        }
        index
    }

    /// The position of the first filed value that is the same as `v`.
    pub(super) fn first_same(&self, v: &Value) -> Option<usize> {
        match parts(v) {
            Parts::Whole(v) => self.whole.get(v)?.first().copied(),
            Parts::Valued(value, ty) => {
                let typed = self.by_value.get(value)?;
                let Some(ty) = ty else {
                    return typed.all.first().copied();
                };
                let same_type = typed.by_type.get(&Type::of(ty)).and_then(BTreeSet::first);
                typed
                    .untyped
                    .first()
                    .into_iter()
                    .chain(same_type)
                    .min()
                    .copied()
            }
        }
    }

    /// Files `v` at position `i`.
    pub(super) fn insert(&mut self, i: usize, v: &Value) {
        match parts(v) {
            Parts::Whole(v) => {
                self.whole.entry(v.clone()).or_default().insert(i);
            }
            Parts::Valued(value, ty) => {
                let typed = self.by_value.entry(value.clone()).or_default();
                typed.all.insert(i);
                match ty {
                    None => typed.untyped.insert(i),
                    Some(ty) => typed.by_type.entry(Type::of(ty)).or_default().insert(i),
                };
            }
        }
    }

    /// Unfiles `v` from position `i`, before the value there changes.
    pub(super) fn remove(&mut self, i: usize, v: &Value) {
        match parts(v) {
            Parts::Whole(v) => {
                if let Some(at) = self.whole.get_mut(v) {
                    at.remove(&i);
                }
            }
            Parts::Valued(value, ty) => {
                let Some(typed) = self.by_value.get_mut(value) else {
                    return;
                };
                typed.all.remove(&i);
                let within = match ty {
                    None => Some(&mut typed.untyped),
                    Some(ty) => typed.by_type.get_mut(&Type::of(ty)),
                };
                if let Some(at) = within {
                    at.remove(&i);
                }
            }
        }
    }
}
