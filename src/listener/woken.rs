//! A future polled only when it asked to be: on its first poll, and after its own waker fired.
//!
//! A connection's task waits on its HTTP connection and, beside it, on timers and signals
//! (idle, unauthenticated, shutdown) that rarely fire. `select!` polls every branch each time
//! the task wakes, and the task wakes for every read and write of every request: each timer
//! would be polled a few times per request for nothing. Wrapped, a branch that was not woken
//! costs a flag check instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

pub struct WhenWoken<F> {
    inner: F,
    flag: Arc<Flag>,
    /// `flag` as a waker, handed to `inner` on each poll that reaches it.
    waker: Waker,
}

struct Flag {
    woken: AtomicBool,
    /// The task to wake when `inner`'s waker fires.
    task: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl<F: Future + Unpin> WhenWoken<F> {
    pub fn new(inner: F) -> Self {
        let flag = Arc::new(Flag {
            // Set, so that the first poll reaches `inner` and lets it register its waker.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Self {
            inner,
            waker: Waker::from(flag.clone()),
            flag,
        }
    }
}

impl<F: Future + Unpin> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        {
            let mut task = this.flag.task.lock().unwrap_or_else(|e| e.into_inner());
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        // Cleared before `inner` is polled: a wake during the poll sets it again.
        if !this.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_timer_fires_through_the_wrapper_and_is_not_polled_in_between() {
        let sleep = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(sleep);
        let mut wrapped = WhenWoken::new(&mut sleep);
        // The first poll reaches the timer; polls before it fires do not.
        assert!(futures_poll(&mut wrapped).is_pending());
        assert!(!wrapped.flag.woken.load(Ordering::Acquire));
        assert!(futures_poll(&mut wrapped).is_pending());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(
            wrapped.flag.woken.load(Ordering::Acquire),
            "the timer woke its wrapper"
        );
        assert!(futures_poll(&mut wrapped).is_ready());
    }

    #[tokio::test]
    async fn a_select_branch_wrapped_still_ends_the_select_when_it_fires() {
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let never = std::future::pending::<()>();
        tokio::pin!(never);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(true).expect("receiver alive");
        });
        let fired = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::select! {
                _ = &mut never => false,
                changed = WhenWoken::new(Box::pin(rx.changed())) => changed.is_ok(),
            }
        })
        .await;
        assert_eq!(fired, Ok(true));
    }

    fn futures_poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        let waker = Waker::noop();
        Pin::new(f).poll(&mut Context::from_waker(waker))
    }
}
