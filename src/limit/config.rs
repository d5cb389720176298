//! The tenant's `limits` table and the failed-authentication throttle's table, as written
//! (serde, unknown keys refused) and validated (every problem reported, each naming its key).
//!
//! ```toml
//! limits = { rate_per_s = 50, burst = 100, max_wait = "5s", max_in_flight = 16, queue = 1000, read_share = 0.5 }
//! auth_throttle = { burst = 10, rate_per_s = 1, max_tracked = 100000 }
//! ```

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use serde::Deserialize;

/// A tenant's `limits = { … }` as written. Every key may be left out for its default; numbers
/// are read signed so that a negative one gets this module's message, not the parser's.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Upstream calls per second the bucket refills at; fractions allowed (0.5 is one call
    /// every two seconds). Default 50, from 0.001 to 100000.
    pub rate_per_s: Option<f64>,
    /// Calls that may go at once when the bucket is full. Default: one second's worth of
    /// `rate_per_s`, at least 1.
    pub burst: Option<i64>,
    /// How long a call may wait its turn before it is refused with a Retry-After. Default
    /// "5s", at most "60s" (IdPs give up on a request before that).
    pub max_wait: Option<String>,
    /// Calls the tenant may have at the app at once. Default 16.
    pub max_in_flight: Option<i64>,
    /// Calls that may wait their turn at once, all classes together; further ones are refused
    /// at once. Default 1000.
    pub queue: Option<i64>,
    /// The part of the burst and of `max_in_flight` that reads may use, above 0 and at most 1.
    /// The rest is kept for writes. Default 0.5.
    pub read_share: Option<f64>,
}

/// Validated limits of one tenant. Compared on reload: a tenant whose limits are unchanged
/// keeps its limiter, and with it its queue and its bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub rate_per_s: f64,
    pub burst: NonZeroU32,
    pub max_wait: Duration,
    pub max_in_flight: NonZeroUsize,
    pub queue: NonZeroUsize,
    pub read_share: f64,
}

pub const DEFAULT_RATE_PER_S: f64 = 50.0;
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
pub const DEFAULT_QUEUE: usize = 1000;
pub const DEFAULT_READ_SHARE: f64 = 0.5;

/// One call in a thousand seconds: slower is no rate at all, and it keeps the bucket's
/// arithmetic (period × burst, in nanoseconds) far from overflowing.
const MIN_RATE_PER_S: f64 = 0.001;
const MAX_RATE_PER_S: f64 = 100_000.0;
const MAX_BURST: i64 = 1_000_000;
const MAX_WAIT: Duration = Duration::from_secs(60);
const MAX_IN_FLIGHT: i64 = 10_000;
const MAX_QUEUE: i64 = 1_000_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate_per_s: DEFAULT_RATE_PER_S,
            burst: burst_for(DEFAULT_RATE_PER_S),
            max_wait: DEFAULT_MAX_WAIT,
            max_in_flight: nonzero(DEFAULT_MAX_IN_FLIGHT),
            queue: nonzero(DEFAULT_QUEUE),
            read_share: DEFAULT_READ_SHARE,
        }
    }
}

impl Limits {
    /// Calls of the burst that reads may use: `read_share` of it, at least one.
    pub fn read_burst(&self) -> u32 {
        share_of(self.burst.get() as usize, self.read_share) as u32
    }

    /// Calls at the app at once that may be reads: `read_share` of `max_in_flight`, at least
    /// one. Below a share of 1 this leaves at least one for writes whenever there are two.
    pub fn read_in_flight(&self) -> usize {
        share_of(self.max_in_flight.get(), self.read_share)
    }
}

fn share_of(whole: usize, share: f64) -> usize {
    ((whole as f64 * share).floor() as usize).clamp(1, whole)
}

/// One second's worth of calls, at least one.
fn burst_for(rate_per_s: f64) -> NonZeroU32 {
    NonZeroU32::new(rate_per_s.ceil() as u32).unwrap_or(NonZeroU32::MIN)
}

fn nonzero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl RawLimits {
    /// The limits this table asks for, or every problem in it, each starting with its key
    /// (`limits.burst: …`).
    pub fn validate(&self) -> Result<Limits, Vec<String>> {
        let mut c = Problems::new("limits");
        let rate_per_s = c.rate(
            "rate_per_s",
            self.rate_per_s,
            DEFAULT_RATE_PER_S,
            MAX_RATE_PER_S,
        );
        let limits = Limits {
            rate_per_s,
            burst: NonZeroU32::new(c.whole("burst", self.burst, 0, MAX_BURST) as u32)
                .unwrap_or_else(|| burst_for(rate_per_s)),
            max_wait: c.wait("max_wait", self.max_wait.as_deref(), DEFAULT_MAX_WAIT),
            max_in_flight: nonzero(c.whole(
                "max_in_flight",
                self.max_in_flight,
                DEFAULT_MAX_IN_FLIGHT,
                MAX_IN_FLIGHT,
            )),
            queue: nonzero(c.whole("queue", self.queue, DEFAULT_QUEUE, MAX_QUEUE)),
            read_share: c.share("read_share", self.read_share, DEFAULT_READ_SHARE),
        };
        c.done(limits)
    }
}

/// The failed-authentication throttle's table as written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthThrottle {
    /// Failures one client address may make at once. Default 10.
    pub burst: Option<i64>,
    /// Further failures allowed per second once the burst is spent. Default 1, from 0.001.
    pub rate_per_s: Option<f64>,
    /// Client addresses remembered at most; past that, failures from addresses not yet
    /// remembered go uncounted rather than grow memory. Default 100000.
    pub max_tracked: Option<i64>,
}

/// Validated throttle of failed authentications per client address.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthThrottleConfig {
    pub burst: NonZeroU32,
    pub rate_per_s: f64,
    pub max_tracked: NonZeroUsize,
}

pub const DEFAULT_AUTH_BURST: u32 = 10;
pub const DEFAULT_AUTH_RATE_PER_S: f64 = 1.0;
pub const DEFAULT_AUTH_MAX_TRACKED: usize = 100_000;

impl Default for AuthThrottleConfig {
    fn default() -> Self {
        Self {
            burst: NonZeroU32::new(DEFAULT_AUTH_BURST).unwrap_or(NonZeroU32::MIN),
            rate_per_s: DEFAULT_AUTH_RATE_PER_S,
            max_tracked: nonzero(DEFAULT_AUTH_MAX_TRACKED),
        }
    }
}

impl RawAuthThrottle {
    /// The throttle this table asks for, or every problem in it, each starting with its key.
    pub fn validate(&self) -> Result<AuthThrottleConfig, Vec<String>> {
        let mut c = Problems::new("auth_throttle");
        let config = AuthThrottleConfig {
            burst: NonZeroU32::new(
                c.whole("burst", self.burst, DEFAULT_AUTH_BURST as usize, 10_000) as u32,
            )
            .unwrap_or(NonZeroU32::MIN),
            rate_per_s: c.rate(
                "rate_per_s",
                self.rate_per_s,
                DEFAULT_AUTH_RATE_PER_S,
                10_000.0,
            ),
            max_tracked: nonzero(c.whole(
                "max_tracked",
                self.max_tracked,
                DEFAULT_AUTH_MAX_TRACKED,
                100_000_000,
            )),
        };
        c.done(config)
    }
}

/// Collects what is wrong with one table; each check returns a usable value either way, so
/// every key is looked at.
struct Problems {
    table: &'static str,
    list: Vec<String>,
}

impl Problems {
    fn new(table: &'static str) -> Self {
        Self {
            table,
            list: Vec::new(),
        }
    }

    fn push(&mut self, key: &str, msg: std::fmt::Arguments<'_>) {
        self.list.push(format!("{}.{key}: {msg}", self.table));
    }

    fn done<T>(self, value: T) -> Result<T, Vec<String>> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(self.list)
        }
    }

    /// A whole number from 1 to `max`; `default` when left out (0 means "derived later").
    fn whole(&mut self, key: &str, v: Option<i64>, default: usize, max: i64) -> usize {
        match v {
            None => default,
            Some(n) if (1..=max).contains(&n) => n as usize,
            Some(n) => {
                self.push(
                    key,
                    format_args!("expected a whole number from 1 to {max}, got {n}"),
                );
                default
            }
        }
    }

    fn rate(&mut self, key: &str, v: Option<f64>, default: f64, max: f64) -> f64 {
        match v {
            None => default,
            Some(r) if (MIN_RATE_PER_S..=max).contains(&r) => r,
            Some(r) => {
                let msg = format_args!(
                    "expected calls per second from {MIN_RATE_PER_S} to {max} (0.5 is one call every two seconds), got {r}"
                );
                self.push(key, msg);
                default
            }
        }
    }

    fn share(&mut self, key: &str, v: Option<f64>, default: f64) -> f64 {
        match v {
            None => default,
            Some(s) if s.is_finite() && s > 0.0 && s <= 1.0 => s,
            Some(s) => {
                let msg = format_args!(
                    "expected a fraction above 0 and at most 1 (0.5 lets reads use half), got {s}"
                );
                self.push(key, msg);
                default
            }
        }
    }

    fn wait(&mut self, key: &str, v: Option<&str>, default: Duration) -> Duration {
        let Some(text) = v else { return default };
        match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() && d <= MAX_WAIT => d,
            Ok(d) if d.is_zero() => {
                let msg = format_args!(
                    "expected a wait above zero such as \"5s\"; to refuse at once rather than queue, use a small one such as \"10ms\""
                );
                self.push(key, msg);
                default
            }
            Ok(_) => {
                let msg = format_args!(
                    "expected at most \"60s\": identity providers give up on a request long before, got \"{text}\""
                );
                self.push(key, msg);
                default
            }
            Err(_) => {
                let msg =
                    format_args!("expected a duration such as \"5s\" or \"500ms\", got \"{text}\"");
                self.push(key, msg);
                default
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<RawLimits, toml::de::Error> {
        #[derive(Deserialize)]
        struct Doc {
            limits: RawLimits,
        }
        toml::from_str::<Doc>(text).map(|d| d.limits)
    }

    fn problems(text: &str) -> Vec<String> {
        let raw = raw(text).expect("parses");
        raw.validate().expect_err("refused")
    }

    #[test]
    fn the_documented_table_validates() {
        let text = r#"limits = { rate_per_s = 50, burst = 100, max_wait = "5s", max_in_flight = 16, queue = 1000, read_share = 0.5 }"#;
        let limits = raw(text).expect("parses").validate().expect("valid");
        assert_eq!(limits.rate_per_s, 50.0);
        assert_eq!(limits.burst.get(), 100);
        assert_eq!(limits.max_wait, Duration::from_secs(5));
        assert_eq!(limits.max_in_flight.get(), 16);
        assert_eq!(limits.queue.get(), 1000);
        assert_eq!((limits.read_burst(), limits.read_in_flight()), (50, 8));
    }

    #[test]
    fn an_empty_table_takes_the_defaults() {
        let limits = raw("limits = {}")
            .expect("parses")
            .validate()
            .expect("valid");
        assert_eq!(limits, Limits::default());
        assert_eq!(limits.burst.get(), 50, "one second's worth of the rate");
    }

    #[test]
    fn burst_defaults_to_one_second_of_a_fractional_rate() {
        let limits = raw("limits = { rate_per_s = 0.5 }").expect("parses");
        assert_eq!(limits.validate().expect("valid").burst.get(), 1);
        let limits = raw("limits = { rate_per_s = 7.2 }").expect("parses");
        assert_eq!(limits.validate().expect("valid").burst.get(), 8);
    }

    #[test]
    fn zero_negative_and_absurd_values_are_each_named() {
        let text = r#"limits = { rate_per_s = 0, burst = -1, max_wait = "0s", max_in_flight = 0, queue = 99999999, read_share = 1.5 }"#;
        let got = problems(text);
        let keys: Vec<&str> = got
            .iter()
            .map(|p| p.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(
            keys,
            [
                "limits.rate_per_s",
                "limits.burst",
                "limits.max_wait",
                "limits.max_in_flight",
                "limits.queue",
                "limits.read_share"
            ],
            "{got:#?}"
        );
        assert!(got[1].contains("got -1"), "{}", got[1]);
        assert!(got[4].contains("from 1 to 1000000"), "{}", got[4]);
    }

    #[test]
    fn waits_that_are_unreadable_or_too_long_are_refused() {
        let long = problems(r#"limits = { max_wait = "5m" }"#);
        assert!(long[0].contains("at most \"60s\""), "{long:?}");
        let bad = problems(r#"limits = { max_wait = "soon" }"#);
        assert!(bad[0].contains("such as \"5s\""), "{bad:?}");
        let nan = problems("limits = { rate_per_s = nan }");
        assert!(nan[0].starts_with("limits.rate_per_s"), "{nan:?}");
        let glacial = problems("limits = { rate_per_s = 1e-9 }");
        assert!(glacial[0].contains("from 0.001 to 100000"), "{glacial:?}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = raw("limits = { rate = 5 }").expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `rate`"), "{err}");
    }

    #[test]
    fn shares_leave_writes_at_least_one_slot_and_reads_at_least_one() {
        let mut limits = Limits {
            max_in_flight: nonzero(2),
            burst: NonZeroU32::MIN,
            read_share: 0.9,
            ..Limits::default()
        };
        assert_eq!((limits.read_in_flight(), limits.read_burst()), (1, 1));
        limits.read_share = 0.01;
        limits.max_in_flight = nonzero(100);
        assert_eq!(limits.read_in_flight(), 1);
        limits.read_share = 1.0;
        assert_eq!(limits.read_in_flight(), 100);
    }

    #[test]
    fn the_auth_throttle_has_defaults_and_checks_its_values() {
        let none = RawAuthThrottle::default().validate().expect("valid");
        assert_eq!(none, AuthThrottleConfig::default());
        assert_eq!((none.burst.get(), none.rate_per_s), (10, 1.0));
        let bad = RawAuthThrottle {
            burst: Some(0),
            rate_per_s: Some(-2.0),
            max_tracked: Some(0),
        };
        let got = bad.validate().expect_err("refused");
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].starts_with("auth_throttle.burst: "), "{got:?}");
    }
}
