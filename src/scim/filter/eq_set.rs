//! Several `name eq "…"` value filters on one multi-valued attribute, matched at once: an
//! element matches the set exactly when `matches_value` would match it with one of the
//! filters. PATCH uses it for runs of `remove members[value eq "…"]` (Okta sends one per
//! member, and so does Entra once the rule packs have split its value array), which would
//! otherwise cost a scan of every member per operation.

use std::collections::HashSet;

use serde_json::Value;

use super::eval::{case_exact_within, fold, instant, operands};
use super::{AttributeInfo, CompValue, CompareOp, Filter};
use crate::scim::path::{get_ci, AttrPath};

/// The literals of the filters, folded the way the comparison folds them.
#[derive(Debug)]
pub struct EqualsAny {
    name: String,
    exact: bool,
    folded: HashSet<String>,
    /// The literals that are dateTimes, as instants: RFC 7643 §2.3.5 compares those by the
    /// instant they name, whatever their offset.
    instants: HashSet<i128>,
}

impl EqualsAny {
    /// The name and string literal of a filter the set can stand for: `name eq "…"` on a plain
    /// sub-attribute name.
    pub fn term(filter: &Filter) -> Option<(&AttrPath, &str)> {
        match filter {
            Filter::Compare {
                attr,
                op: CompareOp::Eq,
                value: CompValue::Str(literal),
            } if attr.urn.is_none() && attr.sub.is_none() => Some((attr, literal)),
            _ => None,
        }
    }

    /// The set of `name eq "<literal>"` for each literal, inside a value filter on `parent`.
    pub fn new<'a>(
        parent: &AttrPath,
        name: &AttrPath,
        literals: impl IntoIterator<Item = &'a str>,
        info: &dyn AttributeInfo,
    ) -> Self {
        let exact = case_exact_within(parent, name, info);
        let mut set = Self {
            name: name.name.clone(),
            exact,
            folded: HashSet::new(),
            instants: HashSet::new(),
        };
        for literal in literals {
            set.folded.insert(fold(literal, exact).into_owned());
            if let Some(at) = instant(literal) {
                set.instants.insert(at.unix_timestamp_nanos());
            }
        }
        set
    }

    /// Whether one of the filters matches `element`: its `name` (or, for a simple value, the
    /// value itself when `name` is `value`, RFC 7644 errata 7122) equals one literal.
    pub fn matches(&self, element: &Value) -> bool {
        let raw = match element {
            Value::Object(fields) => get_ci(fields, &self.name),
            simple => self.name.eq_ignore_ascii_case("value").then_some(simple),
        };
        raw.is_some_and(|raw| operands(raw, None).any(|v| self.holds(v)))
    }

    fn holds(&self, actual: &Value) -> bool {
        let Value::String(actual) = actual else {
            return false;
        };
        self.folded.contains(fold(actual, self.exact).as_ref())
            || (!self.instants.is_empty()
                && instant(actual)
                    .is_some_and(|at| self.instants.contains(&at.unix_timestamp_nanos())))
    }
}
