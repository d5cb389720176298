//! The IdP request vectors (`tests/fixtures/idp/vectors.json`, from the quirk catalogue: each
//! raw request as an IdP sends it, and its RFC-clean form) through the running proxy to the
//! memory store: a tenant with `idp = "auto"` gets the raw request, a tenant without a pack
//! gets the normalized one, and both must answer alike and end in the same stored resource.

use serde_json::{json, Value};

use crate::support::*;

fn vectors() -> Vec<Value> {
    let text = include_str!("../fixtures/idp/vectors.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["request_vectors"].as_array().unwrap().clone()
}

fn config() -> String {
    format!(
        "{}{}idp = \"auto\"\n{}",
        server(""),
        tenant("raw", "memory:", "tok"),
        tenant("ref", "memory:", "tok")
    )
}

/// `Users` or `Groups`, and the id, from a vector's path (`/scim/v2/Users/5171a35d…`).
fn target(path: &str) -> (&'static str, Option<String>) {
    let segs: Vec<&str> = path.split('/').collect();
    let at = segs
        .iter()
        .rposition(|s| *s == "Users" || *s == "Groups")
        .expect("a Users or Groups path");
    let kind = if segs[at] == "Users" {
        "Users"
    } else {
        "Groups"
    };
    (kind, segs.get(at + 1).map(|s| s.to_string()))
}

/// The member ids a normalized request removes one by one: the seed group has them.
fn removed_members(body: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for op in body["Operations"].as_array().into_iter().flatten() {
        if let Some(rest) = op["path"]
            .as_str()
            .and_then(|p| p.strip_prefix("members[value eq \""))
        {
            ids.push(rest.trim_end_matches("\"]").to_owned());
        }
    }
    ids
}

/// The resource a PATCH or PUT vector applies to, made in `tenant`; returns its id.
async fn seed(c: &reqwest::Client, proxy: &Proxy, tenant: &str, kind: &str, v: &Value) -> String {
    let mut doc = match kind {
        "Users" => {
            let name = format!("seed-{}@example.com", v["id"].as_str().unwrap());
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
        }
        _ => {
            let members: Vec<Value> = removed_members(&v["normalized"]["body"])
                .into_iter()
                .map(|id| json!({"value": id}))
                .collect();
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": v["id"], "members": members})
        }
    };
    if let Some(Value::Object(pre)) = v.get("precondition_state") {
        for (k, val) in pre {
            doc[k] = val.clone();
        }
    }
    let resp = c
        .post(proxy.url(&format!("/{tenant}/{kind}")))
        .bearer_auth("tok")
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}: seeding {tenant}", v["id"]);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends one side of a vector to `tenant`, on the seeded resource; the status and what is
/// stored afterwards (without server-assigned members).
async fn send(
    c: &reqwest::Client,
    proxy: &Proxy,
    tenant: &str,
    side: &Value,
    seeded: Option<&str>,
) -> (u16, Value) {
    let (kind, _) = target(side["path"].as_str().unwrap());
    let url = match seeded {
        Some(id) => proxy.url(&format!("/{tenant}/{kind}/{id}")),
        None => proxy.url(&format!("/{tenant}/{kind}")),
    };
    let method = reqwest::Method::from_bytes(side["method"].as_str().unwrap().as_bytes()).unwrap();
    let mut body = side["body"].clone();
    if let (Some(id), Some(obj)) = (seeded, body.as_object_mut()) {
        if obj.contains_key("id") {
            obj.insert("id".into(), Value::String(id.to_owned()));
        }
    }
    let mut req = c.request(method, url).bearer_auth("tok");
    // The raw side carries the IdP's own headers (User-Agent, Content-Type); the token is ours.
    if let Some(Value::Object(headers)) = side.get("headers") {
        for (k, v) in headers {
            if !k.eq_ignore_ascii_case("authorization") {
                req = req.header(k.as_str(), v.as_str().unwrap());
            }
        }
    }
    let resp = req
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    let id = seeded
        .map(str::to_owned)
        .or_else(|| answer["id"].as_str().map(str::to_owned));
    let stored = match id {
        Some(id) => get_json(c, proxy.url(&format!("/{tenant}/{kind}/{id}"))).await,
        None => answer,
    };
    (status, comparable(stored))
}

fn comparable(mut doc: Value) -> Value {
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("id");
        obj.remove("meta");
    }
    sort_members(doc)
}

fn sort_members(mut doc: Value) -> Value {
    if let Some(Value::Array(items)) = doc.get_mut("members") {
        items.sort_by_key(|m| m["value"].as_str().unwrap_or_default().to_owned());
    }
    doc
}

/// Vectors whose normalized form uses an extension schema the memory store does not define:
/// the store refuses both sides alike, which is all that can be compared.
const NEEDS_EXTENSION_SCHEMA: [&str; 1] = ["entra-13-custom-ext-missing-from-schemas"];

#[tokio::test]
async fn every_request_vector_through_the_proxy_ends_as_its_normalized_form() {
    let proxy = Proxy::start(&config()).await;
    let c = client();
    let mut failures = Vec::new();
    for v in vectors() {
        let name = v["id"].as_str().unwrap().to_owned();
        let (kind, id) = target(v["request"]["path"].as_str().unwrap());
        let (raw_id, ref_id) = match id {
            Some(_) => (
                Some(seed(&c, &proxy, "raw", kind, &v).await),
                Some(seed(&c, &proxy, "ref", kind, &v).await),
            ),
            None => (None, None),
        };
        let raw = send(&c, &proxy, "raw", &v["request"], raw_id.as_deref()).await;
        let mut normalized = v["normalized"].clone();
        normalized["path"] = v["request"]["path"].clone();
        let reference = send(&c, &proxy, "ref", &normalized, ref_id.as_deref()).await;
        let refused_alike = NEEDS_EXTENSION_SCHEMA.contains(&name.as_str()) && reference.0 == 400;
        if !(200..300).contains(&reference.0) && !refused_alike {
            failures.push(format!(
                "{name}: the normalized form itself was refused: {reference:?}"
            ));
        } else if raw != reference {
            failures.push(format!("{name}:\n  raw  {raw:?}\n  want {reference:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn auto_detection_names_the_pack_of_each_idp_that_says_who_it_is() {
    let proxy = Proxy::start(&config()).await;
    let c = client();
    let cases = [
        ("Okta SCIM Client 1.0.0", "okta"),
        ("Google-Auto-Provisioning", "google"),
        ("curl/8.0", "generic"),
    ];
    for (i, (agent, _)) in cases.iter().enumerate() {
        let resp = c
            .get(proxy.url("/raw/Users?filter=userName%20eq%20%22nobody%22"))
            .bearer_auth("tok")
            .header("user-agent", *agent)
            .header("x-request-id", format!("detect-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    for (i, (agent, pack)) in cases.iter().enumerate() {
        let needle = format!("\"request_id\":\"detect-{i}\"");
        proxy.wait_for_log(&needle, 1).await;
        let line = proxy
            .logs()
            .lines()
            .find(|l| l.contains(&needle) && l.contains("\"message\":\"request\""))
            .map(str::to_owned)
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["pack"], *pack, "{agent}: {line}");
    }
}

/// What reaches an HTTP app: a body no rule changes arrives byte for byte as the IdP sent it
/// (spacing and key order included); one a rule changed arrives normalized, filter included.
#[tokio::test]
async fn an_untouched_body_is_forwarded_as_its_bytes_and_a_fixed_one_normalized() {
    let echo = echo_upstream().await;
    let config = format!(
        "{}{}",
        server(""),
        complete_app_tenant(echo, "idp = \"entra\"")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let clean = "{ \"schemas\" : [\"urn:ietf:params:scim:api:messages:2.0:PatchOp\"],\n  \"Operations\":[{\"path\":\"nickName\",\"op\":\"add\",\"value\":\"Babs\"}] }";
    let legacy = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}"#;
    let send = |body: &'static str| {
        c.patch(proxy.url("/e/Users/1"))
            .bearer_auth("tok")
            .header("content-type", "application/scim+json")
            .body(body)
            .send()
    };
    let echoed = |v: Value| v["body"].as_str().unwrap().to_owned();
    let r = send(clean).await.unwrap();
    let first = echoed(r.json().await.unwrap());
    let r = send(legacy).await.unwrap();
    let second: Value = serde_json::from_str(&echoed(r.json().await.unwrap())).unwrap();
    assert_eq!(first, clean);
    assert_eq!(
        second["Operations"][0],
        json!({"op": "replace", "path": "active", "value": false})
    );
    let r = c
        .get(proxy.url("/e/Users?filter=externalId%20eq%20jyoung&count=2"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let query = v["query"].as_str().unwrap();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert!(
        pairs.contains(&("filter".into(), "externalId eq \"jyoung\"".into())),
        "{query}"
    );
    assert!(pairs.contains(&("count".into(), "2".into())), "{query}");
}

/// What no rule can make valid never reaches the app: it is refused with the store's error,
/// which names the attribute and not its value.
#[tokio::test]
async fn a_request_the_pack_cannot_make_valid_is_refused_before_the_app() {
    let echo = echo_upstream().await;
    let config = format!(
        "{}{}",
        server(""),
        complete_app_tenant(echo, "idp = \"generic\"")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let bad_patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": "sometimes"}]});
    let r = c
        .patch(proxy.url("/e/Users/1"))
        .bearer_auth("tok")
        .json(&bad_patch)
        .send()
        .await
        .unwrap();
    let e = scim_error(r, 400).await;
    assert!(e["detail"].as_str().unwrap().contains("active"), "{e}");
    assert!(!e["detail"].as_str().unwrap().contains("sometimes"), "{e}");
    let bad_user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": {"given": "secret-ish"}});
    let r = c
        .post(proxy.url("/e/Users"))
        .bearer_auth("tok")
        .json(&bad_user)
        .send()
        .await
        .unwrap();
    let e = scim_error(r, 400).await;
    assert_eq!(e["scimType"], "invalidValue", "{e}");
    assert!(!e.to_string().contains("secret-ish"), "{e}");
    // A valid one still goes through to the app, normalized.
    let fine = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b", "active": "True"});
    let r = c
        .post(proxy.url("/e/Users"))
        .bearer_auth("tok")
        .json(&fine)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.unwrap();
    let forwarded: Value = serde_json::from_str(echoed["body"].as_str().unwrap()).unwrap();
    assert_eq!(forwarded["active"], true);
}

/// A Bulk the app does itself is forwarded as one request, but each operation's data is
/// normalized as the request it stands for, and checked against the schema.
#[tokio::test]
async fn a_bulk_the_app_does_itself_has_each_operation_normalized_and_checked() {
    let bulk_response = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"], "Operations": []});
    let (app, seen) = scripted_upstream(vec![Script {
        method: "POST",
        path: "/scim/v2/Bulk".into(),
        status: 200,
        content_type: "application/scim+json",
        body: bulk_response.to_string(),
    }])
    .await;
    let config = format!(
        "{}{}",
        server(""),
        complete_app_tenant(app, "idp = \"entra\"")
    );
    let proxy = Proxy::start(&config).await;
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "q1", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b@example.com", "active": "True"}},
            {"method": "PATCH", "path": "/Users/2819c223", "data": {
                "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}},
            {"method": "DELETE", "path": "/Users/9"}
        ]
    });
    let resp = client()
        .post(proxy.url("/e/Bulk"))
        .bearer_auth("tok")
        .json(&bulk)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent: Value = {
        let seen = app_requests(&seen);
        assert_eq!(seen.len(), 1, "one request: the app does Bulk");
        serde_json::from_str(&seen[0].2).unwrap()
    };
    let ops = &sent["Operations"];
    assert_eq!(ops[0]["data"]["active"], true);
    assert_eq!(
        ops[1]["data"],
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]})
    );
    assert_eq!(ops[2], bulk["Operations"][2]);

    // An operation no rule can make valid refuses the Bulk before the app sees it.
    let bad = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "c@example.com"}},
            {"method": "POST", "path": "/Users", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "d@example.com", "shoeSize": 44}}
        ]
    });
    let resp = client()
        .post(proxy.url("/e/Bulk"))
        .bearer_auth("tok")
        .json(&bad)
        .send()
        .await
        .unwrap();
    let err = scim_error(resp, 400).await;
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.contains("Operations[1]") && detail.contains("shoeSize"),
        "{detail}"
    );
    assert_eq!(
        app_requests(&seen).len(),
        1,
        "the refused Bulk never reached the app"
    );
}

#[tokio::test]
async fn entras_feature_flags_do_not_reach_the_app() {
    let (app, seen) = scripted_upstream(vec![Script {
        method: "GET",
        path: "/scim/v2/Users".into(),
        status: 200,
        content_type: "application/scim+json",
        body: json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 0, "Resources": []})
        .to_string(),
    }])
    .await;
    let config = format!(
        "{}{}",
        server(""),
        complete_app_tenant(app, "idp = \"entra\"")
    );
    let proxy = Proxy::start(&config).await;
    for query in [
        "?aadOptscim062020",
        "?filter=userName%20eq%20%22bjensen%22&aadOptscim062020",
        "?AZUREADSCIMPATCH2017=1",
    ] {
        let resp = client()
            .get(proxy.url(&format!("/e/Users{query}")))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{query}");
    }
    let targets: Vec<String> = app_requests(&seen)
        .into_iter()
        .map(|(_, pq, _)| pq)
        .collect();
    assert_eq!(
        targets,
        [
            "/scim/v2/Users",
            "/scim/v2/Users?filter=userName%20eq%20%22bjensen%22",
            "/scim/v2/Users"
        ]
    );
}
