//! Cheap guards on a JSON document before anything parses it into a tree: SCIM resources are
//! shallow, so a document nested deeper than any schema allows is refused up front.

use std::ops::Range;

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
/// without building it. A document that passes [`well_formed`] is done in one pass over its
/// bytes; any other is read again by serde, whose verdict and words are the answer.
pub fn check(bytes: &[u8]) -> Result<(), JsonError> {
    if std::str::from_utf8(bytes).is_ok() && well_formed(bytes) {
        return Ok(());
    }
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

/// Reads a document that needs no guard and no words for its faults, such as an answer of the
/// app: UTF-8 checked once for the whole text rather than string by string, as in [`parse`].
pub fn read(bytes: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()
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
    write(&mut out, doc);
    out
}

/// Appends `v` to `out` as compact JSON text, byte for byte what `serde_json::to_writer`
/// writes. serde_json looks at each byte of a string on its own to escape it; here the runs
/// of a string that need no escape (nearly all of it) are found eight bytes at a time and
/// copied whole.
pub fn write(out: &mut Vec<u8>, v: &serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            serde_json::to_writer(&mut *out, n).expect("a number always serializes")
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (name, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, name);
                out.push(b':');
                write(out, item);
            }
            out.push(b'}');
        }
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it: the quote, the backslash and the
/// control characters, these by their short escapes where RFC 8259 §7 has one.
fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut rest = s.as_bytes();
    loop {
        let run = plain_run(rest);
        out.extend_from_slice(&rest[..run]);
        let Some(&c) = rest.get(run) else {
            break;
        };
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xf)],
            ]),
        }
        rest = &rest[run + 1..];
    }
    out.push(b'"');
}

/// Whether `b` is one JSON value (RFC 8259 §2–7) between optional whitespace, nested at most
/// [`MAX_DEPTH`] deep, by the grammar serde's skipping parse holds it to: a `\u` escape needs
/// four hex digits but may be a lone surrogate, and control characters must be escaped. Bytes
/// past ASCII are taken as they are: the caller has checked them as UTF-8. `false` says only
/// that this pass does not vouch for the document, which serde then reads.
fn well_formed(b: &[u8]) -> bool {
    past_json(b, whitespace(b, 0), MAX_DEPTH).is_some_and(|end| whitespace(b, end) == b.len())
}

/// Past the one JSON value that starts at `i`, nested at most `max_depth` deep, by the
/// grammar of [`well_formed`]; `None` if no such value starts there.
fn past_json(b: &[u8], mut i: usize, max_depth: usize) -> Option<usize> {
    // Bit n is set when the container at depth n + 1 is an object.
    let (mut objects, mut depth) = (0u64, 0usize);
    loop {
        // A value starts at `i`.
        i = match b.get(i) {
            Some(&open @ (b'{' | b'[')) => {
                depth += 1;
                if depth > max_depth {
                    return None;
                }
                let object = open == b'{';
                objects = objects << 1 | u64::from(object);
                i = whitespace(b, i + 1);
                let close = if object { b'}' } else { b']' };
                match b.get(i) {
                    // Empty: it closes at once.
                    Some(&c) if c == close => {
                        (depth, objects) = (depth - 1, objects >> 1);
                        i + 1
                    }
                    _ if object => {
                        i = past_name(b, i)?;
                        continue;
                    }
                    _ => continue,
                }
            }
            Some(b'"') => past_string(b, i + 1)?,
            Some(b't') if b[i..].starts_with(b"true") => i + 4,
            Some(b'f') if b[i..].starts_with(b"false") => i + 5,
            Some(b'n') if b[i..].starts_with(b"null") => i + 4,
            Some(b'-' | b'0'..=b'9') => past_number(b, i)?,
            _ => return None,
        };
        // A value ended at `i`: the containers it closes, then the next value's start.
        loop {
            if depth == 0 {
                return Some(i);
            }
            i = whitespace(b, i);
            let object = objects & 1 == 1;
            match b.get(i) {
                Some(b',') => {
                    i = whitespace(b, i + 1);
                    if object {
                        i = past_name(b, i)?;
                    }
                    break;
                }
                Some(b'}') if object => {}
                Some(b']') if !object => {}
                _ => return None,
            }
            (depth, objects, i) = (depth - 1, objects >> 1, i + 1);
        }
    }
}

/// One member of a JSON object, as places in the text it was found in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member<'t> {
    /// The name as written between its quotes, escapes and all.
    pub raw_name: &'t str,
    /// From the name's opening quote to the value's last byte.
    pub whole: Range<usize>,
    /// The value alone.
    pub value: Range<usize>,
}

/// The members of the object `text` holds, in the order written, without building any value:
/// for a rewrite that touches a few members and passes the rest on as they came. `None` when
/// `text` is not an object that [`well_formed`] vouches for (the caller then reads it whole,
/// and serde says what is wrong with it).
pub fn members(text: &str) -> Option<Vec<Member<'_>>> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    each_item(b, b'{', b'}', |i| {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let name_end = past_string(b, i + 1)?;
        let value_start = past_colon(b, name_end)?;
        let value_end = past_json(b, value_start, MAX_DEPTH - 1)?;
        found.push(Member {
            raw_name: &text[i + 1..name_end - 1],
            whole: i..value_end,
            value: value_start..value_end,
        });
        Some(value_end)
    })?;
    Some(found)
}

/// The elements of the array `text` holds, as places in it, in the order written; `None` when
/// `text` is not a well-formed array.
pub fn elements(text: &str) -> Option<Vec<Range<usize>>> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    each_item(b, b'[', b']', |i| {
        let end = past_json(b, i, MAX_DEPTH - 1)?;
        found.push(i..end);
        Some(end)
    })?;
    Some(found)
}

/// Goes through the one container `b` holds, opened by `open` and closed by `close`, between
/// optional whitespace: `item` is given where each item starts and says where it ends.
/// `None` when `b` is no such well-formed container, or `item` refuses one.
fn each_item(
    b: &[u8],
    open: u8,
    close: u8,
    mut item: impl FnMut(usize) -> Option<usize>,
) -> Option<()> {
    let mut i = whitespace(b, 0);
    if b.get(i) != Some(&open) {
        return None;
    }
    i = whitespace(b, i + 1);
    if b.get(i) == Some(&close) {
        i += 1;
    } else {
        loop {
            i = whitespace(b, item(i)?);
            match b.get(i) {
                Some(b',') => i = whitespace(b, i + 1),
                Some(&c) if c == close => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (whitespace(b, i) == b.len()).then_some(())
}

/// Past a member's name, its colon and the whitespace around it: where its value starts.
fn past_name(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    past_colon(b, past_string(b, i + 1)?)
}

/// Past the colon after a member's name, which ends at `i`, and the whitespace around it.
fn past_colon(b: &[u8], i: usize) -> Option<usize> {
    let i = whitespace(b, i);
    (b.get(i) == Some(&b':')).then(|| whitespace(b, i + 1))
}

fn whitespace(b: &[u8], i: usize) -> usize {
    // Most documents are written compact: no whitespace is the common answer.
    if !matches!(b.get(i), Some(b' ' | b'\n' | b'\t' | b'\r')) {
        return i;
    }
    let rest = &b[i..];
    i + rest
        .iter()
        .position(|c| !matches!(c, b' ' | b'\n' | b'\t' | b'\r'))
        .unwrap_or(rest.len())
}

/// Bytes that stand for themselves inside a string: all but the quote, the backslash and the
/// control characters (RFC 8259 §7).
const PLAIN: [bool; 256] = {
    let mut plain = [true; 256];
    let mut c = 0;
    while c < 0x20 {
        plain[c] = false;
        c += 1;
    }
    plain[b'"' as usize] = false;
    plain[b'\\' as usize] = false;
    plain
};

/// How many bytes at the start of `b` stand for themselves in a string (see [`PLAIN`]), eight
/// at a time: in a word, a byte that is a quote or a backslash, or below 0x20, leaves its top
/// bit set in the mask below. A false mark (from a borrow) can only come after a true one, so
/// the lowest mark is the first such byte.
fn plain_run(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v;
    let mut n = 0;
    for chunk in b.chunks_exact(8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("chunks of eight"));
        let marks = (zero_in(w ^ (ONES * u64::from(b'"')))
            | zero_in(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & TOPS;
        if marks != 0 {
            return n + (marks.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    let rest = &b[n..];
    n + rest
        .iter()
        .position(|&c| !PLAIN[usize::from(c)])
        .unwrap_or(rest.len())
}

/// Past the quote that closes a string whose content starts at `i`, if its escapes are.
fn past_string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += plain_run(b.get(i..)?);
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' if b.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit) => i += 6,
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// Past a number that starts at `i` (RFC 8259 §6), if it is one.
fn past_number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |from: usize| {
        let rest = b.get(from..).unwrap_or_default();
        from + rest
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(rest.len())
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        // One leading zero, and no digit after it: the next byte must end the number.
        b'0' => i + 1,
        b'1'..=b'9' => digits(i + 1),
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
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

    /// serde's verdict on a document, the reference of the one-pass check.
    fn serde_accepts(bytes: &[u8]) -> bool {
        std::str::from_utf8(bytes).is_ok_and(|text| {
            depth(bytes) <= MAX_DEPTH && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
        })
    }

    #[test]
    fn an_answer_is_read_as_serde_reads_it() {
        for doc in [
            &b"{\"a\": [1, \"Zo\xc3\xab\"]}"[..],
            b" 7 ",
            b"{\"a\": \"Zo\xeb\"}",
            b"{",
            b"",
        ] {
            assert_eq!(read(doc), serde_json::from_slice(doc).ok(), "{doc:?}");
        }
    }

    #[test]
    fn a_plain_run_ends_at_the_first_quote_backslash_or_control_character() {
        for len in 0..20 {
            for at in 0..=len {
                for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    let mut text = vec![b'a'; len];
                    // Bytes that come near each mark: 0x21 and 0x5d, 0x20, and past ASCII.
                    for (i, c) in text.iter_mut().enumerate() {
                        *c = [b'#', b']', b' ', 0xc3, 0xa9, b'a'][i % 6];
                    }
                    if at < len {
                        text[at] = stop;
                    }
                    assert_eq!(plain_run(&text), at, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn the_one_pass_check_holds_to_the_grammar_serde_holds_to() {
        let cases: &[&str] = &[
            "0",
            "-0",
            "3",
            " true ",
            "false",
            "null",
            "\"\"",
            "[]",
            "{}",
            "[1,2]",
            "{\"a\":1,\"b\":[true,null,{}]}",
            "0.5e-3",
            "1E+2",
            "-12.5E7",
            "\"\\u12aB\"",
            "\"\\ud800\"",
            "\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"",
            "\"Zoë 東\"",
            " \n\t\r[ ] ",
            // Refused:
            "",
            " ",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "\"\\u12G4\"",
            "\"\\x\"",
            "\"a\tb\"",
            "[1,]",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "{\"a\"}",
            "[]x",
            "nul",
            "tru",
            "[",
            "{",
            "\"open",
            "[1]]",
            "{}}",
            "{\"a\":1]",
            "[1}",
            "\u{feff}{}",
            "NaN",
            "Infinity",
        ];
        for doc in cases {
            let bytes = doc.as_bytes();
            let one_pass = std::str::from_utf8(bytes).is_ok() && well_formed(bytes);
            assert_eq!(one_pass, serde_accepts(bytes), "{doc:?}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(well_formed(deep.as_bytes()));
        let deeper = format!("[{deep}]");
        assert!(!well_formed(deeper.as_bytes()));
    }

    /// The IdP payloads, rule fixtures and vectors of `tests/fixtures`, whole, written compact
    /// and cut short: the one-pass check vouches for them exactly when serde accepts them.
    #[test]
    fn the_one_pass_check_agrees_with_serde_on_every_fixture() {
        fn json_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("fixtures are readable") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    json_files(&path, out);
                } else if path.extension().is_some_and(|e| e == "json") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        json_files(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
            &mut files,
        );
        assert!(files.len() > 20, "fixtures found: {}", files.len());
        for file in files {
            let whole = std::fs::read(&file).expect("readable");
            let compact = serde_json::from_slice::<serde_json::Value>(&whole)
                .map(|v| serde_json::to_vec(&v).expect("serializes"))
                .unwrap_or_default();
            for doc in [&whole, &compact] {
                for cut in [0, 1, 2, 7, doc.len() / 2] {
                    let bytes = &doc[..doc.len().saturating_sub(cut)];
                    let one_pass = std::str::from_utf8(bytes).is_ok() && well_formed(bytes);
                    assert_eq!(
                        one_pass,
                        serde_accepts(bytes),
                        "{} less {cut} bytes",
                        file.display()
                    );
                }
            }
        }
    }

    /// What `members` found, read back: each name with its value parsed by serde, and each
    /// member's whole text read as an object of its own.
    fn read_members(text: &str) -> Option<Vec<(String, serde_json::Value)>> {
        let found = members(text)?;
        Some(
            found
                .iter()
                .map(|m| {
                    let alone: serde_json::Value =
                        serde_json::from_str(&format!("{{{}}}", &text[m.whole.clone()]))
                            .expect("a member's whole text is a member");
                    let value: serde_json::Value =
                        serde_json::from_str(&text[m.value.clone()]).expect("a value");
                    let name: String =
                        serde_json::from_str(&format!("\"{}\"", m.raw_name)).expect("a name");
                    assert_eq!(alone[&name], value, "{name}");
                    (name, value)
                })
                .collect(),
        )
    }

    #[test]
    fn members_are_found_in_order_however_their_values_are_written() {
        let text = concat!(
            " {\n  \"a\" : \"x}\\\"]\" ,\"b\":[1, {\"c\": \"{[\"}], \"d\\u0041\":-1.5e3,",
            "\"e\":true,\"f\":null,\"g\":{},\"h\":[] ,\"i\":0}\n"
        );
        let found = read_members(text).expect("an object");
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "dA", "e", "f", "g", "h", "i"]);
        assert_eq!(found[0].1, "x}\"]");
        assert_eq!(found[2].1, -1500.0);
        assert_eq!(members(text).unwrap()[2].raw_name, "d\\u0041");
        assert_eq!(read_members("{}"), Some(Vec::new()));
        let list = " [ {\"a\": [1, \"]\"]}, 2 ,\"x\", [] ] ";
        let found: Vec<&str> = elements(list)
            .expect("an array")
            .into_iter()
            .map(|r| &list[r])
            .collect();
        assert_eq!(found, ["{\"a\": [1, \"]\"]}", "2", "\"x\"", "[]"]);
        assert_eq!(elements("[]"), Some(Vec::new()));
        for not_an_array in ["{}", "[1,]", "[1 2]", "[", "[] []"] {
            assert_eq!(elements(not_an_array), None, "{not_an_array:?}");
        }
        for not_an_object in [
            "[1]",
            "\"x\"",
            "1",
            "",
            "{",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{} {}",
        ] {
            assert_eq!(members(not_an_object), None, "{not_an_object:?}");
        }
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

        const CASES: u32 = 2000;

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

            /// The writer writes what serde_json writes, escapes and all.
            #[test]
            fn the_writer_writes_what_serde_json_writes(v in value(), controls in "[\\x00-\\x1f\\x7f\"\\\\/é\u{2028}a]{0,12}") {
                let mut members = serde_json::Map::new();
                members.insert(controls.clone(), serde_json::json!(1.5));
                members.insert("n".into(), serde_json::json!(-7));
                let v = serde_json::json!([v, controls, members]);
                prop_assert_eq!(to_vec(&v, 0), serde_json::to_vec(&v).unwrap());
            }

            /// Arbitrary bytes never panic, and what passes is JSON.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                if check(&bytes).is_ok() {
                    prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
                }
                prop_assert_eq!(std::str::from_utf8(&bytes).is_ok() && well_formed(&bytes), serde_accepts(&bytes));
            }

        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(CASES))]

            /// The one-pass check vouches for exactly the documents serde accepts within the
            /// depth, for JSON written compact or pretty and then damaged a few bytes at a time.
            #[test]
            fn the_one_pass_check_agrees_with_serde(
                v in value(),
                pretty in any::<bool>(),
                edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(
                    b"\"\\{}[],:0-.eE+ \n\x01\x1futnfal1/9x".to_vec())), 0..4),
            ) {
                let mut bytes = if pretty { serde_json::to_vec_pretty(&v) } else { serde_json::to_vec(&v) }.unwrap();
                for (at, kind, byte) in edits {
                    let i = at.index(bytes.len() + 1);
                    match kind {
                        0 => bytes.insert(i, byte),
                        1 if i < bytes.len() => bytes[i] = byte,
                        _ if i < bytes.len() => { bytes.remove(i); }
                        _ => {}
                    }
                }
                let one_pass = std::str::from_utf8(&bytes).is_ok() && well_formed(&bytes);
                prop_assert_eq!(one_pass, serde_accepts(&bytes), "{}", String::from_utf8_lossy(&bytes));
            }

            /// Every member of a generated object, written compact or pretty, is found with
            /// its name and value as serde reads them.
            #[test]
            fn members_are_what_serde_reads(
                m in prop::collection::btree_map("[a-z\\[{\"]{0,6}", value(), 0..6),
                pretty in any::<bool>(),
            ) {
                let v = Value::Object(m.into_iter().collect());
                let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
                if nesting(&v) > MAX_DEPTH {
                    prop_assert_eq!(members(&text), None);
                } else {
                    let found = read_members(&text).expect("an object");
                    let expected: Vec<(String, Value)> = v.as_object().unwrap().clone().into_iter().collect();
                    prop_assert_eq!(found, expected);
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
