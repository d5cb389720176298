//! The attribute policy of one tenant (stage 7, and the outbound half of stage 10): which
//! attributes may pass to the app (inbound, IdP → app) and to the IdP (outbound, app → IdP),
//! and what happens to string values that look like a social security, card or bank account
//! number. Pure functions over `serde_json::Value`; the pipeline decides what to answer.
//!
//! How lists are read:
//! - Names compare without case (RFC 7643 §2.1). `name` and `name.*` mean the attribute with
//!   all its sub-attributes, `name.givenName` one sub-attribute (in every element of a
//!   multi-valued attribute).
//! - An entry with a schema URN names the attribute of that schema only. An entry without one
//!   names the attribute in every schema of the document: `employeeNumber` reaches the
//!   enterprise extension's. An extension URN alone (`urn:…:enterprise:2.0:User`) names the
//!   whole extension.
//! - A document may write an attribute several ways — a top-level name, a URN-qualified key
//!   (`"urn:…:User:employeeNumber": "1"`), a dotted key (`"name.givenName"`), an extension
//!   object; PATCH paths may be URN-qualified and carry value filters. All reach the same
//!   attribute; a name written without URN where the resource type has an extension
//!   defining it counts as that extension's (lenient apps read it so).
//! - A list cuts exactly what it names: denying `emails.value` leaves `emails` elements with
//!   their other sub-attributes; a complex value or array the cut leaves empty goes.
//! - `id`, `schemas`, `meta` and the attributes the resource type's schemas require (`userName`,
//!   a Group's `displayName`) always pass: denying them is a configuration error, and an allow
//!   list lets them through unlisted. Since `displayName` is required for Groups only, a User's
//!   is denied by its URN-qualified name.
//!
//! Detectors (`detect.rs` says which shapes each accepts) look at every string value except
//! those of `id`, `schemas` and `meta` (numbers, keys and the selectors in PATCH paths and
//! query filters are not values being sent). On a hit, `drop` removes the string: the
//! attribute if it is the whole value, the element of a multi-valued attribute if it is the
//! element or the element's `value`, else the sub-attribute; containers left empty go with
//! it. A required attribute's own string is redacted instead, so the document stays valid.
//! `redact` puts `"[redacted]"` in its place; `reject` refuses the whole document.
//!
//! A query filter or PATCH value filter that tests a withheld attribute is refused, since it
//! would be an oracle for the value; query filters are held to both directions' lists. A PATCH
//! operation whose path itself names a withheld attribute is removed instead (removal wins
//! over refusal), and one with an unreadable path is refused, since what it touches cannot be
//! told.
//!
//! An `Ok` with an empty [`Outcome`] means the document is exactly as it came; after a
//! [`Refusal`] it may be partly changed and is not to be sent on.

mod compile;
pub mod config;
mod detect;
mod filter;
mod patch;
mod scan;
mod select;
mod text;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_patch;
#[cfg(test)]
mod tests_prop;

use std::fmt;

use serde_json::Value;

use crate::scim::discovery::ResourceTypeDef;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::filter::Filter;

pub use config::{OnDetect, RawAttributes, RawCustomDetector, RawDetector, RawRules};
pub use detect::Detector;
pub use text::Edit;

use select::Lists;
use walk::Walk;

/// Which way a document travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// IdP → app: request bodies.
    Inbound,
    /// App → IdP: answered resources and lists.
    Outbound,
}

/// A tenant's compiled attribute policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    inbound: Rules,
    outbound: Rules,
}

/// The rules of one direction.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    lists: Lists,
    detectors: Vec<Detector>,
    on_detect: OnDetect,
}

impl Rules {
    /// Whether these rules change nothing, so a document need not be looked at.
    pub fn is_empty(&self) -> bool {
        self.lists.is_open() && self.detectors.is_empty()
    }

    /// Whether these rules look at values (detectors), not at attribute names alone: then a
    /// document is read whole, never as text.
    pub fn reads_values(&self) -> bool {
        !self.detectors.is_empty()
    }
}

/// `deny employeeNumber, urn:…:User:costCenter; detect us_ssn, card (redact)`, for `scimgate
/// check`.
impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |list: &[select::Selector]| {
            list.iter()
                .map(|s| {
                    let mut t = s
                        .schema
                        .as_deref()
                        .map(|u| format!("{u}:"))
                        .unwrap_or_default();
                    t.push_str(&s.name);
                    if let Some(sub) = &s.sub {
                        t.push('.');
                        t.push_str(sub);
                    }
                    t
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        match &self.lists {
            Lists::Open => {}
            Lists::Deny(list) => parts.push(format!("deny {}", names(list))),
            Lists::Allow(list) => parts.push(format!("allow only {}", names(list))),
        }
        if !self.detectors.is_empty() {
            let found: Vec<&str> = self.detectors.iter().map(Detector::name).collect();
            let action = match self.on_detect {
                OnDetect::Drop => "drop",
                OnDetect::Redact => "redact",
                OnDetect::Reject => "reject",
            };
            parts.push(format!("detect {} ({action})", found.join(", ")));
        }
        if parts.is_empty() {
            return f.write_str("everything passes");
        }
        f.write_str(&parts.join("; "))
    }
}

/// What the policy did to a document: attribute paths, never values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub dropped: Vec<String>,
    pub redacted: Vec<String>,
    /// A PATCH lost every operation: the caller decides what to answer.
    pub no_operations_left: bool,
}

impl Outcome {
    /// Whether the document is unchanged, so its original bytes can be forwarded.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty() && self.redacted.is_empty() && !self.no_operations_left
    }

    fn note(list: &mut Vec<String>, path: String) {
        if !list.contains(&path) {
            list.push(path);
        }
    }

    /// What `other` did too, each path named once: the Outcome of several documents.
    pub fn merge(&mut self, other: Outcome) {
        for path in other.dropped {
            Self::note(&mut self.dropped, path);
        }
        for path in other.redacted {
            Self::note(&mut self.redacted, path);
        }
    }
}

/// Why a document or filter was refused. Its text names the attribute and the rule, never the
/// value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub attribute: String,
    pub reason: Reason,
    /// The 1-based number of the PATCH operation it is in.
    pub operation: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A detector recognised the value and `on_detect = "reject"`.
    Detected { detector: String, what: String },
    /// A query filter or a PATCH value filter tests a withheld attribute.
    FilterTests,
    /// A PATCH path that cannot be read, so what it touches cannot be told.
    UnreadablePath,
}

impl Refusal {
    fn new(attribute: impl Into<String>, reason: Reason) -> Self {
        Self {
            attribute: attribute.into(),
            reason,
            operation: None,
        }
    }

    fn in_operation(self, number: usize) -> Self {
        Self {
            operation: Some(number),
            ..self
        }
    }

    /// The `scimType` of the 400 answer (RFC 7644 §3.12, Table 9): `invalidFilter` where a
    /// filter (query or PATCH path) is at fault, `invalidPath` for an unreadable path, else
    /// `invalidValue`.
    pub fn scim_type(&self) -> ScimType {
        match self.reason {
            Reason::Detected { .. } => ScimType::InvalidValue,
            Reason::FilterTests => ScimType::InvalidFilter,
            Reason::UnreadablePath => ScimType::InvalidPath,
        }
    }

    /// The `detail` of the answer.
    pub fn detail(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.operation {
            write!(f, "Operations[{n}]: ")?;
        }
        let attr = &self.attribute;
        match &self.reason {
            Reason::Detected { detector, what } => write!(
                f,
                "the value of {attr} looks like {what} (detector {detector}), which the attribute policy refuses"
            ),
            Reason::FilterTests => write!(
                f,
                "the filter tests {attr}, which the attribute policy withholds"
            ),
            Reason::UnreadablePath => f.write_str("the path cannot be read"),
        }
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for ScimError {
    fn from(r: Refusal) -> Self {
        ScimError::with_type(400, r.scim_type(), r.detail())
    }
}

impl Policy {
    /// Checks and compiles a tenant's `attributes`; every problem is returned, each naming
    /// where it is (`attributes.inbound.deny[1]: …`).
    pub fn compile(raw: &RawAttributes) -> Result<Self, Vec<String>> {
        compile::compile(raw)
    }

    /// Whether the policy changes nothing in either direction, so the pipeline can skip it.
    pub fn is_empty(&self) -> bool {
        self.inbound.is_empty() && self.outbound.is_empty()
    }

    pub fn rules(&self, dir: Direction) -> &Rules {
        match dir {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        }
    }

    /// Applies the policy to one resource: a POST or PUT body, or an answered resource.
    pub fn apply_resource(
        &self,
        dir: Direction,
        rt: &ResourceTypeDef,
        doc: &mut Value,
    ) -> Result<Outcome, Refusal> {
        let mut walk = Walk::new(self.rules(dir), rt);
        if !walk.rules.is_empty() {
            walk.resource(doc)?;
        }
        Ok(walk.out)
    }

    /// [`Policy::apply_resource`] for a resource given as JSON text, or with `list`
    /// [`Policy::apply_list`] for a ListResponse, reading only the members the rules may
    /// change. `None` when the text is for the tree walk to judge: when detectors look at
    /// every value, for an object with an escaped name or a name read twice, or text that is
    /// no well-formed object.
    pub fn apply_text(
        &self,
        dir: Direction,
        rt: &ResourceTypeDef,
        text: &str,
        list: bool,
    ) -> Option<Result<Edit, Refusal>> {
        let rules = self.rules(dir);
        match (rules.is_empty(), list) {
            (true, _) => Some(Ok(Edit::default())),
            (false, false) => text::resource(rules, rt, text),
            (false, true) => text::list(rules, rt, text),
        }
    }

    /// Applies the policy to a PatchOp body (RFC 7644 §3.5.2): operations on withheld
    /// attributes are removed, values are filtered like resources, and an operation whose
    /// value filter tests a withheld attribute is refused.
    pub fn apply_patch(
        &self,
        dir: Direction,
        rt: &ResourceTypeDef,
        body: &mut Value,
    ) -> Result<Outcome, Refusal> {
        let mut walk = Walk::new(self.rules(dir), rt);
        if !walk.rules.is_empty() {
            patch::apply(&mut walk, body)?;
        }
        Ok(walk.out)
    }

    /// Applies the policy to each of a ListResponse's `Resources` (RFC 7644 §3.4.2).
    pub fn apply_list(
        &self,
        dir: Direction,
        rt: &ResourceTypeDef,
        list: &mut Value,
    ) -> Result<Outcome, Refusal> {
        let mut walk = Walk::new(self.rules(dir), rt);
        if walk.rules.is_empty() {
            return Ok(walk.out);
        }
        let resources = list.as_object_mut().and_then(|l| {
            crate::scim::path::key_ci(l, "Resources")
                .cloned()
                .map(|k| (l, k))
        });
        if let Some((list, key)) = resources {
            if let Some(Value::Array(items)) = list.get_mut(&key) {
                for item in items {
                    walk.resource(item)?;
                }
            }
        }
        Ok(walk.out)
    }

    /// Whether a detector of `dir` recognises a value in free text, such as an error's
    /// `detail`, which names no attribute to judge it by.
    pub fn detects(&self, dir: Direction, text: &str) -> bool {
        self.rules(dir).detectors.iter().any(|d| d.finds(text))
    }

    /// Refuses a query filter (RFC 7644 §3.4.2.2) that tests an attribute either direction
    /// withholds: inbound, it would hand the value to the app; outbound, its answer would
    /// tell the IdP the value.
    pub fn check_filter(&self, rt: &ResourceTypeDef, f: &Filter) -> Result<(), Refusal> {
        filter::check(&self.inbound.lists, rt, f)?;
        filter::check(&self.outbound.lists, rt, f)
    }
}
