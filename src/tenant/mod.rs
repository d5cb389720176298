//! Stage 2, route: picks the one tenant a request belongs to, from the snapshot the request
//! started under.

pub mod table;

pub use table::RouteError;

use crate::ctx::RequestCtx;

/// Routes by host (and, under TLS, checks it against the SNI name), else by the first path
/// segment; sets the tenant and its public prefix on the request.
pub fn route(ctx: &mut RequestCtx) -> Result<(), RouteError> {
    check_host(ctx)?;
    let routed = ctx
        .snapshot
        .tenants
        .lookup(ctx.host(), ctx.conn.sni(), ctx.uri.path())?;
    let (tenant, prefix_len) = (routed.tenant.clone(), routed.prefix_len);
    ctx.tenant = Some(tenant);
    ctx.prefix_len = prefix_len;
    Ok(())
}

/// One host per request: routing, the TLS name check and `X-Forwarded-Host` all read
/// `RequestCtx::host`, which prefers the request target's authority; a `Host` header that says
/// otherwise, or a second one, is refused rather than quietly ignored.
fn check_host(ctx: &RequestCtx) -> Result<(), RouteError> {
    let mut hosts = ctx.headers.get_all(http::header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(RouteError::AmbiguousHost);
    }
    match (ctx.uri.authority(), first) {
        (Some(authority), Some(host))
            if !authority
                .as_str()
                .as_bytes()
                .eq_ignore_ascii_case(host.as_bytes()) =>
        {
            Err(RouteError::AmbiguousHost)
        }
        _ => Ok(()),
    }
}
