//! The app's extension schemas through the running proxy: what its `/Schemas` announces, or a
//! tenant's schema files, types and checks the custom extension attributes IdPs send (Entra's
//! `urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User`), and an extension no
//! one described is still left to the app.

use serde_json::{json, Value};

use crate::support::*;

const URN: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

/// The extension as RFC 7643 §7 describes a schema.
fn custom_schema() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": URN,
        "name": "CustomExtension",
        "attributes": [
            {"name": "isContractor", "type": "boolean", "multiValued": false,
             "required": false, "mutability": "readWrite", "returned": "default"},
            {"name": "level", "type": "integer", "multiValued": false}
        ]
    })
}

fn list_of(resources: Vec<Value>) -> String {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": resources.len(),
        "Resources": resources
    })
    .to_string()
}

fn script(method: &'static str, path: &str, status: u16, body: String) -> Script {
    Script {
        method,
        path: path.into(),
        status,
        content_type: "application/scim+json",
        body,
    }
}

fn user() -> String {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "1", "userName": "bjensen"})
        .to_string()
}

/// Entra's PATCH of a custom extension attribute: a string boolean (QUIRKS E2).
fn patch_of(attribute: &str, value: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": format!("{URN}:{attribute}"), "value": value}]
    })
}

/// A proxy with one Entra tenant in front of an app that answers `scripts`.
async fn entra_in_front_of(scripts: Vec<Script>) -> (Proxy, Seen) {
    let (app, seen) = scripted_upstream(scripts).await;
    let config = format!(
        "{}{}",
        server(""),
        complete_app_tenant(app, "idp = \"entra\"")
    );
    (Proxy::start(&config).await, seen)
}

async fn send_patch(proxy: &Proxy, body: &Value) -> reqwest::Response {
    client()
        .patch(proxy.url("/e/Users/1"))
        .bearer_auth("tok")
        .json(body)
        .send()
        .await
        .unwrap()
}

fn patches_seen(seen: &Seen) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(m, _, _)| m == "PATCH")
        .map(|(_, _, body)| serde_json::from_str(body).unwrap())
        .collect()
}

#[tokio::test]
async fn the_apps_own_schemas_type_and_check_its_extension_attributes() {
    let (proxy, seen) = entra_in_front_of(vec![
        script(
            "GET",
            "/scim/v2/Schemas",
            200,
            list_of(vec![custom_schema()]),
        ),
        script("PATCH", "/scim/v2/Users/1", 200, user()),
    ])
    .await;

    let resp = send_patch(&proxy, &patch_of("isContractor", json!("False"))).await;
    assert_eq!(resp.status(), 200);
    let resp = send_patch(&proxy, &patch_of("level", json!("3"))).await;
    assert_eq!(resp.status(), 200);
    let sent = patches_seen(&seen);
    assert_eq!(sent[0]["Operations"][0]["value"], json!(false));
    assert_eq!(sent[0]["Operations"][0]["op"], "replace");
    assert_eq!(sent[1]["Operations"][0]["value"], json!(3));

    // What the app's schema cannot hold is refused before it reaches the app, naming the
    // attribute and never the value.
    let resp = send_patch(&proxy, &patch_of("isContractor", json!("perhaps"))).await;
    let err = scim_error(resp, 400).await;
    assert_eq!(err["scimType"], "invalidValue");
    let detail = err["detail"].as_str().unwrap();
    assert!(detail.contains("isContractor"), "{detail}");
    assert!(!detail.contains("perhaps"), "{detail}");
    let resp = send_patch(&proxy, &patch_of("shoeSize", json!(44))).await;
    let err = scim_error(resp, 400).await;
    assert_eq!(err["scimType"], "invalidPath");
    assert_eq!(
        patches_seen(&seen).len(),
        2,
        "no refused PATCH reached the app"
    );

    // A POST's extension object is typed the same way.
    let post = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", URN],
        "userName": "ajones", URN: {"isContractor": "True"}
    });
    let resp = client()
        .post(proxy.url("/e/Users"))
        .bearer_auth("tok")
        .json(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        404,
        "the script has no POST; the app answered"
    );
    let posted: Value = {
        let seen = seen.lock().unwrap();
        let (_, _, body) = seen.iter().find(|(m, _, _)| m == "POST").unwrap();
        serde_json::from_str(body).unwrap()
    };
    assert_eq!(posted[URN]["isContractor"], json!(true));

    let reads = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, pq, _)| m == "GET" && pq.ends_with("/Schemas"))
        .count();
    assert_eq!(reads, 1, "the app's schemas are read once and kept");
}

#[tokio::test]
async fn a_tenants_schema_files_describe_an_app_without_schemas() {
    let (app, seen) =
        scripted_upstream(vec![script("PATCH", "/scim/v2/Users/1", 200, user())]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("custom.json"), custom_schema().to_string()).unwrap();
    let config = format!(
        "{}{}",
        server(""),
        complete_app_tenant(app, "idp = \"entra\"\nschemas = [\"custom.json\"]")
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let resp = send_patch(&proxy, &patch_of("isContractor", json!("True"))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        patches_seen(&seen)[0]["Operations"][0]["value"],
        json!(true)
    );
    let resp = send_patch(&proxy, &patch_of("level", json!("high"))).await;
    scim_error(resp, 400).await;
}

#[tokio::test]
async fn an_extension_no_one_described_is_left_to_the_app() {
    let (proxy, seen) =
        entra_in_front_of(vec![script("PATCH", "/scim/v2/Users/1", 200, user())]).await;
    // The app has no /Schemas (404): nothing is known of the extension.
    let resp = send_patch(&proxy, &patch_of("isContractor", json!("perhaps"))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        patches_seen(&seen)[0]["Operations"][0]["value"],
        json!("perhaps")
    );
}

#[tokio::test]
async fn check_names_a_schema_file_that_is_not_a_schema() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), r#"[{"name": "no id"}]"#).unwrap();
    let path = dir.path().join("scimgate.toml");
    let config = format!(
        "{}{}schemas = [\"bad.json\", \"missing.json\"]\n",
        server(""),
        tenant("t", "memory:", "tok")
    );
    std::fs::write(&path, config).unwrap();
    let (code, _, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("bad.json") && err.contains("schema 1"),
        "{err}"
    );
    assert!(err.contains("missing.json"), "{err}");
}

#[test]
fn rules_test_takes_the_apps_schema() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("custom.json");
    std::fs::write(&schema, list_of(vec![custom_schema()])).unwrap();
    let request = dir.path().join("patch.json");
    let body = json!({"method": "PATCH", "path": "/Users/1", "body": patch_of("isContractor", json!("False"))});
    std::fs::write(&request, body.to_string()).unwrap();
    let args = |with_schema: bool| {
        let mut a = vec!["rules", "test", "--pack", "entra"];
        if with_schema {
            a.extend(["--schema", schema.to_str().unwrap()]);
        }
        a.push(request.to_str().unwrap());
        run_cli(&a)
    };
    let (code, out, _) = args(true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"value\": false"), "{out}");
    let (code, out, _) = args(false);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"value\": \"False\""), "{out}");
}

/// The core schema holds a PATCH to the attributes it has, whatever came before in the same
/// request: an operation whose filter finds nothing in the check's made-up resource does not
/// end the check (it used to, and let what followed through unjudged).
#[tokio::test]
async fn a_patch_naming_an_attribute_the_core_schema_lacks_never_reaches_the_app() {
    let (proxy, seen) = entra_in_front_of(vec![
        script("GET", "/scim/v2/Schemas", 200, list_of(vec![])),
        script("PATCH", "/scim/v2/Users/1", 200, user()),
    ])
    .await;
    let work_email = json!({"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@example.com"});
    let refused = [
        json!({"op": "Replace", "path": "shoeSize", "value": "44"}),
        json!({"op": "Add", "path": "name.middle", "value": "J"}),
        json!({"op": "Replace", "value": {"displayName": "B", "shoeSize": 44}}),
        json!({"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": {"department": "Tours", "badge": "7"}}),
    ];
    for op in refused {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [work_email, op]});
        let err = scim_error(send_patch(&proxy, &body).await, 400).await;
        assert_eq!(err["scimType"], "invalidPath", "{err}");
        assert!(
            err["detail"]
                .as_str()
                .unwrap()
                .contains("unknown attribute"),
            "{err}"
        );
    }
    assert!(
        patches_seen(&seen).is_empty(),
        "a refused PATCH reached the app"
    );
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [work_email, {"op": "Add", "path": "name.middleName", "value": "J"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": {"department": "Tours"}}]});
    assert_eq!(send_patch(&proxy, &body).await.status(), 200);
    assert_eq!(patches_seen(&seen).len(), 1);
}
