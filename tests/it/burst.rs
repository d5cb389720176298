//! A first sync of 5,000 user creations sent far above a tenant's rate, through the proxy to
//! the memory store, to the legacy example app and to an app that counts what it receives.
//! Ignored by `cargo test` (tens of seconds); `.ci/run` runs them one at a time after the other
//! tests. `cargo test --release --test it burst -- --ignored --nocapture --test-threads 1`
//! prints the figures `BENCHMARKS.md` records.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::support::*;

const USERS: usize = 5000;
/// IdP connections at once: Okta and Entra use a few dozen; this is well above.
const SENDERS: usize = 200;
/// Every client here is 127.0.0.1, where in production each IdP has its own address: the
/// per-address cap (256 by default) would otherwise count the burst's connections, those its
/// client has not closed yet included, against the other tenant's reads.
const ONE_ADDRESS_FOR_ALL: &str = "max_connections_per_address = 4096";

fn user(i: usize) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("burst{i}@example.com")})
}

struct Outcome {
    elapsed: Duration,
    latencies: Vec<Duration>,
    refused: usize,
    other: Vec<u16>,
}

/// Sends every create, `SENDERS` at a time; a 429 is retried after its `Retry-After`.
async fn first_sync(url: &str, token: &str) -> Outcome {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let slots = Arc::new(Semaphore::new(SENDERS));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let (c, url, token, slots) = (c.clone(), url.to_owned(), token.to_owned(), slots.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let mut refused = 0;
            loop {
                let sent = Instant::now();
                let resp = c
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&user(i))
                    .send()
                    .await
                    .unwrap();
                match resp.status().as_u16() {
                    429 => {
                        let after: u64 = resp.headers()["retry-after"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        refused += 1;
                        tokio::time::sleep(Duration::from_secs(after)).await;
                    }
                    status => return (status, sent.elapsed(), refused),
                }
            }
        }));
    }
    let mut out = Outcome {
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        refused: 0,
        other: Vec::new(),
    };
    for t in tasks {
        let (status, latency, refused) = t.await.unwrap();
        out.refused += refused;
        out.latencies.push(latency);
        if status != 201 {
            out.other.push(status);
        }
    }
    out.elapsed = started.elapsed();
    out.latencies.sort();
    out
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn report(name: &str, o: &Outcome) {
    println!(
        "{name}: {USERS} creates in {:.1} s ({:.0}/s), latency p50 {:?} p99 {:?}, 429s retried {}, other statuses {}",
        o.elapsed.as_secs_f64(),
        USERS as f64 / o.elapsed.as_secs_f64(),
        pct(&o.latencies, 0.5),
        pct(&o.latencies, 0.99),
        o.refused,
        o.other.len()
    );
}

/// p99 of 200 reads of the other tenant, one after another.
async fn other_tenant_p99(proxy: &Proxy) -> Duration {
    let c = client();
    let mut times = Vec::new();
    for _ in 0..200 {
        let sent = Instant::now();
        let resp = c
            .get(proxy.url("/other/Users?count=1"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(status, 200, "{}", resp.text().await.unwrap_or_default());
        times.push(sent.elapsed());
    }
    times.sort();
    pct(&times, 0.99)
}

async fn total(proxy: &Proxy, tenant: &str) -> u64 {
    let list = get_json(&client(), proxy.url(&format!("/{tenant}/Users?count=1"))).await;
    list["totalResults"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn burst_to_the_memory_store_arrives_whole_and_the_other_tenant_is_unaffected() {
    let limits = "limits = { rate_per_s = 1000, burst = 50, max_wait = \"30s\", max_in_flight = 8, queue = 5000 }\n";
    let config = format!(
        "{}{}{limits}{}",
        server(ONE_ADDRESS_FOR_ALL),
        tenant("t", "memory:", "tok"),
        tenant("other", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let unloaded = other_tenant_p99(&proxy).await;
    let url = proxy.url("/t/Users");
    let sync = tokio::spawn(async move { first_sync(&url, "tok").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = other_tenant_p99(&proxy).await;
    let o = sync.await.unwrap();
    report("memory store, rate 1000/s", &o);
    println!("other tenant read p99: {unloaded:?} unloaded, {loaded:?} during the burst");
    assert!(o.other.is_empty(), "statuses {:?}", o.other);
    assert_eq!(
        total(&proxy, "t").await,
        USERS as u64,
        "every user created once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn burst_with_a_short_wait_is_refused_with_retry_after_and_a_client_that_honours_it_finishes()
{
    let limits = "limits = { rate_per_s = 500, burst = 20, max_wait = \"200ms\", max_in_flight = 8, queue = 100 }\n";
    let config = format!(
        "{}{}{limits}",
        server(ONE_ADDRESS_FOR_ALL),
        tenant("t", "memory:", "tok")
    );
    let proxy = Proxy::start(&config).await;
    let o = first_sync(&proxy.url("/t/Users"), "tok").await;
    report("memory store, rate 500/s, max_wait 200ms", &o);
    assert!(o.refused > 0, "the overflow is refused");
    assert!(o.other.is_empty(), "statuses {:?}", o.other);
    assert_eq!(total(&proxy, "t").await, USERS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn the_app_never_sees_more_than_the_limits() {
    let (app, peak) = counting_upstream(Duration::from_millis(2)).await;
    let config = format!(
        "{}[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nlimits = {{ rate_per_s = 1000, burst = 50, max_wait = \"30s\", max_in_flight = 8, queue = 5000 }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", supports = {{ patch = true, filter = true, sort = true, bulk = true, etag = false, discovery = true }} }}\n",
        server(ONE_ADDRESS_FOR_ALL),
        hash("tok")
    );
    let proxy = Proxy::start(&config).await;
    let o = first_sync(&proxy.url("/t/Users"), "tok").await;
    report("counting app, rate 1000/s, max_in_flight 8", &o);
    let most = peak.load(Ordering::SeqCst);
    let rate = USERS as f64 / o.elapsed.as_secs_f64();
    println!("the app had at most {most} calls at once; {rate:.0} calls/s overall");
    assert!(most <= 8, "{most} at once");
    assert!(rate <= 1000.0 + 50.0, "{rate}/s");
    assert!(o.other.is_empty(), "statuses {:?}", o.other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn burst_to_the_legacy_app_arrives_whole() {
    let legacy = legacy_app("legacy-secret").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("legacy.token"), "legacy-secret").unwrap();
    let config = format!(
        "{}[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nlimits = {{ rate_per_s = 1000, burst = 50, max_wait = \"30s\", max_in_flight = 8, queue = 5000 }}\nupstream = {{ url = \"http://{legacy}/scim/v2\", token_file = \"legacy.token\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        server(ONE_ADDRESS_FOR_ALL),
        hash("tok")
    );
    let proxy = Proxy::start_in(dir, &config).await;
    let o = first_sync(&proxy.url("/t/Users"), "tok").await;
    report("legacy app, rate 1000/s", &o);
    assert!(o.other.is_empty(), "statuses {:?}", o.other);
    assert_eq!(
        total(&proxy, "t").await,
        USERS as u64,
        "every user created once"
    );
}
