//! Stage 8, fill gaps: what the upstream cannot do, the proxy does with what it can. PATCH
//! becomes GET + PUT, a filter becomes a scan of the list, discovery is answered locally, a
//! create is checked for duplicates, and DELETE becomes deactivation where the tenant asks.
//! A request the upstream handles itself passes through untouched. (A Bulk the upstream cannot
//! do is split by the pipeline, so that each operation passes stages 6–10 on its own.)

pub mod bulk;
mod discovery;
pub mod error;
mod list;
mod patch;
mod reply;
mod unique;

use http::Method;

pub use error::EmulateError;

use crate::ctx::{Flow, RequestCtx};
use crate::scim::list::asks_for_more;
use crate::scim::request::Endpoint;
use crate::upstream;

/// Answers the request when the upstream needs help with it; `Flow::Next` lets it pass through.
pub async fn fill(ctx: &mut RequestCtx) -> Result<Flow, EmulateError> {
    let Some(need) = need(ctx) else {
        return Ok(Flow::Next);
    };
    // One limit on all the upstream calls made for one request (a scan, a uniqueness check),
    // so a client that waits forever cannot keep them, and the locks they hold, going.
    let deadline = ctx.tenant().upstream.gap_deadline();
    tokio::time::timeout(deadline, help(ctx, need))
        .await
        .map_err(|_| EmulateError::Deadline(deadline))?
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
