//! Stage 9, forward: carries the request to the tenant's upstream (a pooled HTTP(S) client, or
//! the embedded memory store) within the tenant's deadline, and classifies what went wrong.
//! Also the calls the proxy makes on the request's behalf while filling gaps.

pub mod app_rules;
pub mod breaker;
pub mod call;
pub mod caps;
pub mod client;
mod dry_run;
pub mod error;
mod h1;
pub mod headers;
pub mod pool;
pub mod relocate;
pub mod schemas;
pub mod target;

use std::borrow::Cow;
use std::sync::Arc;

use http::{header, Request, Response, Version};
use http_body_util::{Either, Full};
use tokio::time::Instant;

pub use call::{Call, Reply};
pub use error::UpstreamError;

use crate::body::{Body, UpstreamBody};
use crate::ctx::RequestCtx;
use crate::limit::{CallLimits, CallPermit};
use crate::scim::memory::MemoryStore;
use caps::Capabilities;
use headers::Forwarded;
use target::{HttpUpstream, Upstream};

/// Sends the request on as it is (its body changed only if a stage changed it) and streams the
/// answer back. A write of a tenant in test mode stops here (see [`dry_run`]).
pub async fn forward(ctx: &RequestCtx) -> Result<Response<Body>, UpstreamError> {
    if dry_run::applies(ctx, &ctx.method, ctx.path()) {
        return Box::pin(dry_run::forward(ctx)).await;
    }
    let permit = admit(ctx).await?;
    match &ctx.tenant().upstream {
        Upstream::Http(up) => forward_http(up, ctx, permit).await,
        Upstream::Memory(store) => Ok(forward_memory(store, ctx).await),
    }
}

/// Stage 4, admit, for one call: its turn under the tenant's rate and in-flight limits (by the
/// request's class), the app's cap and the process's. The budget counts calls, so a request
/// that fills a gap with many calls takes a permit for each.
async fn admit(ctx: &RequestCtx) -> Result<CallPermit, UpstreamError> {
    let tenant = ctx.tenant();
    let limits = CallLimits {
        tenant: tenant.limiter.as_ref(),
        upstream: tenant.app_gate.as_deref(),
        global: Some(&ctx.snapshot.global),
    };
    let admission = &ctx.snapshot.metrics.admission;
    match limits.acquire(ctx.class).await {
        Ok(permit) => {
            // Only a tenant with limits has a line to wait in; plain pass-through records
            // nothing here.
            if let Some(held) = permit.tenant() {
                admission.admitted(&tenant.id, held.waited());
            }
            Ok(permit)
        }
        Err(e) => {
            admission.limited(&tenant.id, e.reason());
            Err(e.into())
        }
    }
}

async fn forward_http(
    up: &HttpUpstream,
    ctx: &RequestCtx,
    permit: CallPermit,
) -> Result<Response<Body>, UpstreamError> {
    let uri = up.uri(ctx.path_and_query())?;
    let fwd = forwarded(ctx, &ctx.headers);
    // Made again only to retry on a fresh connection.
    let make = || {
        let headers = headers::for_upstream(&ctx.headers, up.credential.as_ref(), &fwd);
        let mut request = Request::new(Full::new(ctx.body.to_bytes()));
        *request.method_mut() = ctx.method.clone();
        *request.uri_mut() = uri.clone();
        // The client picks HTTP/1.1 or h2 per connection; the client side's version is not ours.
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = headers;
        request
    };
    let started = Instant::now();
    let deadline = started + up.timeout;
    let response = up.send(make, deadline).await;
    observe(ctx, started, response.as_ref().err());
    Ok(response?.map(|b| Either::Left(Box::new(UpstreamBody::new(b, deadline, Some(permit))))))
}

/// Stage 11's view of one call to the app: how long its head took, or how it failed.
fn observe(ctx: &RequestCtx, started: Instant, failed: Option<&UpstreamError>) {
    let tenant = &ctx.tenant().id;
    let metrics = &ctx.snapshot.metrics;
    match failed {
        None => metrics.upstream_answered(tenant, started.elapsed()),
        Some(e) => metrics.upstream_failed(tenant, e.kind()),
    }
}

/// Hands the request to the in-process store and turns its answer into an HTTP response.
async fn forward_memory(store: &Arc<MemoryStore>, ctx: &RequestCtx) -> Response<Body> {
    // Repeated header lines form one list (RFC 9110 §5.3). Bytes that are not text are kept,
    // garbled: an If-Match the store cannot read must fail, not be dropped.
    let list = |name: header::HeaderName| {
        let lines: Vec<_> = ctx.headers.get_all(name).iter().collect();
        (!lines.is_empty()).then(|| {
            lines
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    let (if_match, if_none_match) = (list(header::IF_MATCH), list(header::IF_NONE_MATCH));
    let ask = call::MemoryAsk {
        method: ctx.method.clone(),
        path_and_query: ctx.path_and_query().into(),
        body: ctx.body.to_bytes(),
        base_url: ctx.public_base().into(),
        if_match: if_match.map(Cow::Owned),
        if_none_match: if_none_match.map(Cow::Owned),
    };
    let reply = call::memory_reply(store, ask).await;
    let mut response = Response::new(Either::Right(Full::new(reply.body)));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}

/// A call the proxy makes to the tenant's upstream on the request's behalf, with the same
/// credential and forwarding headers; the answer is read whole.
/// The tenant's app packs adapt the call to the app and clean what it answers.
pub async fn call(ctx: &RequestCtx, call: Call<'_>) -> Result<Reply, UpstreamError> {
    adapted(ctx, call, |call| send(ctx, call)).await
}

/// A GET that reaches the app whatever test mode says (reads always do): what test mode
/// reads a resource with before it answers a PATCH.
async fn read(ctx: &RequestCtx, path: &str) -> Result<Reply, UpstreamError> {
    adapted(ctx, Call::get(path), |call| send_now(ctx, call)).await
}

/// Runs `go` over the call as the tenant's app packs adapt it, and cleans its answer.
async fn adapted<'c, F, Fut>(
    ctx: &RequestCtx,
    mut call: Call<'c>,
    go: F,
) -> Result<Reply, UpstreamError>
where
    F: FnOnce(Call<'c>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, UpstreamError>>,
{
    let app = &ctx.tenant().app_rules;
    if app.is_empty() {
        return go(call).await;
    }
    app_rules::request(app, &ctx.headers, ctx.extensions(), &mut call);
    let (method, path_and_query) = (call.method.clone(), call.path_and_query);
    let mut reply = go(call).await?;
    let base = ctx.public_base();
    app_rules::answer(
        app,
        &method,
        path_and_query,
        &base,
        ctx.extensions(),
        &mut reply,
    );
    Ok(reply)
}

/// A write of a tenant in test mode stops here (see [`dry_run`]).
async fn send(ctx: &RequestCtx, call: Call<'_>) -> Result<Reply, UpstreamError> {
    if dry_run::applies(ctx, &call.method, call.path_and_query) {
        return dry_run::send(ctx, call).await;
    }
    send_now(ctx, call).await
}

async fn send_now(ctx: &RequestCtx, call: Call<'_>) -> Result<Reply, UpstreamError> {
    let _permit = admit(ctx).await?;
    ctx.record
        .calls
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match &ctx.tenant().upstream {
        Upstream::Http(up) => {
            let buffers = &ctx.snapshot.buffers;
            let started = Instant::now();
            let reply = up.call(call, &forwarded(ctx, &ctx.headers), buffers).await;
            observe(ctx, started, reply.as_ref().err());
            reply
        }
        Upstream::Memory(store) => Ok(call::memory_call(store, call, &ctx.public_base()).await),
    }
}

/// What the upstream does itself: as declared, else read once from its ServiceProviderConfig
/// and kept in the tenant's lasting state. Looked up once per request.
pub async fn capabilities(ctx: &mut RequestCtx) -> Result<Capabilities, UpstreamError> {
    if let Some(caps) = ctx.caps {
        return Ok(caps);
    }
    let tenant = ctx.tenant().clone();
    let caps = match &tenant.upstream {
        Upstream::Memory(_) => Capabilities::of_memory_store(),
        Upstream::Http(_) if caps::all_declared(&tenant.supports) => {
            caps::NOTHING.with_declared(&tenant.supports)
        }
        Upstream::Http(_) => match tenant.state.discovered.get() {
            Some(found) => found.with_declared(&tenant.supports),
            None => {
                let reply = Box::pin(call(ctx, Call::get("/ServiceProviderConfig"))).await?;
                let (found, lasting) = Capabilities::from_answer(reply.status, &reply.body);
                if lasting {
                    tracing::info!(tenant = %tenant.id, caps = ?found, "read the upstream's capabilities");
                    // Two first requests may both have asked; either answer is the same.
                    let _ = tenant.state.discovered.set(found);
                }
                found.with_declared(&tenant.supports)
            }
        },
    };
    // What the app turned out not to do for this resource type, it is not asked again.
    let caps = tenant.state.learned.apply(ctx.target().endpoint, caps);
    ctx.caps = Some(caps);
    Ok(caps)
}

/// Who asked, as the upstream is told; `headers` are the IdP's.
fn forwarded<'a>(ctx: &'a RequestCtx, headers: &http::HeaderMap) -> Forwarded<'a> {
    let host = match headers.get(header::HOST) {
        Some(host) => Some(host.clone()),
        None => ctx
            .uri
            .authority()
            .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok()),
    };
    Forwarded {
        client_ip: &ctx.conn.remote_ip,
        https: ctx.conn.https(),
        host,
        tenant: ctx.tenant_id(),
        request_id: &ctx.id,
    }
}
