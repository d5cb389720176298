//! Bulk for an upstream without it (RFC 7644 §3.7): the protocol core plans the operations and
//! resolves `bulkId` references; the pipeline carries each one out as a request of its own.

use http::Method;

use super::error::EmulateError;
use crate::ctx::RequestCtx;
use crate::scim::bulk::{BulkLimits, BulkRun};
use crate::scim::request::Endpoint;
use crate::upstream;

/// Announced in the ServiceProviderConfig and enforced here.
pub const MAX_OPERATIONS: usize = 1000;
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// The operations to carry out one by one, when this is a Bulk the upstream cannot do itself;
/// `None` for anything else.
pub async fn plan(ctx: &mut RequestCtx) -> Result<Option<BulkRun>, EmulateError> {
    let t = ctx.target();
    if ctx.method != Method::POST || t.endpoint != Endpoint::Bulk || t.id.is_some() {
        return Ok(None);
    }
    // In test mode a Bulk is always carried out here, one operation at a time, so that each
    // is answered, and recorded, on its own where requests leave for the app.
    if upstream::capabilities(ctx).await?.bulk && !ctx.tenant().control.test_mode() {
        return Ok(None);
    }
    let limits = BulkLimits {
        max_operations: MAX_OPERATIONS,
        max_payload_bytes: MAX_PAYLOAD_BYTES,
    };
    let run = BulkRun::new(&ctx.body.to_bytes(), &limits).map_err(EmulateError::Scim)?;
    ctx.record.filled = Some("bulk");
    Ok(Some(run.with_base_url(ctx.public_base())))
}
