//! P: a logical processor. Go's `p` struct: a local run queue with
//! `runnext`, the tick counters sysmon watches, and a status word.
//!
//! Ownership: the M holding a P is its only producer. Because sysmon may
//! take a P away from an M that sits in `gmp::syscall` or in one very long
//! poll (Go preempts instead; we cannot), the status word carries the owner
//! M's id, and every owner-side access made from inside a poll first CASes
//! `(me, POLLING) -> (me, LOCKED)`. Outside polls the status is
//! `(me, RUNNING)`, which sysmon never touches, so the scheduler loop pays
//! nothing. The proof of ownership is a type, `POwner`: the owner-only
//! fields and the run queue's owner handle are reached only through it.

use crate::g::{GPtr, Header};
use crate::runq::{Local, RunQ};
use crate::timer::PTimers;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ptr::NonNull;
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
    /// A spawn on this P whose goroutine id is at least this takes the
    /// spawn hook (`Sched::spawn_hook`): a latency sample, and the trace
    /// event while tracing, when `trace::start` sets it to 0 on every P.
    pub(crate) spawn_mark: AtomicU64,
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
            spawn_mark: AtomicU64::new(0),
            timers: PTimers::default(),
            owned: UnsafeCell::new(POwned {
                goid_next: 0,
                goid_end: 0,
                yieldq: std::collections::VecDeque::new(),
            }),
        }
    }

    /// Ownership proof for the scheduler loop, which holds its P in
    /// `(m, RUNNING)` (sysmon never takes it in that state) and so needs
    /// no CAS; also for an M that took the P off the idle list or won
    /// sysmon's retake CAS.
    ///
    /// # Safety
    /// The calling thread's M owns the P, and uses the proof only while it
    /// does (not after handing the P on).
    #[inline]
    pub(crate) unsafe fn assume_owned(&self) -> POwner<'_> {
        POwner::new(self)
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
        self.owner_step(m, PPOLLING, PRUNNING)
    }

    /// M `m`'s P goes from state `from` to `to` (leaving a poll, entering
    /// and leaving a syscall); false when it was not `(m, from)` any more
    /// (sysmon took it).
    #[inline]
    pub(crate) fn owner_step(&self, m: u64, from: u64, to: u64) -> bool {
        self.status
            .compare_exchange(status_word(m, from), status_word(m, to), AcqRel, Relaxed)
            .is_ok()
    }

    /// Owner access for M `m`, from the scheduler (`(m, RUNNING)`) or from
    /// inside a poll (`(m, POLLING)` becomes `(m, LOCKED)`, which sysmon's
    /// retake CAS cannot match, until the guard drops). None when the P is
    /// no longer this M's, or is in a syscall.
    #[inline]
    pub(crate) fn try_own(&self, m: u64) -> Option<PLocked<'_>> {
        let cur = self.status.load(Relaxed);
        if cur == status_word(m, PRUNNING) {
            return Some(PLocked {
                owner: POwner::new(self),
                restore: cur,
            });
        }
        if cur == status_word(m, PPOLLING)
            && self
                .status
                .compare_exchange(cur, status_word(m, PLOCKED), Acquire, Relaxed)
                .is_ok()
        {
            return Some(PLocked {
                owner: POwner::new(self),
                restore: cur,
            });
        }
        None
    }
}

/// Proof that the current thread's M owns a P: from `P::try_own` (inside
/// a `PLocked`) or `P::assume_owned`. Not `Send`: the proof is about this
/// thread. Owner-only operations take `&mut POwner`.
pub(crate) struct POwner<'a> {
    p: &'a P,
    _not_send: PhantomData<*mut ()>,
}

/// `P::try_own`'s guard: dropping it gives a P locked mid-poll back to
/// sysmon's view as `(m, POLLING)`.
pub(crate) struct PLocked<'a> {
    owner: POwner<'a>,
    restore: u64,
}

impl<'a> POwner<'a> {
    #[inline]
    fn new(p: &'a P) -> POwner<'a> {
        POwner {
            p,
            _not_send: PhantomData,
        }
    }

    /// The owner's handle on the run queue.
    #[inline]
    pub(crate) fn runq(&mut self) -> Local<'_, Header> {
        self.runq_and_owned().0
    }

    /// The owner-only fields.
    #[inline]
    pub(crate) fn owned(&mut self) -> &mut POwned {
        self.runq_and_owned().1
    }

    /// Both at once (moving the yielders to the run queue).
    #[inline]
    pub(crate) fn runq_and_owned(&mut self) -> (Local<'_, Header>, &mut POwned) {
        // SAFETY: the guard proves this thread's M owns the P: no other
        // thread produces into its queue or reaches `owned`, and the
        // `&mut` borrow of the guard keeps these the only references.
        unsafe { (self.p.runq.local(), &mut *self.p.owned.get()) }
    }
}

/// The owner's run queue operations in terms of Gs: every entry of a P's
/// queue holds one reference to its G, which a take hands to the caller.
impl Local<'_, Header> {
    /// Go's `runqget`, with `inheritTime`.
    #[inline]
    pub(crate) fn runqget(&mut self) -> Option<(GPtr, bool)> {
        let (g, inherit) = self.get()?;
        // SAFETY: entries are non-null `GPtr::into_raw`s, each taken once.
        Some((
            unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) },
            inherit,
        ))
    }

    /// Go's `runqsteal` from `victim`: a G to run and how many were taken.
    #[inline]
    pub(crate) fn runqsteal(
        &mut self,
        victim: &RunQ<Header>,
        steal_runnext: bool,
        victim_running: bool,
    ) -> Option<(GPtr, u32)> {
        let (g, n) = self.steal(victim, steal_runnext, victim_running)?;
        // SAFETY: as in `runqget`.
        Some((unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) }, n))
    }
}

impl std::ops::Deref for POwner<'_> {
    type Target = P;
    #[inline]
    fn deref(&self) -> &P {
        self.p
    }
}

impl<'a> std::ops::Deref for PLocked<'a> {
    type Target = POwner<'a>;
    #[inline]
    fn deref(&self) -> &POwner<'a> {
        &self.owner
    }
}

impl<'a> std::ops::DerefMut for PLocked<'a> {
    #[inline]
    fn deref_mut(&mut self) -> &mut POwner<'a> {
        &mut self.owner
    }
}

impl Drop for PLocked<'_> {
    #[inline]
    fn drop(&mut self) {
        if status_of(self.restore) == PPOLLING {
            // Release: a retake after this sees our writes to the P.
            self.owner.p.status.store(self.restore, Release);
        }
    }
}
