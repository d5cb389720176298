//! Test support: starts the real `scimgate` binary and real upstreams on 127.0.0.1:0, and
//! builds HTTP clients to talk to them. No fixed ports; readiness is read from the proxy's log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_scimgate");
/// Every wait in the tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(10);

/// The SHA-256 the configuration wants for a token.
pub fn hash(token: &str) -> String {
    scimgate::auth::token_hash(token)
}

/// A tenant routed by path prefix to `upstream`, opened by `token`.
pub fn tenant(id: &str, upstream: &str, token: &str) -> String {
    format!(
        "[[tenant]]\nid = \"{id}\"\nroute = {{ path_prefix = \"/{id}\" }}\nupstream = {{ url = \"{upstream}\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
        hash(token)
    )
}

/// Tenant "e" (token "tok") in front of an app said to do everything, so that every request is
/// forwarded rather than emulated; `extra` adds keys to the tenant (`idp = "entra"`).
pub fn complete_app_tenant(app: std::net::SocketAddr, extra: &str) -> String {
    format!(
        "[[tenant]]\nid = \"e\"\nroute = {{ path_prefix = \"/e\" }}\n{extra}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", supports = {{ patch = true, filter = true, sort = true, bulk = true, etag = false, discovery = true }} }}\n",
        hash("tok")
    )
}

/// The `[server]` table with short timeouts, so failure paths are quick to reach.
pub fn server(extra: &str) -> String {
    format!("[server]\nlisten = \"127.0.0.1:0\"\n{extra}\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\nlevel = \"info\"\n")
}

pub struct Proxy {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
    pub scheme: &'static str,
}

impl Proxy {
    /// Writes `config` into a fresh folder (where relative paths in it resolve) and starts the
    /// binary on it, returning once it logs that it listens.
    pub async fn start(config: &str) -> Proxy {
        Self::start_in(tempfile::tempdir().unwrap(), config).await
    }

    pub async fn start_in(dir: tempfile::TempDir, config: &str) -> Proxy {
        let mut child = spawn_serve(dir.path(), config, Stdio::piped());
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let sink = logs.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("\"listening\"") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line.clone());
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let line = match tokio::time::timeout(LIMIT, rx).await {
            Ok(Ok(line)) => line,
            _ => {
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err).await;
                panic!("proxy did not start: {err}");
            }
        };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let addr = v["addr"].as_str().unwrap().parse().unwrap();
        let admin = v["admin"].as_str().unwrap().parse().unwrap();
        let scheme = if v["tls"] == true { "https" } else { "http" };
        Proxy {
            child,
            addr,
            admin,
            logs,
            dir,
            scheme,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.addr.port())
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// SIGTERM, as an orchestrator stops a container.
    pub fn terminate(&self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(LIMIT, self.child.wait())
            .await
            .expect("proxy exits in time")
            .unwrap()
    }
}

/// Writes `config` into `dir` and starts `scimgate serve` on it, standard output piped.
fn spawn_serve(dir: &Path, config: &str, stderr: Stdio) -> Child {
    let path = dir.join("scimgate.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Runs `scimgate serve` on `config` with standard output piped (so not a terminal) and
/// returns what it printed up to the first line containing `needle`; the process is then killed.
pub async fn serve_output_until(config: &str, needle: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_serve(dir.path(), config, Stdio::null());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            out.push_str(&line);
            out.push('\n');
            if line.contains(needle) {
                return;
            }
        }
    };
    tokio::time::timeout(LIMIT, read)
        .await
        .expect("the line is printed in time");
    out
}

/// GET with the token "tok", the answer read as JSON.
pub async fn get_json(c: &reqwest::Client, url: impl reqwest::IntoUrl) -> serde_json::Value {
    json_of(c.get(url)).await
}

/// Sends `req` with the token "tok" and reads the answer as JSON.
pub async fn json_of(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.bearer_auth("tok")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A plain HTTP client with a bounded timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(LIMIT).build().unwrap()
}

/// Runs `scimgate` with `args` to completion, returning (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

/// As [`run_cli`], with `env` added to the child's environment.
pub fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

/// Development certificates from the library's own generator: a CA, a server certificate for
/// localhost/127.0.0.1 and the given host names, and one client certificate per CN.
pub fn certs(dir: &Path, hosts: &[&str], client_cns: &[&str]) -> PathBuf {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    names.extend(hosts.iter().map(|h| h.to_string()));
    let cns: Vec<String> = client_cns.iter().map(|c| c.to_string()).collect();
    let names = scimgate::certs::DevNames {
        server_names: &names,
        client_cns: &cns,
        tenants: &[],
    };
    scimgate::certs::write_dev_certs(dir, &names).unwrap();
    dir.to_owned()
}

/// A client that trusts the CA in `certs` and, if given, presents `client-<cn>`.
pub fn tls_client(certs: &Path, cn: Option<&str>) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certs.join("ca.pem")).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(LIMIT)
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca);
    if let Some(cn) = cn {
        let mut pem = std::fs::read(certs.join(format!("client-{cn}.pem"))).unwrap();
        pem.extend(std::fs::read(certs.join(format!("client-{cn}.key"))).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b
}

/// An upstream that answers every request with what it received, as JSON:
/// `{method, path, query, headers: {name: value}, body}`; the status can be chosen with the
/// query parameter `echo_status` (writes) or `get_status` (reads).
pub async fn echo_upstream() -> SocketAddr {
    echo_upstream_with(None).await
}

/// The echo upstream over TLS (h2 or HTTP/1.1 by ALPN), with the server certificate of a
/// `certs` folder (see [`certs`]).
pub async fn tls_echo_upstream(certs: &Path) -> SocketAddr {
    let files = scimgate::config::TlsFiles {
        cert: certs.join("server.pem"),
        key: certs.join("server.key"),
        client_ca: None,
        tenant_cas: Vec::new(),
    };
    echo_upstream_with(Some(scimgate::listener::server_config(&files).unwrap())).await
}

async fn echo_upstream_with(tls: Option<Arc<rustls::ServerConfig>>) -> SocketAddr {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| echo(req, addr));
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    addr
}

/// The echo upstream's answer: what it received, as JSON.
async fn echo(
    req: hyper::Request<hyper::body::Incoming>,
    addr: SocketAddr,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into()))
        .collect();
    // The status to answer comes from the query, so that requests the proxy makes on its
    // own can be steered too: `echo_status` for writes, `get_status` for reads (a PATCH's
    // read-back GET carries the PATCH's query).
    let wanted = if parts.method == hyper::Method::GET {
        "get_status="
    } else {
        "echo_status="
    };
    let status = parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix(wanted)))
        .and_then(|s| s.parse().ok())
        .unwrap_or(200u16);
    let doc = serde_json::json!({
        "method": parts.method.as_str(),
        "version": format!("{:?}", parts.version),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let body = if status == 204 {
        Vec::new()
    } else {
        doc.to_string().into_bytes()
    };
    let resp = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/scim+json")
        .header("connection", "x-upstream-hop")
        .header("x-upstream-hop", "1")
        .header("location", format!("http://{addr}/scim/v2/Users/42"))
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    Ok(resp)
}

/// Misbehaving upstreams, each on its own port.
pub enum Rude {
    /// Accepts and closes at once.
    Reset,
    /// Accepts, reads, never answers.
    Silent,
    /// Answers bytes that are not HTTP.
    Garbage,
    /// Sends headers and part of the body, then stalls. The length it announces (1 MB) is
    /// past what the proxy reads whole to look for the app's address, so the answer streams.
    StallsMidBody,
}

pub async fn rude_upstream(kind: Rude) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
            match kind {
                Rude::Reset => drop(stream),
                Rude::Silent => {
                    tokio::spawn(async move {
                        tokio::time::sleep(LIMIT).await;
                        drop(stream);
                    });
                }
                Rude::Garbage => {
                    let _ = stream.write_all(b"\x00\x01 this is not http\r\n\r\n").await;
                }
                Rude::StallsMidBody => {
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: 1000000\r\n\r\n{\"partial\":";
                    let _ = stream.write_all(head.as_bytes()).await;
                    tokio::spawn(async move {
                        tokio::time::sleep(LIMIT).await;
                        drop(stream);
                    });
                }
            }
        }
    });
    addr
}

/// An address where nothing listens.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// The legacy partial SCIM app of `examples/`, in-process.
pub async fn legacy_app(token: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = crate::legacy_app::LegacyConfig {
        base_path: "/scim/v2".into(),
        token: token.into(),
    };
    tokio::spawn(crate::legacy_app::serve(listener, config));
    addr
}

/// Parses a response as JSON after checking it is a SCIM Error with `status`.
pub async fn scim_error(resp: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    assert_eq!(resp.headers()["content-type"], "application/scim+json");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        v["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{v}"
    );
    assert_eq!(v["status"], status.to_string(), "{v}");
    v
}

/// Waits until the legacy app has received a request of `tenant` (it records the headers of the
/// last request it got), so a test can act while that request is in the app's hands.
pub async fn until_legacy_has_request_of(legacy: SocketAddr, tenant: &str) {
    let c = client();
    let seen = format!("http://{legacy}/_debug/last-headers");
    let arrived = async {
        loop {
            let last: serde_json::Value = c.get(&seen).send().await.unwrap().json().await.unwrap();
            if last["x-scimgate-tenant"] == tenant {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(LIMIT, arrived)
        .await
        .expect("the request reaches the app");
}

/// Writes `request` on a fresh connection and reads until the server closes it or
/// stops sending for a moment; returns what came back as text.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything: a failed write is fine.
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An upstream whose every answer is one page of an endless user list, after `delay`.
pub async fn slow_list_upstream(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper::service::service_fn(move |_req| async move {
                tokio::time::sleep(delay).await;
                let page =
                    r#"{"totalResults":1000000,"Resources":[{"id":"u","userName":"someone"}]}"#;
                let body = http_body_util::Full::new(bytes::Bytes::from_static(page.as_bytes()));
                Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    addr
}

/// An upstream whose answers `answer(path, own address)` decides: a status and a JSON body.
pub async fn json_upstream(answer: fn(&str, SocketAddr) -> (u16, String)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| async move {
                    let (status, body) = answer(req.uri().path(), addr);
                    let resp = hyper::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(resp)
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    addr
}

/// Hot reload: the configuration file, SIGHUP, and waiting for what the proxy logs.
impl Proxy {
    /// The file the proxy was started on, which it re-reads on SIGHUP.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("scimgate.toml")
    }

    /// SIGHUP, as an operator asks for the configuration file to be read again.
    pub fn reload(&self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Replaces the configuration file with `config`, sends SIGHUP and returns once the proxy
    /// has logged one more successful reload than before; a refusal fails the test at once.
    pub async fn reload_with(&self, config: &str) {
        const RELOADED: &str = "\"message\":\"configuration reloaded\"";
        const REFUSED: &str = "\"message\":\"configuration reload refused";
        let (reloaded, refused) = (self.log_count(RELOADED), self.log_count(REFUSED));
        std::fs::write(self.config_path(), config).unwrap();
        self.reload();
        let done = async {
            loop {
                if self.log_count(RELOADED) > reloaded {
                    return true;
                }
                if self.log_count(REFUSED) > refused {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        match tokio::time::timeout(LIMIT, done).await {
            Ok(true) => {}
            Ok(false) => panic!("the reload was refused:\n{}", self.logs()),
            Err(_) => panic!("no reload logged within {LIMIT:?}:\n{}", self.logs()),
        }
    }

    /// How many times `needle` occurs in the logs so far.
    pub fn log_count(&self, needle: &str) -> usize {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|line| line.matches(needle).count())
            .sum()
    }

    /// Waits until `needle` has occurred at least `count` times in the logs; the lines reach
    /// them a moment after what they record happened.
    pub async fn wait_for_log(&self, needle: &str, count: usize) {
        let seen = async {
            while self.log_count(needle) < count {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(LIMIT, seen).await.is_err() {
            panic!(
                "{needle:?} not logged {count} time(s) within {LIMIT:?}:\n{}",
                self.logs()
            );
        }
    }

    /// The log lines so far that are JSON, parsed.
    pub fn log_json(&self) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// One canned answer of a [`scripted_upstream`]: for `method` and `path` (without the query),
/// a status, a `Content-Type` (none if empty) and a body.
#[derive(Clone)]
pub struct Script {
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// A request a [`scripted_upstream`] received: method, path and query, body.
pub type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// What a [`scripted_upstream`] received for the requests themselves: without the discovery
/// reads the proxy makes once of its own (`/ServiceProviderConfig`, `/Schemas`).
pub fn app_requests(seen: &Seen) -> Vec<(String, String, String)> {
    let discovery = |pq: &str| pq.ends_with("/Schemas") || pq.ends_with("/ServiceProviderConfig");
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(m, pq, _)| !(m == "GET" && discovery(pq)))
        .cloned()
        .collect()
}

/// An upstream that answers from `scripts` (404 for anything else) and keeps every request it
/// received.
pub async fn scripted_upstream(scripts: Vec<Script>) -> (SocketAddr, Seen) {
    use http_body_util::BodyExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let (scripts, log) = (Arc::new(scripts), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (scripts, log) = (scripts.clone(), log.clone());
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (scripts, log) = (scripts.clone(), log.clone());
                    async move {
                        let method = req.method().to_string();
                        let path = req.uri().path().to_owned();
                        let pq = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        log.lock().unwrap().push((
                            method.clone(),
                            pq,
                            String::from_utf8_lossy(&body).into_owned(),
                        ));
                        let script = scripts
                            .iter()
                            .find(|s| s.method == method && s.path == path);
                        let mut resp = hyper::Response::builder();
                        let body = match script {
                            Some(s) => {
                                resp = resp.status(s.status);
                                if !s.content_type.is_empty() {
                                    resp = resp.header("content-type", s.content_type);
                                }
                                s.body.clone()
                            }
                            None => {
                                resp = resp.status(404).header("content-type", "application/json");
                                "{\"detail\":\"no such resource\"}".to_owned()
                            }
                        };
                        let resp = resp
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    (addr, seen)
}

/// An app that takes `delay` over each request and keeps the most requests it ever had at
/// once; it answers every request 200 (201 for a POST) with a small SCIM User.
pub async fn counting_upstream(
    delay: Duration,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let peak = most.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (now, most) = (now.clone(), most.clone());
            let service = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| {
                    let (now, most) = (now.clone(), most.clone());
                    async move {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        let status = if req.method() == hyper::Method::POST {
                            201
                        } else {
                            200
                        };
                        let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"u@example.com"}"#;
                        let resp = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/scim+json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(user)))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    (addr, peak)
}
