//! The request's way through the proxy, in order: the one place the stages are called. Each
//! stage either hands the request on or answers; nothing goes back a stage. Stage 11 (the audit
//! line, the log line and the metrics) runs once per request and once per Bulk operation the
//! proxy carries out.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::HeaderValue;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use tracing::Instrument;

use crate::body::{self, Body};
use crate::conn::ConnInfo;
use crate::control::LoggedRequest;
use crate::ctx::{Flow, RequestCtx};
use crate::error::{self, ProxyError};
use crate::limit::Class;
use crate::metrics::Finished;
use crate::runtime::Runtime;
use crate::scim::bulk::{BulkRun, OpOutcome, PlannedOp};
use crate::scim::request::Endpoint;
use crate::scim::MEDIA_TYPE;
use crate::tenant::RouteError;
use crate::upstream::headers::X_REQUEST_ID;
use crate::{
    attribute_policy, audit, auth, classify, emulate, normalize, response, tenant, upstream,
};

/// Runs one request through the stages under the snapshot in force when it arrived, and
/// records it; never fails, since every failure is itself an answer.
///
/// The context is made before the returned future starts, so that the request it was made of
/// takes no place in that future: hyper keeps one such future for each open connection.
pub fn handle(
    rt: &Runtime,
    conn: &Arc<ConnInfo>,
    req: Request<Incoming>,
) -> impl Future<Output = Response<Body>> + use<> {
    let (parts, body) = req.into_parts();
    let id = request_id(&parts.headers);
    let mut ctx = RequestCtx::new(id, rt.snapshot(), conn.clone(), parts);
    async move {
        // DEBUG, like the stage spans under it: under the default INFO filter a span costs one
        // level check, and its fields are not even computed. The tenant is recorded once routed.
        let span = tracing::debug_span!(
            "request",
            request_id = ctx.id.to_str().unwrap_or_default(),
            tenant = tracing::field::Empty,
        );
        let mut refusal = None;
        let response = match run(&mut ctx, body).instrument(span.clone()).await {
            Ok(response) => response,
            Err(e) => {
                // The caller may be told less than this (an expired token, an unknown tenant).
                ctx.record.error.get_or_insert_with(|| e.to_string());
                refusal = e.refusal_kind();
                if let Some(kind) = refusal {
                    ctx.snapshot.metrics.refused(kind);
                }
                if let Some(kind) = e.auth_failure_kind(ctx.tenant.is_some()) {
                    let tenant = ctx.tenant.as_ref().map(|t| &t.id);
                    ctx.snapshot.metrics.admission.auth_failed(tenant, kind);
                }
                span.in_scope(|| fail(&ctx, &e))
            }
        };
        let recording = tracing::debug_span!(parent: &span, "record");
        record(&ctx, refusal, response).instrument(recording).await
    }
}

async fn run(ctx: &mut RequestCtx, body: Incoming) -> Result<Response<Body>, ProxyError> {
    // 1. listen let this connection in past the cap only to say so.
    if ctx.conn.overloaded {
        return Err(ProxyError::Overloaded);
    }
    // 5. classify, its first part: a head too large for any SCIM request is refused before
    //    anything reads it.
    classify::head(ctx)?;
    // 2. route. Before authentication: the tenant decides which credentials count. A path no
    //    tenant serves is answered as a wrong credential would be, so that unauthenticated
    //    callers cannot list the tenants; the log line keeps the real reason.
    let client = ctx.conn.remote.ip();
    let throttle = ctx.snapshot.auth_throttle.clone();
    throttle.check(client).map_err(ProxyError::Throttled)?;
    let routed = tracing::debug_span!("route").in_scope(|| tenant::route(ctx));
    if let Err(e) = routed {
        if e != RouteError::UnknownTenant {
            return Err(e.into());
        }
        ctx.record.error = Some(e.to_string());
        throttle.failed(client);
        let authorization = ctx.headers.get(http::header::AUTHORIZATION);
        let shown = auth::refusal_without_tenant(authorization.map(|v| v.as_bytes()));
        return Err(shown.into());
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::Span::current().record("tenant", ctx.tenant_id());
    }
    // 3. authenticate. Before the body is read: an unknown caller costs no more than headers.
    //    An address that keeps failing is refused before its next guess is even checked
    //    (above, before routing). The tenant's OAuth token endpoint takes client credentials
    //    in place of a token, so it is served here, before anything else is asked.
    if auth::oauth::is_token_request(ctx) {
        let authenticating = tracing::debug_span!("authenticate");
        let (response, failed) = auth::oauth::serve(ctx, body)
            .instrument(authenticating)
            .await;
        if failed {
            throttle.failed(client);
            let tenant = ctx.tenant.as_ref().map(|t| &t.id);
            ctx.snapshot
                .metrics
                .admission
                .auth_failed(tenant, "oauth_client");
        } else if response.status().is_success() {
            ctx.conn.activity.authenticated();
        }
        return Ok(response);
    }
    let authenticated = auth::check(ctx)
        .instrument(tracing::debug_span!("authenticate"))
        .await;
    if let Err(e) = authenticated {
        // A check that could not run (busy, keys out of reach) is no failed guess.
        if e.is_refusal() {
            throttle.failed(client);
        }
        return Err(e.into());
    }
    ctx.conn.activity.authenticated();
    // 4. admit: the tenant's limits apply to each upstream call (`upstream::admit`), after
    //    authentication so that no one else can spend a tenant's budget; the request's class
    //    is known once its body is (below).
    // 5. classify: the method and path first, so a request for nothing SCIM serves is refused
    //    before its body is read.
    let classifying = tracing::debug_span!("classify");
    classifying.in_scope(|| classify::target(ctx))?;
    // Paused by the operator (admin API): a write is refused here, after authentication so
    // that only the tenant's own IdP learns of the pause, once the target says whether the
    // request writes (a POST to `.search` reads), and before its body is read or anything
    // reaches the app. Reads go on. One atomic load for a tenant that is not paused. (Test
    // mode acts later, where requests leave for the app: `upstream::dry_run`.)
    if ctx.tenant().control.is_paused() && writes(ctx) {
        return Err(ProxyError::Paused);
    }
    classify::body(ctx, body).instrument(classifying).await?;
    answer(ctx).await
}

/// Whether the request changes something: POST (a Bulk too), PUT, PATCH, DELETE, but not a
/// query sent as a POST to `.search` (RFC 7644 §3.4.3).
fn writes(ctx: &RequestCtx) -> bool {
    match ctx.method {
        Method::POST => !ctx.target().search,
        Method::PUT | Method::PATCH | Method::DELETE => true,
        _ => false,
    }
}

/// Stages 6–10, which a request and each operation of a Bulk the proxy carries out share.
async fn answer(ctx: &mut RequestCtx) -> Result<Response<Body>, ProxyError> {
    // 11. record, ahead of its turn: a change is not made while its audit line could not be
    //     written.
    audit::admit(ctx)?;
    // 4. admit: a PUT or PATCH that deactivates goes ahead of other writes. Only a tenant
    //    with limits needs to know, so only it pays for reading the body.
    if ctx.tenant().limiter.is_some() && matches!(ctx.method, Method::PUT | Method::PATCH) {
        ctx.class = Class::of(&ctx.method, ctx.body.json().ok());
    }
    // A Bulk the upstream cannot do is not one request but several: each operation passes
    // stages 6–10 on its own (RFC 7644 §3.7), so nothing below can skip one.
    if let Some(run) = emulate::bulk::plan(ctx).await? {
        return Box::pin(fan_out(ctx, run)).await;
    }
    // 6. normalize: the IdP's quirks become RFC form before anything reads the request, so
    //    that gap filling and the app see one dialect.
    let normalizing = tracing::debug_span!("normalize");
    upstream::schemas::look_up(ctx)
        .instrument(normalizing.clone())
        .await;
    normalizing.in_scope(|| normalize::request(ctx))?;
    // 7. filter: after normalization, so that a withheld attribute cannot hide behind an
    //    IdP's spelling of it, and before gap filling, so that nothing the proxy writes for
    //    the request carries it.
    tracing::debug_span!("filter").in_scope(|| attribute_policy::inbound(ctx))?;
    // 8. fill gaps, else 9. forward.
    let filled = emulate::fill(ctx)
        .instrument(tracing::debug_span!("fill"))
        .await?;
    let response = match filled {
        Flow::Respond(response) => response,
        Flow::Next => {
            let forwarding = tracing::debug_span!("forward");
            let forwarded = if writes_one_resource(ctx) {
                // A forwarded PUT, PATCH or DELETE waits for an emulated PATCH of the same
                // resource (which holds the lock across its GET and PUT), so a DELETE cannot
                // fall between them and be undone by the PUT.
                let lock = ctx.resource_lock();
                let _held = lock.lock().await;
                upstream::forward(ctx).instrument(forwarding).await?
            } else {
                upstream::forward(ctx).instrument(forwarding).await?
            };
            // An app may announce what it then refuses (501): filled after all.
            if forwarded.status().is_client_error() || forwarded.status().is_server_error() {
                let filling = tracing::debug_span!("fill");
                Box::pin(emulate::after_refusal(ctx, forwarded))
                    .instrument(filling)
                    .await?
            } else {
                forwarded
            }
        }
    };
    // 10. answer: forwarded and composed answers alike.
    let answering = tracing::debug_span!("answer");
    Ok(response::answer(ctx, response)
        .instrument(answering)
        .await?)
}

fn writes_one_resource(ctx: &RequestCtx) -> bool {
    let target = ctx.target();
    matches!(ctx.method, Method::PUT | Method::PATCH | Method::DELETE)
        && matches!(target.endpoint, Endpoint::Users | Endpoint::Groups)
        && target.id.is_some()
}

/// Carries out a Bulk's operations in order, within one deadline for all of them. Past the
/// deadline the IdP still gets the BulkResponse: what was done, the operation that was cut
/// off as 504 (the app may or may not have applied it), and each one not run as 503, so that
/// nothing done is replayed blindly.
async fn fan_out(ctx: &RequestCtx, mut run: BulkRun) -> Result<Response<Body>, ProxyError> {
    let allowed = ctx.tenant().upstream.gap_deadline();
    let deadline = tokio::time::Instant::now() + allowed;
    let mut index = 0;
    while let Some(op) = run.next() {
        let done = async { response::outcome(sub_request(ctx, index, &op).await).await };
        match tokio::time::timeout_at(deadline, done).await {
            Ok(outcome) => run.record(outcome),
            Err(_) => {
                tracing::warn!(
                    request_id = ctx.id.to_str().unwrap_or_default(),
                    tenant = ctx.tenant_id(),
                    operation = index,
                    "the Bulk ran past its deadline of {}s; the operations left are not run",
                    allowed.as_secs()
                );
                run.record(failed(504, "the Bulk ran past its deadline while this operation was at the application; whether it was applied is unknown"));
                while run.next().is_some() {
                    run.record(failed(
                        503,
                        "not performed: the Bulk ran past its deadline; send this operation again",
                    ));
                }
                break;
            }
        }
        index += 1;
    }
    let work = &ctx.snapshot.metrics.work;
    work.bulk_done(&ctx.tenant().id, run.outcomes());
    Ok(body::full(StatusCode::OK, MEDIA_TYPE, run.response()))
}

/// An operation's outcome that no answer gave.
fn failed(status: u16, detail: &str) -> OpOutcome {
    OpOutcome {
        status,
        body: crate::scim::error::ScimError::new(status, detail).to_json(),
        ..OpOutcome::default()
    }
}

/// One Bulk operation as a request of its own: classified, then stages 6–10, then recorded.
pub async fn sub_request(parent: &RequestCtx, index: usize, op: &PlannedOp) -> Response<Body> {
    let method = Method::from_bytes(op.method.as_str().as_bytes()).unwrap_or(Method::POST);
    let data = op.data.clone().unwrap_or_default();
    let Some(mut ctx) =
        parent.sub_request(index, method, &op.path, data.into(), op.version.as_deref())
    else {
        let e = ProxyError::Classify(classify::ClassifyError::NoEndpoint);
        return error::respond(&e);
    };
    let span = tracing::debug_span!(
        "bulk_op",
        request_id = ctx.id.to_str().unwrap_or_default(),
        index,
    );
    let result = async {
        let classifying = tracing::debug_span!("classify");
        classifying.in_scope(|| classify::target(&mut ctx))?;
        classifying.in_scope(|| classify::check(ctx.body.raw()))?;
        // Boxed: an operation goes back through the stages that are running its Bulk.
        Box::pin(answer(&mut ctx)).await
    }
    .instrument(span.clone())
    .await;
    let mut refusal = None;
    let response = result.unwrap_or_else(|e| {
        ctx.record.error = Some(e.to_string());
        refusal = e.refusal_kind();
        span.in_scope(|| fail(&ctx, &e))
    });
    let recording = tracing::debug_span!(parent: &span, "record");
    record(&ctx, refusal, response).instrument(recording).await
}

/// A failure as its answer; the proxy's and the upstream's faults are logged with their causes.
fn fail(ctx: &RequestCtx, e: &ProxyError) -> Response<Body> {
    if e.is_server_side() {
        tracing::warn!(
            request_id = ctx.id.to_str().unwrap_or_default(),
            tenant = ctx.tenant_id(),
            error = %e,
            cause = causes(e),
            "request failed"
        );
    }
    error::respond(e)
}

/// Stage 11, record: the audit line of a change or refusal (written before the caller is
/// answered, which may turn a change's answer into a 503), then one log line per request (and
/// per Bulk operation), with the request id echoed to the caller.
async fn record(
    ctx: &RequestCtx,
    refusal: Option<&'static str>,
    response: Response<Body>,
) -> Response<Body> {
    let mut response = audit::record(ctx, refusal, response).await;
    response.headers_mut().insert(X_REQUEST_ID, ctx.id.clone());
    if let (Either::Left(streamed), Some(tenant)) = (response.body_mut(), &ctx.tenant) {
        streamed.label(ctx.id.clone(), tenant.id.clone());
    }
    let principal = ctx.principal.as_ref();
    // One clock read for the log line, the metrics and the admin API's request log.
    let took = ctx.started.elapsed();
    // The path only: a query can carry filter values such as e-mail addresses.
    tracing::info!(
        request_id = ctx.id.to_str().unwrap_or_default(),
        tenant = ctx.tenant_id(),
        principal = principal.map(tracing::field::display),
        method = %ctx.method,
        path = ctx.uri.path(),
        status = response.status().as_u16(),
        filled = ctx.record.filled,
        bulk_op = ctx.record.bulk_op,
        pack = ctx.record.pack.as_deref(),
        rules = (!ctx.record.rules.is_empty()).then(|| tracing::field::display(Joined(&ctx.record.rules))),
        withheld = (!ctx.record.withheld.is_empty()).then(|| tracing::field::display(Joined(&ctx.record.withheld))),
        error = ctx.record.error.as_deref(),
        latency_ms = took.as_secs_f64() * 1000.0,
        "request"
    );
    ctx.snapshot.metrics.finished(&Finished {
        tenant: ctx.tenant.as_ref().map(|t| &t.id),
        method: &ctx.method,
        target: ctx.target.as_ref(),
        status: response.status(),
        took,
        pack: ctx.record.pack.as_ref(),
        rules: &ctx.record.rules,
        filled: ctx.record.filled,
        deprovisions: response.status().is_success() && deprovisions(ctx),
    });
    if let Some(tenant) = &ctx.tenant {
        tenant
            .control
            .finished(logged(ctx, response.status(), took));
    }
    response
}

/// The request as the admin API's request log keeps it: no body, no query, no credential.
fn logged(ctx: &RequestCtx, status: StatusCode, took: Duration) -> LoggedRequest {
    LoggedRequest {
        at: std::time::SystemTime::now(),
        request_id: ctx.id.clone(),
        method: ctx.method.clone(),
        path: ctx.uri.path().to_owned(),
        status: status.as_u16(),
        latency_ms: took.as_secs_f64() * 1000.0,
        pack: ctx.record.pack.clone(),
        rules: ctx.record.rules.clone(),
        filled: ctx.record.filled,
        bulk_op: ctx.record.bulk_op,
        error: ctx.record.error.clone(),
    }
}

/// A DELETE of a User, or a PUT or PATCH that sets `active` to false. The body is only parsed
/// when it names `active` at all.
fn deprovisions(ctx: &RequestCtx) -> bool {
    let user = ctx
        .target
        .as_ref()
        .is_some_and(|t| t.endpoint == Endpoint::Users);
    match ctx.method {
        _ if !user => false,
        Method::DELETE => true,
        _ if ctx.class == Class::Deprovision => true,
        Method::PUT | Method::PATCH if ctx.body.parsed().is_some() => {
            Class::of(&ctx.method, ctx.body.parsed()) == Class::Deprovision
        }
        Method::PUT | Method::PATCH => {
            let raw = ctx.body.raw();
            let named = memchr::memmem::find(raw, b"ctive").is_some()
                || memchr::memmem::find(raw, b"CTIVE").is_some();
            named
                && serde_json::from_slice(raw)
                    .is_ok_and(|body| Class::of(&ctx.method, Some(&body)) == Class::Deprovision)
        }
        _ => false,
    }
}

/// Rule ids for the log line, comma-separated, written without an intermediate string.
struct Joined<'a, T>(&'a [T]);

impl<T: AsRef<str>> std::fmt::Display for Joined<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(id.as_ref())?;
        }
        Ok(())
    }
}

/// The chain of causes under an error, for the log: "client error (Connect): tcp connect
/// error: Connection refused".
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut next = e.source();
    while let Some(cause) = next {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// The caller's `X-Request-Id` when it is a sane token, else a fresh one: a per-process random
/// prefix and a counter, unique without a syscall per request.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(given) = headers.get(X_REQUEST_ID) {
        let bytes = given.as_bytes();
        if (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic()) {
            return given.clone();
        }
    }
    static SEED: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(|| {
        let mut b = [0u8; 4];
        // Without randomness, ids are still unique within the process.
        let _ = getrandom::fill(&mut b);
        u32::from_ne_bytes(b)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // `{seed:08x}-{n:012x}`, written without the formatting machinery (it is per request).
    let mut id = [b'-'; 21];
    hex(u64::from(*seed), &mut id[..8]);
    hex(n, &mut id[9..]);
    HeaderValue::from_bytes(&id).expect("hex digits are a valid header value")
}

/// The low `out.len()` hex digits of `n`, most significant first.
fn hex(mut n: u64, out: &mut [u8]) {
    for digit in out.iter_mut().rev() {
        *digit = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_is_kept_when_sane_and_made_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("has space"));
        let made = request_id(&h);
        assert_ne!(made, "has space");
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
        assert_eq!(made.len(), 21);
    }

    #[test]
    fn made_ids_are_the_seed_and_the_count_in_fixed_width_hex() {
        let mut out = [0u8; 12];
        hex(0xabc, &mut out);
        assert_eq!(&out, b"000000000abc");
        hex(u64::MAX, &mut out[..8]);
        assert_eq!(&out[..8], b"ffffffff");
        let made = request_id(&HeaderMap::new());
        let (seed, count) = made
            .to_str()
            .expect("text")
            .split_once('-')
            .expect("a dash");
        assert_eq!((seed.len(), count.len()), (8, 12));
        assert!(u64::from_str_radix(count, 16).is_ok() && u32::from_str_radix(seed, 16).is_ok());
    }
}
