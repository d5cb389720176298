//! One tenant's waiting line: a FIFO per class, served in class order. Only the head of the
//! line (the oldest waiter of the most urgent class waiting) may take capacity; everyone else
//! sleeps until woken or until its deadline, so a line of a thousand costs one wake-up per
//! admission, not a thousand.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::Class;

/// What a waiter is woken through. `displaced` is set, under the queue's lock, when a more
/// urgent call took its place.
#[derive(Debug, Default)]
pub struct Waiter {
    pub notify: Notify,
    displaced: AtomicBool,
}

impl Waiter {
    pub fn displaced(&self) -> bool {
        self.displaced.load(Ordering::Relaxed)
    }
}

/// Waiters by class; within a class, ids grow with arrival, so key order is FIFO order.
#[derive(Debug, Default)]
pub struct Queue {
    lines: [BTreeMap<u64, Arc<Waiter>>; 3],
    next_id: u64,
}

impl Queue {
    pub fn len(&self) -> usize {
        self.lines.iter().map(BTreeMap::len).sum()
    }

    pub fn len_of(&self, class: Class) -> usize {
        self.lines[class.rank()].len()
    }

    /// Waiters a newcomer of `class` would have ahead of it: all of its class and of more
    /// urgent ones.
    pub fn ahead_of_new(&self, class: Class) -> usize {
        self.lines[..=class.rank()].iter().map(BTreeMap::len).sum()
    }

    /// Waiters ahead of the waiter `id` of `class`.
    pub fn ahead_of(&self, class: Class, id: u64) -> usize {
        let r = class.rank();
        let above: usize = self.lines[..r].iter().map(BTreeMap::len).sum();
        above + self.lines[r].range(..id).count()
    }

    /// Puts a waiter at the back of its class's line.
    pub fn push(&mut self, class: Class) -> (u64, Arc<Waiter>) {
        let id = self.next_id;
        self.next_id += 1;
        let waiter = Arc::new(Waiter::default());
        self.lines[class.rank()].insert(id, waiter.clone());
        (id, waiter)
    }

    /// The waiter that may take capacity now.
    pub fn head(&self) -> Option<(Class, u64, &Arc<Waiter>)> {
        Class::ALL.iter().find_map(|&class| {
            let (id, waiter) = self.lines[class.rank()].first_key_value()?;
            Some((class, *id, waiter))
        })
    }

    pub fn is_head(&self, class: Class, id: u64) -> bool {
        self.head().is_some_and(|(c, i, _)| c == class && i == id)
    }

    /// Takes a waiter out (admitted, given up or dropped); whoever is at the head afterwards
    /// is woken if the head changed, since it may be able to go now.
    pub fn remove(&mut self, class: Class, id: u64) {
        let was_head = self.is_head(class, id);
        if self.lines[class.rank()].remove(&id).is_some() && was_head {
            self.wake_head();
        }
    }

    /// Wakes the head, if anyone waits: capacity came back.
    pub fn wake_head(&self) {
        if let Some((_, _, waiter)) = self.head() {
            waiter.notify.notify_one();
        }
    }

    /// Makes room for a newcomer of `class` in a full queue: the newest waiter of the least
    /// urgent class below it leaves, told why. False when no one is less urgent.
    pub fn displace_below(&mut self, class: Class) -> bool {
        let lower = &mut self.lines[class.rank() + 1..];
        let Some(line) = lower.iter_mut().rev().find(|l| !l.is_empty()) else {
            return false;
        };
        let Some((_, waiter)) = line.pop_last() else {
            return false;
        };
        waiter.displaced.store(true, Ordering::Relaxed);
        waiter.notify.notify_one();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_the_oldest_of_the_most_urgent_class() {
        let mut q = Queue::default();
        let (r, _) = q.push(Class::Read);
        let (w1, _) = q.push(Class::Write);
        let (w2, _) = q.push(Class::Write);
        assert!(q.is_head(Class::Write, w1));
        let (d, _) = q.push(Class::Deprovision);
        assert!(q.is_head(Class::Deprovision, d));
        assert_eq!(q.ahead_of(Class::Write, w2), 2);
        assert_eq!(q.ahead_of(Class::Read, r), 3);
        assert_eq!(q.ahead_of_new(Class::Write), 3);
        assert_eq!(q.ahead_of_new(Class::Deprovision), 1);
    }

    #[test]
    fn removing_the_head_wakes_the_next() {
        let mut q = Queue::default();
        let (a, _) = q.push(Class::Write);
        let (_, next) = q.push(Class::Write);
        q.remove(Class::Write, a);
        let woken = next.notify.notified();
        tokio::pin!(woken);
        assert!(
            futures_ready(woken.as_mut()),
            "the new head holds a wake-up"
        );
    }

    #[test]
    fn a_newcomer_displaces_the_newest_of_the_least_urgent_class_below_it() {
        let mut q = Queue::default();
        q.push(Class::Write);
        let (_, old_read) = q.push(Class::Read);
        let (_, new_read) = q.push(Class::Read);
        assert!(q.displace_below(Class::Write));
        assert!(new_read.displaced() && !old_read.displaced());
        assert_eq!(q.len_of(Class::Read), 1);
        assert!(q.displace_below(Class::Deprovision));
        assert!(q.displace_below(Class::Deprovision), "then writes");
        assert!(
            !q.displace_below(Class::Deprovision),
            "no one is left below"
        );
        assert!(!q.displace_below(Class::Read), "nothing is below reads");
    }

    /// Polls a future once.
    fn futures_ready<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        f.poll(&mut cx).is_ready()
    }
}
