//! `bulkId` references (RFC 7644 §3.7.2): finding them in an operation's path and data, and
//! replacing each with the id the service provider gave the resource its POST created.
//!
//! A reference is a whole value: a JSON string, or one segment of the path, that is exactly
//! `bulkId:` followed by the bulkId. A string that only contains one (a PATCH filter such as
//! `members[value eq "bulkId:x"]`, a description) is left as the client wrote it: the RFC
//! defines the reference as the value itself, and rewriting inside free text could change what
//! the client meant literally. Both walks are iterative, and each visits every value once.

use serde_json::Value;

const PREFIX: &str = "bulkId:";

/// The bulkId `value` refers to, if it is a reference.
fn reference(value: &str) -> Option<&str> {
    value.strip_prefix(PREFIX)
}

/// Every bulkId that `path` and `data` refer to, each once, sorted.
pub(super) fn collect(path: &str, data: Option<&Value>) -> Vec<String> {
    let mut found: Vec<String> = path
        .split('/')
        .filter_map(reference)
        .map(str::to_owned)
        .collect();
    let mut stack: Vec<&Value> = data.into_iter().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) => found.extend(reference(s).map(str::to_owned)),
            Value::Array(items) => stack.extend(items),
            Value::Object(members) => stack.extend(members.values()),
            _ => {}
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// Whether a segment of `path` is a reference.
pub(super) fn in_path(path: &str) -> bool {
    path.split('/').any(|segment| reference(segment).is_some())
}

/// `path` with every reference segment replaced by its id, percent-encoded so that an id
/// holding `/` or `?` stays one segment. References `resolve` does not know stay as they are.
pub(super) fn substitute_path<'a>(path: &str, resolve: impl Fn(&str) -> Option<&'a str>) -> String {
    path.split('/')
        .map(|segment| match reference(segment).and_then(&resolve) {
            Some(id) => encode_segment(id),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Replaces, in place and at any depth, every string of `data` that is a reference `resolve`
/// knows with its id. Object keys are names, not values, and are never rewritten.
pub(super) fn substitute<'a>(data: &mut Value, resolve: impl Fn(&str) -> Option<&'a str>) {
    let mut stack = vec![data];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) => {
                if let Some(id) = reference(s).and_then(&resolve) {
                    *s = id.to_owned();
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(members) => stack.extend(members.values_mut()),
            _ => {}
        }
    }
}

/// Percent-encodes everything but RFC 3986 §2.3 unreserved characters.
pub(super) fn encode_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(bulk_id: &str) -> Option<&'static str> {
        match bulk_id {
            "qwerty" => Some("92b725cd"),
            "odd" => Some("a/b c"),
            _ => None,
        }
    }

    #[test]
    fn references_are_collected_from_path_and_every_depth_of_data() {
        let data = json!({
            "members": [{"value": "bulkId:qwerty"}, {"value": "bulkId:ytrewq"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"manager": {"value": "bulkId:qwerty"}},
        });
        let found = collect("/Groups/bulkId:abc", Some(&data));
        assert_eq!(found, ["abc", "qwerty", "ytrewq"]);
    }

    #[test]
    fn only_whole_values_are_references() {
        let mut data = json!({
            "displayName": "see bulkId:qwerty",
            "bulkId:qwerty": "key, not value",
            "Operations": [{"op": "remove", "path": "members[value eq \"bulkId:qwerty\"]"}],
        });
        let before = data.clone();
        assert!(collect("/Users", Some(&data)).is_empty());
        substitute(&mut data, ids);
        assert_eq!(data, before);
    }

    #[test]
    fn known_references_are_replaced_and_unknown_ones_kept() {
        let mut data = json!({"members": [{"value": "bulkId:qwerty"}, {"value": "bulkId:nope"}]});
        substitute(&mut data, ids);
        assert_eq!(
            data,
            json!({"members": [{"value": "92b725cd"}, {"value": "bulkId:nope"}]})
        );
    }

    #[test]
    fn path_ids_are_percent_encoded_into_one_segment() {
        assert_eq!(
            substitute_path("/Users/bulkId:qwerty", ids),
            "/Users/92b725cd"
        );
        assert_eq!(
            substitute_path("/Users/bulkId:odd", ids),
            "/Users/a%2Fb%20c"
        );
        assert_eq!(
            substitute_path("/Users/bulkId:nope", ids),
            "/Users/bulkId:nope"
        );
    }
}
