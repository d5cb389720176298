//! What a PATCH may examine of the resource, charged before each operation runs: an operation
//! on a multi-valued attribute may look at every value it holds (a value filter, an add that
//! looks for the value already present), so a request's work is its operations times the size
//! of the attributes they name. [`MAX_EXAMINED`] caps that product.

use serde_json::Value;

use super::values::container;
use super::{PatchError, PatchOperation, MAX_EXAMINED};
use crate::scim::filter::Filter;
use crate::scim::path::key_ci;

pub(super) struct Budget {
    spent: usize,
}

impl Budget {
    pub(super) fn new() -> Self {
        Self { spent: 0 }
    }

    /// Charges what `op` would examine in `res` (a run of removals is one pass: charge its
    /// first operation), or refuses it if that would go past [`MAX_EXAMINED`].
    pub(super) fn charge(&mut self, res: &Value, op: &PatchOperation) -> Result<(), PatchError> {
        self.spent = self.spent.saturating_add(examined(res, op));
        if self.spent <= MAX_EXAMINED {
            return Ok(());
        }
        Err(PatchError::TooLarge(format!(
            "the request would examine more than {MAX_EXAMINED} values of the resource (an \
             operation on a multi-valued attribute may look at each of its values, once per \
             comparison in its filter), so the change must be split across requests"
        )))
    }
}

/// The values of `res` that `op` may look at: those of each multi-valued attribute it names,
/// times the comparisons in its filter.
fn examined(res: &Value, op: &PatchOperation) -> usize {
    let Some(path) = &op.path else {
        return op
            .value
            .as_ref()
            .map_or(0, |v| named_by_value(res, None, v));
    };
    let attr = &path.attr;
    let comparisons = path.filter.as_ref().map_or(1, comparisons);
    let own = values_at(res, attr.urn.as_deref(), &attr.name).saturating_mul(comparisons);
    // A path naming a whole extension (`urn:…:2.0:User`) sets the attributes of its value.
    let within = match (attr.as_urn(), &op.value) {
        (Some(urn), Some(value)) if path.filter.is_none() => named_by_value(res, Some(&urn), value),
        _ => 0,
    };
    own.saturating_add(within)
}

/// The values of the attributes a path-less (or whole-extension) value names: its members, and
/// those of the extension objects among them.
fn named_by_value(res: &Value, urn: Option<&str>, value: &Value) -> usize {
    let Value::Object(fields) = value else {
        return 0;
    };
    let each = fields.iter().map(|(name, v)| {
        let extension = urn.is_none()
            && v.is_object()
            && name
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        if extension {
            named_by_value(res, Some(name), v)
        } else {
            values_at(res, urn, name)
        }
    });
    each.fold(0, usize::saturating_add)
}

/// How many values the multi-valued attribute `name` of schema `urn` holds; 0 if it holds none
/// or is singular.
fn values_at(res: &Value, urn: Option<&str>, name: &str) -> usize {
    container(res, urn)
        .and_then(|c| c.get(key_ci(c, name)?))
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// The comparisons a filter makes on each value it is tried against.
fn comparisons(filter: &Filter) -> usize {
    match filter {
        Filter::Compare { .. } | Filter::Present(_) => 1,
        Filter::Not(inner) => comparisons(inner),
        Filter::ValuePath { filter, .. } => comparisons(filter),
        Filter::And(items) | Filter::Or(items) => {
            items.iter().map(comparisons).fold(0, usize::saturating_add)
        }
    }
}
