//! Stage 6, normalize: the tenant's IdP rule pack rewrites the request into RFC 7643/7644
//! form — its JSON body and its `filter` (in the query, or in a `.search` body) — and the
//! result is checked against the resource's schema, so the app behind a tenant with a pack
//! only sees schema-valid requests. A request no rule changes is forwarded as its original
//! bytes; one a rule changed is serialized once. Then the packs that fix the app behind the
//! tenant (`app_rules`) adapt the clean request to it.

use crate::config::Idp;
use crate::ctx::RequestCtx;
use crate::rule_pack::request::{bulk_ops, normalize, Normalized, Request};
use crate::rule_pack::{schema, Pack, Shape};
use crate::scim::discovery::Extensions;
use crate::scim::error::ScimError;
use crate::scim::request::Endpoint;

/// What normalization could not make valid.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// The normalized body fails the schema check; the error names the attribute, never its
    /// value.
    #[error("{}", .0.detail)]
    Schema(ScimError),
}

pub fn request(ctx: &mut RequestCtx) -> Result<(), NormalizeError> {
    from_idp(ctx)?;
    for_app(ctx);
    Ok(())
}

/// The IdP's pack, then the schema check.
fn from_idp(ctx: &mut RequestCtx) -> Result<(), NormalizeError> {
    let Some(idp) = ctx.tenant().idp.clone() else {
        // No pack for this tenant: nothing to look at.
        return Ok(());
    };
    let pack = match idp {
        Idp::Pack(pack) => pack,
        Idp::Auto => {
            let query = ctx.uri.query().unwrap_or_default();
            match ctx
                .snapshot
                .packs
                .detect(&ctx.headers, ctx.body.raw(), query)
            {
                Some(pack) => pack,
                None => return Ok(()),
            }
        }
    };
    if is_bulk(ctx) {
        return bulk(ctx, &pack, true);
    }
    let Some(done) = run(ctx, &pack) else {
        return Ok(());
    };
    ctx.record.pack = Some(pack.name.clone());
    let Some(rt) = done
        .resource
        .filter(|_| !ctx.body.is_empty() && done.shape != Shape::Other)
    else {
        return Ok(());
    };
    let ext = ctx.extensions.clone();
    let ext = ext.as_deref().unwrap_or(Extensions::none());
    match ctx.body.json() {
        Ok(doc) => schema::check(rt, done.shape, doc, ext).map_err(NormalizeError::Schema),
        Err(_) => Ok(()),
    }
}

/// The request rules of the packs that fix the app (`app_rules`), after the schema check:
/// they turn the RFC form into what this app accepts. (The requests the proxy makes itself
/// while filling gaps get them in `upstream::call`.)
fn for_app(ctx: &mut RequestCtx) {
    if ctx.tenant().app_rules.is_empty() {
        return;
    }
    let packs = ctx.tenant().app_rules.clone();
    let bulk_request = is_bulk(ctx);
    for pack in &packs {
        if bulk_request {
            let _ = bulk(ctx, pack, false);
        } else {
            run(ctx, pack);
        }
    }
}

/// A Bulk that reaches stage 6 is one the app carries out itself (one it cannot do is split
/// into requests before this stage): each operation's `data` goes through the pack as the
/// request it stands for, and, when `check`, through the schema check, whose refusal names the
/// operation.
fn bulk(ctx: &mut RequestCtx, pack: &Pack, check: bool) -> Result<(), NormalizeError> {
    let headers = ctx.headers.clone();
    let extensions = ctx.extensions.clone();
    let extensions = extensions.as_deref().unwrap_or(Extensions::none());
    let edited = ctx.body.edit(|doc| {
        let mut fired = Vec::new();
        let mut verdict = Ok(());
        for op in bulk_ops(doc) {
            let req = Request {
                method: &op.method,
                endpoint: op.endpoint,
                search: false,
                headers: &headers,
                query: None,
                extensions,
            };
            let done = normalize(pack, &req, Some(op.data));
            fired.extend(done.fired);
            if let (true, Ok(()), Some(rt)) = (check, &verdict, done.resource) {
                verdict = schema::check(rt, done.shape, op.data, extensions).map_err(|mut e| {
                    e.detail = format!("Operations[{}]: {}", op.index, e.detail);
                    NormalizeError::Schema(e)
                });
            }
        }
        (!fired.is_empty(), (fired, verdict))
    });
    let Ok((fired, verdict)) = edited else {
        return Ok(());
    };
    if check {
        ctx.record.pack = Some(pack.name.clone());
    }
    ctx.record.rules.extend(fired);
    verdict
}

fn is_bulk(ctx: &RequestCtx) -> bool {
    ctx.method == http::Method::POST
        && ctx.target().endpoint == Endpoint::Bulk
        && !ctx.body.is_empty()
}

/// One pack over the request's query and body; `None` when it had nothing to look at. The
/// rules that fired join the log line.
fn run(ctx: &mut RequestCtx, pack: &Pack) -> Option<Normalized> {
    let target = ctx.target();
    let (endpoint, search) = (target.endpoint, target.search);
    let has_body = !ctx.body.is_empty();
    let req = Request {
        method: &ctx.method,
        endpoint,
        search,
        headers: &ctx.headers,
        query: ctx.uri.query(),
        extensions: ctx.extensions.as_deref().unwrap_or(Extensions::none()),
    };
    if !req.has_work(has_body) {
        return None;
    }
    let done = if has_body {
        // Only a body a rule changed is serialized again on its way upstream.
        let edited = ctx.body.edit(|doc| {
            let done = normalize(pack, &req, Some(doc));
            (done.body_changed, done)
        });
        match edited {
            Ok(done) => done,
            // Not JSON serde can read, though the guard of stage 5 let it through: the app
            // gets the body unchanged and answers for it.
            Err(_) => normalize(pack, &req, None),
        }
    } else {
        normalize(pack, &req, None)
    };
    if let Some(query) = &done.query {
        let pq = match query.as_str() {
            "" => ctx.uri.path().to_owned(),
            query => format!("{}?{query}", ctx.uri.path()),
        };
        ctx.set_path_and_query(&pq);
    }
    ctx.record.rules.extend(done.fired.iter().cloned());
    Some(done)
}
