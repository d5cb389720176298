//! The failed-authentication throttle: each client address may fail `burst` times at once and
//! `rate_per_s` times a second after that; past it, the address is refused before its
//! credentials are even looked at. IPv6 clients count by /64, the block one host usually
//! holds. Memory stays bounded under a spray from many addresses: idle entries are swept, and
//! past `max_tracked` addresses, failures from ones not yet remembered go uncounted (bearer
//! tokens are too long to guess, so the throttle is there for load and noise, and it must not
//! let a spray lock out the addresses it has never seen).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::StateStore;
use governor::RateLimiter;

use super::bucket::{quota, read_tat, TokioClock};
use super::config::AuthThrottleConfig;
use super::error::retry_after;

pub struct AuthThrottle {
    limiter: RateLimiter<IpAddr, SharedMap, TokioClock, NoOpMiddleware<Nanos>>,
    map: SharedMap,
    /// A reading just after governor's first (see `Bucket::start`).
    start: Nanos,
    period: Nanos,
    tau: Nanos,
    max_tracked: usize,
    /// The clock's reading at the last sweep, plus one so that zero means never.
    last_sweep: AtomicU64,
    refused: AtomicU64,
    untracked: AtomicU64,
    /// Whether any address may be remembered: until a failure, `check` reads nothing else, so
    /// a proxy no one is guessing at pays one load per request.
    remembers: AtomicBool,
}

/// governor's per-address states, shared so [`AuthThrottle::check`] can read one without
/// counting a failure.
#[derive(Clone, Debug, Default)]
struct SharedMap(Arc<DashMapStateStore<IpAddr>>);

impl StateStore for SharedMap {
    type Key = IpAddr;

    fn measure_and_replace<T, F, E>(&self, key: &IpAddr, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<IpAddr> for SharedMap {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for AuthThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthThrottle")
            .field("tracked", &self.tracked())
            .field("max_tracked", &self.max_tracked)
            .finish_non_exhaustive()
    }
}

impl AuthThrottle {
    pub fn new(config: &AuthThrottleConfig) -> Self {
        let quota = quota(config.rate_per_s, config.burst);
        let map = SharedMap::default();
        let limiter = RateLimiter::new(quota, map.clone(), TokioClock::new());
        let start = limiter.clock().now();
        let period = Nanos::from(quota.replenish_interval());
        Self {
            limiter,
            map,
            start,
            period,
            tau: period * u64::from(config.burst.get() - 1),
            max_tracked: config.max_tracked.get(),
            last_sweep: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            remembers: AtomicBool::new(false),
        }
    }

    /// Before authenticating: refused, with when to retry (whole seconds, at least one),
    /// while the address has no failures left. Counts nothing.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if !self.remembers.load(Ordering::Relaxed) {
            return Ok(());
        }
        let tat = match self.map.0.get(&key(ip)) {
            Some(state) => read_tat(&*state),
            None => return Ok(()),
        };
        let Some(tat) = tat else { return Ok(()) };
        // GCRA: the next failure would conform from tat − τ on.
        let free = tat.saturating_sub(self.tau);
        let now = self.limiter.clock().now().duration_since(self.start);
        if now >= free {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(retry_after(free.saturating_sub(now).into()))
    }

    /// After a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let key = key(ip);
        if !self.map.0.contains_key(&key) && !self.room_for_one_more() {
            self.untracked.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Refused means the address was over already, which `check` is saying meanwhile.
        let _ = self.limiter.check_key(&key);
        self.remembers.store(true, Ordering::Relaxed);
    }

    /// Forgets the addresses whose failures have all been forgiven and gives memory back; for a
    /// periodic housekeeping task. `failed` also sweeps, without shrinking, when full.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        // A failure racing this sweep sets the flag again after inserting its address.
        if self.map.0.is_empty() {
            self.remembers.store(false, Ordering::Relaxed);
        }
    }

    /// Addresses remembered now.
    pub fn tracked(&self) -> usize {
        self.map.0.len()
    }

    /// Checks refused since the throttle was made.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Failures not counted because the table was full.
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }

    /// Whether a new address may be remembered, sweeping first if the table is full and was
    /// not swept in the last period: a sweep per failure would cost a spray more than it
    /// costs the proxy.
    fn room_for_one_more(&self) -> bool {
        if self.map.0.len() < self.max_tracked {
            return true;
        }
        let now = self.limiter.clock().now().as_u64() + 1;
        let last = self.last_sweep.load(Ordering::Relaxed);
        let due = last == 0 || now >= last.saturating_add(self.period.as_u64());
        let ours = due
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if ours {
            self.limiter.retain_recent();
        }
        self.map.0.len() < self.max_tracked
    }
}

/// The address a client is counted by: IPv4 as it is (also when mapped into IPv6), IPv6 by
/// its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::num::{NonZeroU32, NonZeroUsize};
    use tokio::time::advance;

    const SECOND: Duration = Duration::from_secs(1);

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn throttle(max_tracked: usize) -> AuthThrottle {
        AuthThrottle::new(&AuthThrottleConfig {
            max_tracked: NonZeroUsize::new(max_tracked).expect("above 0"),
            ..AuthThrottleConfig::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn ten_failures_then_refusal_until_a_second_passes() {
        let t = throttle(1000);
        for _ in 0..10 {
            assert_eq!(t.check(ip(1)), Ok(()));
            t.failed(ip(1));
        }
        assert_eq!(t.check(ip(1)), Err(SECOND));
        assert_eq!(t.check(ip(2)), Ok(()), "another address is not touched");
        advance(SECOND).await;
        assert_eq!(t.check(ip(1)), Ok(()), "one more failure is allowed");
        t.failed(ip(1));
        assert_eq!(t.check(ip(1)), Err(SECOND));
        advance(Duration::from_secs(10)).await;
        for _ in 0..10 {
            t.failed(ip(1));
        }
        assert_eq!(
            t.check(ip(1)),
            Err(SECOND),
            "after a rest, the whole burst again"
        );
        assert_eq!(t.refused(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn checking_and_succeeding_count_nothing() {
        let t = throttle(1000);
        for _ in 0..100 {
            assert_eq!(t.check(ip(1)), Ok(()));
        }
        assert_eq!(t.tracked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_burst_gets_a_longer_retry_after() {
        let t = AuthThrottle::new(&AuthThrottleConfig {
            burst: NonZeroU32::new(2).expect("above 0"),
            rate_per_s: 0.2,
            ..AuthThrottleConfig::default()
        });
        t.failed(ip(1));
        t.failed(ip(1));
        assert_eq!(t.check(ip(1)), Err(Duration::from_secs(5)));
        advance(Duration::from_millis(2500)).await;
        assert_eq!(
            t.check(ip(1)),
            Err(Duration::from_secs(3)),
            "2.5s rounded up"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_clients_count_by_their_64() {
        let t = throttle(1000);
        for i in 0..10u16 {
            let host = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, i + 1);
            t.failed(IpAddr::V6(host));
        }
        let neighbour = Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0xffff, 0, 0, 99);
        assert_eq!(t.check(IpAddr::V6(neighbour)), Err(SECOND));
        let elsewhere = Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1);
        assert_eq!(t.check(IpAddr::V6(elsewhere)), Ok(()));
        let mapped = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped();
        t.failed(IpAddr::V6(mapped));
        assert_eq!(t.tracked(), 2, "the mapped address counts as its IPv4 one");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spray_from_many_addresses_stays_within_max_tracked() {
        let t = throttle(100);
        for i in 0..5000u32 {
            let [_, a, b, c] = i.to_be_bytes();
            t.failed(IpAddr::V4(Ipv4Addr::new(10, a, b, c)));
            if i % 500 == 0 {
                advance(Duration::from_millis(300)).await;
            }
        }
        assert!(t.tracked() <= 100, "{} tracked", t.tracked());
        assert!(t.untracked() > 0);
        // Once the old entries are forgiven, new addresses are remembered again.
        advance(Duration::from_secs(3)).await;
        t.failed(ip(1));
        t.sweep();
        assert_eq!(t.tracked(), 1);
        assert_eq!(t.check(ip(1)), Ok(()), "one failure of ten");
    }
}
