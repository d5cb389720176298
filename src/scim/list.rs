//! The ListResponse message (RFC 7644 §3.4.2) and the parameters a list or search takes:
//! pagination (§3.4.2.4), filter, sorting and attribute projection, from a query string
//! (§3.4.2) or a SearchRequest body (§3.4.3).

use serde_json::{json, Value};

use super::error::{ScimError, ScimType};
use super::path::AttrPath;
use super::urn;

/// Page size when the client sends no `count` (RFC 7644 §3.4.2.4 leaves it to the server).
pub const DEFAULT_COUNT: usize = 100;
/// The most resources one page holds; a larger `count` is cut down to it (§3.4.2.4).
pub const MAX_COUNT: usize = 1000;

/// `sortOrder` (RFC 7644 §3.4.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

/// The parameters of a list or search request, validated but not yet applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListParams {
    /// 1-based index of the first result; values below 1 were read as 1.
    pub start_index: usize,
    /// Requested page size; negative values were read as 0. `None` means the server default.
    pub count: Option<usize>,
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<SortOrder>,
    pub attributes: Vec<String>,
    pub excluded_attributes: Vec<String>,
}

impl Default for ListParams {
    fn default() -> Self {
        Self {
            start_index: 1,
            count: None,
            filter: None,
            sort_by: None,
            sort_order: None,
            attributes: Vec::new(),
            excluded_attributes: Vec::new(),
        }
    }
}

impl ListParams {
    /// Reads the parameters from a raw query string (no leading `?`). Unknown parameters are
    /// ignored; a bad integer or sort order is a 400 `invalidValue`.
    pub fn from_query(query: Option<&str>) -> Result<Self, ScimError> {
        let mut p = Self::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            // Parameter names are matched case-insensitively, as attribute names are (§3.4.2).
            match key.to_ascii_lowercase().as_str() {
                "startindex" => p.start_index = start_index(parse_int("startIndex", &value)?),
                "count" => p.count = Some(count(parse_int("count", &value)?)),
                "filter" => p.filter = Some(value.into_owned()),
                "sortby" => p.sort_by = Some(value.into_owned()),
                "sortorder" => p.sort_order = Some(sort_order(&value)?),
                "attributes" => p.attributes = paths("attributes", split_list(&value))?,
                "excludedattributes" => {
                    p.excluded_attributes = paths("excludedAttributes", split_list(&value))?;
                }
                _ => {}
            }
        }
        Ok(p)
    }

    /// Reads a SearchRequest body (RFC 7644 §3.4.3): same parameters, JSON types.
    pub fn from_search_body(body: &Value) -> Result<Self, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| syntax("a SearchRequest must be an object"))?;
        let schemas = obj.get("schemas").and_then(Value::as_array);
        if !schemas.is_some_and(|s| s.iter().any(|u| u == urn::SEARCH_REQUEST)) {
            return Err(syntax("a SearchRequest must list the SearchRequest schema"));
        }
        let mut p = Self::default();
        for (key, value) in obj {
            match key.to_ascii_lowercase().as_str() {
                "startindex" => p.start_index = start_index(json_int("startIndex", value)?),
                "count" => p.count = Some(count(json_int("count", value)?)),
                "filter" => p.filter = Some(json_str("filter", value)?.to_owned()),
                "sortby" => p.sort_by = Some(json_str("sortBy", value)?.to_owned()),
                "sortorder" => p.sort_order = Some(sort_order(json_str("sortOrder", value)?)?),
                "attributes" => {
                    p.attributes = paths("attributes", json_list("attributes", value)?)?
                }
                "excludedattributes" => {
                    let list = json_list("excludedAttributes", value)?;
                    p.excluded_attributes = paths("excludedAttributes", list)?;
                }
                _ => {}
            }
        }
        Ok(p)
    }

    /// The page size to serve: the requested count, the default, and never above `max`.
    pub fn page_size(&self, max: usize) -> usize {
        self.count.unwrap_or(DEFAULT_COUNT).min(max)
    }

    /// The slice of `items` this page covers (startIndex is 1-based; past the end is empty).
    pub fn page<'a, T>(&self, items: &'a [T], max: usize) -> &'a [T] {
        let from = (self.start_index - 1).min(items.len());
        let to = from.saturating_add(self.page_size(max)).min(items.len());
        &items[from..to]
    }
}

/// Whether a list request asks for something a plain list may not do (RFC 7644 §3.4.2.2,
/// §3.4.2.3): a filter or a sort order.
pub fn asks_for_more(query: Option<&str>) -> bool {
    has_param(query, &["filter", "sortby"])
}

/// Whether the request names the attributes to return (RFC 7644 §3.4.2.5).
pub fn asks_for_projection(query: Option<&str>) -> bool {
    has_param(query, &["attributes", "excludedattributes"])
}

/// Parameter names are matched without case, as `from_query` reads them.
fn has_param(query: Option<&str>, names: &[&str]) -> bool {
    let Some(q) = query else { return false };
    form_urlencoded::parse(q.as_bytes())
        .any(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
}

/// A ListResponse document (RFC 7644 §3.4.2).
#[derive(Clone, Debug, PartialEq)]
pub struct ListResponse {
    /// Every result matching the query, not only this page.
    pub total_results: usize,
    pub start_index: usize,
    pub resources: Vec<Value>,
}

impl ListResponse {
    /// `Resources` is always present, even when empty, so clients need no special case;
    /// `itemsPerPage` is the number actually returned.
    pub fn to_value(&self) -> Value {
        json!({
            "schemas": [urn::LIST_RESPONSE],
            "totalResults": self.total_results,
            "startIndex": self.start_index,
            "itemsPerPage": self.resources.len(),
            "Resources": self.resources,
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_value()).expect("a JSON value always serializes")
    }
}

/// RFC 7644 §3.4.2.4: "A value less than 1 SHALL be interpreted as 1."
fn start_index(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0).max(1)
}

/// RFC 7644 §3.4.2.4: "A negative value SHALL be interpreted as 0."
fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn parse_int(name: &str, value: &str) -> Result<i64, ScimError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(format!("{name} must be an integer")))
}

fn json_int(name: &str, value: &Value) -> Result<i64, ScimError> {
    value
        .as_i64()
        .ok_or_else(|| invalid(format!("{name} must be an integer")))
}

fn json_str<'v>(name: &str, value: &'v Value) -> Result<&'v str, ScimError> {
    value
        .as_str()
        .ok_or_else(|| invalid(format!("{name} must be a string")))
}

fn json_list(name: &str, value: &Value) -> Result<Vec<String>, ScimError> {
    let items = value
        .as_array()
        .ok_or_else(|| invalid(format!("{name} must be an array")))?;
    items
        .iter()
        .map(|v| json_str(name, v).map(|s| s.trim().to_owned()))
        .collect()
}

fn sort_order(value: &str) -> Result<SortOrder, ScimError> {
    match value.to_ascii_lowercase().as_str() {
        "ascending" => Ok(SortOrder::Ascending),
        "descending" => Ok(SortOrder::Descending),
        _ => Err(invalid("sortOrder must be \"ascending\" or \"descending\"")),
    }
}

/// `attributes` and `excludedAttributes` are comma-separated lists (RFC 7644 §3.4.2.5).
/// `attributes` and `excludedAttributes` name attributes (RFC 7644 §3.4.2.5); a filter such as
/// `emails[type eq "work"]` is not one, and is refused rather than silently matching nothing.
fn paths(name: &str, list: Vec<String>) -> Result<Vec<String>, ScimError> {
    if list.iter().any(|item| AttrPath::parse(item).is_err()) {
        return Err(invalid(format!(
            "{name} must list attribute paths such as \"emails.value\" or \"name\", without filters"
        )));
    }
    Ok(list)
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::with_type(400, ScimType::InvalidValue, detail)
}

fn syntax(detail: &str) -> ScimError {
    ScimError::with_type(400, ScimType::InvalidSyntax, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> ListParams {
        ListParams::from_query(Some(q)).expect("valid query")
    }

    #[test]
    fn absent_query_gives_defaults() {
        let p = ListParams::from_query(None).expect("no query is fine");
        assert_eq!(p, ListParams::default());
        assert_eq!(p.page_size(MAX_COUNT), DEFAULT_COUNT);
    }

    #[test]
    fn start_index_below_one_means_one_and_negative_count_means_zero() {
        assert_eq!(params("startIndex=0").start_index, 1);
        assert_eq!(params("startIndex=-5").start_index, 1);
        assert_eq!(params("count=-3").count, Some(0));
        assert_eq!(params("startIndex=3&count=10").count, Some(10));
    }

    #[test]
    fn count_is_capped_at_the_maximum() {
        assert_eq!(params("count=5000").page_size(MAX_COUNT), MAX_COUNT);
    }

    #[test]
    fn non_integer_pagination_is_invalid_value() {
        for q in ["count=ten", "startIndex=1.5", "count="] {
            let e = ListParams::from_query(Some(q)).expect_err(q);
            assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
        }
    }

    #[test]
    fn filter_and_lists_are_form_decoded() {
        let p =
            params("filter=userName%20eq%20%22bjensen%22&attributes=userName,%20name.givenName");
        assert_eq!(p.filter.as_deref(), Some("userName eq \"bjensen\""));
        assert_eq!(p.attributes, ["userName", "name.givenName"]);
        let p = params("excludedAttributes=emails&sortBy=userName&sortOrder=descending");
        assert_eq!(p.excluded_attributes, ["emails"]);
        assert_eq!(p.sort_by.as_deref(), Some("userName"));
        assert_eq!(p.sort_order, Some(SortOrder::Descending));
        assert!(ListParams::from_query(Some("sortOrder=up")).is_err());
    }

    #[test]
    fn pages_slice_from_a_one_based_index() {
        let items: Vec<u32> = (1..=10).collect();
        assert_eq!(
            params("startIndex=3&count=2").page(&items, MAX_COUNT),
            [3, 4]
        );
        assert_eq!(
            params("startIndex=9&count=5").page(&items, MAX_COUNT),
            [9, 10]
        );
        assert!(params("startIndex=11").page(&items, MAX_COUNT).is_empty());
        assert!(params("count=0").page(&items, MAX_COUNT).is_empty());
    }

    #[test]
    fn search_request_body_matches_rfc_7644_example() {
        // RFC 7644 §3.4.3, the example SearchRequest.
        let body = json!({
            "schemas": [urn::SEARCH_REQUEST],
            "attributes": ["displayName", "userName"],
            "filter": "displayName sw \"smith\"",
            "startIndex": 1,
            "count": 10
        });
        let p = ListParams::from_search_body(&body).expect("valid search");
        assert_eq!(p.attributes, ["displayName", "userName"]);
        assert_eq!(p.count, Some(10));
        assert_eq!(p.filter.as_deref(), Some("displayName sw \"smith\""));
    }

    #[test]
    fn search_request_with_bad_types_or_no_schema_is_refused() {
        let e = ListParams::from_search_body(&json!({"count": 1})).expect_err("no schemas");
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
        let body = json!({"schemas": [urn::SEARCH_REQUEST], "count": "10"});
        let e = ListParams::from_search_body(&body).expect_err("string count");
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn list_response_always_has_resources_and_integer_counts() {
        let v = ListResponse {
            total_results: 0,
            start_index: 1,
            resources: vec![],
        }
        .to_value();
        assert_eq!(v["schemas"][0], urn::LIST_RESPONSE);
        assert_eq!(v["Resources"], json!([]));
        assert_eq!(v["totalResults"], 0);
        assert!(v["itemsPerPage"].is_u64());
    }

    #[test]
    fn list_response_matches_rfc_7644_shape() {
        // RFC 7644 §3.4.2: totalResults counts all matches, itemsPerPage this page.
        let r = ListResponse {
            total_results: 2,
            start_index: 1,
            resources: vec![json!({"id": "a"})],
        };
        let v = r.to_value();
        assert_eq!(
            (v["totalResults"].as_u64(), v["itemsPerPage"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(v["Resources"][0]["id"], "a");
    }
}
