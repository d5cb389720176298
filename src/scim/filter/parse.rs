//! Recursive-descent parser for RFC 7644 §3.4.2.2 filters. Precedence (Table 4): `not (…)`
//! binds tightest, then `and`, then `or`; recursion is bounded by [`MAX_DEPTH`].

use serde_json::Number;

use super::lex::{tokenize, Kind, Token};
use super::{CompValue, CompareOp, Filter, FilterError, MAX_DEPTH, MAX_FILTER_LEN};
use crate::scim::path::AttrPath;

/// Parses a complete filter, e.g. `userName eq "bjensen" and not (emails pr)`.
pub fn parse(input: &str) -> Result<Filter, FilterError> {
    parse_with(input, false)
}

/// As [`parse`], but an unquoted word where a value belongs is read as a string
/// (`externalId eq jyoung`, as Entra sends it), for normalizing what clients send.
pub fn parse_lenient(input: &str) -> Result<Filter, FilterError> {
    parse_with(input, true)
}

fn parse_with(input: &str, lenient: bool) -> Result<Filter, FilterError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(FilterError::TooLong);
    }
    let tokens = tokenize(input)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
        in_value_path: false,
        lenient,
    };
    let filter = p.parse_or()?;
    match p.peek() {
        None => Ok(filter),
        Some(t) => Err(p.unexpected(t, "'and', 'or' or the end of the filter")),
    }
}

/// Parses the inside of a PATCH value path: `input` starts just after `[`; returns the filter
/// and the text after the matching `]` (RFC 7644 §3.5.2, `valuePath [subAttr]`).
pub(crate) fn parse_bracketed(input: &str) -> Result<(Filter, &str), FilterError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(FilterError::TooLong);
    }
    let tokens = tokenize(input)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 1,
        in_value_path: true,
        lenient: false,
    };
    let filter = p.parse_or()?;
    let end = p.expect(|k| matches!(k, Kind::RBracket), "']'")?;
    Ok((filter, &input[end..]))
}

struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    pos: usize,
    depth: usize,
    in_value_path: bool,
    lenient: bool,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.pos)
    }

    fn peek_kind(&self, ahead: usize) -> Option<&Kind<'a>> {
        self.tokens.get(self.pos + ahead).map(|t| &t.kind)
    }

    fn next(&mut self, expected: &'static str) -> Result<Token<'a>, FilterError> {
        // The parser never goes back, so the token is taken, not cloned.
        let token = self
            .tokens
            .get_mut(self.pos)
            .map(|t| Token {
                kind: std::mem::replace(&mut t.kind, Kind::LParen),
                ..*t
            })
            .ok_or(FilterError::UnexpectedEnd(expected))?;
        self.pos += 1;
        Ok(token)
    }

    /// Consumes a token of the wanted kind and returns the offset just past it.
    fn expect(
        &mut self,
        want: impl Fn(&Kind<'a>) -> bool,
        expected: &'static str,
    ) -> Result<usize, FilterError> {
        let token = self.next(expected)?;
        if want(&token.kind) {
            Ok(token.end)
        } else {
            Err(self.unexpected(&token, expected))
        }
    }

    fn unexpected(&self, token: &Token<'_>, expected: &'static str) -> FilterError {
        FilterError::Unexpected {
            at: token.start,
            found: token.describe(),
            expected,
        }
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let hit =
            matches!(self.peek_kind(0), Some(Kind::Word(w)) if w.eq_ignore_ascii_case(keyword));
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Runs `body` one nesting level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<T, FilterError>,
    ) -> Result<T, FilterError> {
        if self.depth >= MAX_DEPTH {
            return Err(FilterError::TooDeep);
        }
        self.depth += 1;
        let out = body(self);
        self.depth -= 1;
        out
    }

    fn parse_or(&mut self) -> Result<Filter, FilterError> {
        let first = self.parse_and()?;
        // Most filters are one comparison: no list to build and take apart again.
        if !self.eat_keyword("or") {
            return Ok(first);
        }
        let mut items = vec![first, self.parse_and()?];
        while self.eat_keyword("or") {
            items.push(self.parse_and()?);
        }
        Ok(Filter::or_of(items))
    }

    fn parse_and(&mut self) -> Result<Filter, FilterError> {
        let first = self.parse_atom()?;
        if !self.eat_keyword("and") {
            return Ok(first);
        }
        let mut items = vec![first, self.parse_atom()?];
        while self.eat_keyword("and") {
            items.push(self.parse_atom()?);
        }
        Ok(Filter::and_of(items))
    }

    /// `"(" filter ")"`, `"not" "(" filter ")"`, `valuePath`, or `attrExp`.
    fn parse_atom(&mut self) -> Result<Filter, FilterError> {
        let token = self.next("an attribute path, 'not' or '('")?;
        match token.kind {
            Kind::LParen => self.nested(|p| p.parse_group()),
            Kind::Word(w)
                if w.eq_ignore_ascii_case("not") && self.peek_kind(0) == Some(&Kind::LParen) =>
            {
                self.pos += 1;
                let inner = self.nested(|p| p.parse_group())?;
                Ok(Filter::Not(Box::new(inner)))
            }
            Kind::Word(w) => self.parse_attr_expr(w, token.start),
            _ => Err(self.unexpected(&token, "an attribute path, 'not' or '('")),
        }
    }

    /// The rest of a parenthesized group, after its `(`.
    fn parse_group(&mut self) -> Result<Filter, FilterError> {
        let inner = self.parse_or()?;
        self.expect(|k| matches!(k, Kind::RParen), "')'")?;
        Ok(inner)
    }

    fn parse_attr_expr(&mut self, word: &str, at: usize) -> Result<Filter, FilterError> {
        let attr = AttrPath::parse(word).map_err(|_| FilterError::InvalidPath(word.to_string()))?;
        // Sub-attributes of a complex value cannot be complex or URN-qualified (RFC 7643 §2.3.8).
        if self.in_value_path && (attr.urn.is_some() || attr.sub.is_some()) {
            return Err(FilterError::NestedPath);
        }
        let token = self.next("an operator or '['")?;
        match token.kind {
            Kind::LBracket => self.parse_value_path(attr, at),
            Kind::Word(op) if op.eq_ignore_ascii_case("pr") => Ok(Filter::Present(attr)),
            Kind::Word(op) => {
                let op = CompareOp::from_keyword(op)
                    .ok_or_else(|| FilterError::UnknownOperator(op.to_string()))?;
                let value = self.parse_comp_value()?;
                check_operands(op, &value)?;
                Ok(Filter::Compare { attr, op, value })
            }
            _ => Err(self.unexpected(&token, "an operator or '['")),
        }
    }

    /// `attrPath "[" valFilter "]"`, after the `[`.
    fn parse_value_path(&mut self, attr: AttrPath, at: usize) -> Result<Filter, FilterError> {
        if self.in_value_path || attr.sub.is_some() {
            return Err(FilterError::InvalidPath(format!("value path at byte {at}")));
        }
        self.in_value_path = true;
        let inner = self.nested(|p| {
            let f = p.parse_or()?;
            p.expect(|k| matches!(k, Kind::RBracket), "']'")?;
            Ok(f)
        });
        self.in_value_path = false;
        Ok(Filter::ValuePath {
            attr,
            filter: Box::new(inner?),
        })
    }

    /// `compValue = false / null / true / number / string`; keywords are case-insensitive.
    fn parse_comp_value(&mut self) -> Result<CompValue, FilterError> {
        const EXPECTED: &str = "a value (a quoted string, number, true, false or null)";
        let token = self.next(EXPECTED)?;
        match token.kind {
            Kind::Str(s) => Ok(CompValue::Str(s)),
            Kind::Word(w) if w.eq_ignore_ascii_case("true") => Ok(CompValue::Bool(true)),
            Kind::Word(w) if w.eq_ignore_ascii_case("false") => Ok(CompValue::Bool(false)),
            Kind::Word(w) if w.eq_ignore_ascii_case("null") => Ok(CompValue::Null),
            Kind::Word(w) if w.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                serde_json::from_str::<Number>(w)
                    .map(CompValue::Num)
                    .map_err(|_| FilterError::InvalidNumber(token.start))
            }
            Kind::Word(w) if self.lenient => Ok(CompValue::Str(w.to_owned())),
            // An unquoted value may be personal data (Entra sends `externalId eq jyoung`), so
            // the error does not echo it.
            Kind::Word(_) => Err(FilterError::Unexpected {
                at: token.start,
                found: "an unquoted word".into(),
                expected: EXPECTED,
            }),
            _ => Err(self.unexpected(&token, EXPECTED)),
        }
    }
}

/// Operator/value pairs that can never be meaningful are refused up front: substring
/// operators need a string, and ordering is undefined for booleans and null
/// (RFC 7644 §3.4.2.2: "Boolean and Binary attributes SHALL cause a failed response").
fn check_operands(op: CompareOp, value: &CompValue) -> Result<(), FilterError> {
    match (op, value) {
        (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, CompValue::Str(_)) => Ok(()),
        (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, _) => Err(FilterError::Unsupported {
            op,
            what: "a non-string value",
        }),
        (_, CompValue::Bool(_)) if op.is_ordering() => Err(FilterError::Unsupported {
            op,
            what: "booleans",
        }),
        (_, CompValue::Null) if op.is_ordering() => {
            Err(FilterError::Unsupported { op, what: "null" })
        }
        _ => Ok(()),
    }
}
