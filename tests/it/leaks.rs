//! Nothing internal reaches the IdP: not the app's address (in `meta.location`, lists, Bulk
//! results, emulated PATCH answers, streamed answers), not its cookies or server headers, not
//! the upstream credential echoed in an error, not a password hidden in a compressed answer or
//! behind a byte order mark.

use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::net::TcpListener;

use crate::support::*;

/// What the app answers: status, headers, and the body in the frames it is sent in.
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    frames: Vec<Bytes>,
}

impl Canned {
    fn json(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", "application/scim+json".to_owned()),
                ("content-length", body.len().to_string()),
            ],
            frames: vec![Bytes::from(body)],
        }
    }

    fn with(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// A body sent in the frames given, so that a value can be cut between two of them.
struct Frames(VecDeque<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// An app whose answer `answer(method, path, request body, own address)` decides.
async fn app(answer: fn(&str, &str, &str, SocketAddr) -> Canned) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| async move {
                    let method = req.method().to_string();
                    let path = req.uri().path().to_owned();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let canned = answer(&method, &path, &String::from_utf8_lossy(&body), addr);
                    let mut resp = hyper::Response::builder().status(canned.status);
                    for (name, value) in &canned.headers {
                        resp = resp.header(*name, value);
                    }
                    let body = Frames(canned.frames.into());
                    Ok::<_, std::convert::Infallible>(resp.body(body).unwrap())
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    addr
}

/// A User as the app writes it, naming itself in `meta.location`.
fn user(id: &str, addr: SocketAddr) -> String {
    format!(
        r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"{id}","userName":"u{id}@example.com","active":true,"meta":{{"resourceType":"User","location":"http://{addr}/scim/v2/Users/{id}"}}}}"#
    )
}

/// Tenant "l" (token "tok") in front of `app`, which presents `LEAKS_UPSTREAM_TOKEN` upstream;
/// `supports` says what the app does itself.
async fn proxy_for(app: SocketAddr, supports: &str) -> Proxy {
    std::env::set_var("LEAKS_UPSTREAM_TOKEN", "s3cret-upstream-Token/42");
    let config = format!(
        "{}[[tenant]]\nid = \"l\"\nroute = {{ path_prefix = \"/l\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\nupstream = {{ url = \"http://{app}/scim/v2\", token_env = \"LEAKS_UPSTREAM_TOKEN\"{supports} }}\n",
        server(""),
        hash("tok"),
    );
    Proxy::start(&config).await
}

const COMPLETE: &str = ", supports = { patch = true, filter = true, sort = true, bulk = true, etag = false, discovery = true, uniqueness = true }";

/// Sends `req` with the token "tok"; the status, headers and body as text.
async fn exchange(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = req.bearer_auth("tok").send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

fn assert_no_app_address(body: &str, app: SocketAddr) {
    let plain = app.to_string();
    assert!(
        !body.contains(&plain),
        "the app's address reached the IdP: {body}"
    );
}

fn app_naming_itself(method: &str, path: &str, _body: &str, addr: SocketAddr) -> Canned {
    match (method, path) {
        ("GET", "/scim/v2/Users/1") => Canned::json(200, user("1", addr)),
        ("GET", "/scim/v2/Users") => {
            // JSON may write `/` as `\/`; one list does.
            let a = user("1", addr).replace('/', "\\/");
            let list = format!(
                r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":2,"Resources":[{a},{}]}}"#,
                user("2", addr)
            );
            Canned::json(200, list)
        }
        ("GET", "/scim/v2/Groups") => {
            // Longer than the proxy reads whole, in frames that cut each address in two.
            let items: Vec<String> = (0..3000).map(|i| user(&i.to_string(), addr)).collect();
            let list = format!(
                r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":3000,"Resources":[{}]}}"#,
                items.join(",")
            );
            let cut = format!("http://{addr}/sc");
            let mut frames = Vec::new();
            let mut rest = list.as_str();
            while let Some(i) = rest.find(&cut) {
                let (head, tail) = rest.split_at(i + cut.len() - 6);
                frames.push(Bytes::from(head.to_owned()));
                rest = tail;
            }
            frames.push(Bytes::from(rest.to_owned()));
            let length = list.len().to_string();
            Canned {
                status: 200,
                headers: vec![
                    ("content-type", "application/scim+json".to_owned()),
                    ("content-length", length),
                ],
                frames,
            }
        }
        _ => Canned::json(404, r#"{"detail":"no such resource"}"#.to_owned()),
    }
}

#[tokio::test]
async fn meta_location_in_single_answers_and_lists_names_only_the_proxy() {
    let app = app(app_naming_itself).await;
    let proxy = proxy_for(app, COMPLETE).await;
    let c = client();
    let public = proxy.url("/l");

    let (status, headers, body) = exchange(c.get(proxy.url("/l/Users/1"))).await;
    assert_eq!(status, 200);
    assert_no_app_address(&body, app);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["meta"]["location"], format!("{public}/Users/1"));
    let length = headers["content-length"].to_str().unwrap();
    assert_eq!(
        length,
        body.len().to_string(),
        "Content-Length fits the new body"
    );

    let (_, _, body) = exchange(c.get(proxy.url("/l/Users"))).await;
    assert_no_app_address(&body, app);
    assert!(!body.contains(&app.to_string().replace('/', "\\/")));
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["Resources"][0]["meta"]["location"],
        format!("{public}/Users/1")
    );
    assert_eq!(
        doc["Resources"][1]["meta"]["location"],
        format!("{public}/Users/2")
    );

    let (status, _, body) = exchange(c.get(proxy.url("/l/Groups"))).await;
    assert_eq!(status, 200);
    assert_no_app_address(&body, app);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let items = doc["Resources"].as_array().unwrap();
    assert_eq!(items.len(), 3000);
    assert_eq!(
        items[2999]["meta"]["location"],
        format!("{public}/Users/2999")
    );
}

fn app_without_bulk_or_patch(method: &str, path: &str, body: &str, addr: SocketAddr) -> Canned {
    let location = format!("http://{addr}/scim/v2/Users/9");
    match (method, path) {
        ("POST", "/scim/v2/Users") => {
            Canned::json(201, user("9", addr)).with("location", &location)
        }
        ("GET", "/scim/v2/Users/9") => Canned::json(200, user("9", addr)),
        ("PUT", "/scim/v2/Users/9") => {
            // What was written, as the app stores it, naming the app.
            let mut doc: serde_json::Value = serde_json::from_str(body).unwrap();
            doc["meta"]["location"] = location.into();
            Canned::json(200, doc.to_string())
        }
        _ => Canned::json(404, r#"{"detail":"no such resource"}"#.to_owned()),
    }
}

#[tokio::test]
async fn bulk_results_and_emulated_patch_answers_name_only_the_proxy() {
    let app = app(app_without_bulk_or_patch).await;
    let supports = ", supports = { patch = false, filter = true, sort = true, bulk = false, etag = false, discovery = true, uniqueness = true }";
    let proxy = proxy_for(app, supports).await;
    let c = client();
    let public = proxy.url("/l");

    let bulk = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"method":"POST","path":"/Users","bulkId":"a","data":{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u9@example.com"}}]}"#;
    let (status, _, body) = exchange(
        c.post(proxy.url("/l/Bulk"))
            .header("content-type", "application/scim+json")
            .body(bulk),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_no_app_address(&body, app);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["Operations"][0]["location"],
        format!("{public}/Users/9")
    );

    let patch = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}"#;
    let (status, _, body) = exchange(
        c.patch(proxy.url("/l/Users/9"))
            .header("content-type", "application/scim+json")
            .body(patch),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_no_app_address(&body, app);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["active"], false);
    assert_eq!(doc["meta"]["location"], format!("{public}/Users/9"));
}

fn app_with_chatty_headers(_: &str, path: &str, _: &str, addr: SocketAddr) -> Canned {
    match path {
        "/scim/v2/Users/1" => Canned::json(200, user("1", addr))
            .with("set-cookie", "JSESSIONID=abc123; Path=/")
            .with("server", "Apache-Coyote/1.1")
            .with("x-powered-by", "Express")
            .with("x-internal-foo", "node-7.internal")
            .with("etag", "W/\"1\"")
            .with("cache-control", "no-store"),
        _ => Canned::json(404, r#"{"detail":"no such resource"}"#.to_owned())
            .with("set-cookie", "JSESSIONID=abc123; Path=/")
            .with("x-internal-foo", "node-7.internal"),
    }
}

#[tokio::test]
async fn cookies_and_server_headers_of_the_app_do_not_reach_the_idp() {
    let app = app(app_with_chatty_headers).await;
    let proxy = proxy_for(app, COMPLETE).await;
    for path in ["/l/Users/1", "/l/Users/2"] {
        let (_, headers, _) = exchange(client().get(proxy.url(path))).await;
        for gone in ["set-cookie", "server", "x-powered-by", "x-internal-foo"] {
            assert!(
                !headers.contains_key(gone),
                "{gone} reached the IdP on {path}"
            );
        }
        if path == "/l/Users/1" {
            assert_eq!(headers["etag"], "W/\"1\"");
            assert_eq!(headers["cache-control"], "no-store");
        }
    }
}

fn app_echoing_its_credential(_: &str, path: &str, _: &str, _: SocketAddr) -> Canned {
    let token = "s3cret-upstream-Token/42";
    match path {
        "/scim/v2/Users/1" => Canned::json(
            400,
            format!(
                r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","detail":"token {} is not allowed to write"}}"#,
                token.replace('/', "\\/")
            ),
        ),
        "/scim/v2/Users/2" => Canned {
            status: 403,
            headers: vec![("content-type", "text/plain".to_owned())],
            frames: vec![Bytes::from(format!("forbidden for Bearer {token}"))],
        },
        _ => Canned::json(500, format!(r#"{{"message":"db error, auth={token}"}}"#)),
    }
}

#[tokio::test]
async fn an_error_detail_echoing_the_upstream_credential_does_not_reach_the_idp() {
    let app = app(app_echoing_its_credential).await;
    let proxy = proxy_for(app, COMPLETE).await;
    for (path, status) in [
        ("/l/Users/1", 400),
        ("/l/Users/2", 403),
        ("/l/Users/3", 500),
    ] {
        let (got, _, body) = exchange(client().get(proxy.url(path))).await;
        assert_eq!(got, status, "{body}");
        assert!(!body.contains("s3cret-upstream"), "{path}: {body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            doc["detail"],
            "the application's error text is withheld: it held a credential"
        );
    }
    proxy.wait_for_log("held the upstream credential", 3).await;
    assert!(!proxy.logs().contains("s3cret-upstream"));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn user_with_password(addr: SocketAddr) -> String {
    user("1", addr).replace(
        r#""active":true"#,
        r#""active":true,"password":"hunter2-Pa55""#,
    )
}

/// A partial app (no discovery documents, so not trusted with `returned: never`) that answers
/// compressed although asked not to, or with a byte order mark.
fn app_encoding_its_answers(_: &str, path: &str, _: &str, addr: SocketAddr) -> Canned {
    let doc = user_with_password(addr);
    match path {
        "/scim/v2/Users/gz" => Canned {
            status: 200,
            headers: vec![
                ("content-type", "application/scim+json".to_owned()),
                ("content-encoding", "gzip".to_owned()),
            ],
            frames: vec![Bytes::from(gzip(doc.as_bytes()))],
        },
        "/scim/v2/Users/bom" => Canned::json(200, format!("\u{feff}{doc}")),
        "/scim/v2/Users/br" => Canned::json(200, doc).with("content-encoding", "br"),
        // A resource with a member that a ListResponse would have.
        "/scim/v2/Users/posing" => Canned::json(200, doc.replacen('{', r#"{"Resources":[],"#, 1)),
        _ => Canned::json(404, r#"{"detail":"no such resource"}"#.to_owned()),
    }
}

#[tokio::test]
async fn a_compressed_or_bom_answer_with_a_password_gives_the_idp_no_password() {
    let app = app(app_encoding_its_answers).await;
    let proxy = proxy_for(app, "").await;
    let c = client();
    for path in ["/l/Users/gz", "/l/Users/bom", "/l/Users/posing"] {
        let (status, headers, body) = exchange(c.get(proxy.url(path))).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!headers.contains_key("content-encoding"), "{path}");
        assert!(!body.contains("hunter2"), "{path}: {body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["userName"], "u1@example.com");
        assert!(doc.get("password").is_none());
    }
    let (status, _, body) = exchange(c.get(proxy.url("/l/Users/br"))).await;
    assert_eq!(status, 502, "{body}");
    assert!(!body.contains("hunter2"));
}
