//! The global run queue (Go's `sched.runq`): where goroutines go when they
//! are readied from outside a P (plain threads, P-less Ms, sysmon), when
//! they `gosched` or are preempted, and where a full local queue spills.
//!
//! Go guards it with `sched.lock`; we use a lock-free segmented queue so a
//! P-less M spawning in a loop and the Ms draining it do not serialise on
//! one mutex. Lost-wakeup freedom comes from the order "push (a SeqCst CAS
//! on the tail), then wakep (SeqCst load of npidle)" against "pidleput
//! (SeqCst RMW of npidle), then is_empty (SeqCst loads of head and tail)"
//! in `find_runnable`: one side always sees the other.

use crate::g::{GPtr, Header};
use crossbeam_queue::SegQueue;
use std::ptr::NonNull;

#[derive(Default)]
pub(crate) struct GlobRunq {
    q: SegQueue<GPtr>,
}

impl GlobRunq {
    pub(crate) fn put(&self, g: GPtr) {
        self.q.push(g);
    }

    /// Spill from a local run queue (`runqputslow`): raw pointers that each
    /// own a runnable reference.
    pub(crate) fn put_raw_batch(&self, batch: Vec<*mut Header>) {
        for g in batch {
            // SAFETY: each pointer came out of a run queue, which owned a
            // runnable reference for it.
            self.q
                .push(unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) });
        }
    }

    pub(crate) fn put_batch(&self, gs: Vec<GPtr>) {
        for g in gs {
            self.q.push(g);
        }
    }

    pub(crate) fn pop(&self) -> Option<GPtr> {
        self.q.pop()
    }

    /// SegQueue computes this from its head and tail indices (SeqCst
    /// loads), which is what the lost-wakeup argument above needs.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}
