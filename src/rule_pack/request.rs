//! One request through a pack, as stage 6 runs it and `rules test` shows it: the `filter`
//! query parameter, then the body (a `.search` body: only its `filter`), then nothing else.
//! Pure: the caller owns the request and decides what to do with the result.

use std::sync::Arc;

use http::{HeaderMap, Method};
use serde_json::Value;

use super::apply::{apply, params_to_remove, shape_of};
use super::model::{Pack, Shape, Subject};
use crate::scim::discovery::{Extensions, ResourceTypeDef};
use crate::scim::path::{get_mut_ci, key_ci};
use crate::scim::request::Endpoint;

/// What the rules look at besides the body.
pub struct Request<'a> {
    pub method: &'a Method,
    pub endpoint: Endpoint,
    pub search: bool,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    /// The app's extension schemas, beside the bundled ones.
    pub extensions: &'a Extensions,
}

/// What the pack did.
pub struct Normalized {
    /// The rules that changed something, in the order they ran.
    pub fired: Vec<Arc<str>>,
    /// The new query, when a rule changed its `filter`: the filter percent-encoded (a space is
    /// `%20`, never `+`), the other parameters as they came.
    pub query: Option<String>,
    /// Whether a rule changed the body.
    pub body_changed: bool,
    /// What the schema check is to judge the body as.
    pub resource: Option<&'static ResourceTypeDef>,
    pub shape: Shape,
}

impl Request<'_> {
    /// The shape of the request's body for the rules and the schema check.
    pub fn shape(&self) -> (Option<&'static ResourceTypeDef>, Shape) {
        shape_of(self.method, self.endpoint, self.search)
    }

    /// Whether the pack has anything to look at: a query, or a body it reads.
    pub fn has_work(&self, has_body: bool) -> bool {
        self.query.is_some_and(|q| !q.is_empty()) || (has_body && self.reads_body())
    }

    fn reads_body(&self) -> bool {
        let search = self.search && *self.method == Method::POST;
        search || self.shape().1 != Shape::Other
    }
}

pub fn normalize(pack: &Pack, req: &Request<'_>, body: Option<&mut Value>) -> Normalized {
    let (resource, shape) = req.shape();
    let subject = |shape| Subject {
        method: req.method,
        resource,
        headers: req.headers,
        shape,
        answer: None,
        extensions: req.extensions,
    };
    let mut fired = Vec::new();
    let mut query = None;
    if let Some(q) = req.query.filter(|q| !q.is_empty()) {
        let (kept, dropped) = without_params(q, &params_to_remove(pack, &subject(Shape::Other)));
        for rule in dropped {
            if !fired.contains(rule) {
                fired.push(rule.clone());
            }
        }
        let q = match kept {
            Some(kept) => query.insert(kept).as_str(),
            None => q,
        };
        if let Some(mut filter) = query_filter(Some(q)) {
            let rules = apply(pack, &subject(Shape::Other), None, Some(&mut filter));
            if !rules.is_empty() {
                query = Some(with_filter(q, &filter));
            }
            fired.extend(rules);
        }
    }
    let before = fired.len();
    if let Some(doc) = body.filter(|_| req.reads_body()) {
        if req.search {
            let key = doc.as_object().and_then(|o| key_ci(o, "filter")).cloned();
            if let Some(Value::String(f)) = key.and_then(|k| doc.get_mut(&k)) {
                fired.extend(apply(pack, &subject(Shape::Other), None, Some(f)));
            }
        } else {
            fired.extend(apply(pack, &subject(shape), Some(doc), None));
        }
    }
    Normalized {
        body_changed: fired.len() > before,
        fired,
        query,
        resource,
        shape,
    }
}

/// One operation of a Bulk the app carries out itself (RFC 7644 §3.7.1), as the request it
/// stands for: its method, the endpoint of its path, and its `data`.
pub struct BulkOp<'a> {
    pub index: usize,
    pub method: Method,
    pub endpoint: Endpoint,
    pub data: &'a mut Value,
}

/// The operations of a BulkRequest body that carry `data` for `/Users` or `/Groups`; the rest
/// (a DELETE, an unknown path) has nothing for a pack.
pub fn bulk_ops(doc: &mut Value) -> Vec<BulkOp<'_>> {
    let Some(Value::Array(ops)) = doc
        .as_object_mut()
        .and_then(|o| get_mut_ci(o, "Operations"))
    else {
        return Vec::new();
    };
    ops.iter_mut()
        .enumerate()
        .filter_map(|(index, op)| {
            let obj = op.as_object_mut()?;
            let text = |k: &str| {
                key_ci(obj, k)
                    .and_then(|k| obj[k].as_str())
                    .map(str::to_owned)
            };
            let method =
                Method::from_bytes(text("method")?.to_ascii_uppercase().as_bytes()).ok()?;
            let path = text("path")?;
            let endpoint = crate::scim::request::classify(&path)?.endpoint;
            let data = key_ci(obj, "data").cloned()?;
            Some(BulkOp {
                index,
                method,
                endpoint,
                data: obj.get_mut(&data)?,
            })
        })
        .collect()
}

/// The `filter` query parameter, if there is one.
fn query_filter(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("filter"))
        .map(|(_, v)| v.into_owned())
}

/// `query` without the parameters `remove` names (any case), with the rules that dropped one;
/// `None` when none was there. The other parameters keep their bytes and order.
fn without_params<'r>(
    query: &str,
    remove: &[(&'r Arc<str>, &str)],
) -> (Option<String>, Vec<&'r Arc<str>>) {
    if remove.is_empty() {
        return (None, Vec::new());
    }
    let mut dropped = Vec::new();
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            let name = form_urlencoded::parse(key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            match remove.iter().find(|(_, p)| p.eq_ignore_ascii_case(&name)) {
                Some((rule, _)) => {
                    dropped.push(*rule);
                    false
                }
                None => true,
            }
        })
        .collect();
    if dropped.is_empty() {
        return (None, dropped);
    }
    (Some(kept.join("&")), dropped)
}

/// `query` with its `filter` parameter replaced; the other parameters keep their bytes.
fn with_filter(query: &str, filter: &str) -> String {
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            let decoded = form_urlencoded::parse(key.as_bytes())
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
    pairs.join("&")
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
    use super::{percent_encode, with_filter};

    #[test]
    fn filters_are_percent_encoded_with_spaces_as_percent_20() {
        assert_eq!(
            percent_encode("externalId eq \"jy+ung\""),
            "externalId%20eq%20%22jy%2Bung%22"
        );
    }

    #[test]
    fn only_the_filter_parameter_is_rewritten() {
        assert_eq!(
            with_filter("count=2&Filter=x+eq+y&startIndex=1", "x eq \"y\""),
            "count=2&Filter=x%20eq%20%22y%22&startIndex=1"
        );
    }
}
