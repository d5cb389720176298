//! Pure work that can take long, kept from holding up the other tasks of its worker thread.
//! A large PATCH applied, a large list sorted, or a wait for a store's write lock runs on the
//! worker's thread while the worker's other tasks (other tenants' requests, the accept loop)
//! move to another thread first (`block_in_place`). The bounds on such work (values examined,
//! bytes sorted) say how long it can take; this says it does not stall anyone else meanwhile.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Input past this many bytes is large: its work is handed off.
pub const LARGE: usize = 64 << 10;

/// Runs `work` here; when `large`, first hands this worker's other tasks to another thread.
/// Small work runs as it is: handing off costs a thread wake-up.
pub fn pure_work<T>(large: bool, work: impl FnOnce() -> T) -> T {
    let threaded = Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
    if large && threaded {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    /// With one worker thread, a task spawned just before the work starts runs while the work
    /// is still going only if the work was handed off.
    fn other_task_ran_during(large: bool) -> bool {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        runtime.block_on(async {
            tokio::spawn(async move {
                let ran = Arc::new(AtomicBool::new(false));
                let flag = ran.clone();
                let other = tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
                let seen = pure_work(large, || {
                    // Waits for the other task, or gives up: the guard only ends the wait.
                    let guard = Instant::now() + Duration::from_millis(500);
                    while !ran.load(Ordering::SeqCst) && Instant::now() < guard {
                        std::thread::yield_now();
                    }
                    ran.load(Ordering::SeqCst)
                });
                other.await.unwrap();
                seen
            })
            .await
            .unwrap()
        })
    }

    #[test]
    fn large_work_lets_the_workers_other_tasks_run() {
        assert!(other_task_ran_during(true));
    }

    #[test]
    fn small_work_keeps_its_thread() {
        assert!(!other_task_ran_during(false));
    }

    #[test]
    fn outside_a_threaded_runtime_the_work_just_runs() {
        assert_eq!(pure_work(true, || 7), 7);
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(current.block_on(async { pure_work(true, || 8) }), 8);
    }
}
