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
    serde_json::from_str::<serde::de::IgnoredAny>(text(bytes)?)
        .map(drop)
        .map_err(|e| JsonError::Syntax(e.to_string()))
}

/// Parses `bytes` as one JSON value nested at most [`MAX_DEPTH`] deep: [`check`] and the
/// parse in one pass, for a body that is to be read anyway.
pub fn parse(bytes: &[u8]) -> Result<serde_json::Value, JsonError> {
    if depth(bytes) > MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    serde_json::from_str(text(bytes)?).map_err(|e| JsonError::Syntax(e.to_string()))
}

/// `bytes` as text: JSON exchanged between systems is UTF-8 (RFC 8259 §8.1). Checked once for
/// the whole document, so that the parser need not check each string it reads again (and so
/// that a document skipped, not built, is held to it too).
fn text(bytes: &[u8]) -> Result<&str, JsonError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = 1 + memchr::memchr_iter(b'\n', before).count();
        let column = before.len() - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1) + 1;
        JsonError::Syntax(format!(
            "invalid UTF-8 at line {line} column {column} (RFC 8259 §8.1)"
        ))
    })
}

/// `doc` as JSON text, written into a buffer of `hint` bytes to begin with: the size of the
/// text it was read from, which a rewrite rarely changes much, so the buffer is not grown and
/// copied along the way.
pub fn to_vec(doc: &serde_json::Value, hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(hint + hint / 8);
    serde_json::to_writer(&mut out, doc).expect("a JSON value always serializes");
    out
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

    #[test]
    fn bytes_that_are_not_utf8_are_refused_with_their_place() {
        let doc = b"{\"a\": 1,\n \"name\": \"Zo\xeb\"}";
        for verdict in [check(doc), parse(doc).map(drop)] {
            let Err(JsonError::Syntax(msg)) = verdict else {
                panic!("expected a syntax error")
            };
            assert_eq!(msg, "invalid UTF-8 at line 2 column 13 (RFC 8259 §8.1)");
        }
        let ok = "{\"name\": \"Zoë 東\"}";
        assert_eq!(check(ok.as_bytes()), Ok(()));
        assert_eq!(parse(ok.as_bytes()).expect("UTF-8")["name"], "Zoë 東");
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::Value;

        use super::*;

        /// JSON values nested up to about twice the allowed depth.
        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                "[\\PC\"\\\\\\[\\]{}]{0,12}".prop_map(Value::String),
            ];
            leaf.prop_recursive(MAX_DEPTH as u32 * 2, 256, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z\\[{\"]{0,6}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn nesting(v: &Value) -> usize {
            match v {
                Value::Array(a) => 1 + a.iter().map(nesting).max().unwrap_or(0),
                Value::Object(o) => 1 + o.values().map(nesting).max().unwrap_or(0),
                _ => 0,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// The guard refuses exactly the documents nested too deep, however their strings
            /// hide brackets, quotes and escapes.
            #[test]
            fn well_formed_documents_pass_unless_too_deep(v in value()) {
                let bytes = serde_json::to_vec(&v).unwrap();
                let expected = if nesting(&v) > MAX_DEPTH { Err(JsonError::TooDeep) } else { Ok(()) };
                prop_assert_eq!(check(&bytes), expected);
            }

            /// Arbitrary bytes never panic, and what passes is JSON.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                if check(&bytes).is_ok() {
                    prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
                }
            }

            /// Parsing in one pass refuses what the check refuses, for the same reason at the
            /// same place (serde names a cut-off number "invalid" when skipping it, "EOF" when
            /// reading it), and gives what it accepts as parsed.
            #[test]
            fn parse_refuses_what_check_refuses(v in value(), cut in 0usize..64) {
                let whole = serde_json::to_vec(&v).unwrap();
                for bytes in [&whole[..], &whole[..whole.len().saturating_sub(cut)]] {
                    match (check(bytes), parse(bytes)) {
                        (Ok(()), Ok(doc)) => prop_assert_eq!(serde_json::to_vec(&doc).unwrap(), bytes),
                        (Err(JsonError::Syntax(a)), Err(JsonError::Syntax(b))) => {
                            let at = |m: &str| m.rsplit_once(" at ").map(|(_, at)| at.to_owned());
                            prop_assert_eq!(at(&a), at(&b), "{} / {}", a, b);
                        }
                        (Err(a), Err(b)) => prop_assert_eq!(a, b),
                        (a, b) => prop_assert!(false, "check {:?}, parse {:?}", a, b.map(drop)),
                    }
                }
            }
        }
    }
}
