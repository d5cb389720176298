//! Hot reload on SIGHUP: requests that start after a reload follow the new file, requests and
//! connections already open carry on, the memory store keeps its data, and a file that does not
//! validate is refused while the running configuration keeps serving.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const RELOADED: &str = "configuration reloaded";
const REFUSED: &str = "configuration reload refused; the running configuration keeps serving";

/// A tenant on the embedded memory store, routed by path prefix and opened by each of `tokens`.
fn memory_tenant(id: &str, tokens: &[&str]) -> String {
    let bearer: Vec<String> = tokens
        .iter()
        .map(|t| format!("{{ sha256 = \"{}\" }}", hash(t)))
        .collect();
    format!(
        "[[tenant]]\nid = \"{id}\"\nroute = {{ path_prefix = \"/{id}\" }}\nupstream = {{ url = \"memory:\" }}\nauth.bearer = [{}]\n",
        bearer.join(", ")
    )
}

/// A memory tenant "t" opened by one token that carries `label`.
fn labelled_tenant(token: &str, label: &str) -> String {
    format!(
        "[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nupstream = {{ url = \"memory:\" }}\nauth.bearer = [{{ sha256 = \"{}\", label = \"{label}\" }}]\n",
        hash(token)
    )
}

/// The status of a GET of `url` with `token`, the body read so the connection is reusable.
async fn status_of(c: &reqwest::Client, url: String, token: &str) -> u16 {
    let resp = c.get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    resp.bytes().await.unwrap();
    status
}

/// The log lines whose message is `message`, parsed.
fn lines_with_message(proxy: &Proxy, message: &str) -> Vec<Value> {
    proxy
        .log_json()
        .into_iter()
        .filter(|v| v["message"] == message)
        .collect()
}

/// GET requests sent one after another on one client until stopped, as a steady IdP sync
/// would: how many completed, and what went wrong.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    /// The number of failures and the first few of them, described.
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl Load {
    fn start(url: String, token: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let (stopped, counter) = (stop.clone(), done.clone());
        let task = tokio::spawn(async move {
            let c = client();
            let (mut failed, mut samples) = (0usize, Vec::new());
            while !stopped.load(Ordering::SeqCst) {
                let problem = match c.get(&url).bearer_auth(token).send().await {
                    Ok(resp) if resp.status() == 200 => match resp.bytes().await {
                        Ok(_) => None,
                        Err(e) => Some(format!("body: {e:?}")),
                    },
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.text().await.unwrap_or_default();
                        Some(format!("{status}: {body}"))
                    }
                    Err(e) => Some(format!("transport: {e:?}")),
                };
                if let Some(problem) = problem {
                    failed += 1;
                    if samples.len() < 5 {
                        samples.push(problem);
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
            }
            (failed, samples)
        });
        Load { stop, done, task }
    }

    /// Waits until `more` further requests have completed, so that every phase of a test runs
    /// under load however fast or slow the machine is.
    async fn advance(&self, more: usize) {
        let target = self.done.load(Ordering::SeqCst) + more;
        let reached = async {
            while self.done.load(Ordering::SeqCst) < target {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(LIMIT, reached)
            .await
            .expect("the load keeps running");
    }

    /// Stops the loop: (requests completed, requests failed, the first failures).
    async fn stop(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let (failed, samples) = tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("the load stops in time")
            .unwrap();
        (self.done.load(Ordering::SeqCst), failed, samples)
    }
}

/// Sends a GET of /t/Users with `token` on `stream` and reads the whole answer (by its length or
/// its last chunk), so that the connection can carry another request; returns the status line
/// and headers, lowercased.
async fn exchange(stream: &mut TcpStream, token: &str) -> String {
    let request =
        format!("GET /t/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let body = &buf[end + 4..];
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|n| n.trim().parse::<usize>().unwrap());
                let complete = match length {
                    Some(n) => body.len() >= n,
                    None => body == b"0\r\n\r\n" || body.ends_with(b"\r\n0\r\n\r\n"),
                };
                if complete {
                    return head;
                }
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "the proxy closed the connection: {}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(LIMIT, read)
        .await
        .expect("answered in time")
}

/// An IdP syncing without pause sees no error while the configuration changes under it twice:
/// a token is swapped, then a tenant is added. The memory store keeps its users, and a
/// connection opened before the reloads still carries requests after them. Multi-threaded, so
/// that the load runs while the test itself writes files and signals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_fails_no_request() {
    // A keep-alive connection waits `read_timeout` for its next request; the default equals
    // LIMIT, and the connection held below must outlive the reloads whatever the machine's pace.
    let settings = "read_timeout = \"1m\"";
    let first = format!(
        "{}{}",
        server(settings),
        memory_tenant("t", &["steady", "old"])
    );
    let proxy = Proxy::start(&first).await;
    let c = client();
    let user =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "survivor"});
    let resp = c
        .post(proxy.url("/t/Users"))
        .bearer_auth("steady")
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut held = TcpStream::connect(proxy.addr).await.unwrap();
    let head = exchange(&mut held, "steady").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");

    let load = Load::start(proxy.url("/t/Users"), "steady");
    load.advance(10).await;
    let swapped = format!(
        "{}{}",
        server(settings),
        memory_tenant("t", &["steady", "new"])
    );
    proxy.reload_with(&swapped).await;
    load.advance(10).await;
    let grown = format!("{swapped}{}", memory_tenant("beta", &["beta-token"]));
    proxy.reload_with(&grown).await;
    load.advance(10).await;
    let (done, failed, samples) = load.stop().await;
    assert_eq!(
        failed, 0,
        "{failed} of {done} requests failed, first: {samples:?}"
    );
    assert!(done > 20, "only {done} requests ran");

    let head = exchange(&mut held, "steady").await;
    assert!(
        head.starts_with("http/1.1 200"),
        "on the connection opened before the reloads: {head}"
    );
    assert_eq!(status_of(&c, proxy.url("/t/Users"), "new").await, 200);
    let resp = c
        .get(proxy.url("/t/Users"))
        .bearer_auth("old")
        .send()
        .await
        .unwrap();
    scim_error(resp, 401).await;
    assert_eq!(
        status_of(&c, proxy.url("/beta/Users"), "beta-token").await,
        200
    );
    let resp = c
        .get(proxy.url(&format!("/t/Users/{id}")))
        .bearer_auth("new")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["userName"], "survivor");

    let tenants: Vec<Value> = lines_with_message(&proxy, RELOADED)
        .into_iter()
        .map(|v| v["tenants"].clone())
        .collect();
    assert_eq!(tenants, [json!(1), json!(2)], "{}", proxy.logs());
}

/// A request already in the upstream's hands when a reload moves its tenant elsewhere and drops
/// its token is answered all the same: a reload never cuts short what has started. The next
/// request follows the new file.
#[tokio::test]
async fn a_request_in_flight_during_a_reload_finishes_on_the_old_configuration() {
    let legacy = legacy_app("legacy-secret").await;
    let config = format!(
        "{}{}",
        server(""),
        tenant("t", &format!("http://{legacy}/_test/sleep"), "old")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    let slow = tokio::spawn(
        c.get(proxy.url("/t/Users?ms=1500"))
            .bearer_auth("old")
            .send(),
    );
    // The reload comes once the request is in the app's hands: the app records the headers of
    // the last request it received.
    until_legacy_has_request_of(legacy, "t").await;
    proxy
        .reload_with(&format!("{}{}", server(""), tenant("t", "memory:", "new")))
        .await;
    let resp = slow.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200, "the request in flight");

    let list = json_of_with(&c, proxy.url("/t/Users"), "new").await;
    assert_eq!(
        list["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:ListResponse",
        "{list}"
    );
    let resp = c
        .get(proxy.url("/t/Users"))
        .bearer_auth("old")
        .send()
        .await
        .unwrap();
    scim_error(resp, 401).await;
}

/// GET with `token`, the answer read as JSON after checking it is a 200.
async fn json_of_with(c: &reqwest::Client, url: String, token: &str) -> Value {
    let resp = c.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// A file with a mistake is refused as a whole, with the same explanation `scimgate check`
/// gives for it, and the running configuration keeps serving; a later good file is taken.
#[tokio::test]
async fn an_invalid_reload_keeps_the_running_configuration() {
    let good = format!("{}{}", server(""), tenant("t", "memory:", "tok"));
    let proxy = Proxy::start(&good).await;
    // Valid but for tenant "u"'s token hash, which is not 64 hex digits: none of the file may
    // take effect, not even tenant "t"'s new token.
    let bad = format!(
        "{}{}[[tenant]]\nid = \"u\"\nroute = {{ path_prefix = \"/u\" }}\nupstream = {{ url = \"memory:\" }}\nauth.bearer = [{{ sha256 = \"abc\" }}]\n",
        server(""),
        tenant("t", "memory:", "new"),
    );
    let path = proxy.config_path();
    std::fs::write(&path, &bad).unwrap();
    proxy.reload();
    proxy
        .wait_for_log(&format!("\"message\":\"{REFUSED}\""), 1)
        .await;

    let (code, _, err) = run_cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let problem = err
        .lines()
        .skip(1)
        .find(|l| l.contains("auth.bearer[0].sha256"))
        .unwrap_or_else(|| panic!("check names no bad sha256:\n{err}"));
    let refusals = lines_with_message(&proxy, REFUSED);
    assert_eq!(refusals.len(), 1, "{}", proxy.logs());
    assert_eq!(refusals[0]["level"], "ERROR");
    let logged = refusals[0]["error"].as_str().unwrap_or_default();
    assert!(
        logged.contains(problem.trim()),
        "the refusal logs {logged:?}; check says {problem:?}"
    );
    assert!(lines_with_message(&proxy, RELOADED).is_empty());

    let c = client();
    assert_eq!(status_of(&c, proxy.url("/t/Users"), "tok").await, 200);
    let resp = c
        .get(proxy.url("/t/Users"))
        .bearer_auth("new")
        .send()
        .await
        .unwrap();
    scim_error(resp, 401).await;
    let resp = c
        .get(proxy.url("/u/Users"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    scim_error(resp, 401).await;

    proxy
        .reload_with(&format!("{}{}", server(""), tenant("t", "memory:", "new")))
        .await;
    assert_eq!(status_of(&c, proxy.url("/t/Users"), "new").await, 200);
}

/// A tenant taken out of the file is gone at once, answered like any unknown tenant, while the
/// one left is served as before.
#[tokio::test]
async fn a_tenant_removed_by_a_reload_answers_401() {
    let acme = tenant("acme", "memory:", "acme-token");
    let initech = tenant("initech", "memory:", "initech-token");
    let proxy = Proxy::start(&format!("{}{acme}{initech}", server(""))).await;
    let c = client();
    assert_eq!(
        status_of(&c, proxy.url("/initech/Users"), "initech-token").await,
        200
    );
    proxy.reload_with(&format!("{}{acme}", server(""))).await;
    let resp = c
        .get(proxy.url("/initech/Users"))
        .bearer_auth("initech-token")
        .send()
        .await
        .unwrap();
    scim_error(resp, 401).await;
    assert_eq!(
        status_of(&c, proxy.url("/acme/Users"), "acme-token").await,
        200
    );
}

/// The listening socket is not moved by a reload: the proxy keeps its address, so clients are
/// not cut off, and warns that taking the new one needs a restart.
#[tokio::test]
async fn a_reload_that_moves_the_listener_keeps_the_old_address_and_says_so() {
    let config = format!("{}{}", server(""), tenant("t", "memory:", "tok"));
    let proxy = Proxy::start(&config).await;
    let elsewhere = closed_port().await;
    let moved = config.replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{elsewhere}\""),
        1,
    );
    assert_ne!(moved, config);
    let offset = proxy.logs().len();
    let restarts = proxy.log_count("restart");
    std::fs::write(proxy.config_path(), &moved).unwrap();
    proxy.reload();
    proxy.wait_for_log("restart", restarts + 1).await;
    let after = proxy.logs()[offset..].to_owned();
    assert!(
        after
            .lines()
            .any(|l| l.contains("listen") && l.contains("restart")),
        "{after}"
    );
    assert_eq!(
        status_of(&client(), proxy.url("/t/Users"), "tok").await,
        200
    );
}

/// Logs name who called by the label of the token used, never by the token; a reload that
/// relabels the token names it anew.
#[tokio::test]
async fn the_request_log_names_the_principal_by_its_label() {
    let config = format!(
        "{}{}",
        server(""),
        labelled_tenant("labelled-secret", "okta-2026")
    );
    let proxy = Proxy::start(&config).await;
    let c = client();
    assert_eq!(
        status_of(&c, proxy.url("/t/Users"), "labelled-secret").await,
        200
    );
    proxy
        .wait_for_log("\"principal\":\"token okta-2026\"", 1)
        .await;
    let line = proxy
        .log_json()
        .into_iter()
        .find(|v| v["principal"] == "token okta-2026")
        .unwrap();
    assert_eq!(
        (
            line["message"].as_str(),
            line["tenant"].as_str(),
            line["status"].as_u64()
        ),
        (Some("request"), Some("t"), Some(200)),
        "{line}"
    );

    proxy
        .reload_with(&format!(
            "{}{}",
            server(""),
            labelled_tenant("labelled-secret", "okta-2027")
        ))
        .await;
    assert_eq!(
        status_of(&c, proxy.url("/t/Users"), "labelled-secret").await,
        200
    );
    proxy
        .wait_for_log("\"principal\":\"token okta-2027\"", 1)
        .await;
    assert!(
        !proxy.logs().contains("labelled-secret"),
        "a token reached the log"
    );
}
