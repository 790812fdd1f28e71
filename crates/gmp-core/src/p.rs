//! P: a logical processor. Go's `p` struct: a local run queue with
//! `runnext`, the tick counters sysmon watches, and a status word.
//!
//! Ownership: the M holding a P is its only producer. Because sysmon may
//! take a P away from an M that sits in `gmp::syscall` or in one very long
//! poll (Go preempts instead; we cannot), the status word carries the owner
//! M's id, and every owner-side access made from inside a poll first CASes
//! `(me, POLLING) -> (me, LOCKED)`. Outside polls the status is
//! `(me, RUNNING)`, which sysmon never touches, so the scheduler loop pays
//! nothing.

use crate::g::{GPtr, Header};
use crate::runq::RunQ;
use crate::timer::PTimers;
use std::cell::UnsafeCell;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};

/// Go's `_Pidle`.
pub(crate) const PIDLE: u64 = 0;
/// Go's `_Prunning`: held by an M that is in the scheduler, not in a poll.
pub(crate) const PRUNNING: u64 = 1;
/// Go's `_Psyscall`: the owner M is inside `gmp::syscall`.
pub(crate) const PSYSCALL: u64 = 2;
/// `_Prunning` while the owner M polls a goroutine (retakeable after 10ms).
pub(crate) const PPOLLING: u64 = 5;
/// The owner M, inside a poll, is touching the P (spawn, ready).
pub(crate) const PLOCKED: u64 = 6;
/// Go's `_Pdead`: retired by a GOMAXPROCS decrease (`procresize.rs`).
pub(crate) const PDEAD: u64 = 7;

#[inline]
pub(crate) fn status_word(m: u64, st: u64) -> u64 {
    (m << 8) | st
}

#[inline]
pub(crate) fn status_of(w: u64) -> u64 {
    w & 0xff
}

/// Owner-only fields: touched by the M that holds the P while the status
/// is (me, RUNNING) or (me, LOCKED).
pub(crate) struct POwned {
    /// Go's goidcache / goidcacheend.
    pub(crate) goid_next: u64,
    pub(crate) goid_end: u64,
    /// Goroutines that called `gosched` (or were preempted) on this P,
    /// bound for the global queue's tail; see `Sched::yieldput`.
    pub(crate) yieldq: std::collections::VecDeque<GPtr>,
}

/// Aligned to 128 bytes: the Ps sit side by side in `allp`, and every
/// schedule writes its P's status word and tick counters, so unpadded
/// neighbours made each M's schedule loop miss on the other M's writes
/// (yield_many at procs = 2 ran 2.5x slower than at procs = 1). 128, not
/// 64, because x86's adjacent-line prefetcher pairs lines.
#[repr(align(128))]
pub(crate) struct P {
    pub(crate) id: usize,
    pub(crate) status: AtomicU64,
    pub(crate) runq: RunQ<Header>,
    /// Incremented on every schedule that does not inherit a time slice.
    pub(crate) schedtick: AtomicU32,
    /// Incremented on every poll (sysmon detects a single long poll).
    pub(crate) polltick: AtomicU32,
    /// Incremented on every `gmp::syscall`.
    pub(crate) syscalltick: AtomicU32,
    /// Set by sysmon when the current time slice exceeded 10ms.
    pub(crate) preempt: AtomicBool,
    /// Goroutines created on this P (metrics).
    pub(crate) spawned: AtomicU64,
    /// Readies left before the next latency sample (counts down).
    pub(crate) readytick: AtomicU32,
    /// Go's `p.timers`.
    pub(crate) timers: PTimers,
    owned: UnsafeCell<POwned>,
}

// SAFETY: `owned` is only accessed under the ownership protocol above.
unsafe impl Sync for P {}

impl P {
    pub(crate) fn new(id: usize) -> P {
        P {
            id,
            status: AtomicU64::new(PIDLE),
            runq: RunQ::new(),
            schedtick: AtomicU32::new(0),
            polltick: AtomicU32::new(0),
            syscalltick: AtomicU32::new(0),
            preempt: AtomicBool::new(false),
            spawned: AtomicU64::new(0),
            // The first ready takes a sample and sets the countdown.
            readytick: AtomicU32::new(1),
            timers: PTimers::default(),
            owned: UnsafeCell::new(POwned {
                goid_next: 0,
                goid_end: 0,
                yieldq: std::collections::VecDeque::new(),
            }),
        }
    }

    /// # Safety
    /// The caller's M owns the P in RUNNING or LOCKED state.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn owned(&self) -> &mut POwned {
        // SAFETY: per the function contract, no one else touches it.
        unsafe { &mut *self.owned.get() }
    }

    /// The owner M enters a goroutine poll.
    #[inline]
    pub(crate) fn begin_poll(&self, m: u64) {
        self.polltick
            .store(self.polltick.load(Relaxed).wrapping_add(1), Relaxed);
        // Release: sysmon's CAS that retakes the P acquires our writes.
        self.status.store(status_word(m, PPOLLING), Release);
    }

    /// The owner M leaves a poll; false when sysmon took the P meanwhile.
    #[inline]
    pub(crate) fn end_poll(&self, m: u64) -> bool {
        self.status
            .compare_exchange(
                status_word(m, PPOLLING),
                status_word(m, PRUNNING),
                AcqRel,
                Relaxed,
            )
            .is_ok()
    }

    /// Owner access for M `m`, from the scheduler (`(m, RUNNING)`) or from
    /// inside a poll (`(m, POLLING)` becomes `(m, LOCKED)`, which sysmon's
    /// retake CAS cannot match, until the guard drops). None when the P is
    /// no longer this M's, or is in a syscall.
    #[inline]
    pub(crate) fn try_own(&self, m: u64) -> Option<POwner<'_>> {
        let cur = self.status.load(Relaxed);
        if cur == status_word(m, PRUNNING) {
            return Some(POwner {
                p: self,
                restore: cur,
            });
        }
        if cur == status_word(m, PPOLLING)
            && self
                .status
                .compare_exchange(cur, status_word(m, PLOCKED), Acquire, Relaxed)
                .is_ok()
        {
            return Some(POwner {
                p: self,
                restore: cur,
            });
        }
        None
    }
}

/// Proof that the current M owns a P (`P::try_own`); dropping it gives a
/// P locked mid-poll back to sysmon's view as `(m, POLLING)`.
pub(crate) struct POwner<'a> {
    p: &'a P,
    restore: u64,
}

impl std::ops::Deref for POwner<'_> {
    type Target = P;
    #[inline]
    fn deref(&self) -> &P {
        self.p
    }
}

impl Drop for POwner<'_> {
    #[inline]
    fn drop(&mut self) {
        if status_of(self.restore) == PPOLLING {
            // Release: a retake after this sees our writes to the P.
            self.p.status.store(self.restore, Release);
        }
    }
}
