//! G: one heap allocation per goroutine holding its header and its future
//! (async-task's layout), the waker that readies it, and `JoinHandle`.
//!
//! ```text
//! RawG<F, K> = [ Header (64 bytes) | K::Slot | F ]
//! ```
//! `go` goroutines carry no slot; `spawn` goroutines carry the JoinHandle's
//! output and awaiter. The slot sits before the future so a `JoinHandle<T>`
//! can find it knowing only `T`.

use crate::gstate::{self, AfterPoll, State};
use crate::join::JoinError;
use crate::sched::Sched;
use crate::status::{GStatus, WaitReason};
use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU8};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

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
        spawner: crate::ancestry::Spawner,
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
        let flag = if external { crate::status::EXTERNAL } else { 0 };
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

fn wake_awaiter(h: &Header) {
    if h.state.lock_awaiter_for_take() {
        // SAFETY: only JoinKind Gs register awaiters (HANDLE); LOCKED gives
        // exclusive access to the slot.
        let w = unsafe { (*awaiter_slot(NonNull::from(h))).take() };
        h.state.unlock_awaiter();
        if let Some(w) = w {
            w.wake();
        }
    }
}

// ---- the waker ----

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// True when `w` is G `g`'s own waker (not some combinator's).
#[inline]
pub(crate) fn is_own_waker(w: &Waker, g: NonNull<Header>) -> bool {
    w.data() == g.as_ptr() as *const () && std::ptr::eq(w.vtable(), &WAKER_VTABLE)
}

/// A waker borrowing the runnable's reference (valid during a poll).
pub(crate) fn borrowed_waker(p: NonNull<Header>) -> ManuallyDrop<Waker> {
    // SAFETY: the vtable functions uphold RawWaker's contract; the result is
    // ManuallyDrop so no reference is released for a borrowed waker.
    ManuallyDrop::new(unsafe {
        Waker::from_raw(RawWaker::new(p.as_ptr() as *const (), &WAKER_VTABLE))
    })
}

unsafe fn waker_clone(p: *const ()) -> RawWaker {
    // SAFETY: a waker exists, so the G is alive.
    let h = unsafe { &*(p as *const Header) };
    h.state.ref_inc();
    RawWaker::new(p, &WAKER_VTABLE)
}

unsafe fn waker_wake(p: *const ()) {
    let ptr = NonNull::new(p as *mut Header).expect("null G");
    // SAFETY: the waker owned one reference; it is moved into the GPtr.
    let g = unsafe { GPtr::from_raw(ptr) };
    if g.header().state.wake_by_val() {
        crate::sched::ready(g);
    }
}

unsafe fn waker_wake_by_ref(p: *const ()) {
    // SAFETY: a waker exists, so the G is alive.
    let h = unsafe { &*(p as *const Header) };
    if h.state.wake_by_ref() {
        // SAFETY: wake_by_ref took a reference for the runnable.
        crate::sched::ready(unsafe { GPtr::from_raw(NonNull::from(h)) });
    }
}

unsafe fn waker_drop(p: *const ()) {
    // SAFETY: the waker owned one reference.
    unsafe { drop_ref(NonNull::new_unchecked(p as *mut Header)) }
}

// ---- RawG: header + slot + future ----

/// The completion behaviour of a G: `go` (no handle) or `spawn` (handle).
pub(crate) trait Kind<T>: 'static {
    type Slot;
    fn new_slot() -> Self::Slot;
    /// Store or dispose of the result; the future is already dropped.
    fn complete(h: &Header, slot: &Self::Slot, res: std::thread::Result<T>);
    fn awaiter(slot: &Self::Slot) -> *mut Option<Waker>;
    /// # Safety
    /// `dst` points to a `MaybeUninit<Result<T, JoinError>>`; the output is
    /// present and owned by the caller.
    unsafe fn read_output(slot: &Self::Slot, dst: *mut ());
}

/// `go`: the result is nobody's; a panic goes to the unhandled-panic policy.
pub(crate) struct GoKind;

impl Kind<()> for GoKind {
    type Slot = ();
    fn new_slot() {}
    fn complete(h: &Header, _: &(), res: std::thread::Result<()>) {
        h.state.transition_to_complete();
        h.set_status(GStatus::Dead);
        if let Err(p) = res {
            h.sched().unhandled_panic(h, p);
        }
    }
    fn awaiter(_: &()) -> *mut Option<Waker> {
        std::ptr::null_mut()
    }
    unsafe fn read_output(_: &(), _: *mut ()) {
        unreachable!("go goroutines have no output")
    }
}

/// `spawn`: the result waits in the slot for the JoinHandle.
pub(crate) struct JoinKind<T>(PhantomData<fn() -> T>);

pub(crate) struct JoinSlot<T> {
    awaiter: UnsafeCell<Option<Waker>>,
    out: UnsafeCell<MaybeUninit<Result<T, JoinError>>>,
}

impl<T: Send + 'static> Kind<T> for JoinKind<T> {
    type Slot = JoinSlot<T>;
    fn new_slot() -> JoinSlot<T> {
        JoinSlot {
            out: UnsafeCell::new(MaybeUninit::uninit()),
            awaiter: UnsafeCell::new(None),
        }
    }
    fn complete(h: &Header, slot: &JoinSlot<T>, res: std::thread::Result<T>) {
        let res = res.map_err(|p| JoinError {
            goid: h.goid,
            panic: Some(std::sync::Mutex::new(p)),
        });
        // SAFETY: we are the poller (RUNNING); nobody reads `out` before
        // COMPLETE is published below.
        unsafe { (*slot.out.get()).write(res) };
        let prev = h.state.transition_to_complete();
        h.set_status(GStatus::Dead);
        if prev & (gstate::HANDLE | gstate::CLOSED) != gstate::HANDLE {
            // No handle to take it (or closed by teardown): drop it now.
            // SAFETY: written just above; CLOSED keeps everyone else off.
            unsafe { (*slot.out.get()).assume_init_drop() };
        } else {
            wake_awaiter(h);
        }
    }
    fn awaiter(slot: &JoinSlot<T>) -> *mut Option<Waker> {
        slot.awaiter.get()
    }
    unsafe fn read_output(slot: &JoinSlot<T>, dst: *mut ()) {
        // SAFETY: per the trait contract.
        unsafe {
            let v = (*slot.out.get()).assume_init_read();
            (*(dst as *mut MaybeUninit<Result<T, JoinError>>)).write(v);
        }
    }
}

#[repr(C)]
struct Prefix<S> {
    header: Header,
    slot: S,
}

#[repr(C)]
struct RawG<F, K: Kind<F::Output>>
where
    F: Future,
{
    prefix: Prefix<K::Slot>,
    future: UnsafeCell<ManuallyDrop<F>>,
}

impl<F, K> RawG<F, K>
where
    F: Future + Send + 'static,
    K: Kind<F::Output>,
{
    const VTABLE: GVTable = GVTable {
        poll: Self::poll,
        drop_future: Self::drop_future,
        dealloc: Self::dealloc,
        awaiter: Self::awaiter,
        read_output: Self::read_output,
    };

    /// One allocation per goroutine, recycled through `gcache` (Go's gFree).
    fn alloc(header: Header, future: F) -> NonNull<Header> {
        PreG::<F, K>::new(future).finish(header)
    }

    unsafe fn poll(p: NonNull<Header>) -> PollOutcome {
        // SAFETY: `p` points to a RawG<F, K> (the vtable was built for it);
        // the caller holds the runnable in RUNNING state.
        let raw = unsafe { p.cast::<Self>().as_ref() };
        let waker = borrowed_waker(p);
        let mut cx = Context::from_waker(&waker);
        // SAFETY: the future is pinned in its heap allocation and only the
        // RUNNING poller touches it.
        let fut = unsafe { Pin::new_unchecked(&mut **raw.future.get()) };
        let res = catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx)));
        let res = match res {
            Ok(Poll::Pending) => return PollOutcome::Pending,
            Ok(Poll::Ready(v)) => Ok(v),
            Err(p) => Err(p),
        };
        // Drop the future inside the poll window: its drop may wake or
        // spawn goroutines and that needs the P.
        // SAFETY: completed, so it is never polled again.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe { Self::drop_future(p) }));
        let res = match (res, dropped) {
            (Ok(_), Err(p)) => Err(p),
            (r, _) => r,
        };
        // Leave allgs before the JoinHandle hears of the completion, so
        // that whoever it wakes no longer counts this goroutine.
        raw.prefix.header.sched().allgs.remove(&raw.prefix.header);
        K::complete(&raw.prefix.header, &raw.prefix.slot, res);
        PollOutcome::Done
    }

    unsafe fn drop_future(p: NonNull<Header>) {
        // SAFETY: see callers: exactly once, with no poll in flight.
        unsafe { ManuallyDrop::drop(&mut *p.cast::<Self>().as_ref().future.get()) }
    }

    unsafe fn dealloc(p: NonNull<Header>) {
        // SAFETY: last reference; the future was dropped (completion or
        // close; it is ManuallyDrop so drop_in_place skips it) and the output
        // taken or dropped (MaybeUninit); `sched` holds the strong count
        // taken in `Header::new`.
        unsafe {
            let raw = p.cast::<Self>();
            let sched = raw.as_ref().prefix.header.sched;
            raw.as_ptr().drop_in_place();
            crate::gcache::free(raw.cast(), std::alloc::Layout::new::<Self>());
            drop(Arc::from_raw(sched));
        }
    }

    unsafe fn awaiter(p: NonNull<Header>) -> *mut Option<Waker> {
        // SAFETY: `p` points to a live RawG<F, K>.
        K::awaiter(unsafe { &p.cast::<Self>().as_ref().prefix.slot })
    }

    unsafe fn read_output(p: NonNull<Header>, dst: *mut ()) {
        // SAFETY: `p` points to a live RawG<F, K>; the caller passes a
        // destination of K's output type and owns the output (CLOSED).
        unsafe { K::read_output(&p.cast::<Self>().as_ref().prefix.slot, dst) }
    }
}

fn awaiter_slot(p: NonNull<Header>) -> *mut Option<Waker> {
    // SAFETY: the vtable matches the allocation.
    unsafe { (p.as_ref().vtable.awaiter)(p) }
}

/// A G's allocation with its future in place and its header not yet
/// written. `go`/`spawn` copy the future into the heap first, once, before
/// the scheduler hands out the goroutine id: every further copy of a
/// just-built future (into closures, into a struct literal, into the box)
/// was a store-forwarding stall on the spawn path.
pub(crate) struct PreG<F: Future + Send + 'static, K: Kind<F::Output>> {
    p: NonNull<RawG<F, K>>,
}

impl<F: Future + Send + 'static, K: Kind<F::Output>> PreG<F, K> {
    #[inline]
    pub(crate) fn new(future: F) -> Self {
        let p = crate::gcache::alloc(std::alloc::Layout::new::<RawG<F, K>>()).cast::<RawG<F, K>>();
        // SAFETY: fresh memory of this type's layout; the field is written
        // once, and nobody else sees the allocation yet.
        unsafe {
            std::ptr::addr_of_mut!((*p.as_ptr()).future)
                .write(UnsafeCell::new(ManuallyDrop::new(future)));
        }
        PreG { p }
    }

    /// Write the header (and the JoinHandle slot): a complete G.
    #[inline]
    pub(crate) fn finish(self, header: Header) -> NonNull<Header> {
        let p = self.p;
        std::mem::forget(self);
        // SAFETY: the prefix is unwritten memory of our allocation.
        unsafe {
            std::ptr::addr_of_mut!((*p.as_ptr()).prefix).write(Prefix {
                header,
                slot: K::new_slot(),
            });
        }
        p.cast()
    }
}

impl<F: Future + Send + 'static, K: Kind<F::Output>> Drop for PreG<F, K> {
    /// Never became a G (no runtime, or shutting down): drop the future and
    /// return the memory.
    fn drop(&mut self) {
        // SAFETY: the future was written by `new` and nothing else was.
        unsafe {
            ManuallyDrop::drop(&mut *(*self.p.as_ptr()).future.get());
            crate::gcache::free(self.p.cast(), std::alloc::Layout::new::<RawG<F, K>>());
        }
    }
}

/// Start building a `go` goroutine.
pub(crate) fn pre_go<F>(f: F) -> PreG<F, GoKind>
where
    F: Future<Output = ()> + Send + 'static,
{
    PreG::new(f)
}

/// Start building a `spawn` goroutine.
pub(crate) fn pre_spawn<F>(f: F) -> PreG<F, JoinKind<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    PreG::new(f)
}

/// Allocate a `go` goroutine.
pub(crate) fn new_go<F>(header: Header, f: F) -> NonNull<Header>
where
    F: Future<Output = ()> + Send + 'static,
{
    RawG::<F, GoKind>::alloc(header, f)
}

pub(crate) fn go_vtable<F>() -> &'static GVTable
where
    F: Future<Output = ()> + Send + 'static,
{
    &RawG::<F, GoKind>::VTABLE
}

pub(crate) fn spawn_vtable<F>() -> &'static GVTable
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    &RawG::<F, JoinKind<F::Output>>::VTABLE
}
