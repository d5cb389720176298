//! The walk over a resource kept as text. Without detectors, the lists pass most members on
//! their name alone ([`Walk::passes_unread`]); only the others are read into values, walked,
//! and written again, and the rest go on byte for byte. Inside an extension object of the
//! resource type the same is done one level down ([`Walk::passes_unread_in`]). The result is
//! what the walk over the whole tree gives, without reading and writing the whole document.

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
    // For an extension of the resource type, only its members the lists may change are read
    // (`Some` here, with which of them were read); it is then written again from those and the
    // rest as they came.
    let mut parts: Vec<Option<Parts<'_>>> = vec![None; members.len()];
    for (i, (m, &read)) in members.iter().zip(&read).enumerate() {
        if read || (unnamed_extension && m.raw_name.eq_ignore_ascii_case("schemas")) {
            let value = match read.then(|| extension_parts(&walk, rt, m, text)).flatten() {
                Some((inner, inner_read)) => {
                    let ext = &text[m.value.clone()];
                    let mut obj = Map::new();
                    for (im, _) in inner.iter().zip(&inner_read).filter(|(_, read)| **read) {
                        let value = serde_json::from_str(&ext[im.value.clone()]).ok()?;
                        obj.insert(im.raw_name.to_owned(), value);
                    }
                    parts[i] = Some((inner, inner_read));
                    Value::Object(obj)
                }
                None => serde_json::from_str(&text[m.value.clone()]).ok()?,
            };
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
    let mut out = Vec::with_capacity(text.len());
    write_object(&mut out, text, members, &read, Some(&picked), &parts);
    Some(Ok(Edit {
        out: walk.out,
        text: Some(out),
    }))
}

/// An object's members (places in its own text), and which of them the walk reads.
type Parts<'t> = (Vec<json::Member<'t>>, Vec<bool>);

/// The members of the extension object member `m` holds, and which of them the walk must
/// read; `None` when the object is to be read whole: it is no extension of the resource type,
/// the lists drop it whole, or a name is escaped or written twice (serde's reading decides).
fn extension_parts<'t>(
    walk: &Walk<'_>,
    rt: &ResourceTypeDef,
    m: &json::Member<'t>,
    text: &'t str,
) -> Option<Parts<'t>> {
    let urn = m.raw_name;
    let value = &text[m.value.clone()];
    if !value.starts_with('{')
        || !rt.has_schema(urn)
        || walk.rules.lists.extension(urn) == Some(false)
    {
        return None;
    }
    let inner = readable(walk.rules, value)?;
    let twice = inner
        .iter()
        .enumerate()
        .any(|(i, a)| inner[..i].iter().any(|b| b.raw_name == a.raw_name));
    if twice {
        return None;
    }
    let read = inner
        .iter()
        .map(|im| !walk.passes_unread_in(urn, im.raw_name))
        .collect();
    Some((inner, read))
}

/// The object `text` holds written again, less the members that went: a member not `read` as
/// it came, a read one as the walk left it in `walked`, an extension read in `parts` the same
/// way one level down (it stays while it keeps a member the walk did not read). Each member
/// kept is preceded by the separator the app wrote before it, and the last is followed by what
/// followed the last.
fn write_object(
    out: &mut Vec<u8>,
    text: &str,
    members: &[json::Member<'_>],
    read: &[bool],
    walked: Option<&Map<String, Value>>,
    parts: &[Option<Parts<'_>>],
) {
    let bytes = text.as_bytes();
    let (Some(first), Some(last)) = (members.first(), members.last()) else {
        out.extend_from_slice(bytes);
        return;
    };
    out.extend_from_slice(&bytes[..first.whole.start]);
    let mut kept_one = false;
    for (i, (m, &read)) in members.iter().zip(read).enumerate() {
        let value = walked.and_then(|w| w.get(m.raw_name));
        let inner = parts.get(i).and_then(Option::as_ref);
        let keeps_unread = inner.is_some_and(|(_, read)| read.contains(&false));
        if read && value.is_none() && !keeps_unread {
            continue;
        }
        if kept_one {
            out.extend_from_slice(&bytes[members[i - 1].whole.end..m.whole.start]);
        }
        kept_one = true;
        if !read {
            out.extend_from_slice(&bytes[m.whole.clone()]);
            continue;
        }
        out.extend_from_slice(&bytes[m.whole.start..m.value.start]);
        match (inner, value) {
            (Some((inner, inner_read)), value) => {
                let ext = &text[m.value.clone()];
                write_object(
                    out,
                    ext,
                    inner,
                    inner_read,
                    value.and_then(Value::as_object),
                    &[],
                );
            }
            (None, Some(v)) => json::write(out, v),
            (None, None) => unreachable!("skipped above"),
        }
    }
    out.extend_from_slice(&bytes[last.whole.end..]);
}
