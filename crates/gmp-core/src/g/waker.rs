//! The goroutine's waker: one vtable whose data pointer is the G itself, so
//! waking costs no allocation and `ready` can recognise a G's own waker.

use super::header::{drop_ref, GPtr, Header};
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

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

// The four functions below are `RawWakerVTable`'s, whose contract is their
// safety condition: `p` is the data pointer of a live waker made here, so
// a live G of which that waker owns one reference (a borrowed waker's is
// the runnable's, held for the whole poll).

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
    // SAFETY: a waker exists, so the G is alive; the GPtr stands for the
    // reference `wake_by_ref` adds for the runnable, and is forgotten
    // (not dropped) when it adds none.
    let g = ManuallyDrop::new(unsafe { GPtr::from_raw(NonNull::new_unchecked(p as *mut Header)) });
    if g.header().state.wake_by_ref() {
        crate::sched::ready(ManuallyDrop::into_inner(g));
    }
}

unsafe fn waker_drop(p: *const ()) {
    // SAFETY: the waker owned one reference.
    unsafe { drop_ref(NonNull::new_unchecked(p as *mut Header)) }
}
