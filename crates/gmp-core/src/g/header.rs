//! The goroutine header (what the scheduler, the dump and wakers read, in
//! 64 bytes) and `GPtr`, the owned reference to a G that run queues hold.

use super::state::{self as gstate, AfterPoll, State};
use super::status::{GStatus, WaitReason};
use crate::sched::Sched;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU8};
use std::sync::Arc;
use std::task::Waker;

/// The goroutine header: everything the scheduler, the dump and wakers
/// need, in 64 bytes.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) vtable: &'static GVTable,
    /// A strong `Arc<Sched>` reference (from `Arc::into_raw`): wakers may
    /// outlive the runtime's `block_on`, and a wake must reach a live Sched.
    pub(crate) sched: *const Sched,
    pub(crate) goid: u64,
    /// Parent goroutine id; 0 for none.
    pub(crate) parent: u64,
    pub(crate) created_at: &'static Location<'static>,
    /// Coarse runtime clock (ms) when the G last parked.
    pub(crate) since: AtomicU32,
    /// Slot in the allgs registry shard; written before the G is shared.
    pub(crate) reg_idx: u32,
    pub(crate) gstatus: AtomicU8,
    pub(crate) wait_reason: AtomicU8,
    pub(crate) reg_shard: u16,
    /// The creation chain for the profile: the ancestors' `ancestry::Chain`,
    /// or the goroutine's own once it has spawned (see `ancestry.rs`).
    pub(crate) chain: AtomicU32,
}

/// Per-future-type operations on a G.
pub(crate) struct GVTable {
    /// Poll the future once; called with the G in RUNNING state.
    pub(crate) poll: unsafe fn(NonNull<Header>) -> PollOutcome,
    /// Drop the future in place (completion, teardown).
    pub(crate) drop_future: unsafe fn(NonNull<Header>),
    /// Free the allocation.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// The JoinHandle's waker slot (null for `go` goroutines).
    pub(crate) awaiter: unsafe fn(NonNull<Header>) -> *mut Option<Waker>,
    /// Move the output into `*mut MaybeUninit<Result<T, JoinError>>`.
    pub(crate) read_output: unsafe fn(NonNull<Header>, *mut ()),
}

pub(crate) enum PollOutcome {
    Pending,
    /// Completed (output stored or dropped, future dropped).
    Done,
}

impl Header {
    #[inline]
    pub(crate) fn sched(&self) -> &Sched {
        // SAFETY: `sched` holds a strong Arc reference released only in
        // `dealloc`, so it outlives every borrow of the header.
        unsafe { &*self.sched }
    }

    pub(crate) fn status(&self) -> GStatus {
        GStatus::from_u8(self.gstatus.load(Relaxed))
    }

    pub(crate) fn set_status(&self, s: GStatus) {
        self.gstatus.store(s as u8, Relaxed);
    }

    pub(crate) fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.wait_reason.load(Relaxed))
    }

    pub(crate) fn new(
        sched: &Arc<Sched>,
        vtable: &'static GVTable,
        goid: u64,
        spawner: crate::g::ancestry::Spawner,
        created_at: &'static Location<'static>,
        handle: bool,
        main: bool,
    ) -> Header {
        Header {
            state: State::new(handle, main),
            vtable,
            sched: Arc::into_raw(Arc::clone(sched)),
            goid,
            parent: spawner.goid,
            created_at,
            since: AtomicU32::new(0),
            reg_idx: u32::MAX,
            gstatus: AtomicU8::new(GStatus::Runnable as u8),
            wait_reason: AtomicU8::new(0),
            reg_shard: 0,
            chain: AtomicU32::new(spawner.chain.raw()),
        }
    }
}

/// A G just built and not yet shared with anyone (`PreG::finish`): it owns
/// the two references its state word starts with (the registry's and the
/// runnable's), which `AllGs::insert` splits.
pub(crate) struct NewG(NonNull<Header>);

impl NewG {
    /// # Safety
    /// `p` is a fully written G that nobody else can reach, created with
    /// the two references of `State::new`.
    #[inline]
    pub(super) unsafe fn new(p: NonNull<Header>) -> NewG {
        NewG(p)
    }

    #[inline]
    pub(crate) fn as_ptr(&self) -> NonNull<Header> {
        self.0
    }

    /// Record the G's registry slot and split its two references.
    #[inline]
    pub(super) fn register(self, shard: u16, idx: u32) -> (GPtr, GPtr) {
        let p = self.0;
        // SAFETY: nobody else can reach the G yet, so plain writes are
        // fine, and `self` owns the two references handed out.
        unsafe {
            (*p.as_ptr()).reg_idx = idx;
            (*p.as_ptr()).reg_shard = shard;
            (GPtr::from_raw(p), GPtr::from_raw(p))
        }
    }
}

/// An owned reference to a G: the runnable in a run queue, or a waker's
/// reference in transit to one.
pub(crate) struct GPtr(NonNull<Header>);

// SAFETY: a G's future is `Send` (enforced by `go`/`spawn`), its header is
// atomics plus immutable data; the main G is only ever polled by M0.
unsafe impl Send for GPtr {}

impl GPtr {
    /// # Safety
    /// `p` must point to a live G and the caller must own one reference.
    #[inline]
    pub(crate) unsafe fn from_raw(p: NonNull<Header>) -> GPtr {
        GPtr(p)
    }

    #[inline]
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    #[inline]
    pub(crate) fn as_ptr(&self) -> NonNull<Header> {
        self.0
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we own a reference, so the allocation is live.
        unsafe { self.0.as_ref() }
    }

    /// Take another reference.
    pub(crate) fn clone_ref(&self) -> GPtr {
        self.header().state.ref_inc();
        GPtr(self.0)
    }

    /// Poll the G once (it must be in RUNNING state).
    pub(crate) fn poll(&self) -> PollOutcome {
        // SAFETY: we own the runnable reference and the state word says
        // RUNNING, so no one else polls or drops the future now.
        unsafe { (self.header().vtable.poll)(self.0) }
    }

    /// After a Pending poll: record Waiting and clear RUNNING.
    pub(crate) fn park_after_poll(
        &self,
        reason: WaitReason,
        external: bool,
        now_ms: u32,
    ) -> AfterPoll {
        let h = self.header();
        let flag = if external {
            crate::g::status::EXTERNAL
        } else {
            0
        };
        h.wait_reason.store(reason as u8 | flag, Relaxed);
        h.since.store(now_ms, Relaxed);
        h.set_status(GStatus::Waiting);
        let r = h.state.transition_to_idle();
        match r {
            AfterPoll::Requeue => h.set_status(GStatus::Runnable),
            AfterPoll::Park => {
                let s = h.state.load();
                if s & gstate::CLOSED != 0 && s & gstate::RUNNING == 0 && s & gstate::COMPLETE == 0
                {
                    // Closed by teardown while we polled: nobody else will
                    // drop the future, and nobody can poll it any more.
                    self.drop_future_closed();
                }
            }
        }
        r
    }

    /// After a Pending poll in which the G yielded through its own waker
    /// (gosched, budget, preemption): back to runnable in one CAS.
    pub(crate) fn yield_after_poll(&self) -> AfterPoll {
        let h = self.header();
        h.set_status(GStatus::Runnable);
        let r = h.state.transition_to_yield();
        if r == AfterPoll::Park {
            // Closed by teardown meanwhile: nobody else drops the future.
            self.drop_future_closed();
        }
        r
    }

    /// Teardown: close the G and drop its future if nobody is polling it.
    pub(crate) fn close(&self) {
        if self.header().state.close() {
            self.drop_future_closed();
        }
    }

    fn drop_future_closed(&self) {
        let h = self.header();
        // A drop may panic; teardown must go on regardless.
        // SAFETY: CLOSED is set and RUNNING is clear, so no poll is in
        // flight and none will start; `close` returns true exactly once.
        let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
            (h.vtable.drop_future)(self.0)
        }));
        h.set_status(GStatus::Dead);
        wake_awaiter(h);
    }
}

impl Drop for GPtr {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { drop_ref(self.0) }
    }
}

/// Drop one reference, freeing the G if it was the last.
///
/// # Safety
/// The caller owns a reference to the live G at `p`.
pub(crate) unsafe fn drop_ref(p: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the header alive for this read.
    let h = unsafe { p.as_ref() };
    if h.state.ref_dec() {
        // SAFETY: last reference and no JoinHandle: nobody can reach the G.
        unsafe { (h.vtable.dealloc)(p) }
    }
}

pub(super) fn wake_awaiter(h: &Header) {
    let w = h.awaiter_for_take().and_then(|mut slot| slot.take());
    if let Some(w) = w {
        w.wake();
    }
}

/// The JoinHandle's awaiter slot, locked (LOCKED in the state word) until
/// the guard drops.
pub(crate) struct AwaiterSlot<'a> {
    h: &'a Header,
    slot: &'a mut Option<Waker>,
    /// Unlock as the handle does (a waker is now registered) rather than as
    /// the completing side (the waker was taken).
    registering: bool,
}

impl Header {
    /// Completion side: the awaiter slot, if a waker is (or is being)
    /// registered there.
    fn awaiter_for_take(&self) -> Option<AwaiterSlot<'_>> {
        self.state
            .lock_awaiter_for_take()
            .then(|| self.awaiter_locked(false))
    }

    /// JoinHandle side: the awaiter slot, unless the G has completed (or
    /// was closed) and the output should be read instead.
    pub(crate) fn awaiter_for_register(&self) -> Option<AwaiterSlot<'_>> {
        self.state
            .lock_awaiter_unless_done()
            .then(|| self.awaiter_locked(true))
    }

    fn awaiter_locked(&self, registering: bool) -> AwaiterSlot<'_> {
        // SAFETY: the caller set LOCKED, which gives this guard exclusive
        // access to the slot until it drops; the slot exists because only
        // `spawn` Gs (JoinKind, whose vtable's `awaiter` finds it) have a
        // handle to register a waker, and other Gs' `awaiter` is never
        // reached (no AWAITER, no handle).
        let slot = unsafe { &mut *(self.vtable.awaiter)(NonNull::from(self)) };
        AwaiterSlot {
            h: self,
            slot,
            registering,
        }
    }
}

impl std::ops::Deref for AwaiterSlot<'_> {
    type Target = Option<Waker>;
    fn deref(&self) -> &Option<Waker> {
        self.slot
    }
}

impl std::ops::DerefMut for AwaiterSlot<'_> {
    fn deref_mut(&mut self) -> &mut Option<Waker> {
        self.slot
    }
}

impl Drop for AwaiterSlot<'_> {
    fn drop(&mut self) {
        if self.registering {
            self.h.state.unlock_awaiter_registered();
        } else {
            self.h.state.unlock_awaiter();
        }
    }
}
