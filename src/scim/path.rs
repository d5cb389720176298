//! Attribute paths: `[URI ":"] ATTRNAME ["." subAttr]` (RFC 7644 §3.10, ABNF of §3.4.2.2) and
//! the PATCH `path`, which may also select values with a filter (RFC 7644 §3.5.2, Figure 7),
//! plus the lookups that resolve a path against a JSON resource.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

use super::error::{ScimError, ScimType};
use super::filter::{self, Filter, FilterError, MAX_FILTER_LEN};

/// Schema URNs under this prefix name a resource's core schema, whose attributes live at the
/// top level of the resource rather than in an extension object (RFC 7643 §3).
const CORE_URN_PREFIX: &str = "urn:ietf:params:scim:schemas:core:";

/// Why a path could not be parsed; every variant answers 400 `invalidPath` (RFC 7644 §3.12).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path is longer than {MAX_FILTER_LEN} bytes")]
    TooLong,
    #[error("{0:?} is not a valid attribute name")]
    InvalidName(String),
    #[error("a value filter cannot follow a sub-attribute")]
    FilterAfterSubAttr,
    #[error("unexpected text after the value filter")]
    TrailingText,
    #[error("invalid value filter: {0}")]
    Filter(#[from] FilterError),
}

impl From<PathError> for ScimError {
    fn from(e: PathError) -> Self {
        ScimError::with_type(400, ScimType::InvalidPath, e.to_string())
    }
}

/// `attrPath`: an optional schema URN, an attribute name and an optional sub-attribute.
/// Names keep the case they were written in; compare them with [`AttrPath::same_attr`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

/// An `attrPath`'s parts as borrowed from `text`: URN, attribute, sub-attribute. What
/// [`AttrPath::parse`] reads, for callers that only look.
pub fn split(text: &str) -> Result<(Option<&str>, &str, Option<&str>), PathError> {
    let (urn, rest) = split_urn(text)?;
    // The name's characters are checked as it is looked for, in one pass: most paths are a
    // plain name, or a name and a sub-attribute.
    let b = rest.as_bytes();
    let run = b.iter().position(|&c| !is_name_char(c)).unwrap_or(b.len());
    let plain = b.first().is_some_and(u8::is_ascii_alphabetic);
    match b.get(run) {
        None if plain => return Ok((urn, rest, None)),
        Some(b'.') if plain => {
            let sub = &rest[run + 1..];
            check_name(sub)?;
            return Ok((urn, &rest[..run], Some(sub)));
        }
        _ => {}
    }
    let (name, sub) = name_and_sub(rest)?;
    Ok((urn, name, sub))
}

/// The URN of a path that starts with one, and the rest after the URN's last colon.
fn split_urn(text: &str) -> Result<(Option<&str>, &str), PathError> {
    match text.get(..4) {
        Some(head) if head.eq_ignore_ascii_case("urn:") => match text.rfind(':') {
            Some(i) if i > 4 => Ok((Some(&text[..i]), &text[i + 1..])),
            _ => Err(PathError::InvalidName(text.to_string())),
        },
        _ => Ok((None, text)),
    }
}

/// A path without its URN as the grammar reads it: cut at the first dot, then each part
/// checked alone.
fn name_and_sub(rest: &str) -> Result<(&str, Option<&str>), PathError> {
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    check_name(name)?;
    if let Some(sub) = sub {
        check_name(sub)?;
    }
    Ok((name, sub))
}

/// A character an attribute name may have after its first (RFC 7643 §2.1, `nameChar`).
fn is_name_char(c: u8) -> bool {
    /// `ALPHA / DIGIT / "-" / "_"` by table: every member name of every document judged
    /// is read through it.
    const NAME: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0;
        while c < 256 {
            let b = c as u8;
            t[c] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            c += 1;
        }
        t
    };
    NAME[usize::from(c)]
}

impl AttrPath {
    /// A plain top-level attribute name, e.g. `userName`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    /// Parses one `attrPath`. A URN prefix is everything up to the last `:`, since URNs
    /// themselves contain `:` and `.` (`…:enterprise:2.0:User:manager.value`).
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let (urn, name, sub) = split(text)?;
        Ok(Self {
            urn: urn.map(str::to_string),
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// The same path with `sub` as its sub-attribute: how a name inside a value filter
    /// (`emails[type eq "work"]`) is known to the schema (`emails.type`).
    pub fn with_sub(&self, sub: &str) -> Self {
        Self {
            urn: self.urn.clone(),
            name: self.name.clone(),
            sub: Some(sub.to_string()),
        }
    }

    /// The path without its sub-attribute.
    pub fn parent(&self) -> Self {
        Self {
            urn: self.urn.clone(),
            name: self.name.clone(),
            sub: None,
        }
    }

    /// Whether both paths name the same attribute, ignoring case (RFC 7643 §2.1).
    pub fn same_attr(&self, other: &AttrPath) -> bool {
        let urn_eq = match (&self.urn, &other.urn) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a.is_none() && b.is_none(),
        };
        let sub_eq = match (&self.sub, &other.sub) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a.is_none() && b.is_none(),
        };
        urn_eq && sub_eq && self.name.eq_ignore_ascii_case(&other.name)
    }

    /// The path as the pieces it is written in, `[urn, ":", name, ".", sub]` (empty where a
    /// part is absent), with `sub` in place of its own when given: what a lookup takes
    /// instead of the path written out.
    pub fn pieces<'a>(&'a self, sub: Option<&'a str>) -> [&'a str; 5] {
        let (urn, colon) = match &self.urn {
            Some(urn) => (urn.as_str(), ":"),
            None => ("", ""),
        };
        let (dot, sub) = match sub.or(self.sub.as_deref()) {
            Some(sub) => (".", sub),
            None => ("", ""),
        };
        [urn, colon, &self.name, dot, sub]
    }

    /// The URN this path would be if it named a whole extension object
    /// (`urn:…:enterprise:2.0:User` parses as URN `urn:…:2.0` with name `User`).
    pub fn as_urn(&self) -> Option<String> {
        match (&self.urn, &self.sub) {
            (Some(urn), None) => Some(format!("{urn}:{}", self.name)),
            _ => None,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        match &self.sub {
            Some(sub) => write!(f, ".{sub}"),
            None => Ok(()),
        }
    }
}

/// `ATTRNAME = ALPHA *(nameChar)`, plus the reserved `$ref` (RFC 7643 §2.1, §2.3.7).
fn check_name(name: &str) -> Result<(), PathError> {
    // Every allowed character is ASCII, so bytes are enough.
    let mut bytes = name.bytes();
    let head_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let tail_ok = bytes.all(is_name_char);
    if (head_ok && tail_ok) || name == "$ref" {
        Ok(())
    } else {
        Err(PathError::InvalidName(name.to_string()))
    }
}

/// The PATCH `path`: `attrPath / valuePath [subAttr]` (RFC 7644 §3.5.2, Figure 7), e.g.
/// `members[value eq "2819c223"]` or `emails[type eq "work"].value`.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter; without a filter it lives in `attr.sub`.
    pub sub: Option<String>,
}

impl PatchPath {
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let text = text.trim();
        if text.len() > MAX_FILTER_LEN {
            return Err(PathError::TooLong);
        }
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        let Some((head, rest)) = text.split_once('[') else {
            return Ok(Self {
                attr: AttrPath::parse(text)?,
                filter: None,
                sub: None,
            });
        };
        let attr = AttrPath::parse(head.trim_end())?;
        if attr.sub.is_some() {
            return Err(PathError::FilterAfterSubAttr);
        }
        let (filter, tail) = filter::parse_bracketed(rest)?;
        let sub = match tail.trim() {
            "" => None,
            t => {
                let sub = t.strip_prefix('.').ok_or(PathError::TrailingText)?;
                check_name(sub)?;
                Some(sub.to_string())
            }
        };
        Ok(Self {
            attr,
            filter: Some(filter),
            sub,
        })
    }

    /// The attribute the operation finally touches, as the schema knows it
    /// (`emails[type eq "work"].value` → `emails.value`).
    pub fn target(&self) -> Cow<'_, AttrPath> {
        match &self.sub {
            Some(sub) => Cow::Owned(self.attr.with_sub(sub)),
            None => Cow::Borrowed(&self.attr),
        }
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        match &self.sub {
            Some(sub) => write!(f, ".{sub}"),
            None => Ok(()),
        }
    }
}

/// The key of `obj` that equals `name` ignoring case (RFC 7643 §2.1), preferring an exact match.
pub fn key_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    entry_ci(obj.iter(), name).map(|(k, _)| k)
}

/// `&mut obj[name]`, ignoring the case of `name`, preferring an exact match.
pub fn get_mut_ci<'a>(obj: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    entry_ci(obj.iter_mut(), name).map(|(_, v)| v)
}

/// The member named `name` in any case, preferring the exact name, in one pass over the
/// members: SCIM objects are small, and a tree search that misses (a name in another case, or
/// absent) would be followed by this same pass anyway.
fn entry_ci<'a, V>(
    members: impl Iterator<Item = (&'a String, V)>,
    name: &str,
) -> Option<(&'a String, V)> {
    let mut folded = None;
    for (k, v) in members {
        if k.len() != name.len() {
            continue;
        }
        if k == name {
            return Some((k, v));
        }
        if folded.is_none() && k.eq_ignore_ascii_case(name) {
            folded = Some((k, v));
        }
    }
    folded
}

/// Removes `obj[name]`, ignoring the case of `name`.
pub fn remove_ci(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    if let Some(v) = obj.remove(name) {
        return Some(v);
    }
    let key = obj.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    obj.remove(&key)
}

/// `obj[name]`, ignoring the case of `name`.
pub fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    entry_ci(obj.iter(), name).map(|(_, v)| v)
}

/// Whether `urn` names the resource's own core schema, whose attributes are top-level.
pub fn is_core_urn(resource: &Value, urn: &str) -> bool {
    let prefix = urn.get(..CORE_URN_PREFIX.len());
    let first_schema = resource
        .get("schemas")
        .and_then(|s| s.get(0))
        .and_then(Value::as_str);
    prefix.is_some_and(|p| p.eq_ignore_ascii_case(CORE_URN_PREFIX))
        || first_schema.is_some_and(|s| s.eq_ignore_ascii_case(urn))
}

/// The object holding the attributes of schema `urn`: the resource itself for no URN or the
/// core URN, else the extension object keyed by the URN (RFC 7643 §3.3).
pub fn container<'a>(resource: &'a Value, urn: Option<&str>) -> Option<&'a Map<String, Value>> {
    let top = resource.as_object()?;
    let Some(urn) = urn else { return Some(top) };
    match get_ci(top, urn) {
        Some(Value::Object(ext)) => Some(ext),
        Some(_) => None,
        None if is_core_urn(resource, urn) => Some(top),
        None => None,
    }
}

/// The raw value of `path`'s attribute (not its sub-attribute) in `resource`.
pub fn attribute<'a>(resource: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    container(resource, path.urn.as_deref()).and_then(|c| get_ci(c, &path.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `split` without its one-pass reading of a plain name: what that reading is held to.
    fn split_by_the_grammar(text: &str) -> Result<(Option<&str>, &str, Option<&str>), PathError> {
        let (urn, rest) = split_urn(text)?;
        let (name, sub) = name_and_sub(rest)?;
        Ok((urn, name, sub))
    }

    proptest::proptest! {
        #[test]
        fn split_reads_every_path_as_the_grammar_does(
            text in "(urn:[a-z0-9:.]{0,10}:)?[a-zA-Z0-9$_.:é-]{0,10}",
        ) {
            proptest::prop_assert_eq!(split(&text), split_by_the_grammar(&text));
        }
    }
    use serde_json::json;

    #[test]
    fn attr_path_splits_urn_name_and_sub_attribute() {
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .expect("valid");
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(
            (p.name.as_str(), p.sub.as_deref()),
            ("manager", Some("value"))
        );
        assert_eq!(
            AttrPath::parse("name.givenName")
                .expect("valid")
                .sub
                .as_deref(),
            Some("givenName")
        );
    }

    #[test]
    fn attr_path_rejects_bad_names() {
        for bad in [
            "", "1abc", "a.b.c", "na me", "urn:", "a.", ".a", "emails[", "a\"b",
        ] {
            assert!(AttrPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(AttrPath::parse("members.$ref").is_ok());
    }

    #[test]
    fn patch_path_parses_value_filter_and_sub_attribute() {
        let p = PatchPath::parse(r#"emails[type eq "work"].value"#).expect("valid");
        assert_eq!(p.attr.name, "emails");
        assert_eq!(p.sub.as_deref(), Some("value"));
        assert_eq!(p.to_string(), r#"emails[type eq "work"].value"#);
        assert_eq!(*p.target(), AttrPath::parse("emails.value").expect("valid"));
    }

    #[test]
    fn patch_path_rejects_garbage_after_filter() {
        for bad in [
            r#"emails[type eq "work"]value"#,
            r#"emails[type eq "work"].a.b"#,
            "emails[",
            "name.x[a pr]",
        ] {
            assert!(PatchPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn names_compare_case_insensitively() {
        let a = AttrPath::parse("Name.GivenName").expect("valid");
        assert!(a.same_attr(&AttrPath::parse("name.givenname").expect("valid")));
        let user = json!({"Name": {"givenName": "Barbara"}});
        assert_eq!(attribute(&user, &a), Some(&json!({"givenName": "Barbara"})));
    }

    #[test]
    fn urn_prefix_selects_extension_or_core_container() {
        let user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bjensen",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"}
        });
        let core =
            AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:userName").expect("valid");
        assert_eq!(attribute(&user, &core), Some(&json!("bjensen")));
        let ext = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
        )
        .expect("valid");
        assert_eq!(attribute(&user, &ext), Some(&json!("701984")));
        let other = AttrPath::parse("urn:example:ext:1.0:User:employeeNumber").expect("valid");
        assert_eq!(attribute(&user, &other), None);
    }
}
