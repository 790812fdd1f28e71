//! The G's scheduling state word: one atomic holding the run state flags
//! and the reference count, in the manner of async-task's `raw.rs`.
//!
//! Go keeps `g.atomicstatus` and relies on the GC for lifetime; a stackless
//! G needs both in one word so that a wake racing with the end of a poll,
//! with completion, or with the JoinHandle going away is decided by a single
//! CAS. The Go-visible status (`GStatus`) is a separate, advisory byte in
//! the header, written for the goroutine dump.
//!
//! References: one for each `Waker` clone, one for the runnable (the G
//! sitting in a run queue or being polled), one for the allgs registry.
//! The JoinHandle is a flag, not a reference. The allocation is freed when
//! the count reaches zero with no JoinHandle.

use crate::sync::{spin, AtomicUsize};
use std::sync::atomic::Ordering::{self, AcqRel, Acquire, Relaxed, Release};

/// In a run queue or about to be put there; the runnable owns a reference.
pub const SCHEDULED: usize = 1 << 0;
/// Being polled by an M.
pub const RUNNING: usize = 1 << 1;
/// The future returned Ready (or panicked); its output is stored.
pub const COMPLETE: usize = 1 << 2;
/// The future is gone and so is the output (taken, dropped or never made).
pub const CLOSED: usize = 1 << 3;
/// A JoinHandle exists.
pub const HANDLE: usize = 1 << 4;
/// The JoinHandle registered a waker.
pub const AWAITER: usize = 1 << 5;
/// Someone is reading or writing the awaiter slot.
pub const LOCKED: usize = 1 << 6;
/// The goroutine is main (goroutine 1): waking it signals M0.
pub const MAIN: usize = 1 << 7;
/// Stamped for the scheduling-latency histogram when it was made ready.
/// It lives here, not in the header, because `transition_to_running`
/// returns the old word anyway: checking it costs a test and a branch on a
/// register instead of a load on every schedule.
pub const SAMPLED: usize = 1 << 8;
pub const REF_ONE: usize = 1 << 9;

#[derive(Debug)]
pub struct State(AtomicUsize);

/// What the M must do with the runnable after a poll returned Pending.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterPoll {
    /// Woken while running: put it back in a run queue (keep the reference).
    Requeue,
    /// Parked: drop the runnable's reference.
    Park,
}

#[inline]
pub fn refs(s: usize) -> usize {
    s >> REF_ONE.trailing_zeros()
}

/// What a state transition does with the word it read (`State::transition`).
enum Step<R> {
    /// CAS the word to this value; on success, return `R`.
    Set(usize, R),
    /// Return `R` without writing.
    Done(R),
    /// Someone holds the awaiter slot (LOCKED): spin, then look again.
    Spin,
}

/// A wake found the G already SCHEDULED, so there is nothing to change,
/// but the waker must still publish what it did before waking (say, a
/// channel send) to the poll that SCHEDULED promises. Returning after the
/// plain load would leave the waker's earlier store and its load of the
/// state unordered against the poller's `transition_to_running` CAS and its
/// later read of that store: the store-buffering pattern, in which both can
/// read the old values (on x86 too, the waker's store can still sit in its
/// store buffer), so the poll misses the event, parks, and the wake is
/// lost. Writing the same value back with an AcqRel CAS puts the wake in
/// the state word's modification order: either it precedes the poller's
/// CAS, which then reads from it and acquires the waker's writes, or it
/// follows it and fails (the state changed), and the wake re-decides on
/// the new state (RUNNING without SCHEDULED: set it, the poller will
/// requeue). async-task's `wake_by_ref` does the same. Found by the loom
/// model `wake_by_ref_vs_whole_poll_no_lost_wakeup` (tests/loom_gstate.rs).
#[inline(always)]
fn publish_scheduled(s: usize) -> Step<bool> {
    Step::Set(s, false)
}

impl State {
    /// A new G: scheduled, with the runnable's and the registry's references.
    pub fn new(handle: bool, main: bool) -> State {
        let mut s = SCHEDULED | (2 * REF_ONE);
        if handle {
            s |= HANDLE;
        }
        if main {
            s |= MAIN;
        }
        State(AtomicUsize::new(s))
    }

    #[inline]
    pub fn load(&self) -> usize {
        self.0.load(Acquire)
    }

    pub fn ref_inc(&self) {
        let prev = self
            .0
            .fetch_add(REF_ONE, std::sync::atomic::Ordering::Relaxed);
        if refs(prev) > (usize::MAX >> (REF_ONE.trailing_zeros() + 1)) {
            std::process::abort();
        }
    }

    /// Drops a reference; true when the caller must free the allocation.
    #[must_use]
    pub fn ref_dec(&self) -> bool {
        // AcqRel: the last dropper must see every other holder's writes.
        let prev = self.0.fetch_sub(REF_ONE, AcqRel);
        debug_assert!(refs(prev) >= 1);
        refs(prev) == 1 && prev & HANDLE == 0
    }

    /// Every transition below is one CAS loop: `f` looks at the state it
    /// read and says what to do; a failed CAS re-reads and asks again.
    /// `success` is the CAS's ordering on success (Acquire on failure).
    #[inline(always)]
    fn transition<R>(&self, success: Ordering, mut f: impl FnMut(usize) -> Step<R>) -> R {
        let mut s = self.0.load(Acquire);
        loop {
            let (new, r) = match f(s) {
                Step::Done(r) => return r,
                Step::Spin => {
                    spin();
                    s = self.0.load(Acquire);
                    continue;
                }
                Step::Set(new, r) => (new, r),
            };
            match self.0.compare_exchange_weak(s, new, success, Acquire) {
                Ok(_) => return r,
                Err(cur) => s = cur,
            }
        }
    }

    /// `Waker::wake_by_ref`. True when the caller must enqueue the G; a
    /// reference was added for the runnable it enqueues.
    pub fn wake_by_ref(&self) -> bool {
        self.wake(REF_ONE)
    }

    /// `Waker::wake`, consuming the waker's reference. True: enqueue (the
    /// reference became the runnable's); false: nothing to do but the
    /// caller must drop its reference.
    pub fn wake_by_val(&self) -> bool {
        self.wake(0)
    }

    /// A wake; `new_ref` is what the runnable's reference adds to the
    /// count when the G is idle (a fresh one for `wake_by_ref`, none for
    /// `wake_by_val`, whose waker's reference becomes it).
    #[inline(always)]
    fn wake(&self, new_ref: usize) -> bool {
        self.transition(AcqRel, |s| {
            if s & (COMPLETE | CLOSED) != 0 {
                return Step::Done(false);
            }
            if s & SCHEDULED != 0 {
                return publish_scheduled(s);
            }
            // While running, the M that polls owns the runnable and will
            // requeue it when it sees SCHEDULED after the poll.
            let new = if s & RUNNING != 0 {
                s | SCHEDULED
            } else {
                (s | SCHEDULED) + new_ref
            };
            Step::Set(new, s & RUNNING == 0)
        })
    }

    /// The M is about to poll: SCHEDULED -> RUNNING. Err when the G was
    /// closed (runtime teardown) and must not be polled.
    // pub only for the loom models (loom_api); crate-private otherwise.
    #[cfg_attr(loom, allow(clippy::result_unit_err))]
    pub fn transition_to_running(&self) -> Result<usize, ()> {
        self.transition(AcqRel, |s| {
            debug_assert!(s & RUNNING == 0);
            if s & (CLOSED | COMPLETE) != 0 {
                return Step::Done(Err(()));
            }
            Step::Set((s & !(SCHEDULED | SAMPLED)) | RUNNING, Ok(s))
        })
    }

    /// Stamp a scheduled G for the latency histogram. Relaxed: the stamp
    /// time is published by the run queue put that follows, and a lost
    /// sample would only thin the histogram.
    pub fn mark_sampled(&self) {
        self.0.fetch_or(SAMPLED, Relaxed);
    }

    /// The poll returned Pending: clear RUNNING.
    pub fn transition_to_idle(&self) -> AfterPoll {
        self.transition(AcqRel, |s| {
            let after = if s & SCHEDULED != 0 && s & CLOSED == 0 {
                AfterPoll::Requeue
            } else {
                AfterPoll::Park
            };
            Step::Set(s & !RUNNING, after)
        })
    }

    /// The poll returned Pending after the G asked to run again (a yield
    /// through its own waker, which skipped the wake CAS): RUNNING ->
    /// SCHEDULED in one step. `Park` only if teardown closed it meanwhile.
    pub fn transition_to_yield(&self) -> AfterPoll {
        let requeued = self.transition(AcqRel, |s| {
            if s & CLOSED != 0 {
                Step::Done(false)
            } else {
                Step::Set((s & !RUNNING) | SCHEDULED, true)
            }
        });
        if requeued {
            return AfterPoll::Requeue;
        }
        // CLOSED is never cleared, so clearing RUNNING needs no CAS (and
        // the common path above keeps its single CAS).
        self.0.fetch_and(!RUNNING, AcqRel);
        AfterPoll::Park
    }

    /// The future finished and its output (if any) is stored: RUNNING ->
    /// COMPLETE. With no JoinHandle the output is nobody's, so CLOSED too.
    /// Returns the previous state.
    pub fn transition_to_complete(&self) -> usize {
        self.transition(AcqRel, |s| {
            let mut new = (s & !(RUNNING | SCHEDULED)) | COMPLETE;
            if s & HANDLE == 0 {
                new |= CLOSED;
            }
            Step::Set(new, s)
        })
    }

    /// Teardown: mark closed. True when the caller must drop the future
    /// (nobody polls it and it has not completed).
    pub fn close(&self) -> bool {
        self.transition(AcqRel, |s| {
            if s & (CLOSED | COMPLETE) != 0 {
                return Step::Done(false);
            }
            Step::Set(s | CLOSED, s & RUNNING == 0)
        })
    }

    /// JoinHandle poll: take the output if it is there. `Ok(true)`: the
    /// caller now owns the output; `Ok(false)`: not yet; `Err(())`: the G
    /// was closed without completing (teardown).
    // pub only for the loom models (loom_api); crate-private otherwise.
    #[cfg_attr(loom, allow(clippy::result_unit_err))]
    pub fn take_output(&self) -> Result<bool, ()> {
        self.transition(AcqRel, |s| {
            if s & COMPLETE == 0 {
                return Step::Done(if s & CLOSED != 0 { Err(()) } else { Ok(false) });
            }
            assert!(s & CLOSED == 0, "JoinHandle polled after completion");
            Step::Set(s | CLOSED, Ok(true))
        })
    }

    /// JoinHandle drop. Returns (drop the stored output, free the G).
    pub fn drop_handle(&self) -> (bool, bool) {
        self.transition(AcqRel, |s| {
            let take = s & COMPLETE != 0 && s & CLOSED == 0;
            let mut new = s & !HANDLE;
            if take {
                new |= CLOSED;
            }
            Step::Set(new, (take, refs(new) == 0))
        })
    }

    /// Locks the awaiter slot unless the G already completed (or was
    /// closed), in which case the caller should read the output instead.
    pub fn lock_awaiter_unless_done(&self) -> bool {
        self.transition(AcqRel, |s| {
            if s & (COMPLETE | CLOSED) != 0 {
                Step::Done(false)
            } else if s & LOCKED != 0 {
                Step::Spin
            } else {
                Step::Set(s | LOCKED, true)
            }
        })
    }

    /// Unlocks the awaiter slot, now holding a waker.
    pub fn unlock_awaiter_registered(&self) {
        // Release: the completing side reads the waker after Acquire.
        self.transition(Release, |s| Step::Set((s | AWAITER) & !LOCKED, ()))
    }

    /// Completion side: lock the awaiter slot if a waker is (or is being)
    /// registered. Waits out a registration in progress so no wake is lost.
    pub fn lock_awaiter_for_take(&self) -> bool {
        self.transition(AcqRel, |s| {
            if s & LOCKED != 0 {
                Step::Spin
            } else if s & AWAITER == 0 {
                Step::Done(false)
            } else {
                Step::Set((s | LOCKED) & !AWAITER, true)
            }
        })
    }

    pub fn unlock_awaiter(&self) {
        self.0.fetch_and(!LOCKED, Release);
    }
}
