//! Stage 4, admit: how many calls the proxy makes to an app, and when. IdPs send in bursts (a
//! first sync, a reconciliation scan); apps behind the proxy want a steady rate. The budget
//! counts upstream calls, not IdP requests: a Bulk of 1,000 operations or an emulated list
//! scan takes a permit per call it makes.
//!
//! - [`TenantLimiter`]: per tenant, a GCRA bucket (`rate_per_s`, `burst`), a bounded waiting
//!   line served by [`Class`] (deprovisioning, then writes, then reads, FIFO within each) for
//!   at most `max_wait`, and `max_in_flight`. Reads only ever use their `read_share`; see
//!   `tenant.rs` for how.
//! - [`UpstreamGates`]: a cap shared by all tenants fronting one app.
//! - [`Gate`] with [`GateScope::Global`]: a cap for the whole process.
//! - [`CallLimits`]: the three together, as one upstream call passes them.
//! - [`AuthThrottle`]: failed authentications per client address.
//! - [`Buffers`]: the bytes of the answers the proxy reads whole, for the whole process.
//! - [`off_worker`]: long pure work (a large PATCH, a large sort) off the worker's other connections.
//!
//! No limit configured costs nothing: every limit in [`CallLimits`] is an `Option`, and an
//! absent one is skipped without reading the clock. The limiters are state that outlives a
//! configuration: keep a tenant's [`TenantLimiter`] while its [`Limits`] compare equal, and
//! call [`UpstreamGates::reconcile`] on reload. With several replicas, the bucket (the one
//! piece of shared state, `bucket.rs`) is what moves to a shared store; the waiting line and
//! the in-flight counts stay per process.

mod bucket;
mod buffers;
mod class;
pub mod config;
mod error;
mod gate;
mod heavy;
mod queue;
mod tenant;
mod throttle;

#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::time::Instant;

pub use buffers::{Buffers, Held, ReadError};
pub use class::Class;
pub use config::{AuthThrottleConfig, Limits, RawAuthThrottle, RawLimits};
pub use error::{GateScope, LimitError};
pub use gate::{Gate, GatePermit, UpstreamGates};
pub use heavy::{off_worker, LARGE};
pub use tenant::{LimiterStats, Permit, TenantLimiter};
pub use throttle::AuthThrottle;

/// The limits one upstream call passes, each present when configured.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallLimits<'a> {
    pub tenant: Option<&'a TenantLimiter>,
    pub upstream: Option<&'a Gate>,
    pub global: Option<&'a Gate>,
}

/// Everything one upstream call holds while it is made; dropping it gives all of it back.
#[derive(Debug, Default)]
pub struct CallPermit {
    tenant: Option<Permit>,
    // Held for their drop: each gives a place back.
    _upstream: Option<GatePermit>,
    _global: Option<GatePermit>,
    waited: Duration,
}

impl CallPermit {
    /// How long the call waited, all limits together.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The tenant's permit, when the tenant has limits.
    pub fn tenant(&self) -> Option<&Permit> {
        self.tenant.as_ref()
    }
}

impl CallLimits<'_> {
    /// Takes the tenant's permit first, then a place under the app's cap, then one under the
    /// proxy's: narrow to wide, so a call holds a shared place only once its own tenant let
    /// it through, and the tenant's order of classes decides who reaches the shared caps
    /// first. All the waiting together lasts at most the tenant's `max_wait` (5 s without
    /// tenant limits). Nothing is read or held when nothing is configured.
    pub async fn acquire(&self, class: Class) -> Result<CallPermit, LimitError> {
        if self.tenant.is_none() && self.upstream.is_none() && self.global.is_none() {
            return Ok(CallPermit::default());
        }
        // Without tenant limits, free places at the shared caps are taken without reading the
        // clock: the common case of a proxy that is not saturated.
        if self.tenant.is_none() {
            let free = |gate: Option<&Gate>| match gate {
                Some(gate) => gate.free().map(Some),
                None => Some(None),
            };
            if let (Some(upstream), Some(global)) = (free(self.upstream), free(self.global)) {
                return Ok(CallPermit {
                    tenant: None,
                    _upstream: upstream,
                    _global: global,
                    waited: Duration::ZERO,
                });
            }
        }
        let arrived = Instant::now();
        let max_wait = self
            .tenant
            .map_or(config::DEFAULT_MAX_WAIT, |t| t.limits().max_wait);
        let deadline = arrived + max_wait;
        let tenant = match self.tenant {
            Some(t) => Some(t.acquire(class).await?),
            None => None,
        };
        let upstream = match self.upstream {
            Some(gate) => Some(gate.acquire(deadline).await?),
            None => None,
        };
        let global = match self.global {
            Some(gate) => Some(gate.acquire(deadline).await?),
            None => None,
        };
        Ok(CallPermit {
            tenant,
            _upstream: upstream,
            _global: global,
            waited: arrived.elapsed(),
        })
    }
}
