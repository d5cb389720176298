//! A hosted deployment's size: 10,000 tenants in one file, each with its own route, app base
//! URL and tokens. The first and the last tenant (by path and by host) reach their own app,
//! a token never opens another tenant, and a reload of the whole file keeps serving.

use std::net::SocketAddr;

use serde_json::Value;

use crate::many_tenants::{id, token, Fleet};
use crate::support::*;

/// GET `/Users/2819c223` for tenant `i` with its own token: by `/{id}` unless it is routed by
/// host, when the `Host` header names it. Returns the status and the echo upstream's answer.
async fn get_user(c: &reqwest::Client, proxy: &Proxy, i: usize, token: &str) -> (u16, Value) {
    let id = id(i);
    let req = if crate::many_tenants::routed_by_host(i) {
        c.get(proxy.url("/Users/2819c223"))
            .header(reqwest::header::HOST, format!("{id}.scim.test"))
    } else {
        c.get(proxy.url(&format!("/{id}/Users/2819c223")))
    };
    let resp = req.bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Tenant `i`'s request reached its own app, under its own base path, named as itself.
async fn reaches_its_app(c: &reqwest::Client, proxy: &Proxy, apps: &[SocketAddr], i: usize) {
    let (status, echo) = get_user(c, proxy, i, &token(i)).await;
    let id = id(i);
    assert_eq!(status, 200, "tenant {id}: {echo}");
    assert_eq!(echo["path"], format!("/scim/{id}/Users/2819c223"));
    assert_eq!(echo["headers"]["x-scimgate-tenant"], id.as_str());
    let app = apps[i % apps.len()];
    assert_eq!(echo["headers"]["host"], app.to_string(), "tenant {id}");
}

#[tokio::test]
async fn ten_thousand_tenants_each_reach_their_own_app_before_and_after_a_reload() {
    let apps = [echo_upstream().await, echo_upstream().await];
    let mut fleet = Fleet {
        tenants: 10_000,
        apps: apps.iter().map(SocketAddr::to_string).collect(),
    };
    let proxy = Proxy::start(&fleet.config()).await;
    let c = client();
    // The first tenant, the last one routed by path and the last one routed by host.
    let (first, last, last_host) = (0, 9_999, 9_998);
    assert!(crate::many_tenants::routed_by_host(last_host));
    for i in [first, last, last_host] {
        reaches_its_app(&c, &proxy, &apps, i).await;
    }
    // Another tenant's token opens nothing here, whichever end of the file it comes from.
    let (status, _) = get_user(&c, &proxy, last, &token(first)).await;
    assert_eq!(status, 401);
    let (status, _) = get_user(&c, &proxy, first, &token(last)).await;
    assert_eq!(status, 401);

    // The whole file again with one tenant more: the new one is served, the others still are.
    fleet.tenants += 1;
    proxy.reload_with(&fleet.config()).await;
    for i in [first, last, last_host, 10_000] {
        reaches_its_app(&c, &proxy, &apps, i).await;
    }
    let reloaded = proxy
        .log_json()
        .into_iter()
        .rfind(|v| v["message"] == "configuration reloaded")
        .expect("a reload is logged");
    assert_eq!(reloaded["tenants"], 10_001);
}
