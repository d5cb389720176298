//! Tests of the discovery documents against the shapes of RFC 7643 §5-§8.7.

use serde_json::Value;

use super::*;

const BASE: &str = "https://example.com/v2/";

fn caps() -> Capabilities {
    Capabilities {
        patch: true,
        filter: true,
        max_results: 200,
        sort: false,
        etag: true,
        change_password: false,
        bulk: true,
        bulk_max_operations: 1000,
        bulk_max_payload_size: 1_048_576,
        authentication_schemes: vec![AuthenticationScheme::oauth_bearer_token()],
    }
}

#[test]
fn service_provider_config_matches_rfc_7643_example_shape() {
    // RFC 7643 §8.5: every capability is an object with "supported".
    let spc = service_provider_config(&caps(), BASE);
    assert_eq!(spc["schemas"][0], urn::SERVICE_PROVIDER_CONFIG);
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["maxOperations"], 1000);
    assert_eq!(spc["bulk"]["maxPayloadSize"], 1_048_576);
    assert_eq!(spc["filter"]["maxResults"], 200);
    assert_eq!(spc["sort"]["supported"], false);
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(
        spc["meta"]["location"],
        "https://example.com/v2/ServiceProviderConfig"
    );
    assert_eq!(spc["meta"]["resourceType"], "ServiceProviderConfig");
}

#[test]
fn user_resource_type_names_the_enterprise_extension() {
    // RFC 7643 §8.6.
    let rt = resource_type("User", BASE).expect("User");
    assert_eq!(rt["endpoint"], "/Users");
    assert_eq!(rt["schema"], urn::USER);
    assert_eq!(rt["schemaExtensions"][0]["schema"], urn::ENTERPRISE_USER);
    assert_eq!(rt["schemaExtensions"][0]["required"], false);
    assert_eq!(
        rt["meta"]["location"],
        "https://example.com/v2/ResourceTypes/User"
    );
    let group = resource_type("Group", BASE).expect("Group");
    assert_eq!(group["schemaExtensions"], Value::Array(vec![]));
    assert!(resource_type("Device", BASE).is_none());
    assert_eq!(resource_types(BASE).len(), 2);
}

#[test]
fn schemas_are_listed_with_locations() {
    let all = schemas(BASE);
    let ids: Vec<&str> = all.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            urn::USER,
            urn::GROUP,
            urn::ENTERPRISE_USER,
            urn::SERVICE_PROVIDER_CONFIG,
            urn::RESOURCE_TYPE,
            urn::SCHEMA
        ]
    );
    let user = schema(urn::USER, BASE).expect("User schema");
    assert_eq!(user["meta"]["resourceType"], "Schema");
    assert_eq!(
        user["meta"]["location"],
        format!("https://example.com/v2/Schemas/{}", urn::USER)
    );
    assert!(schema("urn:nope", BASE).is_none());
}

#[test]
fn every_published_attribute_states_its_properties() {
    // RFC 7643 §8.7.1 states each characteristic explicitly; so do the bundled files.
    fn check(attr: &Value) {
        for key in [
            "name",
            "type",
            "multiValued",
            "required",
            "mutability",
            "returned",
        ] {
            assert!(attr.get(key).is_some(), "{} lacks {key}", attr["name"]);
        }
        if attr["type"] != "complex" {
            assert!(attr.get("caseExact").is_some() && attr.get("uniqueness").is_some());
        }
        attr.get("subAttributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .for_each(check);
    }
    for doc in schemas(BASE) {
        doc["attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .for_each(check);
    }
}

#[test]
fn user_schema_has_the_rfc_attributes() {
    let user = schema_def(urn::USER).expect("User");
    for name in [
        "userName",
        "name",
        "emails",
        "addresses",
        "groups",
        "x509Certificates",
    ] {
        assert!(user.attribute(name).is_some(), "{name}");
    }
    assert!(schema_def(urn::GROUP)
        .and_then(|g| g.attribute("displayName"))
        .is_some_and(|a| a.required));
}

#[test]
fn join_accepts_bases_with_and_without_slash() {
    assert_eq!(join("https://h/scim", "/Users"), "https://h/scim/Users");
    assert_eq!(join("https://h/scim/", "/Users"), "https://h/scim/Users");
}
