//! The paths a rule's actions work on: a small JSONPath subset (`$`, `.name`, `['name']`,
//! `[*]`, `[n]`) whose names match without case, as SCIM attribute names do (RFC 7643 §2.1).
//! Parsed once when a pack is compiled.

use serde_json::{Map, Value};

use crate::scim::path::{get_mut_ci, key_ci};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
    All,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At(pub Vec<Seg>);

impl At {
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .trim()
            .strip_prefix('$')
            .ok_or_else(|| format!("{text:?} must start with '$'"))?;
        let mut segs = Vec::new();
        let mut s = rest;
        while !s.is_empty() {
            if let Some(r) = s.strip_prefix("[*]") {
                segs.push(Seg::All);
                s = r;
            } else if let Some(r) = s.strip_prefix("['") {
                let end = r
                    .find("']")
                    .ok_or_else(|| format!("{text:?}: unterminated ['…']"))?;
                segs.push(Seg::Key(r[..end].to_owned()));
                s = &r[end + 2..];
            } else if let Some(r) = s.strip_prefix('[') {
                let end = r
                    .find(']')
                    .ok_or_else(|| format!("{text:?}: unterminated […]"))?;
                let n = r[..end]
                    .trim()
                    .parse()
                    .map_err(|_| format!("{text:?}: [{}] is not an index", &r[..end]))?;
                segs.push(Seg::Index(n));
                s = &r[end + 1..];
            } else if let Some(r) = s.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end == 0 {
                    return Err(format!("{text:?}: empty name"));
                }
                segs.push(Seg::Key(r[..end].to_owned()));
                s = &r[end..];
            } else {
                return Err(format!("{text:?}: expected '.', '[' or the end at {s:?}"));
            }
        }
        Ok(Self(segs))
    }

    /// The parent path and the last key, for actions that add, remove or rename a member.
    pub fn split_last_key(&self) -> Option<(At, &str)> {
        match self.0.split_last() {
            Some((Seg::Key(k), parent)) => Some((At(parent.to_vec()), k)),
            _ => None,
        }
    }
}

/// Calls `f` on every value `at` selects; returns whether any call changed something.
pub fn each_mut(root: &mut Value, segs: &[Seg], f: &mut dyn FnMut(&mut Value) -> bool) -> bool {
    let Some((first, rest)) = segs.split_first() else {
        return f(root);
    };
    match (first, root) {
        (Seg::Key(name), Value::Object(obj)) => {
            get_mut_ci(obj, name).is_some_and(|v| each_mut(v, rest, f))
        }
        (Seg::Index(i), Value::Array(items)) => {
            items.get_mut(*i).is_some_and(|v| each_mut(v, rest, f))
        }
        (Seg::All, Value::Array(items)) => {
            let mut changed = false;
            for item in items {
                changed |= each_mut(item, rest, f);
            }
            changed
        }
        _ => false,
    }
}

/// Like [`each_mut`], but creates missing objects on the way (for `set` and `default`).
pub fn each_mut_creating(
    root: &mut Value,
    segs: &[Seg],
    f: &mut dyn FnMut(&mut Map<String, Value>) -> bool,
) -> bool {
    let Some((first, rest)) = segs.split_first() else {
        return match root {
            Value::Object(obj) => f(obj),
            _ => false,
        };
    };
    match (first, root) {
        (Seg::Key(name), Value::Object(obj)) => {
            let k = key_ci(obj, name).cloned().unwrap_or_else(|| name.clone());
            let child = obj.entry(k).or_insert_with(|| Value::Object(Map::new()));
            each_mut_creating(child, rest, f)
        }
        (Seg::Index(i), Value::Array(items)) => items
            .get_mut(*i)
            .is_some_and(|v| each_mut_creating(v, rest, f)),
        (Seg::All, Value::Array(items)) => {
            let mut changed = false;
            for item in items {
                changed |= each_mut_creating(item, rest, f);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_parse_names_quoted_names_wildcards_and_indexes() {
        let at = At::parse("$.Operations[*]['urn:x:2.0:User'].manager[0]").expect("valid");
        assert_eq!(
            at.0,
            [
                Seg::Key("Operations".into()),
                Seg::All,
                Seg::Key("urn:x:2.0:User".into()),
                Seg::Key("manager".into()),
                Seg::Index(0)
            ]
        );
        assert_eq!(At::parse("$").expect("root").0, []);
        assert!(At::parse("Operations").is_err());
        assert!(At::parse("$.a[").is_err());
    }

    #[test]
    fn names_match_without_case() {
        let mut doc = json!({"operations": [{"OP": "Add"}, {"op": "Remove"}]});
        let at = At::parse("$.Operations[*].op").expect("valid");
        let mut seen = Vec::new();
        each_mut(&mut doc, &at.0, &mut |v| {
            seen.push(v.clone());
            false
        });
        assert_eq!(seen, [json!("Add"), json!("Remove")]);
    }
}
