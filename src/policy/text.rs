//! The walk over a resource kept as text. Without detectors, the lists pass most members on
//! their name alone ([`Walk::passes_unread`]); only the others are read into values, walked,
//! and written again, and the rest go on byte for byte. The result is what the walk over the
//! whole tree gives, without reading and writing the whole document.

use serde_json::{Map, Value};

use super::walk::Walk;
use super::{Outcome, Refusal, Rules};
use crate::scim::discovery::ResourceTypeDef;
use crate::scim::json;
use crate::scim::urn::is_urn;

/// What the walk over a resource's text did.
#[derive(Debug, Default)]
pub struct Edit {
    pub out: Outcome,
    /// The text that replaces the one walked; `None` when nothing changed.
    pub text: Option<Vec<u8>>,
}

/// The walk over the resource `text` holds. `None` when the text is not for this walk and the
/// caller reads it whole: detectors look at every value; serde decodes an escaped name, and of
/// a name read twice keeps the last, so the tree says what those mean. (A name the lists pass
/// unread may be written twice: it passes as written, both times.) A text that is no
/// well-formed object is the caller's to refuse.
pub fn resource(rules: &Rules, rt: &ResourceTypeDef, text: &str) -> Option<Result<Edit, Refusal>> {
    members_of(rules, rt, text, &readable(rules, text)?)
}

/// The members of the object `text` holds, if the text walk can judge it: no detector looks
/// at values, and no name needs serde to decode it.
fn readable<'t>(rules: &Rules, text: &'t str) -> Option<Vec<json::Member<'t>>> {
    if rules.reads_values() {
        return None;
    }
    let members = json::members(text)?;
    let escaped = members.iter().any(|m| m.raw_name.contains('\\'));
    (!escaped).then_some(members)
}

/// The walk over each resource of the ListResponse `text` holds (RFC 7644 §3.4.2), each as
/// [`resource`] walks one; `None` as there, for any of them. Without `Resources` the text is
/// walked as one resource (an app that answers a query with a bare resource); a `Resources`
/// that is no array holds nothing to walk.
pub fn list(rules: &Rules, rt: &ResourceTypeDef, text: &str) -> Option<Result<Edit, Refusal>> {
    let members = readable(rules, text)?;
    let mut named = members
        .iter()
        .filter(|m| m.raw_name.eq_ignore_ascii_case("Resources"));
    let list = match (named.next(), named.next()) {
        (None, _) => return members_of(rules, rt, text, &members),
        (Some(list), None) => list,
        // Which one serde's reading makes the list is the tree's to say.
        (Some(_), Some(_)) => return None,
    };
    let Some(items) = json::elements(&text[list.value.clone()]) else {
        return Some(Ok(Edit::default()));
    };
    let mut out = Outcome::default();
    let mut edits = Vec::new();
    for item in items {
        let at = list.value.start + item.start..list.value.start + item.end;
        if text.as_bytes()[at.start] != b'{' {
            continue;
        }
        match resource(rules, rt, &text[at.clone()])? {
            Ok(edit) => {
                out.merge(edit.out);
                edits.extend(edit.text.map(|t| (at, t)));
            }
            Err(refusal) => return Some(Err(refusal)),
        }
    }
    if edits.is_empty() {
        return Some(Ok(Edit { out, text: None }));
    }
    let mut spliced = Vec::with_capacity(text.len());
    let mut from = 0;
    for (at, edited) in edits {
        spliced.extend_from_slice(&text.as_bytes()[from..at.start]);
        spliced.extend_from_slice(&edited);
        from = at.end;
    }
    spliced.extend_from_slice(&text.as_bytes()[from..]);
    Some(Ok(Edit {
        out,
        text: Some(spliced),
    }))
}

/// [`resource`] on members already found.
fn members_of(
    rules: &Rules,
    rt: &ResourceTypeDef,
    text: &str,
    members: &[json::Member<'_>],
) -> Option<Result<Edit, Refusal>> {
    let mut walk = Walk::new(rules, rt);
    let bytes = text.as_bytes();
    let read: Vec<bool> = members
        .iter()
        .map(|m| !walk.passes_unread(m.raw_name, bytes[m.value.start] == b'{'))
        .collect();
    if !read.contains(&true) {
        return Some(Ok(Edit::default()));
    }
    // What is read: those members, and `schemas` when it is what says whether an object under
    // a URN the resource type does not name is an extension.
    let unnamed_extension = members.iter().zip(&read).any(|(m, &read)| {
        read && bytes[m.value.start] == b'{' && is_urn(m.raw_name) && !rt.has_schema(m.raw_name)
    });
    let mut picked = Map::new();
    for (m, &read) in members.iter().zip(&read) {
        if read || (unnamed_extension && m.raw_name.eq_ignore_ascii_case("schemas")) {
            let value: Value = serde_json::from_str(&text[m.value.clone()]).ok()?;
            if picked.insert(m.raw_name.to_owned(), value).is_some() {
                return None;
            }
        }
    }
    let mut doc = Value::Object(picked);
    if let Err(refusal) = walk.resource(&mut doc) {
        return Some(Err(refusal));
    }
    if walk.out.is_empty() {
        return Some(Ok(Edit::default()));
    }
    let Value::Object(picked) = doc else {
        unreachable!("the walk keeps an object an object")
    };
    // The text as it came, less the members that went: each one kept is preceded by the
    // separator the app wrote before it, and the last is followed by what followed the last.
    let (Some(first), Some(last)) = (members.first(), members.last()) else {
        unreachable!("a member was read")
    };
    let mut out = Vec::with_capacity(text.len());
    out.extend_from_slice(&bytes[..first.whole.start]);
    let mut kept_one = false;
    for (i, (m, &read)) in members.iter().zip(&read).enumerate() {
        let walked = match (read, picked.get(m.raw_name)) {
            (false, _) => None,
            (true, Some(v)) => Some(v),
            (true, None) => continue,
        };
        if kept_one {
            out.extend_from_slice(&bytes[members[i - 1].whole.end..m.whole.start]);
        }
        kept_one = true;
        match walked {
            Some(v) => {
                out.extend_from_slice(&bytes[m.whole.start..m.value.start]);
                serde_json::to_writer(&mut out, v).expect("a JSON value always serializes");
            }
            None => out.extend_from_slice(&bytes[m.whole.clone()]),
        }
    }
    out.extend_from_slice(&bytes[last.whole.end..]);
    Some(Ok(Edit {
        out: walk.out,
        text: Some(out),
    }))
}
