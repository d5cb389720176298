//! Which value of a multi-valued attribute an added value is "the same" as (RFC 7644
//! §3.5.2.1: a value already present is not added again), found through hash maps rather than
//! by comparing it with every value, so adding K values to an attribute of N costs
//! O((N + K) log N) instead of O(N·K).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};

use serde_json::Value;

use crate::scim::path::get_ci;

/// Two values are the same if equal, or if complex with equal `value`s and compatible
/// `type`s (equal ignoring ASCII case, or one of them absent): Okta and Entra add
/// `{"value": id}` members that are already present with a `display` or `type`.
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

/// The positions of an attribute's values, filed by hash so that the first one [`same_value`]
/// holds for is a lookup. A complex value with a `value` can only be the same as one with an
/// equal `value` (an equal whole has an equal `value` too), and then only if untyped or of the
/// same type: those are filed by `value`, and by `value` and `type`. Anything else can only be
/// the same as an equal whole, and is filed whole. A position found is checked with
/// [`same_value`] itself, so a collision of hashes costs a comparison, never a wrong answer.
pub(super) struct SameValues {
    /// Keyed hashing: values come from the client, and must not be able to collide at will.
    keys: RandomState,
    whole: HashMap<u64, Positions>,
    by_value: HashMap<u64, Positions>,
    untyped: HashMap<u64, Positions>,
    typed: HashMap<u64, Positions>,
}

/// Positions in ascending order. Nearly always one: values are mostly distinct.
#[derive(Default)]
enum Positions {
    #[default]
    None,
    One(usize),
    Many(BTreeSet<usize>),
}

impl Positions {
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (one, many) = match self {
            Self::None => (None, None),
            Self::One(i) => (Some(*i), None),
            Self::Many(all) => (None, Some(all.iter().copied())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    fn insert(&mut self, i: usize) {
        match self {
            Self::None => *self = Self::One(i),
            Self::One(j) if *j == i => {}
            Self::One(j) => *self = Self::Many(BTreeSet::from([*j, i])),
            Self::Many(all) => {
                all.insert(i);
            }
        }
    }

    fn remove(&mut self, i: usize) {
        match self {
            Self::One(j) if *j == i => *self = Self::None,
            Self::Many(all) => {
                all.remove(&i);
            }
            _ => {}
        }
    }
}

/// A `type` as [`same_value`] compares them: strings ignoring ASCII case, anything else as JSON.
struct TypeKey<'a>(&'a Value);

impl Hash for TypeKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self.0 {
            Value::String(s) => {
                state.write_u8(0);
                s.bytes()
                    .for_each(|b| state.write_u8(b.to_ascii_lowercase()));
                state.write_u8(0xff);
            }
            other => {
                state.write_u8(1);
                other.hash(state);
            }
        }
    }
}

/// Where a value is filed.
enum Slot {
    Whole(u64),
    Valued { value: u64, typed: Option<u64> },
}

impl SameValues {
    pub(super) fn new(items: &[Value], more: usize) -> Self {
        let room = items.len() + more;
        let mut index = Self {
            keys: RandomState::new(),
            whole: HashMap::new(),
            by_value: HashMap::with_capacity(room),
            untyped: HashMap::with_capacity(room),
            typed: HashMap::new(),
        };
        for (i, item) in items.iter().enumerate() {
            index.insert(i, item);
        }
        index
    }

    fn slot(&self, v: &Value) -> Slot {
        let Some((value, ty)) = v.as_object().and_then(|o| Some((get_ci(o, "value")?, o))) else {
            return Slot::Whole(self.keys.hash_one(v));
        };
        Slot::Valued {
            value: self.keys.hash_one(value),
            typed: get_ci(ty, "type").map(|t| self.keys.hash_one((value, TypeKey(t)))),
        }
    }

    /// The position of the first of `items` (as filed) that is the same as `v`.
    pub(super) fn first_same(&self, items: &[Value], v: &Value) -> Option<usize> {
        let first = |map: &HashMap<u64, Positions>, key: u64| {
            let at = map.get(&key)?;
            at.iter()
                .find(|&i| items.get(i).is_some_and(|a| same_value(a, v)))
        };
        match self.slot(v) {
            Slot::Whole(key) => first(&self.whole, key),
            Slot::Valued { value, typed: None } => first(&self.by_value, value),
            Slot::Valued {
                value,
                typed: Some(typed),
            } => {
                let untyped = first(&self.untyped, value);
                untyped.into_iter().chain(first(&self.typed, typed)).min()
            }
        }
    }

    /// Files `v` at position `i`.
    pub(super) fn insert(&mut self, i: usize, v: &Value) {
        match self.slot(v) {
            Slot::Whole(key) => self.whole.entry(key).or_default().insert(i),
            Slot::Valued { value, typed } => {
                self.by_value.entry(value).or_default().insert(i);
                match typed {
                    None => self.untyped.entry(value).or_default().insert(i),
                    Some(typed) => self.typed.entry(typed).or_default().insert(i),
                }
            }
        }
    }

    /// Unfiles `v` from position `i`, before the value there changes.
    pub(super) fn remove(&mut self, i: usize, v: &Value) {
        let (map, key, value) = match self.slot(v) {
            Slot::Whole(key) => (&mut self.whole, key, None),
            Slot::Valued { value, typed: None } => (&mut self.untyped, value, Some(value)),
            Slot::Valued {
                value,
                typed: Some(typed),
            } => (&mut self.typed, typed, Some(value)),
        };
        if let Some(at) = map.get_mut(&key) {
            at.remove(i);
        }
        if let Some(at) = value.and_then(|value| self.by_value.get_mut(&value)) {
            at.remove(i);
        }
    }
}
