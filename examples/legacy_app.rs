//! A stand-in for a legacy app with a *partial* SCIM server: Users and Groups CRUD, but no PATCH,
//! no filtering (it returns everything), no discovery, `application/json` and non-SCIM error
//! bodies. scimgate is tested in front of it to prove it papers over these gaps.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

type Resp = Response<Full<Bytes>>;

const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Where the app serves SCIM and the bearer token it accepts.
#[derive(Clone, Debug)]
pub struct LegacyConfig {
    pub base_path: String,
    pub token: String,
}

/// What differs between Users and Groups: the app keeps each in its own slot of the store.
#[derive(Clone, Copy)]
struct Kind {
    slot: usize,
    /// The attribute the app requires and keeps unique (case-insensitively).
    unique_key: &'static str,
    resource_type: &'static str,
    duplicate_error: &'static str,
}

const USERS: Kind = Kind {
    slot: 0,
    unique_key: "userName",
    resource_type: "User",
    duplicate_error: "user already exists",
};
const GROUPS: Kind = Kind {
    slot: 1,
    unique_key: "displayName",
    resource_type: "Group",
    duplicate_error: "group already exists",
};

struct App {
    config: LegacyConfig,
    store: Mutex<[Vec<Value>; 2]>,
    last_headers: Mutex<Value>,
}

/// The data stays usable after a panicking holder: a test server should keep answering.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections until the task running it is dropped or aborted; connection tasks live in
/// a `JoinSet` so that aborting `serve` also ends keep-alive connections.
pub async fn serve(listener: TcpListener, mut config: LegacyConfig) {
    config.base_path = normalize_base(&config.base_path);
    let app = Arc::new(App {
        config,
        store: Mutex::default(),
        last_headers: Mutex::new(json!({})),
    });
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                eprintln!("legacy app: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let app = Arc::clone(&app);
        let service = hyper::service::service_fn(move |req| handle(Arc::clone(&app), req));
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new();
            // A client hanging up mid-request is normal for a test server; nothing to report.
            let _ = conn.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    if path == "/_debug/last-headers" && req.method() == Method::GET {
        return Ok(json_resp(StatusCode::OK, &lock(&app.last_headers)));
    }
    record_headers(&app, &req);
    if let Some(hook) = path.strip_prefix("/_test/") {
        return Ok(test_hook(hook, &query).await);
    }
    if !authorized(&app.config.token, &req) {
        return Ok(json_resp(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "unauthorized"}),
        ));
    }
    let method = req.method().clone();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "bad request")),
    };
    let Some(rest) = scim_route(&app.config.base_path, &path) else {
        return Ok(html(StatusCode::NOT_FOUND, "404 Not Found"));
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    Ok(route(&app, &method, &segments, &query, &body))
}

/// The router: a flat match on method and path segments below the base path.
fn route(app: &App, method: &Method, segments: &[&str], query: &str, body: &[u8]) -> Resp {
    let (kind, rest) = match segments.split_first() {
        Some((&"Users", rest)) => (USERS, rest),
        Some((&"Groups", rest)) => (GROUPS, rest),
        _ => return html(StatusCode::NOT_FOUND, "404 Not Found"),
    };
    match (method, rest) {
        (_, [".search"]) | (_, [_, _, ..]) => html(StatusCode::NOT_FOUND, "404 Not Found"),
        (&Method::GET, []) => list(app, kind, query),
        (&Method::POST, []) => create(app, kind, body),
        (&Method::GET, [id]) => get(app, kind, id),
        (&Method::PUT, [id]) => replace(app, kind, id, body),
        (&Method::DELETE, [id]) => delete(app, kind, id),
        (_, []) => method_not_allowed("GET, POST"),
        (_, [_]) => method_not_allowed("GET, PUT, DELETE"),
    }
}

/// `filter` is ignored on purpose: this is the dangerous legacy behaviour scimgate must fix.
fn list(app: &App, kind: Kind, query: &str) -> Resp {
    // Negative numbers count as 0 and unparsable ones as absent, as lenient apps do.
    let number = |name| {
        let value = query_param(query, name)?.trim().parse::<i64>().ok()?;
        Some(usize::try_from(value.max(0)).unwrap_or(usize::MAX))
    };
    let items = &lock(&app.store)[kind.slot];
    let start_index = number("startIndex").unwrap_or(1).max(1);
    let page = paginate(items, start_index, number("count").unwrap_or(items.len()));
    let body = json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": items.len(),
        "startIndex": start_index,
        "itemsPerPage": page.len(),
        "Resources": page,
    });
    json_resp(StatusCode::OK, &body)
}

fn create(app: &App, kind: Kind, body: &[u8]) -> Resp {
    let (mut resource, key) = match parse_resource(kind, body) {
        Ok(parsed) => parsed,
        Err(resp) => return *resp,
    };
    let items = &mut lock(&app.store)[kind.slot];
    if is_duplicate(items, kind.unique_key, &key, None) {
        return duplicate(kind);
    }
    let id = uuid::Uuid::new_v4().to_string();
    resource.insert("id".into(), Value::String(id));
    resource.insert("meta".into(), json!({"resourceType": kind.resource_type}));
    let resource = Value::Object(resource);
    items.push(resource.clone());
    json_resp(StatusCode::CREATED, &resource)
}

fn get(app: &App, kind: Kind, id: &str) -> Resp {
    match lock(&app.store)[kind.slot].iter().find(|r| has_id(r, id)) {
        Some(resource) => json_resp(StatusCode::OK, resource),
        None => not_found(),
    }
}

/// Full replace (RFC 7644 §3.5.1): never creates; `id` and `meta` stay the server's.
fn replace(app: &App, kind: Kind, id: &str, body: &[u8]) -> Resp {
    let items = &mut lock(&app.store)[kind.slot];
    let Some(index) = items.iter().position(|r| has_id(r, id)) else {
        return not_found();
    };
    let (mut resource, key) = match parse_resource(kind, body) {
        Ok(parsed) => parsed,
        Err(resp) => return *resp,
    };
    if is_duplicate(items, kind.unique_key, &key, Some(id)) {
        return duplicate(kind);
    }
    let meta = items[index].get("meta").cloned().unwrap_or(Value::Null);
    resource.insert("id".into(), Value::String(id.to_owned()));
    resource.insert("meta".into(), meta);
    items[index] = Value::Object(resource);
    json_resp(StatusCode::OK, &items[index])
}

fn delete(app: &App, kind: Kind, id: &str) -> Resp {
    let items = &mut lock(&app.store)[kind.slot];
    let before = items.len();
    items.retain(|r| !has_id(r, id));
    if items.len() == before {
        return not_found();
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// A JSON object with a non-empty string at the kind's unique key, or the app's own error.
fn parse_resource(kind: Kind, body: &[u8]) -> Result<(Map<String, Value>, String), Box<Resp>> {
    let Ok(Value::Object(resource)) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(plain(StatusCode::BAD_REQUEST, "bad request")));
    };
    match resource.get(kind.unique_key).and_then(Value::as_str) {
        Some(key) if !key.trim().is_empty() => {
            let key = key.to_owned();
            Ok((resource, key))
        }
        _ => {
            let message = format!("{} is required", kind.unique_key);
            let body = json!({"message": message});
            Err(Box::new(json_resp(StatusCode::UNPROCESSABLE_ENTITY, &body)))
        }
    }
}

fn paginate(items: &[Value], start_index: usize, count: usize) -> &[Value] {
    let from = start_index.saturating_sub(1).min(items.len());
    let to = from.saturating_add(count).min(items.len());
    &items[from..to]
}

fn is_duplicate(items: &[Value], key: &str, value: &str, except_id: Option<&str>) -> bool {
    let wanted = value.to_lowercase();
    items.iter().any(|r| {
        let same = r
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|v| v.to_lowercase() == wanted);
        same && except_id.is_none_or(|id| !has_id(r, id))
    })
}

fn has_id(resource: &Value, id: &str) -> bool {
    resource.get("id").and_then(Value::as_str) == Some(id)
}

/// `/_test/sleep?ms=N`, `/_test/status?code=N&body=..&type=..`, `/_test/empty500`. Segments after
/// the hook name are ignored, so a proxy upstream can point at e.g. `/_test/empty500`.
async fn test_hook(hook: &str, query: &str) -> Resp {
    match hook.split('/').next().unwrap_or("") {
        "sleep" => {
            let ms = query_param(query, "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json_resp(StatusCode::OK, &json!({}))
        }
        "status" => {
            let code = query_param(query, "code").and_then(|c| c.parse::<u16>().ok());
            let Some(status) = code.and_then(|c| StatusCode::from_u16(c).ok()) else {
                return plain(StatusCode::BAD_REQUEST, "bad request");
            };
            let content_type =
                query_param(query, "type").unwrap_or_else(|| "application/json".into());
            respond(
                status,
                &content_type,
                query_param(query, "body").unwrap_or_default(),
            )
        }
        "empty500" => respond(StatusCode::INTERNAL_SERVER_ERROR, "", ""),
        _ => html(StatusCode::NOT_FOUND, "404 Not Found"),
    }
}

/// Header names arrive lowercased from hyper; repeated headers are joined as one value.
fn record_headers(app: &App, req: &Request<Incoming>) {
    let headers = req.headers();
    let seen: Map<String, Value> = headers
        .keys()
        .map(|name| {
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (name.to_string(), Value::String(values.join(", ")))
        })
        .collect();
    *lock(&app.last_headers) = Value::Object(seen);
}

fn authorized(token: &str, req: &Request<Incoming>) -> bool {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    header.and_then(|v| v.strip_prefix("Bearer ")) == Some(token)
}

/// The path below the base path, if the request is under it.
fn scim_route<'a>(base_path: &str, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix(base_path)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn normalize_base(base: &str) -> String {
    let trimmed = base.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| percent_decode(key) == name)
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = input
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (b'+', _) => out.push(b' '),
            (other, _) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if !content_type.is_empty() {
        let value =
            HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("text/plain"));
        resp.headers_mut().insert(CONTENT_TYPE, value);
    }
    resp
}

fn json_resp(status: StatusCode, body: &Value) -> Resp {
    respond(status, "application/json", body.to_string())
}

fn plain(status: StatusCode, text: &'static str) -> Resp {
    respond(status, "text/plain", text)
}

fn html(status: StatusCode, title: &str) -> Resp {
    respond(
        status,
        "text/html",
        format!("<html><body><h1>{title}</h1></body></html>"),
    )
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut resp = html(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed");
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

fn not_found() -> Resp {
    json_resp(StatusCode::NOT_FOUND, &json!({"error": "not found"}))
}

fn duplicate(kind: Kind) -> Resp {
    let body = json!({"error": kind.duplicate_error, "code": "DUPLICATE"});
    json_resp(StatusCode::CONFLICT, &body)
}

const USAGE: &str = "usage: legacy_app [--listen ADDR] [--base-path PATH] [--token TOKEN]

  --listen ADDR      where to listen (default 127.0.0.1:3000)
  --base-path PATH   where the SCIM endpoints are (default /scim/v2)
  --token TOKEN      the bearer token to accept (default $LEGACY_TOKEN, else legacy-secret)";

/// What the command line asks for.
#[derive(Debug)]
enum Args {
    Help,
    Run {
        listen: String,
        config: LegacyConfig,
    },
}

/// `legacy_app [--listen ADDR] [--base-path PATH] [--token TOKEN]` or `--help`; `token` is the
/// default token (from `$LEGACY_TOKEN`, else `legacy-secret`).
fn parse_args(args: impl IntoIterator<Item = String>, token: String) -> Result<Args, String> {
    let mut listen = "127.0.0.1:3000".to_owned();
    let mut config = LegacyConfig {
        base_path: "/scim/v2".into(),
        token,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if matches!(flag.as_str(), "--help" | "-h") {
            return Ok(Args::Help);
        }
        let slot = match flag.as_str() {
            "--listen" => &mut listen,
            "--base-path" => &mut config.base_path,
            "--token" => &mut config.token,
            _ => return Err(format!("unknown argument {flag}")),
        };
        *slot = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    }
    Ok(Args::Run { listen, config })
}

#[allow(dead_code)] // unused when the integration tests include this file as a module
#[tokio::main]
async fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let token = std::env::var("LEGACY_TOKEN").unwrap_or_else(|_| "legacy-secret".into());
    let (listen, config) = match parse_args(std::env::args().skip(1), token) {
        Ok(Args::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Args::Run { listen, config }) => (listen, config),
        Err(problem) => {
            eprintln!("legacy_app: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("legacy_app: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base = normalize_base(&config.base_path);
    let shown = listener
        .local_addr()
        .map_or_else(|_| listen.clone(), |a| a.to_string());
    println!("legacy app listening on http://{shown}{base}");
    serve(listener, config).await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(n: usize) -> Vec<Value> {
        (1..=n)
            .map(|i| json!({"id": i.to_string(), "userName": format!("u{i}")}))
            .collect()
    }

    #[test]
    fn pagination_is_one_based_and_clamped() {
        let items = users(5);
        assert_eq!(paginate(&items, 1, 2), &items[0..2]);
        assert_eq!(paginate(&items, 4, 10), &items[3..5]);
        assert!(paginate(&items, 9, 10).is_empty());
        assert!(paginate(&items, 1, 0).is_empty());
        assert_eq!(paginate(&items, 0, usize::MAX), &items[..]);
    }

    #[test]
    fn duplicate_check_ignores_case_and_the_resource_itself() {
        let items = users(2);
        assert!(is_duplicate(&items, "userName", "U1", None));
        assert!(!is_duplicate(&items, "userName", "U1", Some("1")));
        assert!(is_duplicate(&items, "userName", "u1", Some("2")));
        assert!(!is_duplicate(&items, "userName", "u3", None));
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let query = "body=%7B%22a%22%3A1%7D&type=text/html&msg=hello+world";
        assert_eq!(query_param(query, "body").as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(query_param(query, "msg").as_deref(), Some("hello world"));
        assert_eq!(query_param(query, "missing"), None);
    }

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()), "env-token".into())
    }

    #[test]
    fn help_is_not_a_flag_that_wants_a_value() {
        assert!(matches!(args(&["--help"]), Ok(Args::Help)));
        assert!(matches!(args(&["--listen", "x", "-h"]), Ok(Args::Help)));
    }

    #[test]
    fn argument_problems_read_as_sentences() {
        assert_eq!(args(&["--listen"]).unwrap_err(), "--listen needs a value");
        assert_eq!(
            args(&["--port", "1"]).unwrap_err(),
            "unknown argument --port"
        );
    }

    #[test]
    fn options_override_the_defaults() {
        let Ok(Args::Run { listen, config }) = args(&["--token", "t", "--listen", "0.0.0.0:1"])
        else {
            panic!("expected a run");
        };
        assert_eq!(listen, "0.0.0.0:1");
        assert_eq!(config.token, "t");
        assert_eq!(config.base_path, "/scim/v2");
        let Ok(Args::Run { config, .. }) = args(&[]) else {
            panic!("expected a run");
        };
        assert_eq!(config.token, "env-token");
    }

    #[test]
    fn routes_only_under_the_base_path() {
        assert_eq!(scim_route("/scim/v2", "/scim/v2/Users"), Some("/Users"));
        assert_eq!(scim_route("/scim/v2", "/scim/v20/Users"), None);
        assert_eq!(normalize_base("scim/v2/"), "/scim/v2");
        assert_eq!(normalize_base("/"), "");
    }
}
