//! The attribute policy as a tenant writes it (`attributes = { … }`): serde structs that refuse
//! unknown keys. [`super::Policy::compile`] checks them and reports every problem at once.

use serde::Deserialize;

/// `attributes = { deny = [...], detect = [...], on_detect = "redact" }`. The top-level lists
/// apply to both directions; `inbound` (IdP → app) and `outbound` (app → IdP) add to them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawAttributes {
    #[serde(default)]
    pub deny: Vec<String>,
    pub allow: Option<Vec<String>>,
    #[serde(default)]
    pub detect: Vec<RawDetector>,
    pub on_detect: Option<OnDetect>,
    pub inbound: Option<RawRules>,
    pub outbound: Option<RawRules>,
}

impl RawAttributes {
    /// The top-level rules, which apply to both directions. (They are fields of their own
    /// rather than a flattened [`RawRules`], since serde cannot refuse unknown keys through
    /// `flatten`.)
    pub fn both(&self) -> RawRules {
        RawRules {
            deny: self.deny.clone(),
            allow: self.allow.clone(),
            detect: self.detect.clone(),
            on_detect: self.on_detect,
        }
    }
}

/// One set of rules. `deny` and `allow` exclude each other.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    /// Attribute paths that never pass: `employeeNumber`, `name.givenName`, `addresses.*`,
    /// `urn:…:enterprise:2.0:User:costCenter`, or a whole extension by its URN.
    #[serde(default)]
    pub deny: Vec<String>,
    /// If given, only these attribute paths pass (plus `id`, `schemas`, `meta` and the
    /// attributes the schema requires).
    pub allow: Option<Vec<String>>,
    /// Value detectors: `us_ssn`, `card`, `iban`, or `{ name = "…", regex = "…" }`.
    #[serde(default)]
    pub detect: Vec<RawDetector>,
    /// What a detector's hit does; `redact` when not given.
    pub on_detect: Option<OnDetect>,
}

/// A built-in detector by name, or a named regular expression.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(
    untagged,
    expecting = "a detector name (\"us_ssn\", \"card\", \"iban\") or { name = \"…\", regex = \"…\" }"
)]
pub enum RawDetector {
    Builtin(String),
    Custom(RawCustomDetector),
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawCustomDetector {
    pub name: String,
    /// Syntax of the `regex` crate; it matches anywhere in a value unless anchored.
    pub regex: String,
}

/// What happens to a string value a detector recognises.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnDetect {
    /// The value is removed (see the module documentation for where exactly).
    Drop,
    /// The value is replaced by `"[redacted]"`.
    #[default]
    Redact,
    /// The whole request or answer is refused.
    Reject,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tenant {
        attributes: RawAttributes,
    }

    fn parse(text: &str) -> Result<RawAttributes, String> {
        toml::from_str::<Tenant>(text)
            .map(|t| t.attributes)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn inline_table_with_detectors_of_both_kinds() {
        let raw = parse(
            r#"attributes = { deny = ["employeeNumber", "addresses.*"], detect = ["us_ssn", "card", { name = "badge", regex = "^B-[0-9]{6}$" }], on_detect = "drop" }"#,
        )
        .expect("valid");
        assert_eq!(raw.deny, ["employeeNumber", "addresses.*"]);
        assert_eq!(
            raw.detect[2],
            RawDetector::Custom(RawCustomDetector {
                name: "badge".into(),
                regex: "^B-[0-9]{6}$".into()
            })
        );
        assert_eq!(raw.on_detect, Some(OnDetect::Drop));
        assert!(raw.allow.is_none() && raw.inbound.is_none());
    }

    #[test]
    fn per_direction_tables() {
        let raw = parse(
            "[attributes]\ndeny = [\"costCenter\"]\n[attributes.outbound]\nallow = [\"userName\"]\n",
        )
        .expect("valid");
        assert_eq!(raw.deny, ["costCenter"]);
        let out = raw.outbound.expect("outbound");
        assert_eq!(out.allow.as_deref(), Some(&["userName".to_string()][..]));
    }

    #[test]
    fn unknown_keys_and_values_are_refused_with_their_name() {
        let e = parse(r#"attributes = { denny = ["x"] }"#).expect_err("unknown key");
        assert!(e.contains("denny"), "{e}");
        let e = parse(r#"attributes = { on_detect = "hide" }"#).expect_err("bad value");
        assert!(e.contains("hide"), "{e}");
        let e = parse(r#"attributes = { detect = [{ name = "a", regex = "b", flags = "i" }] }"#)
            .expect_err("unknown detector key");
        assert!(e.contains("detector name"), "{e}");
        let e = parse("attributes = { inbound = { detect = [1] } }").expect_err("number");
        assert!(e.contains("detector name"), "{e}");
    }
}
