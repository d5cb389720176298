//! Splits a filter into tokens: brackets, JSON string literals and bare words (attribute
//! paths, keywords, numbers), each with its byte offset for error messages.

use super::FilterError;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A JSON string literal, already unescaped (RFC 7644 §3.4.2.2 uses JSON strings, RFC 8259 §7).
    Str(String),
    /// A run of characters up to whitespace, a bracket or a quote.
    Word(&'a str),
}

#[derive(Clone, Debug)]
pub(super) struct Token<'a> {
    pub kind: Kind<'a>,
    pub start: usize,
    pub end: usize,
}

impl Token<'_> {
    /// How the token is named in an error, without echoing string contents.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::LParen => "'('".into(),
            Kind::RParen => "')'".into(),
            Kind::LBracket => "'['".into(),
            Kind::RBracket => "']'".into(),
            Kind::Str(_) => "a string".into(),
            Kind::Word(w) => format!("{:?}", w.chars().take(40).collect::<String>()),
        }
    }
}

/// Tokenizes the whole input; the caller has already bounded its length.
pub(super) fn tokenize(src: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let bytes = src.as_bytes();
    let mut out = Vec::with_capacity(8);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let (kind, end) = match b {
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' => (Kind::LParen, i + 1),
            b')' => (Kind::RParen, i + 1),
            b'[' => (Kind::LBracket, i + 1),
            b']' => (Kind::RBracket, i + 1),
            b'"' => {
                let end = string_end(bytes, i)?;
                let inner = &bytes[i + 1..end - 1];
                // Without escapes or control characters the literal is its own text.
                let text = if inner.iter().all(|&b| b != b'\\' && b >= 0x20) {
                    src[i + 1..end - 1].to_owned()
                } else {
                    serde_json::from_str::<String>(&src[i..end])
                        .map_err(|_| FilterError::InvalidString(i))?
                };
                (Kind::Str(text), end)
            }
            _ => {
                let end = word_end(bytes, i);
                (Kind::Word(&src[i..end]), end)
            }
        };
        out.push(Token {
            kind,
            start: i,
            end,
        });
        i = end;
    }
    Ok(out)
}

/// The offset just past the closing quote of the string starting at `start`.
fn string_end(bytes: &[u8], start: usize) -> Result<usize, FilterError> {
    let mut j = start + 1;
    while let Some(&b) = bytes.get(j) {
        match b {
            b'\\' => j += 2,
            b'"' => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err(FilterError::UnterminatedString(start))
}

/// Words end at ASCII delimiters only, so slicing there never splits a UTF-8 character.
fn word_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || matches!(b, b'(' | b')' | b'[' | b']' | b'"'))
        .map_or(bytes.len(), |n| start + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Kind<'_>> {
        tokenize(src)
            .expect("lexes")
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn lexer_splits_brackets_strings_and_words_without_spaces() {
        assert_eq!(
            kinds(r#"members[value eq"28\"19"]"#),
            vec![
                Kind::Word("members"),
                Kind::LBracket,
                Kind::Word("value"),
                Kind::Word("eq"),
                Kind::Str("28\"19".into()),
                Kind::RBracket,
            ]
        );
    }

    #[test]
    fn lexer_decodes_json_escapes() {
        assert_eq!(kinds(r#""a\u00e9\n\\""#), vec![Kind::Str("aé\n\\".into())]);
        assert_eq!(kinds("\"Zoë Ω\""), vec![Kind::Str("Zoë Ω".into())]);
        assert_eq!(kinds("\"\""), vec![Kind::Str(String::new())]);
    }

    #[test]
    fn lexer_rejects_unterminated_and_invalid_strings() {
        assert_eq!(
            tokenize(r#"a eq "abc"#).err(),
            Some(FilterError::UnterminatedString(5))
        );
        assert_eq!(
            tokenize(r#"a eq "ab\"#).err(),
            Some(FilterError::UnterminatedString(5))
        );
        assert_eq!(
            tokenize(r#"a eq "\x""#).err(),
            Some(FilterError::InvalidString(5))
        );
        assert_eq!(
            tokenize("a eq \"tab\there\"").err(),
            Some(FilterError::InvalidString(5))
        );
    }
}
