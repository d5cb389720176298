//! The circuit breaker of one tenant's upstream: after a run of connect failures or timeouts
//! the proxy stops sending the app requests for a cool-down and answers 503 at once, instead
//! of making every IdP request wait out a timeout behind a dead app. After the cool-down one
//! request goes through to try (half-open); its outcome closes the breaker or opens it again.
//! Its state lives in the tenant's lasting state, so a reload does not forget a dead app.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Breaker as Settings;
use crate::metrics::BreakerState;

/// The state of one upstream's breaker.
#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Requests go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Requests are answered at once until `until`.
    Open { until: Instant },
    /// The cool-down is over; `probing` while the one request let through is out.
    HalfOpen { probing: bool },
}

impl Default for State {
    fn default() -> Self {
        Self::Closed { failures: 0 }
    }
}

/// What a request's outcome did to the breaker, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Opened { failures: u32 },
    Probing,
    Reopened,
    Closed,
}

/// A request let through: its outcome is reported with [`Breaker::record`]. A probe dropped
/// before its outcome is known (the client went away) lets the next request probe instead.
#[must_use]
pub struct Pass<'a> {
    breaker: &'a Breaker,
    probe: bool,
    done: bool,
}

impl Breaker {
    /// Lets a request through, or says how long the app is still left alone. The second value
    /// is a change to log (the cool-down ended and this request is the probe).
    pub fn admit(&self, now: Instant) -> Result<(Pass<'_>, Option<Change>), Duration> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => return Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                true
            }
            // Another request is finding out; it is answered within the upstream timeout.
            State::HalfOpen { probing: true } => return Err(Duration::from_secs(1)),
        };
        let pass = Pass {
            breaker: self,
            probe,
            done: false,
        };
        Ok((pass, probe.then_some(Change::Probing)))
    }

    /// The state by name, for the admin API: `closed`, `open` (still cooling down), or
    /// `half_open` (the cool-down is over; the next request tries the app).
    pub fn state_name(&self, now: Instant) -> &'static str {
        match *self.lock() {
            State::Closed { .. } => "closed",
            State::Open { until } if now < until => "open",
            State::Open { .. } | State::HalfOpen { .. } => "half_open",
        }
    }

    /// The outcome of a request let through: `down` for a connect failure or a timeout, else
    /// the app is answering (whatever it answered).
    pub fn record(
        &self,
        mut pass: Pass<'_>,
        down: bool,
        s: &Settings,
        now: Instant,
    ) -> Option<Change> {
        pass.done = true;
        let mut state = self.lock();
        let (next, change) = match (*state, pass.probe, down) {
            (State::HalfOpen { .. }, true, false) => (State::default(), Some(Change::Closed)),
            (State::HalfOpen { .. }, true, true) => (open(s, now), Some(Change::Reopened)),
            (State::Closed { .. }, false, false) => (State::default(), None),
            (State::Closed { failures }, false, true) if failures + 1 >= s.failures.get() => {
                let change = Change::Opened {
                    failures: failures + 1,
                };
                (open(s, now), Some(change))
            }
            (State::Closed { failures }, false, true) => (
                State::Closed {
                    failures: failures + 1,
                },
                None,
            ),
            // Requests let through before the breaker opened (or before the probe) tell
            // nothing the probe will not.
            (other, _, _) => (other, None),
        };
        *state = next;
        change
    }

    /// The state as the metrics show it. An open breaker whose cool-down is over shows as
    /// half-open: the next request probes.
    pub fn state(&self, now: Instant) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn open(s: &Settings, now: Instant) -> State {
    State::Open {
        until: now + s.cool_down,
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.probe && !self.done {
            let mut state = self.breaker.lock();
            if *state == (State::HalfOpen { probing: true }) {
                *state = State::HalfOpen { probing: false };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn settings() -> Settings {
        Settings {
            failures: NonZeroU32::new(3).expect("not zero"),
            cool_down: Duration::from_secs(10),
        }
    }

    fn fail(b: &Breaker, now: Instant) -> Option<Change> {
        let (pass, _) = b.admit(now).expect("let through");
        b.record(pass, true, &settings(), now)
    }

    #[test]
    fn opens_after_the_configured_failures_in_a_row_and_a_success_resets_the_count() {
        let (b, now) = (Breaker::default(), Instant::now());
        assert_eq!(fail(&b, now), None);
        assert_eq!(fail(&b, now), None);
        let (pass, _) = b.admit(now).expect("still closed");
        assert_eq!(b.record(pass, false, &settings(), now), None);
        assert_eq!(fail(&b, now), None);
        assert_eq!(fail(&b, now), None);
        assert_eq!(fail(&b, now), Some(Change::Opened { failures: 3 }));
        let left = b.admit(now + Duration::from_secs(4)).err();
        assert_eq!(left, Some(Duration::from_secs(6)));
    }

    #[test]
    fn the_state_shown_follows_opening_cool_down_and_probe() {
        let (b, now) = (Breaker::default(), Instant::now());
        assert_eq!(b.state(now), BreakerState::Closed);
        for _ in 0..3 {
            let _ = fail(&b, now);
        }
        assert_eq!(b.state(now), BreakerState::Open);
        let later = now + Duration::from_secs(10);
        assert_eq!(
            b.state(later),
            BreakerState::HalfOpen,
            "the cool-down is over"
        );
        let (probe, _) = b.admit(later).expect("the probe goes");
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        let _ = b.record(probe, false, &settings(), later);
        assert_eq!(b.state(later), BreakerState::Closed);
    }

    #[test]
    fn after_the_cool_down_one_probe_decides() {
        let (b, now) = (Breaker::default(), Instant::now());
        for _ in 0..3 {
            let _ = fail(&b, now);
        }
        let later = now + Duration::from_secs(10);
        let (probe, change) = b.admit(later).expect("the probe goes");
        assert_eq!(change, Some(Change::Probing));
        assert!(b.admit(later).is_err(), "one probe at a time");
        assert_eq!(
            b.record(probe, true, &settings(), later),
            Some(Change::Reopened)
        );
        assert!(b.admit(later + Duration::from_secs(9)).is_err());
        let again = later + Duration::from_secs(10);
        let (probe, _) = b.admit(again).expect("the next probe goes");
        assert_eq!(
            b.record(probe, false, &settings(), again),
            Some(Change::Closed)
        );
        assert!(b.admit(again).is_ok_and(|(_, change)| change.is_none()));
    }

    #[test]
    fn its_state_is_named_as_the_cool_down_runs() {
        let (b, now) = (Breaker::default(), Instant::now());
        assert_eq!(b.state_name(now), "closed");
        for _ in 0..3 {
            let _ = fail(&b, now);
        }
        assert_eq!(b.state_name(now + Duration::from_secs(9)), "open");
        assert_eq!(b.state_name(now + Duration::from_secs(10)), "half_open");
    }

    #[test]
    fn a_probe_dropped_unfinished_lets_the_next_request_probe() {
        let (b, now) = (Breaker::default(), Instant::now());
        for _ in 0..3 {
            let _ = fail(&b, now);
        }
        let later = now + Duration::from_secs(11);
        drop(b.admit(later).expect("the probe goes"));
        let (_, change) = b.admit(later).expect("another probe goes");
        assert_eq!(change, Some(Change::Probing));
    }
}
