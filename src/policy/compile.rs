//! `attributes = { … }` → [`Policy`]: lists parsed, detectors compiled, and every problem
//! reported with where it is (`attributes.outbound.detect[2]: …`).

use super::config::{RawAttributes, RawDetector, RawRules};
use super::detect::{Detector, BUILTIN};
use super::select::{is_common, protected, Lists, Loc, Selector};
use super::{OnDetect, Policy, Rules};
use crate::scim::discovery::RESOURCE_TYPES;

pub fn compile(raw: &RawAttributes) -> Result<Policy, Vec<String>> {
    let mut problems = Vec::new();
    let both = Part::new("attributes", &raw.both(), &mut problems);
    let inbound = raw
        .inbound
        .as_ref()
        .map(|r| Part::new("attributes.inbound", r, &mut problems));
    let outbound = raw
        .outbound
        .as_ref()
        .map(|r| Part::new("attributes.outbound", r, &mut problems));
    let policy = Policy {
        inbound: combine(&both, inbound.as_ref(), &mut problems),
        outbound: combine(&both, outbound.as_ref(), &mut problems),
    };
    if problems.is_empty() {
        Ok(policy)
    } else {
        Err(problems)
    }
}

/// The top-level rules or one direction's, compiled on their own.
struct Part {
    at: &'static str,
    deny: Vec<Selector>,
    allow: Option<Vec<Selector>>,
    detect: Vec<Detector>,
    on_detect: Option<OnDetect>,
}

impl Part {
    fn new(at: &'static str, raw: &RawRules, problems: &mut Vec<String>) -> Self {
        let deny = selectors(&format!("{at}.deny"), &raw.deny, problems);
        for (i, sel) in deny.iter().enumerate() {
            if let Some(why) = undeniable(sel) {
                problems.push(format!(
                    "{at}.deny[{i}]: {:?} cannot be denied: {why}",
                    raw.deny[i]
                ));
            }
        }
        let allow = raw
            .allow
            .as_ref()
            .map(|a| selectors(&format!("{at}.allow"), a, problems));
        if !raw.deny.is_empty() && raw.allow.is_some() {
            problems.push(format!(
                "{at}: deny and allow cannot be used together: {EXCLUSIVE}"
            ));
        }
        Self {
            at,
            deny,
            allow,
            detect: detectors(at, &raw.detect, problems),
            on_detect: raw.on_detect,
        }
    }
}

const EXCLUSIVE: &str = "allow already drops everything it does not list";

/// One direction's rules: the top-level ones with the direction's added.
fn combine(both: &Part, dir: Option<&Part>, problems: &mut Vec<String>) -> Rules {
    let empty = Part {
        at: "attributes",
        deny: Vec::new(),
        allow: None,
        detect: Vec::new(),
        on_detect: None,
    };
    let dir = dir.unwrap_or(&empty);
    let deny: Vec<Selector> = both.deny.iter().chain(&dir.deny).cloned().collect();
    let allow = match (&both.allow, &dir.allow) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{}.allow: an allow list is already given at the top level; give it in one place",
                dir.at
            ));
            None
        }
        (a, b) => a.as_ref().or(b.as_ref()).cloned(),
    };
    let across = (!both.deny.is_empty() && dir.allow.is_some())
        || (both.allow.is_some() && !dir.deny.is_empty());
    if across {
        problems.push(format!(
            "{}: deny and allow cannot be used together, here and at the top level: {EXCLUSIVE}",
            dir.at
        ));
    }
    let lists = match allow {
        Some(list) => Lists::Allow(list),
        None if deny.is_empty() => Lists::Open,
        None => Lists::Deny(deny),
    };
    let mut detectors = both.detect.clone();
    for d in &dir.detect {
        match detectors.iter().find(|t| t.name() == d.name()) {
            None => detectors.push(d.clone()),
            Some(_) if BUILTIN.contains(&d.name()) => {}
            Some(_) => problems.push(format!(
                "{}.detect: a detector named {:?} is already given at the top level",
                dir.at,
                d.name()
            )),
        }
    }
    Rules {
        lists,
        detectors,
        on_detect: dir.on_detect.or(both.on_detect).unwrap_or_default(),
    }
}

fn selectors(at: &str, entries: &[String], problems: &mut Vec<String>) -> Vec<Selector> {
    entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            Selector::parse(e)
                .map_err(|why| problems.push(format!("{at}[{i}]: {why}")))
                .ok()
        })
        .collect()
}

fn detectors(at: &str, raw: &[RawDetector], problems: &mut Vec<String>) -> Vec<Detector> {
    let mut out: Vec<Detector> = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        let at = format!("{at}.detect[{i}]");
        let made = match d {
            RawDetector::Builtin(name) => Detector::builtin(name).ok_or_else(|| {
                format!(
                    "unknown detector {name:?}; the built-in ones are {}, and a custom one is \
                     written {{ name = \"…\", regex = \"…\" }}",
                    BUILTIN.join(", ")
                )
            }),
            RawDetector::Custom(c) if c.name.trim().is_empty() => {
                Err("a custom detector needs a name".to_owned())
            }
            RawDetector::Custom(c) if BUILTIN.contains(&c.name.as_str()) => Err(format!(
                "{:?} is the name of a built-in detector; give the custom one another",
                c.name
            )),
            RawDetector::Custom(c) => Detector::custom(&c.name, &c.regex)
                .map_err(|e| format!("{:?}: invalid regex: {e}", c.name)),
        };
        match made {
            Ok(d) if out.iter().any(|o| o.name() == d.name()) => {
                if !BUILTIN.contains(&d.name()) {
                    problems.push(format!("{at}: the name {:?} is used twice", d.name()));
                }
            }
            Ok(d) => out.push(d),
            Err(why) => problems.push(format!("{at}: {why}")),
        }
    }
    out
}

/// Why a deny entry would take away what no resource can lose, if it would.
fn undeniable(sel: &Selector) -> Option<String> {
    if let (Some(schema), None) = (&sel.schema, &sel.sub) {
        let urn = format!("{schema}:{}", sel.name);
        if RESOURCE_TYPES
            .iter()
            .any(|rt| rt.schema.eq_ignore_ascii_case(&urn))
        {
            return Some("it is a core schema; deny its attributes one by one".to_owned());
        }
    }
    let mut requiring = Vec::new();
    let mut optional = Vec::new();
    for rt in &RESOURCE_TYPES {
        let schemas = match &sel.schema {
            Some(s) => vec![s.as_str()],
            None => std::iter::once(rt.schema)
                .chain(rt.extensions.iter().copied())
                .collect(),
        };
        let loc = |schema| Loc {
            schema: Some(schema),
            name: &sel.name,
            sub: sel.sub.as_deref(),
        };
        if schemas.iter().any(|s| protected(rt, &loc(s))) {
            requiring.push(rt);
        } else if crate::scim::discovery::attribute(rt.name, &sel.name).is_some() {
            optional.push(rt);
        }
    }
    let first = requiring.first()?;
    if is_common(&sel.name) {
        return Some("every resource carries id, schemas and meta (RFC 7643 §3.1)".to_owned());
    }
    let mut why = format!("the {} schema requires it (RFC 7643 §2.2)", first.name);
    if let Some(rt) = optional.first().filter(|_| sel.schema.is_none()) {
        why.push_str(&format!(
            "; to deny it for {} resources only, write \"{}:{}\"",
            rt.name, rt.schema, sel.name
        ));
    }
    Some(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawAttributes {
        #[derive(serde::Deserialize)]
        struct T {
            attributes: RawAttributes,
        }
        toml::from_str::<T>(text).expect("valid TOML").attributes
    }

    fn problems(text: &str) -> Vec<String> {
        Policy::compile(&raw(text)).expect_err("should be refused")
    }

    #[test]
    fn an_empty_policy_is_empty() {
        let p = Policy::compile(&RawAttributes::default()).expect("valid");
        assert!(p.is_empty());
        let p = Policy::compile(&raw("attributes = { outbound = { deny = [\"title\"] } }"))
            .expect("valid");
        assert!(!p.is_empty());
        assert!(p.rules(super::super::Direction::Inbound).is_empty());
    }

    #[test]
    fn protected_attributes_cannot_be_denied_and_the_message_names_them() {
        let text = r#"attributes = { deny = ["id", "Meta.created", "userName", "schemas", "urn:ietf:params:scim:schemas:core:2.0:User:userName"] }"#;
        let errs = problems(text);
        assert_eq!(errs.len(), 5, "{errs:?}");
        assert!(
            errs[0].starts_with("attributes.deny[0]: \"id\" cannot be denied"),
            "{errs:?}"
        );
        assert!(errs[1].contains("Meta.created") && errs[1].contains("RFC 7643 §3.1"));
        assert!(errs[2].contains("User schema requires it"), "{errs:?}");
    }

    #[test]
    fn a_group_display_name_is_protected_but_a_users_can_be_denied_by_urn() {
        let errs = problems(r#"attributes = { deny = ["displayName"] }"#);
        assert!(errs[0].contains("Group schema requires it"), "{errs:?}");
        assert!(
            errs[0].contains("\"urn:ietf:params:scim:schemas:core:2.0:User:displayName\""),
            "{errs:?}"
        );
        let ok =
            r#"attributes = { deny = ["urn:ietf:params:scim:schemas:core:2.0:User:displayName"] }"#;
        assert!(Policy::compile(&raw(ok)).is_ok());
    }

    #[test]
    fn deny_with_allow_is_refused_in_one_table_or_across() {
        let errs = problems(r#"attributes = { deny = ["title"], allow = ["userName"] }"#);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("attributes: deny and allow"));
        let errs =
            problems(r#"attributes = { deny = ["title"], inbound = { allow = ["userName"] } }"#);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("attributes.inbound: deny and allow"));
        let errs =
            problems(r#"attributes = { allow = ["title"], outbound = { allow = ["userName"] } }"#);
        assert!(errs[0].starts_with("attributes.outbound.allow: an allow list is already"));
    }

    #[test]
    fn bad_paths_detectors_and_regexes_are_all_reported() {
        let errs = problems(
            r#"attributes = { deny = ["na me", "name.givenName.*"], detect = ["passport", { name = "badge", regex = "(" }, { name = "card", regex = "x" }, { name = " ", regex = "x" }] }"#,
        );
        assert_eq!(errs.len(), 6, "{errs:?}");
        assert!(errs[0].starts_with("attributes.deny[0]: \"na me\" is not an attribute path"));
        assert!(errs[1].starts_with("attributes.deny[1]:"));
        assert!(errs[2].starts_with("attributes.detect[0]: unknown detector \"passport\""));
        assert!(errs[3].starts_with("attributes.detect[1]: \"badge\": invalid regex"));
        assert!(errs[4].contains("built-in detector"));
        assert!(errs[5].contains("needs a name"));
    }

    #[test]
    fn directions_add_to_the_top_level() {
        let p = Policy::compile(&raw(
            r#"attributes = { deny = ["title"], detect = ["card"], inbound = { deny = ["nickName"], detect = ["card", "iban"], on_detect = "reject" } }"#,
        ))
        .expect("valid");
        let inbound = p.rules(super::super::Direction::Inbound);
        let outbound = p.rules(super::super::Direction::Outbound);
        assert!(matches!(&inbound.lists, Lists::Deny(l) if l.len() == 2));
        assert!(matches!(&outbound.lists, Lists::Deny(l) if l.len() == 1));
        assert_eq!(inbound.detectors.len(), 2);
        assert_eq!(outbound.detectors.len(), 1);
        assert_eq!(
            (inbound.on_detect, outbound.on_detect),
            (OnDetect::Reject, OnDetect::Redact)
        );
        let errs = problems(
            r#"attributes = { detect = [{ name = "b", regex = "x" }], outbound = { detect = [{ name = "b", regex = "y" }] } }"#,
        );
        assert!(
            errs[0].contains("already given at the top level"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_core_schema_cannot_be_denied_whole_but_an_extension_can() {
        let errs =
            problems(r#"attributes = { deny = ["urn:ietf:params:scim:schemas:core:2.0:Group"] }"#);
        assert!(errs[0].contains("core schema"), "{errs:?}");
        let ok = r#"attributes = { deny = ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] }"#;
        assert!(Policy::compile(&raw(ok)).is_ok());
    }
}
