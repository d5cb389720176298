//! The app's extension schemas (RFC 7643 §7), for stage 6 to check and type request bodies
//! by: the tenant's schema files, and what the app's own `/Schemas` announces, read once and
//! kept in the tenant's lasting state.

use std::sync::Arc;

use http::{Method, StatusCode};

use super::{call, capabilities, Call};
use crate::ctx::RequestCtx;
use crate::scim::discovery::Extensions;
use crate::upstream::target::Upstream;

/// Looks up the extensions when stage 6 will read this request's body: a write to a tenant with
/// a rule pack. A failure to read `/Schemas` costs the request nothing: its extensions are
/// then left to the app, as before, and the next request asks again.
pub async fn look_up(ctx: &mut RequestCtx) {
    let tenant = ctx.tenant().clone();
    let reads_body = matches!(ctx.method, Method::POST | Method::PUT | Method::PATCH);
    if !reads_body || (tenant.idp.is_none() && tenant.app_rules.is_empty()) {
        return;
    }
    let announced = match &tenant.upstream {
        Upstream::Http(_) => announced(ctx).await,
        Upstream::Memory(_) => None,
    };
    ctx.extensions = match announced {
        Some(app) if tenant.schemas.is_empty() => Some(app),
        Some(app) if !app.is_empty() => Some(Arc::new(tenant.schemas.and(&app))),
        _ if tenant.schemas.is_empty() => None,
        _ => Some(tenant.schemas.clone()),
    };
}

async fn announced(ctx: &mut RequestCtx) -> Option<Arc<Extensions>> {
    let tenant = ctx.tenant().clone();
    if let Some(found) = tenant.state.schemas.get() {
        return Some(found.clone());
    }
    let caps = capabilities(ctx).await.ok()?;
    let found = if caps.discovery {
        Box::pin(read(ctx)).await?
    } else {
        Extensions::default()
    };
    if !found.is_empty() {
        tracing::info!(
            tenant = %tenant.id,
            schemas = ?found.urns().collect::<Vec<_>>(),
            "read the app's extension schemas"
        );
    }
    // Two first requests may both have asked; either answer is the same.
    let _ = tenant.state.schemas.set(Arc::new(found));
    tenant.state.schemas.get().cloned()
}

/// `GET /Schemas`: its extensions; none when the app has no such endpoint or answers what is
/// not a list of schemas (said in the log); `None` (ask again) when the call failed.
async fn read(ctx: &RequestCtx) -> Option<Extensions> {
    let tenant = &ctx.tenant().id;
    let reply = match call(ctx, Call::get("/Schemas")).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::warn!(tenant = %tenant, error = %e, "could not read the app's /Schemas");
            return None;
        }
    };
    let absent = [
        StatusCode::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED,
        StatusCode::NOT_IMPLEMENTED,
    ];
    if absent.contains(&reply.status) {
        return Some(Extensions::default());
    }
    if !reply.status.is_success() {
        tracing::warn!(tenant = %tenant, status = reply.status.as_u16(), "the app's /Schemas failed");
        return None;
    }
    let read = serde_json::from_slice(&reply.body)
        .map_err(|e| e.to_string())
        .and_then(|doc| Extensions::from_document(&doc));
    Some(read.unwrap_or_else(|e| {
        tracing::warn!(tenant = %tenant, error = %e, "the app's /Schemas is not a list of schemas; its extensions are left to it");
        Extensions::default()
    }))
}
