//! The global run queue (Go's `sched.runq`): where goroutines go when they
//! are readied from outside a P (plain threads, P-less Ms, sysmon), when
//! they `gosched` or are preempted, and where a full local queue spills.
//!
//! Like Go, a lock around a FIFO, with every bulk operation done under one
//! acquisition: `runqputslow` spills, a P's batch of yielded goroutines
//! (`Sched::flush_yieldq`) and `globrunqget`'s grab of up to 128 each take
//! the lock once. (It was a lock-free `SegQueue`; with two Ms both pushing
//! and popping one goroutine at a time, every operation moved the queue's
//! head or tail cache line between the cores, and yield_many at
//! procs = 2 spent half its cycles there.) Go uses `sched.lock`; ours is a
//! lock of its own, so queueing never waits on the idle lists.
//!
//! `len` is an atomic mirror so that `is_empty` checks (every schedule)
//! do not take the lock. Lost-wakeup freedom comes from the order "push,
//! then the SeqCst store of `len`, then wakep (SeqCst load of npidle)"
//! against "pidleput (SeqCst RMW of npidle), then `is_empty` (SeqCst load
//! of `len`)" in `find_runnable`: one side always sees the other.

use crate::g::{GPtr, Header};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub(crate) struct GlobRunq {
    q: Mutex<VecDeque<GPtr>>,
    len: AtomicUsize,
}

impl GlobRunq {
    fn lock(&self) -> MutexGuard<'_, VecDeque<GPtr>> {
        // A panic never happens with the lock held (pushes and pops only),
        // but a poisoned queue is still a consistent queue.
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publish the length; SeqCst for the lost-wakeup argument above.
    fn publish(&self, q: &VecDeque<GPtr>) {
        self.len.store(q.len(), SeqCst);
    }

    pub(crate) fn put(&self, g: GPtr) {
        let mut q = self.lock();
        q.push_back(g);
        self.publish(&q);
    }

    /// Spill from a local run queue (`runqputslow`): raw pointers that each
    /// own a runnable reference.
    pub(crate) fn put_raw_batch(&self, batch: Vec<*mut Header>) {
        // SAFETY: each pointer came out of a run queue, which owned a
        // runnable reference for it.
        self.put_batch(
            batch
                .into_iter()
                .map(|g| unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) }),
        );
    }

    pub(crate) fn put_batch(&self, gs: impl IntoIterator<Item = GPtr>) {
        let mut q = self.lock();
        q.extend(gs);
        self.publish(&q);
    }

    pub(crate) fn pop(&self) -> Option<GPtr> {
        if self.is_empty() {
            return None;
        }
        let mut q = self.lock();
        let g = q.pop_front();
        self.publish(&q);
        g
    }

    /// Go's `globrunqget`: take up to `n` (at least one) under one lock
    /// acquisition; the first is returned, the rest go to `rest`.
    pub(crate) fn pop_batch(&self, n: usize, mut rest: impl FnMut(GPtr)) -> Option<GPtr> {
        if self.is_empty() {
            return None;
        }
        let mut q = self.lock();
        let first = q.pop_front()?;
        for _ in 1..n {
            let Some(g) = q.pop_front() else { break };
            rest(g);
        }
        self.publish(&q);
        Some(first)
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(SeqCst)
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
