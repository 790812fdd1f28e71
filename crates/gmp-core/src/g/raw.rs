//! A G's allocation (async-task's layout): the header, the `JoinHandle`'s
//! slot for `spawn` goroutines, then the future; and the per-future-type
//! vtable that polls, drops and frees it.
//!
//! ```text
//! RawG<F, K> = [ Header (64 bytes) | K::Slot | F ]
//! ```
//! `go` goroutines carry no slot; `spawn` goroutines carry the JoinHandle's
//! output and awaiter. The slot sits before the future so a `JoinHandle<T>`
//! can find it knowing only `T`.

use super::header::{wake_awaiter, GVTable, Header, NewG, PollOutcome};
use super::join::JoinError;
use super::state as gstate;
use super::status::GStatus;
use super::waker::borrowed_waker;
use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

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
    /// # Safety
    /// Never called: a `go` G has no JoinHandle to read an output.
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
    fn alloc(header: Header, future: F) -> NewG {
        PreG::<F, K>::new(future).finish(header)
    }

    /// # Safety
    /// `p` is a live `RawG<F, K>` and the caller holds its runnable in
    /// RUNNING state (the `GVTable::poll` contract).
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

    /// # Safety
    /// `p` is a live `RawG<F, K>` whose future is still there; called once,
    /// with no poll in flight.
    unsafe fn drop_future(p: NonNull<Header>) {
        // SAFETY: see callers: exactly once, with no poll in flight.
        unsafe { ManuallyDrop::drop(&mut *p.cast::<Self>().as_ref().future.get()) }
    }

    /// # Safety
    /// `p` is a `RawG<F, K>` whose last reference (and handle) is gone.
    unsafe fn dealloc(p: NonNull<Header>) {
        // SAFETY: last reference; the future was dropped (completion or
        // close; it is ManuallyDrop so drop_in_place skips it) and the output
        // taken or dropped (MaybeUninit); `sched` holds the strong count
        // taken in `Header::new`.
        unsafe {
            let raw = p.cast::<Self>();
            let sched = raw.as_ref().prefix.header.sched;
            raw.as_ptr().drop_in_place();
            crate::g::gcache::free(raw.cast(), std::alloc::Layout::new::<Self>());
            drop(Arc::from_raw(sched));
        }
    }

    /// # Safety
    /// `p` is a live `RawG<F, K>`.
    unsafe fn awaiter(p: NonNull<Header>) -> *mut Option<Waker> {
        // SAFETY: `p` points to a live RawG<F, K>.
        K::awaiter(unsafe { &p.cast::<Self>().as_ref().prefix.slot })
    }

    /// # Safety
    /// `p` is a live `RawG<F, K>` whose output the caller owns; `dst` is a
    /// `MaybeUninit<Result<F::Output, JoinError>>`.
    unsafe fn read_output(p: NonNull<Header>, dst: *mut ()) {
        // SAFETY: `p` points to a live RawG<F, K>; the caller passes a
        // destination of K's output type and owns the output (CLOSED).
        unsafe { K::read_output(&p.cast::<Self>().as_ref().prefix.slot, dst) }
    }
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
        let p =
            crate::g::gcache::alloc(std::alloc::Layout::new::<RawG<F, K>>()).cast::<RawG<F, K>>();
        // SAFETY: fresh memory of this type's layout; the field is written
        // once, and nobody else sees the allocation yet.
        unsafe {
            std::ptr::addr_of_mut!((*p.as_ptr()).future)
                .write(UnsafeCell::new(ManuallyDrop::new(future)));
        }
        PreG { p }
    }

    /// Write the header (and the JoinHandle slot): a complete G, not yet
    /// shared.
    #[inline]
    pub(crate) fn finish(self, header: Header) -> NewG {
        let p = self.p;
        std::mem::forget(self);
        // SAFETY: the prefix is unwritten memory of our allocation; once it
        // is written the G is complete, and only this function has it.
        unsafe {
            std::ptr::addr_of_mut!((*p.as_ptr()).prefix).write(Prefix {
                header,
                slot: K::new_slot(),
            });
            NewG::new(p.cast())
        }
    }
}

impl<F: Future + Send + 'static, K: Kind<F::Output>> Drop for PreG<F, K> {
    /// Never became a G (no runtime, or shutting down): drop the future and
    /// return the memory.
    fn drop(&mut self) {
        // SAFETY: the future was written by `new` and nothing else was.
        unsafe {
            ManuallyDrop::drop(&mut *(*self.p.as_ptr()).future.get());
            crate::g::gcache::free(self.p.cast(), std::alloc::Layout::new::<RawG<F, K>>());
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
pub(crate) fn new_go<F>(header: Header, f: F) -> NewG
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
