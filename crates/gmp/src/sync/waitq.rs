//! The wait queue under gmp's sync primitives (Go's `sema.go` root): FIFO
//! waiters, each a shared slot with a waker and a grant flag, so that a
//! waker can hand ownership straight to a waiter (Go's handoff) and a
//! waiter whose future is dropped can give back what it was handed.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

/// The waiter may try to acquire again (normal-mode mutex wake).
pub(crate) const WOKEN: u8 = 1;
/// Ownership was handed to the waiter.
pub(crate) const HANDED: u8 = 2;

pub(crate) struct Waiter {
    waker: Mutex<Option<Waker>>,
    /// Set by the releasing side: `WOKEN`, the waiter may try again
    /// (normal-mode mutex); `HANDED`, it now owns what it waited for.
    granted: AtomicU8,
    pub(crate) since: Instant,
}

impl Waiter {
    pub(crate) fn new(w: &Waker) -> Arc<Waiter> {
        Arc::new(Waiter {
            waker: Mutex::new(Some(w.clone())),
            granted: AtomicU8::new(0),
            since: Instant::now(),
        })
    }

    pub(crate) fn is_granted(&self) -> bool {
        self.granted.load(Acquire) != 0
    }

    /// 0, `WOKEN` or `HANDED`.
    pub(crate) fn grant_state(&self) -> u8 {
        self.granted.load(Acquire)
    }

    pub(crate) fn clear_grant(&self) {
        self.granted.store(0, Release);
    }

    pub(crate) fn update(&self, w: &Waker) {
        let mut g = self.waker.lock().unwrap();
        match &*g {
            Some(old) if old.will_wake(w) => {}
            _ => *g = Some(w.clone()),
        }
    }

    /// Grant and wake (the waker is called outside any queue lock by the
    /// caller collecting the result of this call).
    #[must_use]
    pub(crate) fn grant(&self) -> Option<Waker> {
        self.grant_as(HANDED)
    }

    /// Mark `WOKEN` or `HANDED` and take the waker to call.
    #[must_use]
    pub(crate) fn grant_as(&self, how: u8) -> Option<Waker> {
        self.granted.store(how, Release);
        self.waker.lock().unwrap().take()
    }
}

/// A FIFO of waiters.
#[derive(Default)]
pub(crate) struct WaitQueue {
    q: VecDeque<Arc<Waiter>>,
}

impl WaitQueue {
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue { q: VecDeque::new() }
    }

    pub(crate) fn push_back(&mut self, w: Arc<Waiter>) {
        self.q.push_back(w);
    }

    pub(crate) fn push_front(&mut self, w: Arc<Waiter>) {
        self.q.push_front(w);
    }

    pub(crate) fn pop_front(&mut self) -> Option<Arc<Waiter>> {
        self.q.pop_front()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }

    /// Remove `w` if still queued; false if it was already dequeued.
    pub(crate) fn remove(&mut self, w: &Arc<Waiter>) -> bool {
        match self.q.iter().position(|x| Arc::ptr_eq(x, w)) {
            Some(i) => {
                self.q.remove(i);
                true
            }
            None => false,
        }
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Arc<Waiter>> + '_ {
        self.q.drain(..)
    }
}

/// Wake collected wakers (after the lock that produced them is released).
pub(crate) fn wake_all(ws: impl IntoIterator<Item = Option<Waker>>) {
    for w in ws.into_iter().flatten() {
        w.wake();
    }
}
