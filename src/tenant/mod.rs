//! Stage 2, route: picks the one tenant a request belongs to, from the snapshot the request
//! started under.

pub mod table;

pub use table::RouteError;

use crate::ctx::RequestCtx;

/// Routes by host (and, under TLS, checks it against the SNI name), else by the first path
/// segment; sets the tenant and its public prefix on the request.
pub fn route(ctx: &mut RequestCtx) -> Result<(), RouteError> {
    let routed = ctx
        .snapshot
        .tenants
        .lookup(ctx.host(), ctx.conn.sni(), ctx.uri.path())?;
    let (tenant, prefix_len) = (routed.tenant.clone(), routed.prefix_len);
    ctx.tenant = Some(tenant);
    ctx.prefix_len = prefix_len;
    Ok(())
}
