//! Cheap guards on a JSON document before anything parses it into a tree: SCIM resources are
//! shallow, so a document nested deeper than any schema allows is refused up front.

/// Deeper than any SCIM document (a resource, a PatchOp, a BulkRequest) can legitimately be.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonError {
    #[error("the JSON document is nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the request body is not valid JSON: {0}")]
    Syntax(String),
}

/// Checks that `bytes` is one well-formed JSON value nested at most [`MAX_DEPTH`] deep,
/// without building it.
pub fn check(bytes: &[u8]) -> Result<(), JsonError> {
    if depth(bytes) > MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(drop)
        .map_err(|e| JsonError::Syntax(e.to_string()))
}

/// The deepest nesting of `[` and `{` outside strings. Malformed input gives some number;
/// the syntax check that follows refuses it.
fn depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert_eq!(depth(br#"{"a":"[[[{{{\"[[["}"#), 1);
        assert_eq!(depth(br#"{"a":[{"b":[1]}]}"#), 4);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(check(deep.as_bytes()), Err(JsonError::TooDeep));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(check(ok.as_bytes()), Ok(()));
    }

    #[test]
    fn syntax_errors_say_where_without_echoing_content() {
        let Err(JsonError::Syntax(msg)) = check(br#"{"password": "hunter2""#) else {
            panic!("expected a syntax error")
        };
        assert!(msg.contains("line 1"), "{msg}");
        assert!(!msg.contains("hunter2"));
    }
}
