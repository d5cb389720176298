//! Pure work that can take long, kept from holding up the other connections of its worker.
//! Each worker thread runs its connections' tasks one at a time, so a large PATCH applied, a
//! large list sorted, or a wait for a store's write lock would stall them all. Such work runs
//! on the blocking pool instead while the worker goes on; the bounds on it (values examined,
//! bytes sorted) say how long it can take, this says nobody else waits meanwhile.

/// Input past this many bytes is large: its work is handed off.
pub const LARGE: usize = 64 << 10;

/// Runs `work` on the blocking pool and waits for it without holding the worker. Only for
/// work known to be long: the hand-off costs two thread wake-ups, and `work` must own what it
/// reads.
pub async fn off_worker<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        // The work panicked: the panic goes on here, as if the work had run in place.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled: only a runtime shutting down cancels blocking work, and it drops the task
        // awaiting here first, so nobody is left to be answered.
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    /// On a one-thread runtime, a task spawned just before the work starts runs while the work
    /// is still going only if the work was handed off.
    fn other_task_ran_during(handed_off: bool) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let ran = Arc::new(AtomicBool::new(false));
            let flag = ran.clone();
            let other = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
            let work = move || {
                // Waits for the other task, or gives up: the guard only ends the wait.
                let guard = Instant::now() + Duration::from_millis(500);
                while !ran.load(Ordering::SeqCst) && Instant::now() < guard {
                    std::thread::yield_now();
                }
                ran.load(Ordering::SeqCst)
            };
            let seen = if handed_off {
                off_worker(work).await
            } else {
                work()
            };
            other.await.unwrap();
            seen
        })
    }

    #[test]
    fn work_handed_off_lets_the_workers_other_tasks_run() {
        assert!(other_task_ran_during(true));
    }

    #[test]
    fn work_in_place_holds_its_worker() {
        assert!(!other_task_ran_during(false));
    }

    #[test]
    fn a_panic_in_the_work_goes_on_in_the_caller() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(off_worker(|| -> u8 { panic!("in the work") }))
        }));
        let message = caught.unwrap_err();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"in the work"));
    }
}
