//! A compiled rule pack: every condition and path parsed, every action checked, so applying a
//! pack to a request does no parsing of its own.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, Method};
use jsonpath_rust::parser::model::JpQuery;
use serde_json::Value;

use super::path::At;
use crate::scim::discovery::{Extensions, ResourceTypeDef};
use crate::scim::path::AttrPath;

#[derive(Debug)]
pub struct Pack {
    pub name: Arc<str>,
    pub description: String,
    pub detect: Detect,
    /// Whether any rule is a response rule: without one, answers are not read for the pack.
    pub answers: bool,
    /// The rules to run, in order: those of the packs it extends first.
    pub rules: Vec<Arc<Rule>>,
}

#[derive(Debug, Default)]
pub struct Detect {
    /// Lower case.
    pub user_agent: Vec<String>,
    /// Substrings of the body or query, each with its searcher built once.
    pub body: Vec<memchr::memmem::Finder<'static>>,
}

impl Detect {
    pub fn is_empty(&self) -> bool {
        self.user_agent.is_empty() && self.body.is_empty()
    }
}

#[derive(Debug)]
pub struct Rule {
    /// `pack/id`, as logs and `rules test` name it.
    pub id: Arc<str>,
    pub description: String,
    pub source: String,
    pub direction: Direction,
    pub when: When,
    pub actions: Vec<Action>,
}

/// What a rule rewrites: the request on its way to the app, or the answer on its way back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

#[derive(Debug, Default)]
pub struct When {
    pub methods: Vec<Method>,
    /// `User`, `Group`.
    pub resources: Vec<String>,
    /// Lower case.
    pub ops: Vec<String>,
    pub paths: Vec<AttrPath>,
    pub has_path: Option<bool>,
    /// Whole paths, as written in the pack.
    pub path_is: Vec<String>,
    pub value: Option<ValueKind>,
    /// Member names, any of which the root must have (without case): answered on the
    /// `serde_json::Value` itself, where a JSONPath query builds a path string per node.
    pub has: Vec<String>,
    /// Name and lower-case substring.
    pub headers: Vec<(HeaderName, String)>,
    pub body: Option<JpQuery>,
    /// Response rules: the answer's status.
    pub status: Vec<u16>,
}

impl When {
    /// Whether the rule looks at each PATCH operation on its own.
    pub fn per_operation(&self) -> bool {
        !self.ops.is_empty()
            || !self.paths.is_empty()
            || self.has_path.is_some()
            || !self.path_is.is_empty()
            || self.value.is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Number,
    Bool,
    Null,
    Object,
    Array,
    EmptyArray,
    Absent,
}

impl ValueKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => Self::String,
            "number" => Self::Number,
            "bool" => Self::Bool,
            "null" => Self::Null,
            "object" => Self::Object,
            "array" => Self::Array,
            "empty_array" => Self::EmptyArray,
            "absent" => Self::Absent,
            _ => return None,
        })
    }

    pub fn matches(self, v: Option<&Value>) -> bool {
        match (self, v) {
            (Self::Absent, None) => true,
            (Self::String, Some(Value::String(_))) => true,
            (Self::Number, Some(Value::Number(_))) => true,
            (Self::Bool, Some(Value::Bool(_))) => true,
            (Self::Null, Some(Value::Null)) => true,
            (Self::Object, Some(Value::Object(_))) => true,
            (Self::Array, Some(Value::Array(_))) => true,
            (Self::EmptyArray, Some(Value::Array(a))) => a.is_empty(),
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coerce {
    Bool,
    Number,
    String,
}

#[derive(Debug)]
pub enum Action {
    Set {
        at: At,
        value: Value,
    },
    Default {
        at: At,
        value: Value,
    },
    Remove {
        at: At,
    },
    Rename {
        at: At,
        to: String,
    },
    Move {
        at: At,
        to: At,
    },
    Coerce {
        at: At,
        to: Coerce,
    },
    Lowercase {
        at: At,
    },
    /// Keys lower case.
    Map {
        at: At,
        table: Vec<(String, Value)>,
    },
    Wrap {
        at: At,
        key: String,
    },
    Unwrap {
        at: At,
        key: String,
    },
    SplitDottedKeys {
        at: At,
    },
    /// Drops query parameters by name (any case): flags an IdP puts on its requests that mean
    /// nothing to the app.
    RemoveParam {
        params: Vec<String>,
    },
    Builtin(Builtin),
}

/// The named normalizers, for what a selector cannot say. Each works on the whole request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    CoerceBySchema,
    DropNulls,
    DropReadOnly,
    SchemasComplete,
    MembersRemoveByValue,
    RoleValuesJson,
    NormalizeFilter,
    DropEmpty,
    ListEnvelope,
    MetaComplete,
    EndpointsRelative,
}

impl Builtin {
    pub const ALL: [Builtin; 11] = [
        Self::CoerceBySchema,
        Self::DropNulls,
        Self::DropReadOnly,
        Self::SchemasComplete,
        Self::MembersRemoveByValue,
        Self::RoleValuesJson,
        Self::NormalizeFilter,
        Self::DropEmpty,
        Self::ListEnvelope,
        Self::MetaComplete,
        Self::EndpointsRelative,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CoerceBySchema => "coerce_by_schema",
            Self::DropNulls => "drop_nulls",
            Self::DropReadOnly => "drop_read_only",
            Self::SchemasComplete => "schemas_complete",
            Self::MembersRemoveByValue => "members_remove_by_value",
            Self::RoleValuesJson => "role_values_json",
            Self::NormalizeFilter => "normalize_filter",
            Self::DropEmpty => "drop_empty",
            Self::ListEnvelope => "list_envelope",
            Self::MetaComplete => "meta_complete",
            Self::EndpointsRelative => "endpoints_relative",
        }
    }

    /// The directions a builtin makes sense in: read-only attributes are the server's to send,
    /// so dropping them is for requests; an envelope or `meta` is the server's to give, so
    /// completing them is for answers.
    pub fn works_on(self, direction: Direction) -> bool {
        match self {
            Self::DropReadOnly | Self::MembersRemoveByValue | Self::NormalizeFilter => {
                direction == Direction::Request
            }
            Self::ListEnvelope | Self::MetaComplete | Self::EndpointsRelative => {
                direction == Direction::Response
            }
            Self::CoerceBySchema
            | Self::DropNulls
            | Self::SchemasComplete
            | Self::RoleValuesJson
            | Self::DropEmpty => true,
        }
    }

    /// Response builtins that work on the whole answer (a list envelope, a ResourceType
    /// list) rather than on each resource in it.
    pub fn whole_answer(self) -> bool {
        matches!(self, Self::ListEnvelope | Self::EndpointsRelative)
    }
}

/// What the rules may ask of a request besides its body.
pub struct Subject<'a> {
    pub method: &'a Method,
    /// The resource type the request is about, when it is about Users or Groups.
    pub resource: Option<&'static ResourceTypeDef>,
    pub headers: &'a HeaderMap,
    pub shape: Shape,
    /// For response rules: what they know of the answer besides its body.
    pub answer: Option<&'a Answer<'a>>,
    /// The app's extension schemas, beside the bundled ones.
    pub extensions: &'a Extensions,
}

/// The request an answer is for, as response rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    pub status: u16,
    /// The proxy's public base URL for the tenant (`https://proxy.example/scim`), which
    /// `meta.location` starts with.
    pub base: &'a str,
    /// Whether the request asked for a list (a GET of a collection, or a `.search`).
    pub list: bool,
    /// The `startIndex` asked for (1 when not), and the `count` (RFC 7644 §3.4.2.4).
    pub start_index: usize,
    pub count: Option<usize>,
}

/// What the body is, for the builtins that treat each kind differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A resource (POST, PUT).
    Resource,
    /// A PatchOp.
    Patch,
    /// Anything else (a SearchRequest, no body).
    Other,
}
