//! Burst absorption through the running proxy: a first sync far above a tenant's rate arrives
//! whole, the app never has more than the caps allow at once, overflow is refused with a
//! Retry-After a client can honour, and failed authentications are throttled per address.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

fn user(i: usize) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("user{i}@example.com"), "externalId": format!("e{i}")})
}

async fn create(c: &reqwest::Client, url: &str, i: usize) -> reqwest::Response {
    c.post(url)
        .bearer_auth("tok")
        .json(&user(i))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_burst_above_the_rate_waits_its_turn_and_every_user_is_created_once() {
    let config = format!(
        "{}{}limits = {{ rate_per_s = 200, burst = 10, max_wait = \"10s\", max_in_flight = 4 }}\n",
        // 300 connections at once from one address, as from IdPs behind one NAT.
        server("max_connections_per_address = 1000"),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let url = proxy.url("/t/Users");
    let all = (0..300).map(|i| {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move { create(&c, &url, i).await.status().as_u16() })
    });
    let statuses: Vec<u16> = futures_join(all).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let list = get_json(&c, proxy.url("/t/Users?count=1")).await;
    assert_eq!(list["totalResults"], 300);
}

/// Starts every task (the iterator is lazy), then joins them in order.
async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let tasks: Vec<_> = tasks.collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn overflow_gets_429_with_a_retry_after_that_a_client_can_honour() {
    let config = format!(
        "{}{}limits = {{ rate_per_s = 20, burst = 2, max_wait = \"200ms\", queue = 3 }}\n",
        server(""),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let url = proxy.url("/t/Users");
    let all = (0..40).map(|i| {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move {
            let mut refused = 0;
            loop {
                let resp = create(&c, &url, i).await;
                match resp.status().as_u16() {
                    201 => return refused,
                    429 => {
                        let after: u64 = resp.headers()["retry-after"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        assert!((1..=60).contains(&after), "Retry-After {after}");
                        let err: Value = resp.json().await.unwrap();
                        assert_eq!(
                            err["schemas"][0],
                            "urn:ietf:params:scim:api:messages:2.0:Error"
                        );
                        assert_eq!(err["status"], "429");
                        refused += 1;
                        tokio::time::sleep(Duration::from_secs(after)).await;
                    }
                    other => panic!("unexpected {other}"),
                }
            }
        })
    });
    let refusals: usize = futures_join(all).await.into_iter().sum();
    assert!(
        refusals > 0,
        "40 creates at once against burst 2 and a queue of 3 must overflow"
    );
    let list = get_json(&c, proxy.url("/t/Users?count=1")).await;
    assert_eq!(
        list["totalResults"], 40,
        "a client that honours Retry-After creates them all"
    );
}

#[tokio::test]
async fn the_app_never_has_more_calls_than_the_caps_allow() {
    let (app, peak) = counting_upstream(Duration::from_millis(30)).await;
    let supports = "supports = { patch = true, filter = true, sort = true, bulk = true, etag = false, discovery = true }";
    let t = |id: &str, extra: &str, app_cap: &str| {
        format!(
            "[[tenant]]\nid = \"{id}\"\nroute = {{ path_prefix = \"/{id}\" }}\n{extra}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", {app_cap} {supports} }}\n",
            hash("tok")
        )
    };
    // One tenant capped at 3 in flight.
    let proxy = Proxy::start(&format!(
        "{}{}",
        server(""),
        t(
            "a",
            "limits = { rate_per_s = 10000, max_in_flight = 3 }",
            ""
        )
    ))
    .await;
    let c = client();
    let all = (0..40).map(|i| {
        let (c, url) = (c.clone(), proxy.url("/a/Users"));
        tokio::spawn(async move { create(&c, &url, i).await.status().as_u16() })
    });
    assert!(futures_join(all).await.iter().all(|s| *s == 201));
    let most = peak.swap(0, Ordering::SeqCst);
    assert!((1..=3).contains(&most), "the app had {most} at once");
    drop(proxy);

    // Two tenants fronting one app that allows 2 at once between them.
    let both = format!(
        "{}{}{}",
        server(""),
        t("b", "", "max_in_flight = 2,"),
        t("c", "", "max_in_flight = 2,")
    );
    let proxy = Proxy::start(&both).await;
    let all = (0..40).map(|i| {
        let (c, url) = (
            c.clone(),
            proxy.url(if i % 2 == 0 { "/b/Users" } else { "/c/Users" }),
        );
        tokio::spawn(async move { create(&c, &url, i).await.status().as_u16() })
    });
    let statuses = futures_join(all).await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 503),
        "{statuses:?}"
    );
    let most = peak.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "the shared app had {most} at once");
}

#[tokio::test]
async fn one_tenants_burst_does_not_hold_up_another() {
    let config = format!(
        "{}{}limits = {{ rate_per_s = 1, burst = 1, max_wait = \"30s\", queue = 100 }}\n{}",
        server(""),
        tenant("slow", "memory:", "tok"),
        tenant("other", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    // Twenty creates queue up behind a rate of one per second.
    let queued: Vec<_> = (0..20)
        .map(|i| {
            let (c, url) = (c.clone(), proxy.url("/slow/Users"));
            tokio::spawn(async move { create(&c, &url, i).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile the other tenant is served; `LIMIT` bounds the wait far below the queue's.
    let resp = tokio::time::timeout(LIMIT, create(&c, &proxy.url("/other/Users"), 1)).await;
    assert_eq!(
        resp.expect("served while the other tenant queues").status(),
        201
    );
    let done = queued.iter().filter(|t| t.is_finished()).count();
    assert!(done < 20, "the slow tenant's queue was still waiting");
    for t in queued {
        t.abort();
    }
}

#[tokio::test]
async fn failed_authentications_are_throttled_per_address() {
    let config = format!(
        "{}{}",
        server("auth_throttle = { burst = 3, rate_per_s = 0.01 }"),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    for _ in 0..3 {
        let resp = c
            .get(proxy.url("/t/Users"))
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let resp = c
        .get(proxy.url("/t/Users"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(after >= 1);
    // Even the right token waits: the address is guessing.
    let resp = c
        .get(proxy.url("/t/Users"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
}

#[tokio::test]
async fn bad_limits_fail_the_check_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scimgate.toml");
    let config = format!(
        "{}{}limits = {{ rate_per_s = -1, burst = 0 }}\n",
        server(""),
        tenant("t", "memory:", "tok")
    );
    std::fs::write(&path, config).unwrap();
    let (code, _, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("limits.rate_per_s") && err.contains("limits.burst"),
        "{err}"
    );
}
