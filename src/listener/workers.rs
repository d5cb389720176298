//! The threads that serve connections: one single-threaded runtime per CPU the process may
//! use. A connection stays on the worker it is handed to from its first byte to its last, so
//! its requests never wait for a scheduler to move them between threads, and a worker never
//! takes a lock to find its next task. The accept loop runs on the first worker (the thread
//! that called [`Workers::start`]) and hands each new connection to the worker with the fewest
//! open; with one CPU there is only that one.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long a worker's leftover tasks get once serving has ended (requests cut by the drain
/// may have left work on the blocking pool, such as a password hash; it is not waited for).
const LEFTOVERS: Duration = Duration::from_millis(500);

thread_local! {
    /// This thread's place among the workers; 0 for the first and for every other thread
    /// (the blocking pool, tests).
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// How many workers the proxy runs: one per CPU this process may use (its affinity mask and
/// cgroup quota count).
pub fn count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The worker this thread is, for state kept per worker (upstream connection pools).
pub fn current() -> usize {
    INDEX.with(Cell::get)
}

pub struct Workers {
    /// Open connections per worker, the calling thread's first.
    open: Vec<Arc<AtomicUsize>>,
    /// The other workers, from the second.
    others: Vec<Worker>,
    /// Where the search for the least busy worker starts, so that ties take turns.
    next: AtomicUsize,
}

struct Worker {
    handle: Handle,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl Workers {
    /// The calling thread's runtime serves as the first of `count` workers; the others get a
    /// thread and a runtime each.
    pub fn start(count: usize) -> std::io::Result<Self> {
        let mut others = Vec::with_capacity(count.saturating_sub(1));
        for n in 1..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("scimgate-worker-{n}"))
                .spawn(move || {
                    INDEX.with(|i| i.set(n));
                    let _ = runtime.block_on(stopped);
                    runtime.shutdown_timeout(LEFTOVERS);
                })?;
            others.push(Worker {
                handle,
                stop,
                thread,
            });
        }
        Ok(Self {
            open: (0..count.max(1)).map(|_| Arc::default()).collect(),
            others,
            next: AtomicUsize::new(0),
        })
    }

    pub fn count(&self) -> usize {
        self.open.len()
    }

    /// Serves `stream` with `serve` on the worker with the fewest open connections.
    pub fn spawn<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let index = self.least_busy();
        let open = Open::count(&self.open[index]);
        let Some(worker) = index.checked_sub(1).map(|i| &self.others[i]) else {
            tokio::spawn(async move {
                serve(stream).await;
                drop(open);
            });
            return;
        };
        // The socket leaves this worker's event loop and joins the other's.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => return tracing::debug!(error = %e, "could not hand a connection over"),
        };
        worker.handle.spawn(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream).await,
                Err(e) => tracing::debug!(error = %e, "could not take a connection over"),
            }
            drop(open);
        });
    }

    fn least_busy(&self) -> usize {
        let count = self.open.len();
        if count == 1 {
            return 0;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        (start..start + count)
            .map(|i| i % count)
            .min_by_key(|&i| self.open[i].load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Ends the other workers once serving is over: what they still run gets a moment, then
    /// is dropped.
    pub fn stop(self) {
        for worker in self.others {
            let _ = worker.stop.send(());
            if worker.thread.join().is_err() {
                tracing::warn!("a worker thread ended with a panic");
            }
        }
    }
}

/// One open connection in its worker's count, for as long as it is held.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn count(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Connections that stay open spread over the workers, one each before any gets two, and
    /// each is served on a thread of its worker's.
    #[test]
    fn open_connections_spread_over_the_workers() {
        runtime().block_on(async {
            let workers = Workers::start(3).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (seen, mut threads) = tokio::sync::mpsc::unbounded_channel();
            let mut clients = Vec::new();
            for _ in 0..6 {
                clients.push(TcpStream::connect(addr).await.unwrap());
                let (stream, _) = listener.accept().await.unwrap();
                let seen = seen.clone();
                workers.spawn(stream, move |mut stream| async move {
                    let name = std::thread::current().name().map(str::to_owned);
                    seen.send((name, current())).unwrap();
                    // Open until its client goes.
                    let _ = stream.read(&mut [0u8; 1]).await;
                });
            }
            let mut names = Vec::new();
            for _ in 0..6 {
                let (name, index) = threads.recv().await.unwrap();
                // Each thread knows its place, for what it keeps per worker.
                let named = name
                    .as_deref()
                    .and_then(|n| n.strip_prefix("scimgate-worker-"));
                assert_eq!(index, named.map_or(0, |i| i.parse().unwrap()));
                names.push(name);
            }
            names.sort();
            let worker = |n: usize| Some(format!("scimgate-worker-{n}"));
            let here = std::thread::current().name().map(str::to_owned);
            let mut expected = vec![
                here.clone(),
                here,
                worker(1),
                worker(1),
                worker(2),
                worker(2),
            ];
            expected.sort();
            assert_eq!(names, expected);
            assert!(workers.open.iter().all(|o| o.load(Ordering::Relaxed) == 2));
            drop(clients);
            // Each served connection ends when its client goes, and is counted out.
            for _ in 0..100 {
                if workers.open.iter().all(|o| o.load(Ordering::Relaxed) == 0) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(workers.open.iter().all(|o| o.load(Ordering::Relaxed) == 0));
            workers.stop();
        });
    }
}
