//! Stage 6, normalize: the tenant's IdP rule pack rewrites the request into RFC 7643/7644
//! form — its JSON body and its `filter` (in the query, or in a `.search` body) — and the
//! result is checked against the resource's schema, so the app behind a tenant with a pack
//! only sees schema-valid requests. A request no rule changes is forwarded as its original
//! bytes; one a rule changed is serialized once.

use http::Method;
use serde_json::Value;

use crate::config::Idp;
use crate::ctx::RequestCtx;
use crate::rule_pack::{apply, schema, shape_of, Pack, Shape, Subject};
use crate::scim::discovery::ResourceTypeDef;
use crate::scim::error::ScimError;
use crate::scim::path::key_ci;

/// What normalization could not make valid.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// The normalized body fails the schema check; the error names the attribute, never its
    /// value.
    #[error("{}", .0.detail)]
    Schema(ScimError),
}

pub fn request(ctx: &mut RequestCtx) -> Result<(), NormalizeError> {
    let Some(idp) = ctx.tenant().idp.clone() else {
        // No pack for this tenant: nothing to look at.
        return Ok(());
    };
    let target = ctx.target();
    let (resource, shape) = shape_of(&ctx.method, target.endpoint, target.search);
    let search = target.search && ctx.method == Method::POST;
    let query_filter = query_filter(ctx.query());
    let body = shape != Shape::Other && !ctx.body.is_empty();
    if !body && query_filter.is_none() && !search {
        return Ok(());
    }
    let pack = match idp {
        Idp::Pack(pack) => pack,
        Idp::Auto => {
            let query = ctx.query().unwrap_or_default();
            match ctx
                .snapshot
                .packs
                .detect(&ctx.headers, ctx.body.raw(), query)
            {
                Some(pack) => pack,
                None => return Ok(()),
            }
        }
    };
    let mut fired = Vec::new();
    if let Some(mut filter) = query_filter {
        let subject = subject(ctx, resource, Shape::Other);
        let rules = apply(&pack, &subject, None, Some(&mut filter));
        if !rules.is_empty() {
            set_query_filter(ctx, &filter);
        }
        fired.extend(rules);
    }
    if body || search {
        fired.extend(on_body(ctx, &pack, resource, shape, search));
    }
    ctx.record.pack = Some(pack.name.clone());
    ctx.record.rules = fired;
    match (resource, body) {
        (Some(rt), true) => match ctx.body.json() {
            Ok(doc) => schema::check(rt, shape, doc).map_err(NormalizeError::Schema),
            // Not JSON serde can read, though the guard of stage 5 let it through: the app
            // gets it unchanged and answers for it.
            Err(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The pack over the JSON body (a `.search` body: over its `filter`). A body that is not JSON
/// was refused at stage 5; one the guard let through that serde cannot read is left alone.
fn on_body(
    ctx: &mut RequestCtx,
    pack: &Pack,
    resource: Option<&'static ResourceTypeDef>,
    shape: Shape,
    search: bool,
) -> Vec<std::sync::Arc<str>> {
    let (method, headers) = (ctx.method.clone(), std::mem::take(&mut ctx.headers));
    let subject = Subject {
        method: &method,
        resource,
        headers: &headers,
        shape,
    };
    let fired = ctx.body.edit(|doc| {
        let fired = if search {
            search_filter(pack, &subject, doc)
        } else {
            apply(pack, &subject, Some(doc), None)
        };
        (!fired.is_empty(), fired)
    });
    ctx.headers = headers;
    fired.unwrap_or_default()
}

fn search_filter(pack: &Pack, subject: &Subject<'_>, doc: &mut Value) -> Vec<std::sync::Arc<str>> {
    let key = doc.as_object().and_then(|o| key_ci(o, "filter")).cloned();
    let Some(Value::String(filter)) = key.and_then(|k| doc.get_mut(&k)) else {
        return Vec::new();
    };
    apply(pack, subject, None, Some(filter))
}

fn subject<'a>(
    ctx: &'a RequestCtx,
    resource: Option<&'static ResourceTypeDef>,
    shape: Shape,
) -> Subject<'a> {
    Subject {
        method: &ctx.method,
        resource,
        headers: &ctx.headers,
        shape,
    }
}

/// The `filter` query parameter, if there is one.
fn query_filter(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("filter"))
        .map(|(_, v)| v.into_owned())
}

/// The request's URI with its `filter` parameter replaced; the other parameters keep their
/// bytes as the IdP sent them.
fn set_query_filter(ctx: &mut RequestCtx, filter: &str) {
    let query = ctx.query().unwrap_or_default();
    let rebuilt: Vec<String> = query
        .split('&')
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            let decoded: String = form_urlencoded::parse(key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            if decoded.eq_ignore_ascii_case("filter") {
                format!("{key}={}", percent_encode(filter))
            } else {
                pair.to_owned()
            }
        })
        .collect();
    let pq = format!("{}?{}", ctx.uri.path(), rebuilt.join("&"));
    ctx.set_path_and_query(&pq);
}

/// RFC 3986 §2.1 percent-encoding of everything but the unreserved characters: a space is
/// `%20`, never `+`, which an app that does not decode forms would read as a plus sign.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn filters_are_percent_encoded_with_spaces_as_percent_20() {
        assert_eq!(
            percent_encode("externalId eq \"jy+ung\""),
            "externalId%20eq%20%22jy%2Bung%22"
        );
    }
}
