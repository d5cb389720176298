//! The discovery documents of RFC 7643 §5-§7 (ServiceProviderConfig, ResourceTypes, Schemas),
//! and the attribute definitions behind them, which filtering, projection and the readOnly
//! rules of §2.2 look up by resource type and attribute name.

mod attributes;
mod extensions;
mod info;

use serde::Serialize;
use serde_json::{json, Value};

use super::urn;

pub use attributes::{
    attribute, attribute_in, common_attributes, schema_def, split_urn, AttrType, AttributeDef,
    Mutability, Returned, SchemaDef, Uniqueness,
};
pub use extensions::Extensions;
pub use info::SchemaInfo;

/// A resource type (RFC 7643 §6): its endpoint, core schema and schema extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceTypeDef {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static str,
    pub extensions: &'static [&'static str],
}

impl ResourceTypeDef {
    /// Whether `urn` is the type's core schema or one of its extensions, in any case.
    pub fn has_schema(&self, urn: &str) -> bool {
        std::iter::once(&self.schema)
            .chain(self.extensions)
            .any(|u| u.eq_ignore_ascii_case(urn))
    }
}

pub const USER: ResourceTypeDef = ResourceTypeDef {
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: urn::USER,
    extensions: &[urn::ENTERPRISE_USER],
};

pub const GROUP: ResourceTypeDef = ResourceTypeDef {
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: urn::GROUP,
    extensions: &[],
};

pub const RESOURCE_TYPES: [ResourceTypeDef; 2] = [USER, GROUP];

/// Resource type names compare case-insensitively, like the names in a filter.
pub fn resource_type_def(name: &str) -> Option<&'static ResourceTypeDef> {
    RESOURCE_TYPES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
}

/// One authentication scheme announced in the ServiceProviderConfig (RFC 7643 §5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationScheme {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_uri: Option<String>,
    pub primary: bool,
}

impl AuthenticationScheme {
    /// Bearer tokens (RFC 6750), the scheme IdPs use for SCIM.
    pub fn oauth_bearer_token() -> Self {
        Self {
            kind: "oauthbearertoken".into(),
            name: "OAuth Bearer Token".into(),
            description: "Authentication with an OAuth 2.0 bearer token".into(),
            spec_uri: Some("https://www.rfc-editor.org/info/rfc6750".into()),
            primary: true,
        }
    }

    /// A user name and password in `Authorization: Basic` (RFC 7617).
    pub fn http_basic() -> Self {
        Self {
            kind: "httpbasic".into(),
            name: "HTTP Basic".into(),
            description: "Authentication with a user name and password (HTTP Basic)".into(),
            spec_uri: Some("https://www.rfc-editor.org/info/rfc7617".into()),
            primary: false,
        }
    }
}

/// What a SCIM service supports; the ServiceProviderConfig is built from it (RFC 7643 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub patch: bool,
    pub filter: bool,
    /// The most resources a filtered list returns (`filter.maxResults`).
    pub max_results: usize,
    pub sort: bool,
    pub etag: bool,
    pub change_password: bool,
    pub bulk: bool,
    pub bulk_max_operations: u32,
    pub bulk_max_payload_size: u64,
    pub authentication_schemes: Vec<AuthenticationScheme>,
}

/// The ServiceProviderConfig document (RFC 7643 §5, shaped as the §8.5 example).
pub fn service_provider_config(caps: &Capabilities, base_url: &str) -> Value {
    json!({
        "schemas": [urn::SERVICE_PROVIDER_CONFIG],
        "patch": { "supported": caps.patch },
        "bulk": {
            "supported": caps.bulk,
            "maxOperations": caps.bulk_max_operations,
            "maxPayloadSize": caps.bulk_max_payload_size,
        },
        "filter": { "supported": caps.filter, "maxResults": caps.max_results },
        "changePassword": { "supported": caps.change_password },
        "sort": { "supported": caps.sort },
        "etag": { "supported": caps.etag },
        "authenticationSchemes": caps.authentication_schemes,
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": join(base_url, "/ServiceProviderConfig"),
        },
    })
}

/// Every ResourceType document (RFC 7643 §6, §8.6), in a stable order.
pub fn resource_types(base_url: &str) -> Vec<Value> {
    RESOURCE_TYPES
        .iter()
        .map(|rt| resource_type_doc(rt, base_url))
        .collect()
}

/// One ResourceType document by name (`/ResourceTypes/User`), exact name as published.
pub fn resource_type(name: &str, base_url: &str) -> Option<Value> {
    let rt = RESOURCE_TYPES.iter().find(|rt| rt.name == name)?;
    Some(resource_type_doc(rt, base_url))
}

fn resource_type_doc(rt: &ResourceTypeDef, base_url: &str) -> Value {
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|urn| json!({ "schema": urn, "required": false }))
        .collect();
    json!({
        "schemas": [urn::RESOURCE_TYPE],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": join(base_url, &format!("/ResourceTypes/{}", rt.name)),
        },
    })
}

/// Every Schema document (RFC 7643 §7): User, Group, EnterpriseUser (§8.7.1), then the
/// ServiceProviderConfig, ResourceType and Schema schemas (§8.7.2).
pub fn schemas(base_url: &str) -> Vec<Value> {
    attributes::published()
        .iter()
        .map(|(def, doc)| schema_doc(def, doc, base_url))
        .collect()
}

/// One Schema document by its URN (`/Schemas/{urn}`).
pub fn schema(urn: &str, base_url: &str) -> Option<Value> {
    let (def, doc) = attributes::published().iter().find(|(d, _)| d.id == urn)?;
    Some(schema_doc(def, doc, base_url))
}

fn schema_doc(def: &SchemaDef, doc: &Value, base_url: &str) -> Value {
    let mut doc = doc.clone();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("schemas".into(), json!([urn::SCHEMA]));
        let location = join(base_url, &format!("/Schemas/{}", def.id));
        obj.insert(
            "meta".into(),
            json!({ "resourceType": "Schema", "location": location }),
        );
    }
    doc
}

/// Joins the public base URL and a path below it, whether or not the base ends in `/`.
pub fn join(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests;
