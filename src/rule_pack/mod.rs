//! IdP and app rule packs: declarative descriptions of how a client bends SCIM, and what turns
//! its requests into RFC 7643/7644-clean ones. Packs are TOML (`rules/*.toml`, built into the
//! binary, plus an operator's folder), compiled once per configuration; applying one is a pure
//! function over JSON (`apply`), run by stage 6 (`normalize.rs`).

pub mod answer;
pub mod apply;
mod builtin;
mod compile;
mod envelope;
mod json;
pub mod model;
pub mod path;
pub mod raw;
pub mod request;
pub mod schema;
pub mod trial;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use http::header;

pub use apply::{apply, shape_of};
pub use model::{Pack, Rule};
pub use model::{Shape, Subject};

/// The packs built into the binary, in the order they are compiled (a pack after those it
/// extends).
const BUILT_IN: [(&str, &str); 9] = [
    (
        "rules/generic.toml",
        include_str!("../../rules/generic.toml"),
    ),
    ("rules/entra.toml", include_str!("../../rules/entra.toml")),
    ("rules/okta.toml", include_str!("../../rules/okta.toml")),
    ("rules/google.toml", include_str!("../../rules/google.toml")),
    (
        "rules/onelogin.toml",
        include_str!("../../rules/onelogin.toml"),
    ),
    (
        "rules/jumpcloud.toml",
        include_str!("../../rules/jumpcloud.toml"),
    ),
    ("rules/ping.toml", include_str!("../../rules/ping.toml")),
    (
        "rules/app-generic.toml",
        include_str!("../../rules/app-generic.toml"),
    ),
    (
        "rules/app-roles-without-type.toml",
        include_str!("../../rules/app-roles-without-type.toml"),
    ),
];

/// The pack `idp = "auto"` falls back to.
pub const GENERIC: &str = "generic";

/// Every compiled pack by name: the built-in ones, overridden by an operator's of the same
/// name.
#[derive(Debug, Default)]
pub struct Packs {
    by_name: BTreeMap<Arc<str>, Arc<Pack>>,
    /// Packs with `detect` signals, in the order `auto` tries them.
    detectable: Vec<Arc<Pack>>,
}

impl Packs {
    /// The built-in packs and, if given, every `*.toml` in `dir` (sorted by file name). All
    /// problems are returned, each naming its file and rule.
    pub fn load(dir: Option<&Path>) -> Result<Self, Vec<String>> {
        let mut sources: Vec<(String, String)> = BUILT_IN
            .iter()
            .map(|(origin, text)| ((*origin).to_owned(), (*text).to_owned()))
            .collect();
        if let Some(dir) = dir {
            sources.extend(read_dir(dir)?);
        }
        Self::compile(sources)
    }

    /// Compiles packs from `(origin, text)` pairs, in order.
    pub fn compile(sources: Vec<(String, String)>) -> Result<Self, Vec<String>> {
        let mut packs = Self::default();
        let mut problems = Vec::new();
        for (origin, text) in sources {
            let raw: raw::RawPack = match toml::from_str(&text) {
                Ok(raw) => raw,
                Err(e) => {
                    problems.push(format!("{origin}: {e}"));
                    continue;
                }
            };
            let resolve = |name: &str| packs.get(name);
            match compile::compile(raw, &origin, &resolve) {
                Ok(pack) => {
                    let pack = Arc::new(pack);
                    packs.by_name.insert(pack.name.clone(), pack);
                }
                Err(errs) => problems.extend(errs),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        packs.detectable = packs
            .by_name
            .values()
            .filter(|p| !p.detect.is_empty())
            .cloned()
            .collect();
        Ok(packs)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Pack>> {
        self.by_name.get(name).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Pack>> {
        self.by_name.values()
    }

    /// The IdP a request comes from, by its `User-Agent` and the fingerprints in its body and
    /// query (`../shared/idp/QUIRKS.md`): the first pack whose `User-Agent` signal matches,
    /// else the first whose fingerprints do, else `generic`. The header is the stronger
    /// signal, and the cheaper: a body is searched only when no header said who sent it.
    pub fn detect(&self, headers: &http::HeaderMap, body: &[u8], query: &str) -> Option<Arc<Pack>> {
        let agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let by_agent = || {
            self.detectable.iter().find(|p| {
                p.detect
                    .user_agent
                    .iter()
                    .any(|s| agent.contains(s.as_str()))
            })
        };
        let by_body = || {
            self.detectable.iter().find(|p| {
                p.detect
                    .body
                    .iter()
                    .any(|f| f.find(query.as_bytes()).is_some() || f.find(body).is_some())
            })
        };
        let found = by_agent().or_else(by_body);
        found.cloned().or_else(|| self.get(GENERIC))
    }
}

fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| vec![format!("{}: {e}", dir.display())])?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            std::fs::read_to_string(&p)
                .map(|text| (p.display().to_string(), text))
                .map_err(|e| vec![format!("{}: {e}", p.display())])
        })
        .collect()
}
#[cfg(test)]
mod tests;
