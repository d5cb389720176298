//! Picks and orders the resources a list or search returns: `filter` (RFC 7644 §3.4.2.2),
//! then `sortBy`/`sortOrder` (§3.4.2.3), evaluated on each resource as clients see it, with
//! the attribute characteristics of its resource type's schemas.

use serde_json::Value;

use super::render::render;
use super::store::{Kind, Stored, Tables};
use crate::scim::discovery::SchemaInfo;
use crate::scim::error::ScimError;
use crate::scim::filter::{self, Filter};
use crate::scim::list::ListParams;
use crate::scim::path::AttrPath;
use crate::scim::sort::{sort, SortSpec};

/// One resource of a list. `doc` is its rendered representation, kept when filtering or
/// sorting needed it so the page does not render it twice.
pub(super) struct Row<'t> {
    pub kind: Kind,
    pub stored: &'t Stored,
    pub doc: Option<Value>,
}

/// The resources of `kinds` that match the filter, in sort order (creation order without
/// `sortBy`, and for ties: the sort is stable). A filter that does not parse, or that orders
/// a boolean or complex attribute, is a 400 `invalidFilter`; a `sortBy` naming a singular
/// complex attribute is a 400 `invalidValue`.
pub(super) fn select<'t>(
    tables: &'t Tables,
    kinds: &[Kind],
    params: &ListParams,
    base_url: &str,
) -> Result<Vec<Row<'t>>, ScimError> {
    let filter = params.filter.as_deref().map(filter::parse).transpose()?;
    let sort_by = params
        .sort_by
        .as_deref()
        .map(|s| SortSpec::parse(s, params.sort_order))
        .transpose()?;
    let rendered = filter.is_some() || sort_by.is_some();
    let mut rows = Vec::new();
    for &kind in kinds {
        let info = SchemaInfo::new(kind.def());
        let filter = filter.as_ref().map(|f| unknown_is_false(f, &info, None));
        for stored in tables.table(kind).iter() {
            let doc = rendered.then(|| render(tables, kind, stored, base_url));
            if let (Some(filter), Some(doc)) = (&filter, &doc) {
                if !filter::matches(filter, doc, &info)? {
                    continue;
                }
            }
            rows.push(Row { kind, stored, doc });
        }
    }
    if let Some(spec) = sort_by {
        sort(&mut rows, &spec, |row| {
            Some((row.doc.as_ref()?, SchemaInfo::new(row.kind.def())))
        })?;
    }
    Ok(rows)
}

/// RFC 7644 §3.4.2.2 lets a service provider either refuse a filter naming an attribute its
/// schemas do not define or evaluate it; this store evaluates such a comparison or presence
/// test as false, whatever the operator (`shoeSize ne 1` matches nothing), while `not`, `and`
/// and `or` around it work as usual. It is done by turning the test into `pr`: stored
/// resources passed validation, so they hold no attribute the schema does not define.
fn unknown_is_false(f: &Filter, info: &SchemaInfo, parent: Option<&AttrPath>) -> Filter {
    let known = |attr: &AttrPath| {
        let attr = match parent {
            Some(p) => p.with_sub(&attr.name),
            None => attr.clone(),
        };
        info.def(&attr).is_some()
    };
    let each = |items: &[Filter]| -> Vec<Filter> {
        items
            .iter()
            .map(|i| unknown_is_false(i, info, parent))
            .collect()
    };
    match f {
        Filter::Compare { attr, .. } if !known(attr) => Filter::Present(attr.clone()),
        Filter::ValuePath { attr, .. } if !known(attr) => Filter::Present(attr.clone()),
        Filter::ValuePath { attr, filter } => Filter::ValuePath {
            attr: attr.clone(),
            filter: Box::new(unknown_is_false(filter, info, Some(attr))),
        },
        Filter::Not(inner) => Filter::Not(Box::new(unknown_is_false(inner, info, parent))),
        Filter::And(items) => Filter::And(each(items)),
        Filter::Or(items) => Filter::Or(each(items)),
        other => other.clone(),
    }
}
