//! Stage 8, fill gaps: what the upstream cannot do, the proxy does with what it can. PATCH
//! becomes GET + PUT, a filter becomes a scan of the list, discovery is answered locally, a
//! create is checked for duplicates, and DELETE becomes deactivation where the tenant asks.
//! A request the upstream handles itself passes through untouched; one it announced but
//! refused with 501 is filled after all (`after_refusal`). (A Bulk the upstream cannot
//! do is split by the pipeline, so that each operation passes stages 6–10 on its own.)

pub mod bulk;
mod discovery;
pub mod error;
mod list;
mod patch;
mod reply;
mod unique;

use std::sync::atomic::Ordering;

use http::{Method, Response, StatusCode};

pub use error::EmulateError;

use crate::body::Body;
use crate::ctx::{Flow, RequestCtx};
use crate::scim::list::asks_for_more;
use crate::scim::request::Endpoint;
use crate::upstream;
use crate::upstream::caps::Form;

/// Answers the request when the upstream needs help with it; `Flow::Next` lets it pass through.
pub async fn fill(ctx: &mut RequestCtx) -> Result<Flow, EmulateError> {
    let Some(need) = need(ctx) else {
        return Ok(Flow::Next);
    };
    // One limit on all the upstream calls made for one request (a scan, a uniqueness check),
    // so a client that waits forever cannot keep them, and the locks they hold, going.
    // Calls made before this stage (the app's schemas, looked up once) are not the gap's.
    *ctx.record.calls.get_mut() = 0;
    let deadline = ctx.tenant().upstream.gap_deadline();
    let kind = need.kind();
    let done = tokio::time::timeout(deadline, Box::pin(help(ctx, need))).await;
    // The calls made, whether the gap was filled or not (a failed scan still cost them).
    let calls = ctx.record.calls.swap(0, Ordering::Relaxed);
    let kind = ctx.record.filled.unwrap_or(kind);
    let work = &ctx.snapshot.metrics.work;
    work.emulated_calls(&ctx.tenant().id, kind, calls);
    done.map_err(|_| EmulateError::Deadline(deadline))?
}

async fn help(ctx: &mut RequestCtx, need: Need) -> Result<Flow, EmulateError> {
    let caps = upstream::capabilities(ctx).await?;
    let (filled, answer) = match need {
        Need::Discovery => ("discovery", discovery::answer(ctx, &caps).await?),
        Need::Patch if !caps.patch => ("patch", Flow::Respond(patch::via_put(ctx, &caps).await?)),
        // With the values it gives claimed, or read back for the attributes asked for.
        Need::Patch => ("patch_native", patch::native(ctx, &caps).await?),
        Need::List => ("list", list::answer(ctx, &caps).await?),
        Need::Create if !caps.uniqueness => (
            "uniqueness",
            Flow::Respond(unique::create(ctx, &caps).await?),
        ),
        Need::Create => return Ok(Flow::Next),
        Need::Replace if !caps.uniqueness => (
            "uniqueness",
            Flow::Respond(unique::replace(ctx, &caps).await?),
        ),
        Need::Replace => return Ok(Flow::Next),
        Need::Delete => (
            "soft_delete",
            Flow::Respond(patch::deactivate(ctx, &caps).await?),
        ),
    };
    if matches!(answer, Flow::Respond(_)) {
        ctx.record.filled = Some(filled);
    }
    Ok(answer)
}

/// An answer of 501 (or, at the service root, 404) to a form of request the proxy can fill: the
/// app announced it but does not do it. The proxy learns that for the resource type and fills
/// this request, and the ones after it, itself; any other answer is passed on. Called with no
/// lock held, as the fill takes its own.
pub async fn after_refusal(
    ctx: &mut RequestCtx,
    answer: Response<Body>,
) -> Result<Response<Body>, EmulateError> {
    let status = answer.status();
    let at = ctx.target().endpoint;
    let refused = status == StatusCode::NOT_IMPLEMENTED
        || (status == StatusCode::NOT_FOUND && at == Endpoint::Root);
    let forms = match refused.then(|| need(ctx)).flatten() {
        Some(Need::Patch) => vec![Form::Patch],
        Some(Need::List) => list::forms(ctx),
        _ => Vec::new(),
    };
    if forms.is_empty() {
        return Ok(answer);
    }
    learn(ctx, at, &forms);
    ctx.caps = None;
    match fill(ctx).await? {
        Flow::Respond(filled) => Ok(filled),
        Flow::Next => Ok(answer),
    }
}

/// Remembers, for the tenant, forms of request its app refused at `at`.
pub fn learn(ctx: &RequestCtx, at: Endpoint, forms: &[Form]) {
    let tenant = ctx.tenant();
    for form in forms {
        if tenant.state.learned.learn(at, *form) {
            tracing::info!(tenant = %tenant.id, endpoint = ?at, form = ?form, "the application announced this form of request but refused it; the proxy fills it from now on");
        }
    }
}

/// The kinds of request that may need help, decided from the request alone so that plain
/// traffic costs no capability lookup.
enum Need {
    Discovery,
    Patch,
    List,
    Create,
    Replace,
    Delete,
}

impl Need {
    /// The gap's name in the metrics, before it is known how it was filled.
    fn kind(&self) -> &'static str {
        match self {
            Need::Discovery => "discovery",
            Need::Patch => "patch",
            Need::List => "list",
            Need::Create | Need::Replace => "uniqueness",
            Need::Delete => "soft_delete",
        }
    }
}

fn need(ctx: &RequestCtx) -> Option<Need> {
    let t = ctx.target();
    let resource = matches!(t.endpoint, Endpoint::Users | Endpoint::Groups);
    let discovery = matches!(
        t.endpoint,
        Endpoint::ServiceProviderConfig | Endpoint::Schemas | Endpoint::ResourceTypes
    );
    match ctx.method {
        _ if discovery => Some(Need::Discovery),
        Method::GET => match t.endpoint {
            Endpoint::Users | Endpoint::Groups | Endpoint::Root
                if t.id.is_none() && asks_for_more(ctx.query()) =>
            {
                Some(Need::List)
            }
            _ => None,
        },
        Method::POST if t.search && t.id.is_none() => Some(Need::List),
        Method::POST if resource && t.id.is_none() => Some(Need::Create),
        Method::PATCH if resource && t.id.is_some() => Some(Need::Patch),
        Method::PUT if resource && t.id.is_some() => Some(Need::Replace),
        Method::DELETE
            if ctx.tenant().soft_delete && t.endpoint == Endpoint::Users && t.id.is_some() =>
        {
            Some(Need::Delete)
        }
        _ => None,
    }
}
