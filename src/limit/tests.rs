//! Scenarios of the tenant limiter and the shared caps, under tokio's paused clock: time only
//! moves when every task waits, so the waits asserted are exact and nothing sleeps for real.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{advance, Instant};

use super::*;

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

fn limits(rate_per_s: f64, burst: u32) -> Limits {
    Limits {
        rate_per_s,
        burst: NonZeroU32::new(burst).expect("test burst above 0"),
        max_wait: Duration::from_secs(5),
        max_in_flight: nz(1000),
        queue: nz(1000),
        read_share: 0.5,
    }
}

fn nz(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("test count above 0")
}

/// Lets every spawned task run until it waits.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Spawns one acquire that reports `(tag, when admitted)` and holds its permit until the
/// test ends; waits until it is admitted or in line, so tasks arrive in the order spawned.
async fn spawn_acquire(
    limiter: &TenantLimiter,
    class: Class,
    tag: usize,
    tx: &mpsc::UnboundedSender<(usize, Result<Duration, LimitError>)>,
) -> tokio::task::JoinHandle<Option<Permit>> {
    let (limiter, tx) = (limiter.clone(), tx.clone());
    let start = Instant::now();
    let task = tokio::spawn(async move {
        let got = limiter.acquire(class).await;
        let _ = tx.send((
            tag,
            got.as_ref().map(|_| start.elapsed()).map_err(Clone::clone),
        ));
        got.ok()
    });
    settle().await;
    task
}

/// Everything the channel holds now, in order.
fn drain<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> Vec<T> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[test]
fn waiting_for_a_permit_can_move_between_threads() {
    fn send<T: Send>(_: &T) {}
    let limiter = TenantLimiter::new(limits(1.0, 1));
    send(&limiter.acquire(Class::Write));
    send(&CallLimits::default().acquire(Class::Read));
}

#[tokio::test(start_paused = true)]
async fn a_burst_within_burst_passes_at_once() {
    let limiter = TenantLimiter::new(limits(10.0, 5));
    let mut held = Vec::new();
    for _ in 0..5 {
        let permit = limiter
            .acquire(Class::Write)
            .await
            .expect("within the burst");
        assert_eq!(permit.waited(), Duration::ZERO);
        held.push(permit);
    }
    let stats = limiter.stats();
    assert_eq!((stats.admitted, stats.in_flight), (5, 5));
}

#[tokio::test(start_paused = true)]
async fn beyond_the_burst_calls_wait_and_go_at_the_rate_in_arrival_order() {
    let limiter = TenantLimiter::new(limits(10.0, 2));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for tag in 0..7 {
        tasks.push(spawn_acquire(&limiter, Class::Write, tag, &tx).await);
    }
    assert_eq!(limiter.stats().queued_of(Class::Write), 5);
    for task in tasks {
        task.await.expect("task ran").expect("admitted");
    }
    let got = drain(&mut rx);
    let tags: Vec<usize> = got.iter().map(|(tag, _)| *tag).collect();
    assert_eq!(tags, [0, 1, 2, 3, 4, 5, 6], "FIFO");
    let waits: Vec<Duration> = got.into_iter().map(|(_, w)| w.expect("admitted")).collect();
    let expected = [0, 0, 100, 200, 300, 400, 500].map(|ms| ms * MS);
    assert_eq!(waits, expected, "one call every 100 ms after the burst");
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_turn_is_past_max_wait_is_refused_at_once_with_the_buckets_retry_after() {
    let limiter = TenantLimiter::new(Limits {
        max_wait: Duration::from_millis(2500),
        ..limits(1.0, 1)
    });
    let (tx, _rx) = mpsc::unbounded_channel();
    let _first = limiter.acquire(Class::Write).await.expect("the burst");
    let _waits_1s = spawn_acquire(&limiter, Class::Write, 1, &tx).await;
    let _waits_2s = spawn_acquire(&limiter, Class::Write, 2, &tx).await;
    let t0 = Instant::now();
    let refused = limiter
        .acquire(Class::Write)
        .await
        .expect_err("3 s > 2.5 s");
    assert_eq!(Instant::now(), t0, "refused without waiting");
    assert_eq!(
        refused,
        LimitError::TooLong {
            max_wait: Duration::from_millis(2500),
            retry_after: 3 * SECOND,
        }
    );
    assert_eq!(limiter.stats().refused_too_long, 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_still_waiting_at_max_wait_is_refused_then() {
    let limiter = TenantLimiter::new(Limits {
        max_in_flight: nz(1),
        ..limits(100.0, 10)
    });
    let _busy = limiter.acquire(Class::Write).await.expect("the one place");
    let t0 = Instant::now();
    let refused = limiter
        .acquire(Class::Write)
        .await
        .expect_err("no place frees");
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(5),
        "waited max_wait exactly"
    );
    assert_eq!(
        refused.retry_after(),
        SECOND,
        "the bucket has cells: the least"
    );
    let stats = limiter.stats();
    assert_eq!(
        (stats.queued_of(Class::Write), stats.refused_too_long),
        (0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_at_once() {
    let limiter = TenantLimiter::new(Limits {
        max_wait: Duration::from_secs(60),
        queue: nz(2),
        ..limits(1.0, 1)
    });
    let (tx, _rx) = mpsc::unbounded_channel();
    let _first = limiter.acquire(Class::Write).await.expect("the burst");
    let _a = spawn_acquire(&limiter, Class::Write, 1, &tx).await;
    let _b = spawn_acquire(&limiter, Class::Write, 2, &tx).await;
    let t0 = Instant::now();
    let refused = limiter.acquire(Class::Write).await.expect_err("full");
    assert_eq!(Instant::now(), t0);
    assert_eq!(
        refused,
        LimitError::QueueFull {
            queue: 2,
            retry_after: 3 * SECOND,
        },
        "a cell in 1 s, then one for each of the two waiting"
    );
    assert_eq!(limiter.stats().refused_queue_full, 1);
}

#[tokio::test(start_paused = true)]
async fn max_in_flight_holds_under_a_thousand_concurrent_callers() {
    let limiter = TenantLimiter::new(Limits {
        max_in_flight: nz(16),
        max_wait: Duration::from_secs(60),
        ..limits(100_000.0, 1000)
    });
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let peak_reads = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let class = Class::ALL[i % 3];
            let (limiter, now, peak) = (limiter.clone(), now.clone(), peak.clone());
            let (reads, peak_reads) = (reads.clone(), peak_reads.clone());
            tokio::spawn(async move {
                let permit = limiter.acquire(class).await.expect("all fit in max_wait");
                peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                if class == Class::Read {
                    peak_reads
                        .fetch_max(reads.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(10 + (i % 7) as u64)).await;
                if class == Class::Read {
                    reads.fetch_sub(1, Ordering::SeqCst);
                }
                now.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no task panicked");
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        16,
        "the cap was reached, never passed"
    );
    assert_eq!(
        peak_reads.load(Ordering::SeqCst),
        8,
        "reads kept to their share"
    );
    let stats = limiter.stats();
    assert_eq!(
        (stats.admitted, stats.in_flight, stats.queued),
        (1000, 0, [0; 3])
    );
}

#[tokio::test(start_paused = true)]
async fn deprovisioning_goes_ahead_of_waiting_writes() {
    let limiter = TenantLimiter::new(limits(1.0, 1));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _first = limiter.acquire(Class::Write).await.expect("the burst");
    let w1 = spawn_acquire(&limiter, Class::Write, 1, &tx).await;
    let w2 = spawn_acquire(&limiter, Class::Write, 2, &tx).await;
    let d = spawn_acquire(&limiter, Class::Deprovision, 3, &tx).await;
    for task in [w1, w2, d] {
        task.await.expect("task ran").expect("admitted");
    }
    let got: Vec<(usize, Duration)> = drain(&mut rx)
        .into_iter()
        .map(|(tag, w)| (tag, w.expect("admitted")))
        .collect();
    assert_eq!(got, [(3, SECOND), (1, 2 * SECOND), (2, 3 * SECOND)]);
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_reads_does_not_delay_a_write() {
    let limiter = TenantLimiter::new(Limits {
        max_wait: Duration::from_secs(60),
        ..limits(10.0, 10)
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut reads = Vec::new();
    for tag in 0..200 {
        reads.push(spawn_acquire(&limiter, Class::Read, tag, &tx).await);
    }
    assert_eq!(
        drain(&mut rx).len(),
        5,
        "reads took their half of the burst"
    );
    assert_eq!(limiter.stats().queued_of(Class::Read), 195);
    for _ in 0..5 {
        let write = limiter.acquire(Class::Write).await.expect("the kept half");
        assert_eq!(write.waited(), Duration::ZERO);
    }
    // The bucket is empty: the next write waits, but only for the next cell, ahead of every
    // read in line.
    let write = spawn_acquire(&limiter, Class::Write, 1000, &tx).await;
    write.await.expect("task ran").expect("admitted");
    let first = drain(&mut rx);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, 1000);
    assert_eq!(first[0].1, Ok(100 * MS));
    for task in reads.drain(..) {
        task.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn reads_hold_at_most_their_share_of_in_flight_places() {
    let limiter = TenantLimiter::new(Limits {
        max_in_flight: nz(4),
        ..limits(1000.0, 100)
    });
    let (tx, _rx) = mpsc::unbounded_channel();
    let _r1 = limiter.acquire(Class::Read).await.expect("a read place");
    let _r2 = limiter.acquire(Class::Read).await.expect("a read place");
    let _r3 = spawn_acquire(&limiter, Class::Read, 3, &tx).await;
    let stats = limiter.stats();
    assert_eq!(
        (stats.in_flight_reads, stats.queued_of(Class::Read)),
        (2, 1)
    );
    let write = limiter
        .acquire(Class::Write)
        .await
        .expect("a place is kept");
    assert_eq!(write.waited(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn one_tenants_burst_never_slows_another() {
    let busy = TenantLimiter::new(limits(1.0, 2));
    let quiet = TenantLimiter::new(limits(1.0, 2));
    let (tx, _rx) = mpsc::unbounded_channel();
    let _burst = [
        busy.acquire(Class::Write).await,
        busy.acquire(Class::Write).await,
    ];
    let mut waiting = Vec::new();
    for tag in 0..4 {
        waiting.push(spawn_acquire(&busy, Class::Write, tag, &tx).await);
    }
    assert_eq!(busy.stats().queued_of(Class::Write), 4);
    for _ in 0..2 {
        let permit = quiet.acquire(Class::Write).await.expect("its own bucket");
        assert_eq!(permit.waited(), Duration::ZERO);
    }
    assert_eq!(quiet.stats().queued, [0; 3]);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_gate_shared_by_two_tenants_caps_their_sum() {
    let gates = UpstreamGates::default();
    gates.reconcile([("http://app/scim/v2", nz(3)), ("http://app/scim/v2", nz(5))]);
    let gate = gates.get("http://app/scim/v2").expect("configured");
    let tenants = [
        TenantLimiter::new(limits(1000.0, 100)),
        TenantLimiter::new(limits(1000.0, 100)),
    ];
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (tenant, gate) = (tenants[i % 2].clone(), gate.clone());
        let (now, peak) = (now.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let limits = CallLimits {
                tenant: Some(&tenant),
                upstream: Some(&gate),
                global: None,
            };
            let permit = limits.acquire(Class::Write).await.expect("within 5 s");
            peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            tokio::time::sleep(100 * MS).await;
            now.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.expect("no task panicked");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(gate.in_flight(), 0);
    assert!(tenants.iter().all(|t| t.stats().in_flight == 0));
}

#[tokio::test(start_paused = true)]
async fn the_global_gate_refuses_with_503_material_when_full() {
    let global = Gate::new(GateScope::Global, nz(1));
    let limits = CallLimits {
        global: Some(&global),
        ..CallLimits::default()
    };
    let _held = limits.acquire(Class::Read).await.expect("the one place");
    let refused = limits.acquire(Class::Read).await.expect_err("full");
    assert!(!refused.is_tenant_limit());
    assert_eq!(global.refused(), 1);
}

#[tokio::test(start_paused = true)]
async fn nothing_configured_admits_at_once() {
    let permit = CallLimits::default()
        .acquire(Class::Write)
        .await
        .expect("no limits");
    assert_eq!(permit.waited(), Duration::ZERO);
    assert!(permit.tenant().is_none());
}

#[tokio::test(start_paused = true)]
async fn dropping_a_queued_acquire_frees_its_place_and_wakes_the_next() {
    let limiter = TenantLimiter::new(Limits {
        queue: nz(2),
        ..limits(1.0, 1)
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let first = limiter.acquire(Class::Write).await.expect("the burst");
    let head = spawn_acquire(&limiter, Class::Write, 1, &tx).await;
    let next = spawn_acquire(&limiter, Class::Write, 2, &tx).await;
    head.abort();
    settle().await;
    assert_eq!(
        limiter.stats().queued_of(Class::Write),
        1,
        "the place is free"
    );
    let third = spawn_acquire(&limiter, Class::Write, 3, &tx).await;
    assert_eq!(limiter.stats().refused(), 0, "so a newcomer gets in line");
    let (second, third) = (next.await, third.await);
    let got: Vec<(usize, Duration)> = drain(&mut rx)
        .into_iter()
        .map(|(tag, w)| (tag, w.expect("admitted")))
        .collect();
    assert_eq!(
        got,
        [(2, SECOND), (3, 2 * SECOND)],
        "the next took the dropped one's turn"
    );
    drop((first, second, third));
    let stats = limiter.stats();
    assert_eq!(
        (stats.in_flight, stats.queued),
        (0, [0; 3]),
        "nothing leaked"
    );
}

#[tokio::test(start_paused = true)]
async fn callers_giving_up_at_random_leak_no_place_and_no_cell() {
    let limiter = TenantLimiter::new(Limits {
        max_in_flight: nz(3),
        ..limits(20.0, 5)
    });
    let tasks: Vec<_> = (0..300u64)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let patience = Duration::from_millis((i * 37) % 400);
                let class = Class::ALL[(i % 3) as usize];
                let got = tokio::time::timeout(patience, limiter.acquire(class)).await;
                if let Ok(Ok(permit)) = got {
                    tokio::time::sleep(Duration::from_millis(i % 50)).await;
                    drop(permit);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no task panicked");
    }
    let stats = limiter.stats();
    assert_eq!((stats.in_flight, stats.in_flight_reads), (0, 0));
    assert_eq!(stats.queued, [0; 3]);
    // And the limiter still serves a whole burst at once.
    advance(Duration::from_secs(1)).await;
    for _ in 0..5 {
        let permit = limiter.acquire(Class::Write).await.expect("the burst");
        assert_eq!(permit.waited(), Duration::ZERO);
    }
}

#[tokio::test(start_paused = true)]
async fn a_write_at_a_full_queue_displaces_the_newest_read() {
    let limiter = TenantLimiter::new(Limits {
        queue: nz(2),
        max_wait: Duration::from_secs(60),
        ..limits(1.0, 1)
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _first = limiter.acquire(Class::Write).await.expect("the burst");
    let r1 = spawn_acquire(&limiter, Class::Read, 1, &tx).await;
    let r2 = spawn_acquire(&limiter, Class::Read, 2, &tx).await;
    let w = spawn_acquire(&limiter, Class::Write, 3, &tx).await;
    let displaced = drain(&mut rx);
    assert_eq!(displaced.len(), 1);
    assert_eq!(displaced[0].0, 2);
    assert!(matches!(displaced[0].1, Err(LimitError::Displaced { .. })));
    assert!(r2.await.expect("task ran").is_none());
    let (_w, _r1) = (w.await, r1.await);
    let got: Vec<(usize, Duration)> = drain(&mut rx)
        .into_iter()
        .map(|(tag, w)| (tag, w.expect("admitted")))
        .collect();
    assert_eq!(got, [(3, SECOND), (1, 2 * SECOND)]);
    assert_eq!(limiter.stats().refused_displaced, 1);
}
