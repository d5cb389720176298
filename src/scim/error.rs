//! The SCIM Error message (RFC 7644 §3.12): one status, an optional `scimType` keyword and a
//! human-readable detail.

use serde::Serialize;

use super::urn;

/// The `scimType` keywords of RFC 7644 §3.12, Table 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    /// The keyword as RFC 7644 §3.12 spells it; `None` for anything else.
    pub fn from_keyword(word: &str) -> Option<Self> {
        [
            Self::InvalidFilter,
            Self::TooMany,
            Self::Uniqueness,
            Self::Mutability,
            Self::InvalidSyntax,
            Self::InvalidPath,
            Self::NoTarget,
            Self::InvalidValue,
            Self::InvalidVers,
            Self::Sensitive,
        ]
        .into_iter()
        .find(|t| t.as_str() == word)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
        }
    }
}

/// A SCIM Error document. `status` is serialized as a string, as RFC 7644 §3.12 specifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }

    pub fn with_type(status: u16, scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Doc<'a> {
            schemas: [&'static str; 1],
            status: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            scim_type: Option<ScimType>,
            detail: &'a str,
        }
        let doc = Doc {
            schemas: [urn::ERROR],
            status: self.status.to_string(),
            scim_type: self.scim_type,
            detail: &self.detail,
        };
        serde_json::to_vec(&doc).expect("an error document always serializes")
    }
}

impl std::fmt::Display for ScimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.scim_type {
            Some(t) => write!(f, "{} {}: {}", self.status, t.as_str(), self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl std::error::Error for ScimError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_document_matches_rfc_7644_example() {
        // RFC 7644 §3.12: the 409 example, status as a string.
        let e = ScimError::with_type(
            409,
            ScimType::Uniqueness,
            "One or more of the attribute values are already in use or are reserved.",
        );
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("valid JSON");
        assert_eq!(v["schemas"][0], urn::ERROR);
        assert_eq!(v["status"], "409");
        assert_eq!(v["scimType"], "uniqueness");
    }

    #[test]
    fn scim_type_is_omitted_when_absent() {
        let v: serde_json::Value =
            serde_json::from_slice(&ScimError::new(404, "no such user").to_json()).expect("json");
        assert!(v.get("scimType").is_none());
        assert_eq!(v["detail"], "no such user");
    }
}
