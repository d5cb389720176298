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
/// the syntax check that follows refuses it. Most of a SCIM document is string content, which
/// is skipped with `memchr` rather than byte by byte.
fn depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i + 1),
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// The index of the quote that closes a string whose content starts at `from` (or the end of
/// input for an unterminated one).
fn string_end(bytes: &[u8], mut from: usize) -> usize {
    while let Some(off) = memchr::memchr2(b'"', b'\\', &bytes[from.min(bytes.len())..]) {
        let at = from + off;
        if bytes[at] == b'"' {
            return at;
        }
        from = at + 2; // an escape: skip the escaped byte
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert_eq!(depth(br#"{"a":"[[[{{{\"[[["}"#), 1);
        assert_eq!(depth(br#"{"a":[{"b":[1]}]}"#), 4);
        assert_eq!(
            depth(br#"["\\", ["x"]]"#),
            2,
            "an escaped backslash ends before the quote"
        );
        assert_eq!(
            depth(br#"["\"[[[", ["x"]]"#),
            2,
            "an escaped quote does not end the string"
        );
        assert_eq!(depth(br#"["unterminated [[[["#), 1);
        assert_eq!(depth(b"[\"ends with a backslash\\"), 1);
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
