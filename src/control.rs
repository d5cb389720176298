//! What an operator controls and sees of each tenant through the admin API: pause, test mode,
//! the tenant's activity (counts, times, the IdP pack of its last request, its last requests)
//! and the writes test mode kept from the app. Kept by tenant id across reloads, whatever the
//! reload changes of the tenant, so a paused tenant stays paused. The request path reads the
//! flags with one atomic load each.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use http::{HeaderValue, Method, StatusCode};
use serde_json::Value;

/// One tenant's controls and activity.
#[derive(Debug, Default)]
pub struct TenantControl {
    paused: AtomicBool,
    test_mode: AtomicBool,
    /// The tenant's `test_mode` in the file last put in force; `None` before the first.
    configured_test_mode: Mutex<Option<bool>>,
    activity: Mutex<Activity>,
    test_requests: Mutex<Ring<TestRequest>>,
}

#[derive(Debug, Default)]
struct Activity {
    counts: Counts,
    last_request: Option<SystemTime>,
    last_success: Option<SystemTime>,
    pack: Option<Arc<str>>,
    log: Ring<LoggedRequest>,
}

/// A tenant's requests since the process started, by how they were answered. An operation of
/// a Bulk the proxy carried out is not counted apart from its Bulk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    /// Answered 1xx–3xx.
    pub succeeded: u64,
    /// Answered 4xx: refused (authentication, limits, schema, policy, the app's own 4xx).
    pub client_errors: u64,
    /// Answered 5xx: the app or the proxy failed, or the tenant was paused.
    pub server_errors: u64,
}

impl Counts {
    /// The share of requests not answered with success, from 0 to 1; 0 before any request.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        (self.client_errors + self.server_errors) as f64 / self.requests as f64
    }

    fn add(&mut self, status: StatusCode) {
        self.requests += 1;
        match status.as_u16() {
            400..=499 => self.client_errors += 1,
            500.. => self.server_errors += 1,
            _ => self.succeeded += 1,
        }
    }
}

/// What the admin API shows of a tenant at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub paused: bool,
    pub test_mode: bool,
    pub counts: Counts,
    pub last_request: Option<SystemTime>,
    pub last_success: Option<SystemTime>,
    /// The IdP rule pack chosen for the tenant's last request that went through one.
    pub pack: Option<Arc<str>>,
}

/// One finished request, as the request log keeps it: no body, no query (a filter carries
/// values such as e-mail addresses), no credential.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedRequest {
    pub at: SystemTime,
    pub request_id: HeaderValue,
    pub method: Method,
    /// The path without its query.
    pub path: String,
    pub status: u16,
    pub latency_ms: f64,
    pub pack: Option<Arc<str>>,
    pub rules: Vec<Arc<str>>,
    /// The gap the proxy filled, if any.
    pub filled: Option<&'static str>,
    /// For an operation of a Bulk the proxy carried out: its place in the BulkRequest.
    pub bulk_op: Option<usize>,
    /// Why it failed, as the operator needs it.
    pub error: Option<String>,
}

/// A write that test mode kept from the app: what would have been sent, without credentials.
#[derive(Clone, Debug, PartialEq)]
pub struct TestRequest {
    pub at: SystemTime,
    pub request_id: String,
    pub method: Method,
    /// Below the app's base URL, with the query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body as JSON, or as text when it is not JSON; `None` when there is none.
    pub body: Option<Value>,
}

impl TenantControl {
    pub fn new(keep: usize) -> Self {
        let control = Self::default();
        control.set_keep(keep);
        control
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Sets the pause; returns whether it was set before.
    pub fn set_paused(&self, on: bool) -> bool {
        self.paused.swap(on, Ordering::Relaxed)
    }

    pub fn test_mode(&self) -> bool {
        self.test_mode.load(Ordering::Relaxed)
    }

    /// Sets test mode; returns whether it was on before.
    pub fn set_test_mode(&self, on: bool) -> bool {
        self.test_mode.swap(on, Ordering::Relaxed)
    }

    /// Applies the file's `test_mode` when the tenant is new or the file changed the value
    /// since the last configuration; otherwise the admin API's switch holds.
    pub fn configure_test_mode(&self, configured: bool) {
        let mut last = lock(&self.configured_test_mode);
        if *last != Some(configured) {
            *last = Some(configured);
            self.set_test_mode(configured);
        }
    }

    /// How many entries the request log and the test-mode record keep; fewer than held drops
    /// the oldest.
    pub fn set_keep(&self, keep: usize) {
        self.activity().log.set_capacity(keep);
        lock(&self.test_requests).set_capacity(keep);
    }

    /// Counts a finished request, remembers its pack and puts it in the request log.
    pub fn finished(&self, entry: LoggedRequest) {
        let status = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK);
        let mut a = self.activity();
        if entry.bulk_op.is_none() {
            a.counts.add(status);
            a.last_request = Some(entry.at);
            if status.as_u16() < 400 {
                a.last_success = Some(entry.at);
            }
        }
        if entry.pack.is_some() && a.pack != entry.pack {
            a.pack.clone_from(&entry.pack);
        }
        let evicted = a.log.push(entry);
        // Freed once the lock is let go: other requests of the tenant wait less.
        drop(a);
        drop(evicted);
    }

    pub fn status(&self) -> Status {
        let a = self.activity();
        Status {
            paused: self.is_paused(),
            test_mode: self.test_mode(),
            counts: a.counts,
            last_request: a.last_request,
            last_success: a.last_success,
            pack: a.pack.clone(),
        }
    }

    /// The request log, newest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.activity().log.newest_first()
    }

    pub fn record_test_request(&self, request: TestRequest) {
        let evicted = lock(&self.test_requests).push(request);
        drop(evicted);
    }

    /// The writes test mode kept from the app, newest first.
    pub fn test_requests(&self) -> Vec<TestRequest> {
        lock(&self.test_requests).newest_first()
    }

    /// Forgets the recorded writes; returns how many there were.
    pub fn clear_test_requests(&self) -> usize {
        let mut ring = lock(&self.test_requests);
        let n = ring.items.len();
        ring.items.clear();
        n
    }

    fn activity(&self) -> MutexGuard<'_, Activity> {
        lock(&self.activity)
    }
}

/// A poisoned lock only means a panic elsewhere; what it guards is still whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bounded list that drops its oldest entry to make room for a new one.
#[derive(Debug)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            capacity: 0,
        }
    }
}

impl<T: Clone> Ring<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            items: VecDeque::new(),
            capacity,
        }
    }

    /// Adds `item`, and hands back the oldest entry when it had to make room (or `item` itself
    /// when the ring keeps nothing).
    pub fn push(&mut self, item: T) -> Option<T> {
        if self.capacity == 0 {
            return Some(item);
        }
        let evicted = match self.items.len() >= self.capacity {
            true => self.items.pop_front(),
            false => None,
        };
        self.items.push_back(item);
        evicted
    }

    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.items.len() > capacity {
            self.items.pop_front();
        }
    }

    pub fn newest_first(&self) -> Vec<T> {
        self.items.iter().rev().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(status: u16, at_s: u64) -> LoggedRequest {
        LoggedRequest {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(at_s),
            request_id: HeaderValue::from(at_s),
            method: Method::GET,
            path: "/Users".into(),
            status,
            latency_ms: 1.0,
            pack: None,
            rules: Vec::new(),
            filled: None,
            bulk_op: None,
            error: None,
        }
    }

    #[test]
    fn a_full_ring_drops_its_oldest_entry() {
        let mut ring = Ring::with_capacity(3);
        for i in 1..=3 {
            assert_eq!(ring.push(i), None);
        }
        assert_eq!(ring.push(4), Some(1));
        ring.push(5);
        assert_eq!(ring.newest_first(), [5, 4, 3]);
        ring.set_capacity(2);
        assert_eq!(ring.newest_first(), [5, 4]);
        ring.set_capacity(4);
        ring.push(6);
        assert_eq!(ring.newest_first(), [6, 5, 4]);
    }

    #[test]
    fn a_ring_of_no_capacity_keeps_nothing() {
        let mut ring = Ring::with_capacity(0);
        assert_eq!(ring.push(1), Some(1));
        assert!(ring.is_empty());
    }

    #[test]
    fn status_counts_by_class_and_keeps_the_last_success() {
        let control = TenantControl::new(10);
        control.finished(entry(201, 1));
        control.finished(entry(409, 2));
        control.finished(entry(503, 3));
        let mut op = entry(500, 4);
        op.bulk_op = Some(0);
        control.finished(op);
        let status = control.status();
        let expected = Counts {
            requests: 3,
            succeeded: 1,
            client_errors: 1,
            server_errors: 1,
        };
        assert_eq!(status.counts, expected, "a Bulk operation is not a request");
        assert!((status.counts.error_rate() - 2.0 / 3.0).abs() < 1e-9);
        let at = |s| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!((status.last_request, status.last_success), (at(3), at(1)));
        assert_eq!(control.requests().len(), 4, "the log keeps the operation");
        assert_eq!(Counts::default().error_rate(), 0.0);
    }

    #[test]
    fn the_pack_of_the_last_request_that_had_one_is_shown() {
        let control = TenantControl::new(10);
        let mut okta = entry(200, 1);
        okta.pack = Some("okta".into());
        control.finished(okta);
        control.finished(entry(200, 2));
        assert_eq!(control.status().pack.as_deref(), Some("okta"));
    }

    #[test]
    fn the_files_test_mode_applies_when_new_or_changed_and_the_switch_holds_otherwise() {
        let control = TenantControl::new(1);
        control.configure_test_mode(true);
        assert!(control.test_mode(), "a new tenant starts as the file says");
        control.set_test_mode(false);
        control.configure_test_mode(true);
        assert!(!control.test_mode(), "the same file again keeps the switch");
        control.configure_test_mode(false);
        control.set_test_mode(true);
        control.configure_test_mode(false);
        assert!(control.test_mode());
        control.configure_test_mode(true);
        control.configure_test_mode(false);
        assert!(!control.test_mode(), "a changed value applies");
    }

    #[test]
    fn pause_and_test_mode_are_flags_that_say_what_they_were() {
        let control = TenantControl::new(1);
        assert!(!control.set_paused(true));
        assert!(control.set_paused(true));
        assert!(control.is_paused() && !control.test_mode());
        assert!(!control.set_test_mode(true));
        assert!(control.status().test_mode);
    }
}
