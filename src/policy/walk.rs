//! The walk over one document: each attribute, however it is written, is judged by the lists,
//! cut down to the sub-attributes that pass, and its strings shown to the detectors
//! (`scan.rs`).

use serde_json::{Map, Value};

use super::select::{is_common, protected, Lists, Loc, Subs, Verdict};
use super::{Outcome, Refusal, Rules};
use crate::scim::discovery::ResourceTypeDef;
use crate::scim::path::get_ci;
use crate::scim::urn::is_urn;

pub struct Walk<'a> {
    pub rules: &'a Rules,
    pub rt: &'a ResourceTypeDef,
    pub out: Outcome,
}

impl<'a> Walk<'a> {
    pub fn new(rules: &'a Rules, rt: &'a ResourceTypeDef) -> Self {
        Self {
            rules,
            rt,
            out: Outcome::default(),
        }
    }

    pub fn note_dropped(&mut self, path: String) {
        Outcome::note(&mut self.out.dropped, path);
    }

    /// One resource. Anything but an object is left for the schema check to refuse.
    pub fn resource(&mut self, doc: &mut Value) -> Result<(), Refusal> {
        if let Value::Object(obj) = doc {
            let listed = listed_schemas(obj);
            self.members(obj, &listed)?;
        }
        Ok(())
    }

    /// The members of a resource or of a PATCH value without path. Returns whether the walk
    /// emptied the object.
    pub fn members(
        &mut self,
        obj: &mut Map<String, Value>,
        listed: &[String],
    ) -> Result<bool, Refusal> {
        let before = obj.len();
        let mut gone = Vec::new();
        for (key, value) in obj.iter_mut() {
            if !self.member(key, value, listed)? {
                gone.push(key.clone());
            }
        }
        for key in &gone {
            obj.remove(key);
        }
        Ok(before > 0 && obj.is_empty())
    }

    /// Whether [`Walk::member`] passes the member `key` as it is, whatever its value holds:
    /// when no detector looks at values and the lists pass the attribute the key names whole.
    /// `object` says whether the value is an object (a URN key's may be an extension).
    pub fn passes_unread(&self, key: &str, object: bool) -> bool {
        if self.rules.reads_values() || (object && is_urn(key)) {
            return false;
        }
        Loc::parse(key).is_some_and(|loc| self.rules.lists.judge(self.rt, &loc) == Verdict::Pass)
    }

    /// Whether [`Walk::extension`] passes the member `key` of the extension object `urn` as
    /// it is, whatever its value holds (see [`Walk::passes_unread`]). The caller has made sure
    /// the lists do not drop the extension whole.
    pub fn passes_unread_in(&self, urn: &str, key: &str) -> bool {
        if self.rules.reads_values() {
            return false;
        }
        let Some(loc) = Loc::parse(key) else {
            return false;
        };
        if self.rules.lists.extension(urn) == Some(true) {
            return true;
        }
        let loc = Loc {
            schema: Some(loc.schema.unwrap_or(urn)),
            ..loc
        };
        self.rules.lists.judge(self.rt, &loc) == Verdict::Pass
    }

    /// One top-level member: an extension object, or an attribute written as a name, a
    /// dotted path or a URN-qualified path. Returns whether it stays.
    fn member(&mut self, key: &str, value: &mut Value, listed: &[String]) -> Result<bool, Refusal> {
        let loc = Loc::parse(key);
        if is_urn(key) && value.is_object() {
            if !self.extension(key, value)? {
                return Ok(false);
            }
            // An object under a URN the resource type and `schemas` do not name is read as an
            // extension (so a missing `schemas` entry hides nothing), and under a deny list
            // also as the URN-qualified complex attribute it may be
            // (`"urn:…:User:manager": {…}`).
            let known =
                self.rt.has_schema(key) || listed.iter().any(|s| s.eq_ignore_ascii_case(key));
            return match (&loc, &self.rules.lists) {
                (Some(loc), Lists::Deny(_)) if !known => Ok(self.judge(loc, value)),
                _ => Ok(true),
            };
        }
        match loc {
            Some(loc) => self.attribute(loc, value),
            None => self.unknown(key, value),
        }
    }

    /// A key that is no attribute path: an allow list drops it, else only detectors look.
    fn unknown(&mut self, key: &str, value: &mut Value) -> Result<bool, Refusal> {
        let loc = Loc {
            schema: None,
            name: key,
            sub: None,
        };
        if matches!(self.rules.lists, Lists::Allow(_)) {
            Outcome::note(&mut self.out.dropped, loc.path());
            return Ok(false);
        }
        self.scan_attribute(&loc, value, false).map(|gone| !gone)
    }

    /// An extension object keyed by its schema URN (RFC 7643 §3.3). Returns whether it stays.
    pub fn extension(&mut self, urn: &str, value: &mut Value) -> Result<bool, Refusal> {
        let whole = self.rules.lists.extension(urn);
        if whole == Some(false) {
            Outcome::note(&mut self.out.dropped, urn.to_owned());
            return Ok(false);
        }
        match value {
            Value::Object(inner) => Ok(!self.extension_members(urn, inner, whole == Some(true))?),
            _ => Ok(true),
        }
    }

    /// The attributes inside an extension object; `pass` when the lists let all of them
    /// through. Returns whether the walk emptied it.
    fn extension_members(
        &mut self,
        urn: &str,
        inner: &mut Map<String, Value>,
        pass: bool,
    ) -> Result<bool, Refusal> {
        let before = inner.len();
        let mut gone = Vec::new();
        for (key, value) in inner.iter_mut() {
            let keep = match Loc::parse(key) {
                Some(loc) => {
                    let loc = Loc {
                        schema: Some(loc.schema.unwrap_or(urn)),
                        ..loc
                    };
                    if pass {
                        !self.scan_attribute(&loc, value, false)?
                    } else {
                        self.attribute(loc, value)?
                    }
                }
                None => self.unknown(key, value)?,
            };
            if !keep {
                gone.push(key.clone());
            }
        }
        for key in &gone {
            inner.remove(key);
        }
        Ok(before > 0 && inner.is_empty())
    }

    /// One attribute (or sub-attribute, for `loc` with `sub`) and its value: judged, cut down
    /// to the sub-attributes that pass, scanned. Returns whether it stays.
    pub fn attribute(&mut self, loc: Loc<'_>, value: &mut Value) -> Result<bool, Refusal> {
        if !self.judge(&loc, value) {
            return Ok(false);
        }
        if self.rules.detectors.is_empty() {
            return Ok(true);
        }
        let protected = protected(self.rt, &loc);
        if protected && is_common(loc.name) {
            return Ok(true);
        }
        self.scan_attribute(&loc, value, protected)
            .map(|gone| !gone)
    }

    /// The lists' part of [`Walk::attribute`]. Returns whether anything of it stays.
    pub fn judge(&mut self, loc: &Loc<'_>, value: &mut Value) -> bool {
        match self.rules.lists.judge(self.rt, loc) {
            Verdict::Drop => {
                Outcome::note(&mut self.out.dropped, loc.path());
                false
            }
            Verdict::Subs(subs) => !self.cut(loc, &subs, value),
            Verdict::Pass => true,
        }
    }

    /// Removes the sub-attributes `subs` does not keep, from a complex value or each element
    /// of a multi-valued one. A bare value stands for the `value` sub-attribute. Returns
    /// whether the cut left nothing.
    fn cut(&mut self, loc: &Loc<'_>, subs: &Subs<'_>, value: &mut Value) -> bool {
        match value {
            Value::Object(obj) => self.cut_object(loc, subs, obj),
            Value::Array(items) => {
                let before = items.len();
                items.retain_mut(|item| match item {
                    Value::Object(obj) => !self.cut_object(loc, subs, obj),
                    _ => self.keeps_bare(loc, subs),
                });
                before > 0 && items.is_empty()
            }
            _ => !self.keeps_bare(loc, subs),
        }
    }

    fn cut_object(&mut self, loc: &Loc<'_>, subs: &Subs<'_>, obj: &mut Map<String, Value>) -> bool {
        let before = obj.len();
        let dropped = &mut self.out.dropped;
        obj.retain(|key, _| {
            let keep = subs.keeps(key);
            if !keep {
                Outcome::note(dropped, loc.with_sub(key).path());
            }
            keep
        });
        before > 0 && obj.is_empty()
    }

    fn keeps_bare(&mut self, loc: &Loc<'_>, subs: &Subs<'_>) -> bool {
        let keep = subs.keeps("value");
        if !keep {
            Outcome::note(&mut self.out.dropped, loc.with_sub("value").path());
        }
        keep
    }
}

/// The URNs a resource lists in `schemas`: its extensions by their own account.
fn listed_schemas(obj: &Map<String, Value>) -> Vec<String> {
    get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
