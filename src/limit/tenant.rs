//! One tenant's admission of upstream calls: a GCRA bucket for the rate, a bounded waiting
//! line served by class, and a cap on calls at the app at once. Each call the proxy makes
//! takes one [`Permit`]; dropping it gives the in-flight place back.
//!
//! How classes share: a waiting call of a more urgent class always goes before a waiting
//! call of a less urgent one, and within a class the order is arrival. Reads also get only
//! their share (`read_share`) of the two resources, so a flood of them cannot delay a write:
//! - of the bucket, reads may take a cell only while `burst − read_burst` cells stay in it,
//!   so a write arriving behind any number of reads finds those cells waiting for it (and
//!   with no writes about, reads still get the full rate);
//! - of `max_in_flight`, reads may hold at most `read_in_flight` places, so below a share of
//!   1 at least one place is always left for writes.
//!
//! A call refused waits no longer than `max_wait`: one whose turn is already further away
//! than that on arrival, by the bucket's count, is refused at once; one still waiting at its
//! deadline is refused then. A full queue makes room for a more urgent newcomer by refusing
//! its newest, least urgent waiter; otherwise the newcomer is refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::bucket::Bucket;
use super::error::retry_after;
use super::queue::{Queue, Waiter};
use super::{Class, LimitError, Limits};

/// A tenant's limiter. Cheap to clone (one `Arc`); clones share everything. Keep one per
/// tenant for as long as its [`Limits`] stay the same, across configuration reloads.
#[derive(Clone, Debug)]
pub struct TenantLimiter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limits: Limits,
    bucket: Bucket,
    /// Cells of the bucket that reads leave for writes.
    read_keep: u32,
    slots: Arc<Semaphore>,
    read_slots: Arc<Semaphore>,
    queue: Mutex<Queue>,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    admitted: AtomicU64,
    queue_full: AtomicU64,
    too_long: AtomicU64,
    displaced: AtomicU64,
}

/// The right to make one upstream call, held until the call is over. Dropping it frees the
/// tenant's in-flight place and lets the next waiter try.
pub struct Permit {
    class: Class,
    waited: Duration,
    slot: Option<OwnedSemaphorePermit>,
    read_slot: Option<OwnedSemaphorePermit>,
    shared: Arc<Shared>,
}

impl Permit {
    pub fn class(&self) -> Class {
        self.class
    }

    /// How long the call waited for its turn: zero when it went at once.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("class", &self.class)
            .field("waited", &self.waited)
            .finish_non_exhaustive()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        // The places go back first, so that the waiter woken finds them.
        drop(self.slot.take());
        drop(self.read_slot.take());
        self.shared.lock().wake_head();
    }
}

/// A snapshot for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimiterStats {
    /// Calls waiting now, by class: `[deprovision, write, read]` (see [`Class::rank`]).
    pub queued: [usize; 3],
    /// Calls at the app now, and how many of them are reads.
    pub in_flight: usize,
    pub in_flight_reads: usize,
    /// Calls admitted since the limiter was made.
    pub admitted: u64,
    /// Refusals since the limiter was made, by reason.
    pub refused_queue_full: u64,
    pub refused_too_long: u64,
    pub refused_displaced: u64,
}

impl LimiterStats {
    pub fn queued_of(&self, class: Class) -> usize {
        self.queued[class.rank()]
    }

    pub fn refused(&self) -> u64 {
        self.refused_queue_full + self.refused_too_long + self.refused_displaced
    }
}

/// What stands between the head of the line and capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blocked {
    /// The bucket frees a cell for this class then.
    Until(Instant),
    /// Every in-flight place this class may use is taken.
    Slots,
    /// Someone else is at the head.
    Behind,
}

enum Arrival {
    Admitted(Permit),
    Queued(Ticket),
}

/// The places an admitted call holds.
struct Held {
    slot: OwnedSemaphorePermit,
    read_slot: Option<OwnedSemaphorePermit>,
}

impl TenantLimiter {
    pub fn new(limits: Limits) -> Self {
        let read_keep = limits.burst.get() - limits.read_burst();
        let shared = Shared {
            bucket: Bucket::new(limits.rate_per_s, limits.burst),
            read_keep,
            slots: Arc::new(Semaphore::new(limits.max_in_flight.get())),
            read_slots: Arc::new(Semaphore::new(limits.read_in_flight())),
            queue: Mutex::new(Queue::default()),
            counters: Counters::default(),
            limits,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Waits for the turn of one upstream call of `class`, at most `max_wait`. Call it once
    /// per call the proxy makes (each operation of a Bulk, each page of a scan).
    ///
    /// Cancellation-safe: dropping the future while it waits takes it out of the line at
    /// once, and a permit is only ever made inside a poll that returns it.
    pub async fn acquire(&self, class: Class) -> Result<Permit, LimitError> {
        let arrived = Instant::now();
        let deadline = arrived + self.shared.limits.max_wait;
        let mut ticket = match self.shared.arrive(class, arrived)? {
            Arrival::Admitted(permit) => return Ok(permit),
            Arrival::Queued(ticket) => ticket,
        };
        loop {
            let wake = match ticket.blocked {
                Blocked::Until(at) => at.min(deadline),
                Blocked::Slots | Blocked::Behind => deadline,
            };
            tokio::select! {
                () = ticket.waiter.notify.notified() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
            if let Some(done) = ticket.step(arrived, deadline) {
                return done;
            }
        }
    }

    pub fn stats(&self) -> LimiterStats {
        let s = &self.shared;
        let queue = s.lock();
        let c = &s.counters;
        LimiterStats {
            queued: Class::ALL.map(|class| queue.len_of(class)),
            in_flight: s.limits.max_in_flight.get() - s.slots.available_permits(),
            in_flight_reads: s.limits.read_in_flight() - s.read_slots.available_permits(),
            admitted: c.admitted.load(Ordering::Relaxed),
            refused_queue_full: c.queue_full.load(Ordering::Relaxed),
            refused_too_long: c.too_long.load(Ordering::Relaxed),
            refused_displaced: c.displaced.load(Ordering::Relaxed),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A newcomer: admitted at once if no one of its class or a more urgent one waits and
    /// capacity is there; else refused, or put in line.
    fn arrive(self: &Arc<Self>, class: Class, now: Instant) -> Result<Arrival, LimitError> {
        let mut queue = self.lock();
        let ahead = queue.ahead_of_new(class);
        let blocked = if ahead == 0 {
            match self.try_take(class, now) {
                Ok(held) => return Ok(Arrival::Admitted(self.permit(class, held, Duration::ZERO))),
                Err(blocked) => blocked,
            }
        } else {
            Blocked::Behind
        };
        let wait = self.wait_estimate(class, ahead, now);
        if wait > self.limits.max_wait {
            return Err(self.too_long(wait));
        }
        if queue.len() >= self.limits.queue.get() {
            if !queue.displace_below(class) {
                self.counters.queue_full.fetch_add(1, Ordering::Relaxed);
                return Err(LimitError::QueueFull {
                    queue: queue.len(),
                    retry_after: retry_after(wait),
                });
            }
            self.counters.displaced.fetch_add(1, Ordering::Relaxed);
        }
        let (id, waiter) = queue.push(class);
        Ok(Arrival::Queued(Ticket {
            shared: self.clone(),
            class,
            id,
            waiter,
            blocked,
            done: false,
        }))
    }

    /// One cell of the bucket and the in-flight places for `class`, all or nothing. The
    /// caller holds the queue's lock, so nothing else takes from the bucket meanwhile.
    fn try_take(&self, class: Class, now: Instant) -> Result<Held, Blocked> {
        let free = self.bucket.free_at(self.keep(class));
        if free > now {
            return Err(Blocked::Until(free));
        }
        let slot = self.slots.clone().try_acquire_owned();
        let slot = slot.map_err(|_| Blocked::Slots)?;
        let read_slot = match class {
            Class::Read => {
                let read = self.read_slots.clone().try_acquire_owned();
                Some(read.map_err(|_| Blocked::Slots)?)
            }
            Class::Deprovision | Class::Write => None,
        };
        // The reading above said a cell is free; governor's own answer is the one that counts.
        self.bucket.take().map_err(Blocked::Until)?;
        Ok(Held { slot, read_slot })
    }

    /// Cells of the bucket a call of `class` must leave in it.
    fn keep(&self, class: Class) -> u32 {
        match class {
            Class::Read => self.read_keep,
            Class::Deprovision | Class::Write => 0,
        }
    }

    fn permit(self: &Arc<Self>, class: Class, held: Held, waited: Duration) -> Permit {
        self.counters.admitted.fetch_add(1, Ordering::Relaxed);
        Permit {
            class,
            waited,
            slot: Some(held.slot),
            read_slot: held.read_slot,
            shared: self.clone(),
        }
    }

    /// How long a call with `ahead` waiters before it would wait, by the bucket's count: until
    /// a cell is free for its class, then one period for each waiter ahead.
    fn wait_estimate(&self, class: Class, ahead: usize, now: Instant) -> Duration {
        let first = self.bucket.free_at(self.keep(class)).max(now);
        let ahead = u32::try_from(ahead).unwrap_or(u32::MAX);
        let behind_them = self.bucket.period().saturating_mul(ahead);
        first.duration_since(now).saturating_add(behind_them)
    }

    fn too_long(&self, wait: Duration) -> LimitError {
        self.counters.too_long.fetch_add(1, Ordering::Relaxed);
        LimitError::TooLong {
            max_wait: self.limits.max_wait,
            retry_after: retry_after(wait),
        }
    }
}

/// A place in the line. Dropping it (the acquire future was dropped) leaves the line.
struct Ticket {
    shared: Arc<Shared>,
    class: Class,
    id: u64,
    waiter: Arc<Waiter>,
    blocked: Blocked,
    /// Out of the line already: admitted, refused, or displaced.
    done: bool,
}

impl Ticket {
    /// After a wake-up: admitted, refused, or (None) still waiting, with `self.blocked` saying
    /// on what.
    fn step(&mut self, arrived: Instant, deadline: Instant) -> Option<Result<Permit, LimitError>> {
        let shared = &self.shared;
        let mut queue = shared.lock();
        let now = Instant::now();
        if self.waiter.displaced() {
            self.done = true;
            let wait = shared.wait_estimate(self.class, queue.ahead_of_new(self.class), now);
            return Some(Err(LimitError::Displaced {
                retry_after: retry_after(wait),
            }));
        }
        self.blocked = if queue.is_head(self.class, self.id) {
            match shared.try_take(self.class, now) {
                Ok(held) => {
                    self.done = true;
                    queue.remove(self.class, self.id);
                    let waited = now.duration_since(arrived);
                    return Some(Ok(shared.permit(self.class, held, waited)));
                }
                Err(blocked) => blocked,
            }
        } else {
            Blocked::Behind
        };
        if now < deadline {
            return None;
        }
        let ahead = queue.ahead_of(self.class, self.id);
        let wait = shared.wait_estimate(self.class, ahead, now);
        self.done = true;
        queue.remove(self.class, self.id);
        Some(Err(shared.too_long(wait)))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            self.shared.lock().remove(self.class, self.id);
        }
    }
}
