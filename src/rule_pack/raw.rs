//! A rule pack file exactly as written (`rules/*.toml`): serde structs that refuse unknown keys.
//! `compile` turns one into a [`super::Pack`] and reports every problem with pack and rule id.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPack {
    /// Unique among packs; a tenant names it in `idp` or `app_rules`.
    pub name: String,
    pub description: String,
    /// Packs whose rules run first (each at most once), e.g. `["generic"]`.
    #[serde(default)]
    pub extends: Vec<String>,
    /// How `idp = "auto"` recognises requests from this IdP.
    pub detect: Option<RawDetect>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetect {
    /// Substrings of `User-Agent`, matched without case.
    #[serde(default)]
    pub user_agent: Vec<String>,
    /// Substrings of the raw request body or query, matched as written.
    #[serde(default)]
    pub body: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: String,
    /// The real-world quirk the rule fixes.
    pub description: String,
    /// Where the quirk is documented: the IdP's page, a public issue.
    pub source: String,
    /// `request` (the default): the rule rewrites what the client sends; `response`: what
    /// comes back from the app, one resource at a time (see `docs/rules.md`).
    pub direction: Option<String>,
    #[serde(default)]
    pub when: RawWhen,
    pub actions: Vec<RawAction>,
}

/// All given conditions must hold. With `op`, `path` or `value`, the rule looks at each PATCH
/// operation on its own, and its actions' `at` start from the operation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    /// HTTP methods, e.g. `["PATCH"]`.
    #[serde(default)]
    pub method: Vec<String>,
    /// Resource types: `User`, `Group`.
    #[serde(default)]
    pub resource: Vec<String>,
    /// PATCH `op` values, matched without case (`"add"` matches `"Add"`).
    #[serde(default)]
    pub op: Vec<String>,
    /// PATCH paths by the attribute they name, without case, with or without schema URN;
    /// `members` matches `members` and `members[value eq "x"]`.
    #[serde(default)]
    pub path: Vec<String>,
    /// Whether the operation has a `path` at all.
    pub has_path: Option<bool>,
    /// The JSON type of the operation's `value`: `string`, `number`, `bool`, `null`,
    /// `object`, `array`, `empty_array`, `absent`.
    pub value: Option<String>,
    /// Header name → substring its value must contain, without case.
    #[serde(default)]
    pub header: BTreeMap<String, String>,
    /// Member names, without case: the body (or operation) has at least one of them.
    #[serde(default)]
    pub has: Vec<String>,
    /// PATCH paths exactly as written, compared without case (`manager` is not
    /// `manager.value`, nor `urn:…:User:manager`).
    #[serde(default)]
    pub path_is: Vec<String>,
    /// A JSONPath (RFC 9535) query that must select something in the body (or operation).
    pub body: Option<String>,
    /// Response rules: the answer's HTTP status, e.g. `[200, 201]`.
    #[serde(default)]
    pub status: Vec<u16>,
}

/// One action; which keys it takes depends on `action`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAction {
    pub action: String,
    /// What the action works on: `$`, `.name`, `['name.with:dots']`, `[*]`, `[n]`.
    pub at: Option<String>,
    /// `rename`: the new name; `move`: the destination path; `coerce`: `bool`, `number` or
    /// `string`.
    pub to: Option<String>,
    /// `set`, `default`: the value.
    pub value: Option<toml::Value>,
    /// `map`: value → replacement (string keys).
    pub table: Option<BTreeMap<String, toml::Value>>,
    /// `wrap`, `unwrap`: the member name (default `value`).
    pub key: Option<String>,
    /// `builtin`: which named normalizer.
    pub name: Option<String>,
    /// `remove_param`: the query parameters to drop.
    pub params: Option<Vec<String>>,
}
