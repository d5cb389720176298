//! The SCIM filter language (RFC 7644 §3.4.2.2): a bounded recursive-descent parser, a
//! canonical printer (the proxy forwards canonical filters) and an evaluator over JSON resources.

mod eq_set;
mod eval;
mod info;
mod lex;
mod parse;

#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Number;

use super::error::{ScimError, ScimType};
use super::path::AttrPath;

pub use eq_set::EqualsAny;
pub use eval::{matches, matches_each, matches_value};
pub use info::{AttributeInfo, CoreSchema, Mutability};
pub(crate) use parse::parse_bracketed;
pub use parse::{parse, parse_lenient};

/// Longest filter (in bytes) accepted; longer input is refused before any parsing.
pub const MAX_FILTER_LEN: usize = 16 * 1024;
/// Deepest nesting of parentheses, `not (…)` and `[…]` accepted, so no input can exhaust the
/// stack of the recursive parser, printer or evaluator.
pub const MAX_DEPTH: usize = 64;

/// The comparison operators of RFC 7644 §3.4.2.2, Table 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// Operator keywords are case-insensitive (ABNF string literals, RFC 5234 §2.3).
    pub fn from_keyword(word: &str) -> Option<Self> {
        const ALL: [CompareOp; 9] = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ];
        ALL.into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }

    /// gt/ge/lt/le: defined only for ordered types (RFC 7644 §3.4.2.2).
    pub fn is_ordering(self) -> bool {
        matches!(self, Self::Gt | Self::Ge | Self::Lt | Self::Le)
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `compValue = false / null / true / number / string` (RFC 7644 §3.4.2.2).
#[derive(Clone, Debug, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // serde_json writes exactly the JSON string syntax the grammar requires.
            Self::Str(s) => f.write_str(&serde_json::Value::from(s.as_str()).to_string()),
            Self::Num(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Null => f.write_str("null"),
        }
    }
}

/// A parsed filter. `And`/`Or` are n-ary and flattened, so the printed form is canonical:
/// `a or (b or c)` and `(a or b) or c` both print as `a or b or c`.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Compare {
        attr: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    Present(AttrPath),
    Not(Box<Filter>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// `attr[filter]`; names inside the brackets are sub-attributes of `attr`.
    ValuePath {
        attr: AttrPath,
        filter: Box<Filter>,
    },
}

impl Filter {
    /// Joins filters with `and`, splicing nested `and`s; one filter stays itself.
    pub fn and_of(items: Vec<Filter>) -> Filter {
        Self::join(items, true)
    }

    /// Joins filters with `or`, splicing nested `or`s; one filter stays itself.
    pub fn or_of(items: Vec<Filter>) -> Filter {
        Self::join(items, false)
    }

    fn join(items: Vec<Filter>, and: bool) -> Filter {
        let mut flat = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Filter::And(inner) if and => flat.extend(inner),
                Filter::Or(inner) if !and => flat.extend(inner),
                other => flat.push(other),
            }
        }
        if flat.len() == 1 {
            if let Some(only) = flat.pop() {
                return only;
            }
        }
        if and {
            Filter::And(flat)
        } else {
            Filter::Or(flat)
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compare { attr, op, value } => write!(f, "{attr} {op} {value}"),
            Self::Present(attr) => write!(f, "{attr} pr"),
            Self::Not(inner) => write!(f, "not ({inner})"),
            Self::ValuePath { attr, filter } => write!(f, "{attr}[{filter}]"),
            Self::And(items) => write_joined(f, items, " and ", |i| {
                matches!(i, Self::Or(_) | Self::And(_))
            }),
            Self::Or(items) => write_joined(f, items, " or ", |i| matches!(i, Self::Or(_))),
        }
    }
}

/// Writes `items` separated by `sep`, parenthesizing the operands that bind more loosely
/// (`or` inside `and`), since `and` binds tighter than `or` (RFC 7644 §3.4.2.2, Table 4).
fn write_joined(
    f: &mut fmt::Formatter<'_>,
    items: &[Filter],
    sep: &str,
    needs_parens: impl Fn(&Filter) -> bool,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        if needs_parens(item) {
            write!(f, "({item})")?;
        } else {
            write!(f, "{item}")?;
        }
    }
    Ok(())
}

/// Why a filter was refused; every variant answers 400 `invalidFilter` (RFC 7644 §3.12).
/// Messages name positions and keywords but never echo string literals, which may hold
/// personal data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("the filter is longer than {MAX_FILTER_LEN} bytes")]
    TooLong,
    #[error("the filter nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("unterminated string starting at byte {0}")]
    UnterminatedString(usize),
    #[error("invalid string literal at byte {0}")]
    InvalidString(usize),
    #[error("invalid number at byte {0}")]
    InvalidNumber(usize),
    #[error("unexpected {found} at byte {at}; expected {expected}")]
    Unexpected {
        at: usize,
        found: String,
        expected: &'static str,
    },
    #[error("unexpected end of filter; expected {0}")]
    UnexpectedEnd(&'static str),
    #[error("unknown operator {0:?}")]
    UnknownOperator(String),
    #[error("invalid attribute path {0:?}")]
    InvalidPath(String),
    #[error("inside a value filter, attributes must be plain sub-attribute names")]
    NestedPath,
    #[error("operator {op} is not supported for {what}")]
    Unsupported { op: CompareOp, what: &'static str },
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::with_type(400, ScimType::InvalidFilter, e.to_string())
    }
}
