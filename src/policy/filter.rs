//! Filters that test a withheld attribute: a query filter (RFC 7644 §3.4.2.2) or a PATCH value
//! filter (RFC 7644 §3.5.2) on such an attribute answers "does it hold this value?", so it is
//! refused rather than passed on.

use super::select::{Lists, Loc, Verdict};
use super::{Reason, Refusal};
use crate::scim::discovery::ResourceTypeDef;
use crate::scim::filter::Filter;
use crate::scim::path::AttrPath;

/// A query filter; names inside `attr[…]` are sub-attributes of `attr`.
pub fn check(lists: &Lists, rt: &ResourceTypeDef, f: &Filter) -> Result<(), Refusal> {
    walk(lists, rt, None, f)
}

/// The filter of a PATCH path `attr[filter]`.
pub fn check_value_filter(
    lists: &Lists,
    rt: &ResourceTypeDef,
    attr: &AttrPath,
    f: &Filter,
) -> Result<(), Refusal> {
    walk(lists, rt, Some(attr), f)
}

fn walk(
    lists: &Lists,
    rt: &ResourceTypeDef,
    parent: Option<&AttrPath>,
    f: &Filter,
) -> Result<(), Refusal> {
    if lists.is_open() {
        return Ok(());
    }
    match f {
        Filter::Compare { attr, .. } | Filter::Present(attr) => tested(lists, rt, parent, attr),
        Filter::Not(inner) => walk(lists, rt, parent, inner),
        Filter::And(items) | Filter::Or(items) => items
            .iter()
            .try_for_each(|item| walk(lists, rt, parent, item)),
        // `emails[type eq "work"]` tests `emails.type`, not the value of `emails`.
        Filter::ValuePath { attr, filter } => walk(lists, rt, Some(attr), filter),
    }
}

/// One attribute a filter tests. Without a sub-attribute, a comparison on a complex
/// attribute compares its `value` (RFC 7644 §3.4.2.2), so that must pass too.
fn tested(
    lists: &Lists,
    rt: &ResourceTypeDef,
    parent: Option<&AttrPath>,
    attr: &AttrPath,
) -> Result<(), Refusal> {
    let loc = match parent {
        Some(p) => Loc::of(p).with_sub(&attr.name),
        None => Loc::of(attr),
    };
    let refused = match lists.judge(rt, &loc) {
        Verdict::Pass => return Ok(()),
        Verdict::Drop => loc,
        Verdict::Subs(subs) if !subs.keeps("value") => loc.with_sub("value"),
        Verdict::Subs(_) => return Ok(()),
    };
    Err(Refusal::new(refused.path(), Reason::FilterTests))
}
