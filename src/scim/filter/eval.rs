//! Evaluates a filter against a JSON resource with the matching rules of RFC 7644 §3.4.2.2:
//! case-insensitive strings unless `caseExact`, any-value matching on multi-valued
//! attributes, chronological order for dateTime strings.

use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Number, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{AttributeInfo, CompValue, CompareOp, Filter, FilterError};
use crate::scim::path::{self, get_ci, AttrPath};

/// Whether `resource` matches `filter`. Fails only where RFC 7644 §3.4.2.2 demands a 400
/// `invalidFilter` (ordering a boolean or complex attribute).
///
/// Choices where the RFC is silent: a missing attribute matches no operator except `ne`
/// (`ne` is the exact complement of `eq`, so `userType ne "Employee"` matches users without a
/// `userType`, and on a multi-valued attribute means "no value equals"); `eq null` matches
/// an unassigned attribute and `ne null` an assigned one (RFC 7643 §2.5).
pub fn matches(
    filter: &Filter,
    resource: &Value,
    info: &dyn AttributeInfo,
) -> Result<bool, FilterError> {
    Eval {
        info,
        parent: None,
        known: None,
    }
    .eval(filter, resource)
}

/// Whether one value of the multi-valued attribute `parent` matches a value filter: how
/// PATCH selects `members[value eq "…"]` (RFC 7644 §3.5.2). A simple (non-object) value is
/// addressed as `value`, as RFC 7644 errata 7122 proposes.
pub fn matches_value(
    filter: &Filter,
    element: &Value,
    parent: &AttrPath,
    info: &dyn AttributeInfo,
) -> Result<bool, FilterError> {
    Eval {
        info,
        parent: Some(parent),
        known: None,
    }
    .eval(filter, element)
}

/// [`matches_value`] for each of `elements`, in order, stopping at the first failure: how PATCH
/// selects among all the values of an attribute. The schema is asked whether a comparison is
/// `caseExact` once per comparison in the filter, not once per value.
pub fn matches_each(
    filter: &Filter,
    elements: &[Value],
    parent: &AttrPath,
    info: &dyn AttributeInfo,
) -> Result<Vec<bool>, FilterError> {
    let known = RefCell::default();
    let eval = Eval {
        info,
        parent: Some(parent),
        known: Some(&known),
    };
    elements.iter().map(|e| eval.eval(filter, e)).collect()
}

/// Whether a comparison of `attr` inside a value filter on `parent` respects case, as
/// `matches_value` decides it (RFC 7643 §2.2 `caseExact` of `parent.attr`).
pub(super) fn case_exact_within(
    parent: &AttrPath,
    attr: &AttrPath,
    info: &dyn AttributeInfo,
) -> bool {
    let within = Eval {
        info,
        parent: Some(parent),
        known: None,
    };
    within.case_exact(attr, false)
}

/// The `caseExact` answers of one evaluation of a filter against many values, by comparison
/// node (its address: the filter is borrowed, so its nodes stay in place, and each node has one
/// chain of enclosing value paths) and by whether the comparison fell back to `value`.
type Known = RefCell<HashMap<(*const AttrPath, bool), bool>>;

struct Eval<'a> {
    info: &'a dyn AttributeInfo,
    /// Set inside `attr[…]`: names are then sub-attributes of this attribute.
    parent: Option<&'a AttrPath>,
    known: Option<&'a Known>,
}

impl Eval<'_> {
    fn eval(&self, filter: &Filter, node: &Value) -> Result<bool, FilterError> {
        match filter {
            Filter::And(items) => {
                for item in items {
                    if !self.eval(item, node)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Filter::Or(items) => {
                for item in items {
                    if self.eval(item, node)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Filter::Not(inner) => Ok(!self.eval(inner, node)?),
            Filter::Present(attr) => Ok(self
                .raw(node, attr)
                .is_some_and(|raw| present_at(raw, attr))),
            Filter::Compare { attr, op, value } => self.compare(node, attr, *op, value),
            Filter::ValuePath { attr, filter } => self.value_path(node, attr, filter),
        }
    }

    /// The attribute's raw value: in the resource, or in the current element of a value path.
    fn raw<'v>(&self, node: &'v Value, attr: &AttrPath) -> Option<&'v Value> {
        match (self.parent, node) {
            (None, _) => path::attribute(node, attr),
            (Some(_), Value::Object(element)) => get_ci(element, &attr.name),
            (Some(_), simple) => attr.name.eq_ignore_ascii_case("value").then_some(simple),
        }
    }

    /// The path the schema knows the attribute by.
    fn schema_path(&self, attr: &AttrPath) -> AttrPath {
        match self.parent {
            Some(parent) => parent.with_sub(&attr.name),
            None => attr.clone(),
        }
    }

    /// Whether comparisons of `attr` respect case; `of_values` when it names a complex
    /// attribute whose `value`s are compared.
    fn case_exact(&self, attr: &AttrPath, of_values: bool) -> bool {
        let key = (std::ptr::from_ref(attr), of_values);
        if let Some(exact) = self.known.and_then(|k| k.borrow().get(&key).copied()) {
            return exact;
        }
        let mut schema_path = self.schema_path(attr);
        if of_values {
            schema_path.sub = Some("value".into());
        }
        let exact = self.info.case_exact(&schema_path);
        if let Some(known) = self.known {
            known.borrow_mut().insert(key, exact);
        }
        exact
    }

    fn compare(
        &self,
        node: &Value,
        attr: &AttrPath,
        op: CompareOp,
        lit: &CompValue,
    ) -> Result<bool, FilterError> {
        let raw = self.raw(node, attr);
        if *lit == CompValue::Null {
            let present = raw.is_some_and(|r| present_at(r, attr));
            return Ok(present == (op == CompareOp::Ne));
        }
        let values = raw
            .into_iter()
            .flat_map(|r| operands(r, attr.sub.as_deref()));
        // A complex multi-valued attribute without a sub-attribute compares its `value`s.
        let of_values = self.parent.is_none()
            && attr.sub.is_none()
            && raw.and_then(|r| r.get(0)).is_some_and(Value::is_object);
        let exact = self.case_exact(attr, of_values);
        if op == CompareOp::Ne {
            return Ok(!values.into_iter().any(|v| equal(v, lit, exact)));
        }
        for v in values {
            if compare_one(v, op, lit, exact)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn value_path(
        &self,
        node: &Value,
        attr: &AttrPath,
        filter: &Filter,
    ) -> Result<bool, FilterError> {
        let Some(raw) = self.raw(node, attr) else {
            return Ok(false);
        };
        let parent = self.schema_path(attr);
        let inner = Eval {
            info: self.info,
            parent: Some(&parent),
            known: self.known,
        };
        for element in one_or_many(raw) {
            if inner.eval(filter, element)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn one_or_many(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        single => std::slice::from_ref(single),
    }
}

/// The simple values a comparison looks at, flattening multi-valued attributes.
pub(super) fn operands<'v>(
    raw: &'v Value,
    sub: Option<&'v str>,
) -> impl Iterator<Item = &'v Value> + 'v {
    let in_array = raw.is_array();
    one_or_many(raw)
        .iter()
        .filter_map(move |item| match (sub, item) {
            (Some(sub), Value::Object(o)) => get_ci(o, sub),
            (Some(_), _) => None,
            (None, Value::Object(o)) if in_array => get_ci(o, "value"),
            (None, v) => Some(v),
        })
        .flat_map(one_or_many)
}

/// `pr`: assigned and not null, "" , [] or {} (RFC 7644 §3.4.2.2, RFC 7643 §2.5).
fn present_at(raw: &Value, attr: &AttrPath) -> bool {
    match &attr.sub {
        Some(sub) => operands(raw, Some(sub)).any(is_present),
        None => is_present(raw),
    }
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items
            .iter()
            .any(|i| !matches!(i, Value::Null) && i != &Value::from("")),
        Value::Object(fields) => fields.values().any(|f| !matches!(f, Value::Null)),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare_one(
    actual: &Value,
    op: CompareOp,
    lit: &CompValue,
    exact: bool,
) -> Result<bool, FilterError> {
    let ordered =
        |want: fn(Ordering) -> bool| ordering(actual, op, lit, exact).map(|o| o.is_some_and(want));
    match op {
        CompareOp::Eq => Ok(equal(actual, lit, exact)),
        CompareOp::Ne => Ok(!equal(actual, lit, exact)),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => Ok(substring(actual, op, lit, exact)),
        CompareOp::Gt => ordered(Ordering::is_gt),
        CompareOp::Ge => ordered(Ordering::is_ge),
        CompareOp::Lt => ordered(Ordering::is_lt),
        CompareOp::Le => ordered(Ordering::is_le),
    }
}

fn equal(actual: &Value, lit: &CompValue, exact: bool) -> bool {
    match (actual, lit) {
        (Value::String(a), CompValue::Str(b)) => {
            same_text(a, b, exact) || instants(a, b).is_some_and(|(x, y)| x == y)
        }
        (Value::Number(a), CompValue::Num(b)) => num_cmp(a, b) == Some(Ordering::Equal),
        (Value::Bool(a), CompValue::Bool(b)) => a == b,
        _ => false,
    }
}

fn substring(actual: &Value, op: CompareOp, lit: &CompValue, exact: bool) -> bool {
    let (Value::String(a), CompValue::Str(b)) = (actual, lit) else {
        return false;
    };
    let (a, b) = (fold(a, exact), fold(b, exact));
    match op {
        CompareOp::Co => a.contains(b.as_ref()),
        CompareOp::Sw => a.starts_with(b.as_ref()),
        _ => a.ends_with(b.as_ref()),
    }
}

/// Strings order lexicographically, dateTimes by instant, numbers numerically; ordering a
/// boolean or complex attribute is an `invalidFilter` (RFC 7644 §3.4.2.2).
fn ordering(
    actual: &Value,
    op: CompareOp,
    lit: &CompValue,
    exact: bool,
) -> Result<Option<Ordering>, FilterError> {
    match (actual, lit) {
        (Value::Bool(_), _) => Err(FilterError::Unsupported {
            op,
            what: "boolean attributes",
        }),
        (Value::Object(_) | Value::Array(_), _) => Err(FilterError::Unsupported {
            op,
            what: "complex attributes",
        }),
        (Value::String(a), CompValue::Str(b)) => Ok(Some(match instants(a, b) {
            Some((x, y)) => x.cmp(&y),
            None => fold(a, exact).cmp(&fold(b, exact)),
        })),
        (Value::Number(a), CompValue::Num(b)) => Ok(num_cmp(a, b)),
        _ => Ok(None),
    }
}

/// `fold(a) == fold(b)` without lowercasing copies when both are ASCII, as most identifiers
/// are: PATCH evaluates a value filter once per value of the attribute.
fn same_text(a: &str, b: &str, exact: bool) -> bool {
    match (exact, a.is_ascii() && b.is_ascii()) {
        (true, _) => a == b,
        (false, true) => a.eq_ignore_ascii_case(b),
        (false, false) => a.to_lowercase() == b.to_lowercase(),
    }
}

pub(super) fn fold(s: &str, exact: bool) -> Cow<'_, str> {
    if exact {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => Some(x.cmp(&y)),
        (_, _, Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// Both strings as RFC 3339 instants, if both are dateTimes (RFC 7643 §2.3.5).
fn instants(a: &str, b: &str) -> Option<(OffsetDateTime, OffsetDateTime)> {
    Some((instant(a)?, instant(b)?))
}

/// The string as an RFC 3339 instant, if it is a dateTime.
pub(super) fn instant(s: &str) -> Option<OffsetDateTime> {
    let looks_like_date = s.len() >= 20 && s.as_bytes().get(4) == Some(&b'-');
    looks_like_date
        .then(|| OffsetDateTime::parse(s, &Rfc3339).ok())
        .flatten()
}
