//! The admin listener, apart from IdP traffic: `/healthz` (the process is up), `/readyz` (the
//! configuration is loaded and every upstream accepts connections) and `/metrics`
//! (Prometheus), open to probes and scrapers; and the admin API under `/api/` (`api`), which
//! takes its own bearer token.

mod api;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::runtime::Runtime;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves the admin listener until shutdown; `config_path` is the file the API's reload reads.
pub async fn serve(
    listener: TcpListener,
    rt: Arc<Runtime>,
    config_path: Arc<Path>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let (rt, config_path) = (rt.clone(), config_path.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (rt, config_path) = (rt.clone(), config_path.clone());
                async move { Ok::<_, Infallible>(route(&rt, &config_path, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

async fn route(
    rt: &Arc<Runtime>,
    config_path: &Arc<Path>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if req.uri().path() == "/api" || req.uri().path().starts_with("/api/") {
        return api::handle(rt, config_path, req).await;
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/readyz") => readiness(rt).await,
        (&Method::GET, "/metrics") => {
            let mut r = Response::new(Full::new(Bytes::from(rt.snapshot().scrape())));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            &json!({"error": "not found; try /healthz, /readyz, /metrics or /api/tenants"}),
        ),
    }
}

/// Ready when every distinct upstream address accepts a TCP connection within the timeout.
/// Addresses are probed once each and all at once, however many tenants share them.
async fn readiness(rt: &Runtime) -> Response<Full<Bytes>> {
    let mut tenants_by_addr: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for tenant in rt.snapshot().tenants.iter() {
        if let Some(addr) = tenant.upstream.probe_address() {
            tenants_by_addr
                .entry(addr)
                .or_default()
                .push(tenant.id.to_string());
        }
    }
    let mut probes = JoinSet::new();
    for addr in tenants_by_addr.keys().cloned() {
        probes.spawn(async move {
            let ok = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(&addr)).await,
                Ok(Ok(_))
            );
            (addr, ok)
        });
    }
    let mut unreachable = Vec::new();
    while let Some(Ok((addr, ok))) = probes.join_next().await {
        if !ok {
            unreachable.push(json!({"upstream": addr, "tenants": tenants_by_addr[&addr]}));
        }
    }
    if unreachable.is_empty() {
        reply(StatusCode::OK, &json!({"status": "ready"}))
    } else {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "not ready", "unreachable": unreachable}),
        )
    }
}

fn reply(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
