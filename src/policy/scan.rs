//! The detectors' part of the walk: every string of an attribute's value is shown to them,
//! and a hit is dropped, redacted or refused as `on_detect` says.

use serde_json::Value;

use super::select::Loc;
use super::walk::Walk;
use super::{OnDetect, Outcome, Reason, Refusal};

/// What a redacted string becomes.
pub const REDACTED: &str = "[redacted]";

/// Where a string sits, for the Outcome: the attribute's path and, once inside a complex
/// value, the first sub-attribute below it.
#[derive(Clone, Copy)]
struct At<'a> {
    attr: &'a Loc<'a>,
    sub: Option<&'a str>,
}

impl At<'_> {
    fn path(&self) -> String {
        match self.sub {
            Some(sub) => self.attr.with_sub(sub).path(),
            None => self.attr.path(),
        }
    }
}

impl Walk<'_> {
    /// Shows the strings of one attribute's value to the detectors. Returns whether the value
    /// must go; `required` keeps a bare string (redacted instead).
    pub fn scan_attribute(
        &mut self,
        loc: &Loc<'_>,
        value: &mut Value,
        required: bool,
    ) -> Result<bool, Refusal> {
        if self.rules.detectors.is_empty() {
            return Ok(false);
        }
        let at = At {
            attr: loc,
            sub: loc.sub,
        };
        self.scan(value, at, loc.sub.is_some(), false, required)
    }

    /// `named`: `at` already names a sub-attribute, so deeper keys do not extend it.
    /// `element`: `value` is an element of an array. Returns whether `value` must go.
    fn scan(
        &mut self,
        value: &mut Value,
        at: At<'_>,
        named: bool,
        element: bool,
        keep: bool,
    ) -> Result<bool, Refusal> {
        match value {
            Value::String(s) => self.detect(s, at, keep),
            Value::Array(items) => {
                let before = items.len();
                let mut gone = Vec::with_capacity(before);
                for item in items.iter_mut() {
                    gone.push(self.scan(item, at, named, true, false)?);
                }
                let mut gone = gone.into_iter();
                items.retain(|_| !gone.next().unwrap_or(false));
                Ok(before > 0 && items.is_empty())
            }
            Value::Object(obj) => {
                let before = obj.len();
                let mut gone = Vec::new();
                for (key, v) in obj.iter_mut() {
                    let inner = if named {
                        at
                    } else {
                        At {
                            attr: at.attr,
                            sub: Some(key),
                        }
                    };
                    if self.scan(v, inner, true, false, false)? {
                        gone.push(key.clone());
                    }
                }
                // An element whose `value` went is no element any more (RFC 7643 §2.4).
                let value_gone = gone.iter().any(|k| k.eq_ignore_ascii_case("value"));
                for key in &gone {
                    obj.remove(key);
                }
                Ok((element && value_gone) || (before > 0 && obj.is_empty()))
            }
            _ => Ok(false),
        }
    }

    /// One string. Returns whether it must go.
    fn detect(&mut self, s: &mut String, at: At<'_>, keep: bool) -> Result<bool, Refusal> {
        let Some(d) = self.rules.detectors.iter().find(|d| d.finds(s)) else {
            return Ok(false);
        };
        match self.rules.on_detect {
            OnDetect::Reject => Err(Refusal::new(
                at.path(),
                Reason::Detected {
                    detector: d.name().to_owned(),
                    what: d.describe(),
                },
            )),
            OnDetect::Drop if !keep => {
                Outcome::note(&mut self.out.dropped, at.path());
                Ok(true)
            }
            OnDetect::Drop | OnDetect::Redact => {
                REDACTED.clone_into(s);
                Outcome::note(&mut self.out.redacted, at.path());
                Ok(false)
            }
        }
    }
}
