//! The embedded memory upstream through the proxy: the quickstart's curl session.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn create_read_list_and_delete_a_user() {
    let proxy = Proxy::start(&format!(
        "{}{}",
        server(""),
        tenant("demo", "memory:", "tok")
    ))
    .await;
    let c = client();
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
    });
    let resp = c
        .post(proxy.url("/demo/Users"))
        .bearer_auth("tok")
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let created: serde_json::Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, proxy.url(&format!("/demo/Users/{id}")));
    assert_eq!(created["meta"]["location"], location.as_str());

    let got: serde_json::Value = get_json(&c, &location).await;
    assert_eq!(got["userName"], "bjensen@example.com");

    let again = c
        .post(proxy.url("/demo/Users"))
        .bearer_auth("tok")
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(scim_error(again, 409).await["scimType"], "uniqueness");

    let list: serde_json::Value =
        get_json(&c, proxy.url("/demo/Users?startIndex=1&count=10")).await;
    assert_eq!(
        list["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    assert_eq!(list["totalResults"], 1);

    assert_eq!(
        c.delete(&location)
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    scim_error(
        c.get(&location).bearer_auth("tok").send().await.unwrap(),
        404,
    )
    .await;
}

#[tokio::test]
async fn discovery_is_served_by_the_memory_upstream() {
    let proxy = Proxy::start(&format!(
        "{}{}",
        server(""),
        tenant("demo", "memory:", "tok")
    ))
    .await;
    let c = client();
    let spc: serde_json::Value = get_json(&c, proxy.url("/demo/ServiceProviderConfig")).await;
    assert_eq!(
        spc["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    );
    let types: serde_json::Value = get_json(&c, proxy.url("/demo/ResourceTypes")).await;
    assert_eq!(types["totalResults"], 2);
    let schemas: serde_json::Value = get_json(&c, proxy.url("/demo/Schemas")).await;
    // User, Group and EnterpriseUser, plus the schemas of the discovery documents (RFC 7643 §8.7.2).
    let ids: Vec<&str> = schemas["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    for urn in [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ] {
        assert!(ids.contains(&urn), "{urn} missing from {ids:?}");
    }
}
