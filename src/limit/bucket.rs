//! The GCRA bucket behind a tenant's rate. governor keeps the state and decides every take;
//! this wrapper can also read the state without changing it, which the queue needs to know
//! when a cell will be free and to keep cells back for writes. It is the one place a
//! tenant's rate state lives: a store shared by several replicas would replace it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// governor's clock, read from tokio's, so a paused test clock pauses the buckets too.
#[derive(Clone, Debug)]
pub struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// The instant a reading of this clock stands for.
    pub fn instant(&self, at: Nanos) -> Instant {
        self.origin + Duration::from(at)
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

/// `rate_per_s` cells a second, `burst` at once.
pub fn quota(rate_per_s: f64, burst: NonZeroU32) -> Quota {
    let period = Duration::from_secs_f64(1.0 / rate_per_s).max(Duration::from_nanos(1));
    Quota::with_period(period)
        .expect("the period is at least a nanosecond")
        .allow_burst(burst)
}

/// The state governor updates, shared so that [`Bucket::free_at`] can read it.
#[derive(Clone, Debug, Default)]
struct Shared(Arc<InMemoryState>);

impl StateStore for Shared {
    type Key = NotKeyed;

    fn measure_and_replace<T, F, E>(&self, key: &NotKeyed, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

/// A GCRA state's theoretical arrival time, read without changing it: governor replaces a
/// state only when its closure accepts, and this one always declines, handing the value out.
pub fn read_tat(state: &impl StateStore<Key = NotKeyed>) -> Option<Nanos> {
    let declined = state.measure_and_replace(&NotKeyed::NonKey, Err::<((), Nanos), _>);
    declined.err().flatten()
}

#[derive(Debug)]
pub struct Bucket {
    limiter: RateLimiter<NotKeyed, Shared, TokioClock, NoOpMiddleware<Nanos>>,
    state: Shared,
    /// governor counts its state from its first reading of the clock; this is a reading taken
    /// just after. Under a paused clock they are equal; otherwise this one is a few
    /// nanoseconds later, which can only make `free_at` answer that much late, never early.
    start: Nanos,
    period: Nanos,
    /// GCRA's tolerance: how far ahead of now the state may run, `period × (burst − 1)`.
    tau: Nanos,
}

impl Bucket {
    pub fn new(rate_per_s: f64, burst: NonZeroU32) -> Self {
        let quota = quota(rate_per_s, burst);
        let state = Shared::default();
        let limiter = RateLimiter::new(quota, state.clone(), TokioClock::new());
        let start = limiter.clock().now();
        let period = Nanos::from(quota.replenish_interval());
        Self {
            limiter,
            state,
            start,
            period,
            tau: period * u64::from(burst.get() - 1),
        }
    }

    /// The time between two cells.
    pub fn period(&self) -> Duration {
        self.period.into()
    }

    /// When one cell can be taken while `keep` more stay in the bucket: at or before now if
    /// at once. Reads nothing but the state; takes nothing.
    pub fn free_at(&self, keep: u32) -> Instant {
        let clock = self.limiter.clock();
        // GCRA: a cell conforms when now ≥ tat − τ; `keep` more conform after it when
        // now ≥ tat + keep·T − τ. No state yet is a full bucket: any tat not after now reads
        // so, and the start is one no caller's reading of now precedes. (A reading taken here
        // would come after the caller's, and a bucket of one cell, τ = 0, would then never
        // look free to it.)
        let tat = read_tat(&self.state).unwrap_or(Nanos::from(0));
        let at = (tat + self.period * u64::from(keep)).saturating_sub(self.tau);
        clock.instant(self.start + at)
    }

    /// Takes one cell, or says when one will be free.
    pub fn take(&self) -> Result<(), Instant> {
        self.limiter
            .check()
            .map_err(|not| self.limiter.clock().instant(not.earliest_possible()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn bucket(rate: f64, burst: u32) -> Bucket {
        Bucket::new(rate, NonZeroU32::new(burst).expect("test burst above 0"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_gives_its_burst_then_one_cell_a_period() {
        let b = bucket(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.take(), Ok(()));
        }
        assert_eq!(b.take(), Err(t0 + SECOND / 2));
        assert_eq!(b.free_at(0), t0 + SECOND / 2);
        tokio::time::advance(SECOND / 2).await;
        assert_eq!(b.take(), Ok(()));
        assert_eq!(b.take(), Err(t0 + SECOND));
    }

    #[test]
    fn a_new_bucket_of_one_cell_is_free_now_on_a_running_clock() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let b = bucket(0.01, 1);
            let now = Instant::now();
            assert!(b.free_at(0) <= now, "the one cell is there");
            assert_eq!(b.take(), Ok(()));
            assert!(b.free_at(0) > Instant::now(), "and then gone for 100 s");
        });
    }

    #[tokio::test(start_paused = true)]
    async fn free_at_keeps_cells_back_without_taking_any() {
        let b = bucket(10.0, 5);
        let t0 = Instant::now();
        assert!(
            b.free_at(4) <= t0,
            "a full bucket of 5 can spare one and keep 4"
        );
        assert!(b.free_at(5) > t0, "but not keep all 5");
        b.take().expect("a cell");
        b.take().expect("a cell");
        // 3 left: one can go while 2 stay, not while 3 stay.
        assert!(b.free_at(2) <= t0);
        assert_eq!(b.free_at(3), t0 + SECOND / 10);
        assert_eq!(b.take(), Ok(()), "reading took nothing");
    }
}
