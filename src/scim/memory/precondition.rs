//! Conditional requests on one resource (RFC 7644 §3.14, RFC 9110 §13.1): `If-Match` keeps a
//! write from overwriting a version its client never saw, `If-None-Match` lets a client
//! revalidate the copy it holds without fetching it again.

use super::StoreRequest;
use crate::scim::error::ScimError;
use crate::scim::request::Method;

/// What the request's preconditions decide, once the resource is known to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(super) enum Outcome {
    /// Serve the request as if it had no preconditions.
    Proceed,
    /// A GET whose client already holds the current version: 304, no body.
    NotModified,
}

/// Evaluates `If-Match`, then `If-None-Match` (the order of RFC 9110 §13.2.2) against the
/// resource's current entity tag. A failed condition is 412, except that a GET whose
/// `If-None-Match` matches is answered 304.
///
/// Tags compare weakly (RFC 9110 §8.8.3.2): the store's versions are weak tags, and
/// RFC 7644 §3.14 sends them back in `If-Match` as they were given, so a strong comparison
/// would never succeed.
pub(super) fn evaluate(req: &StoreRequest<'_>, current: &str) -> Result<Outcome, ScimError> {
    if let Some(wanted) = req.if_match {
        if !any_matches(wanted, current) {
            return Err(failed("If-Match", current));
        }
    }
    if let Some(unwanted) = req.if_none_match {
        if any_matches(unwanted, current) {
            return match req.method {
                Method::Get => Ok(Outcome::NotModified),
                _ => Err(failed("If-None-Match", current)),
            };
        }
    }
    Ok(Outcome::Proceed)
}

fn failed(header: &str, current: &str) -> ScimError {
    ScimError::new(
        412,
        format!("{header} does not hold for the current version {current}"),
    )
}

/// Whether a header value (`*` or a comma-separated list of entity tags) names `current`.
/// A malformed list names nothing, so a garbled `If-Match` fails safe.
fn any_matches(header: &str, current: &str) -> bool {
    if header.trim() == "*" {
        return true;
    }
    let current = opaque(current);
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return false;
        }
        let Some((tag, after)) = next_tag(rest) else {
            return false;
        };
        if opaque(tag) == current {
            return true;
        }
        rest = after;
    }
}

/// Splits one `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE` (RFC 9110 §8.8.3) off the front.
fn next_tag(s: &str) -> Option<(&str, &str)> {
    let start = if s.starts_with("W/") { 2 } else { 0 };
    let body = s[start..].strip_prefix('"')?;
    let end = body.find('"')?;
    let len = start + 1 + end + 1;
    Some((&s[..len], &s[len..]))
}

/// The opaque part of a tag, which weak comparison looks at: `W/"3"` and `"3"` are alike.
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_comparison_over_lists_and_star() {
        assert!(any_matches("W/\"3\"", "W/\"3\""));
        assert!(any_matches("\"3\"", "W/\"3\""));
        assert!(any_matches("W/\"1\", W/\"3\"", "W/\"3\""));
        assert!(any_matches("W/\"a,b\",W/\"3\"", "W/\"3\""));
        assert!(any_matches(" * ", "W/\"3\""));
        assert!(!any_matches("W/\"30\"", "W/\"3\""));
        assert!(!any_matches("", "W/\"3\""));
    }

    #[test]
    fn malformed_tags_match_nothing() {
        for bad in ["3", "W/3", "\"3", "W/\"1\" junk W/\"3\"", "**"] {
            assert!(!any_matches(bad, "W/\"3\""), "{bad}");
        }
    }
}
