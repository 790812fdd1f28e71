//! Go's sudog: one waiting goroutine on one channel (`Sudog`, living
//! inside the pinned future or select case that waits), the select's
//! shared `SelectDone`, and `Waiter`, the owner's handle on its sudog. The
//! intrusive FIFO the channel queues them on (`WaitQ`, Go's waitq) is in
//! `sudog/waitq.rs`.
//!
//! Who may touch a sudog is in the types: a `WaitQ` is only reachable
//! through the channel's lock guard, and the sudog it hands out
//! (`Dequeued`) is the one a waker may complete; the owner reaches the
//! fields only through `Waiter`'s methods, which check that the sudog is
//! not queued (or take the lock guard as proof).

use crate::error::RecvError;
use crate::hchan::Locked;
use crate::sync::{AtomicBool, AtomicU8, AtomicUsize};
use std::cell::UnsafeCell;
use std::marker::PhantomPinned;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::task::Waker;

mod waitq;
pub(crate) use waitq::WaitQ;

/// A sudog's state, published with a Release store as the very last write
/// a waker makes to it (after which the owner may free it).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Status {
    /// Queued, not completed yet.
    Waiting = 0,
    /// Go's `success == true`: the value was handed over.
    Ok = 1,
    /// Go's `success == false`: woken by `closechan`.
    Closed = 2,
}

impl Status {
    #[inline]
    fn from_u8(s: u8) -> Status {
        match s {
            0 => Status::Waiting,
            1 => Status::Ok,
            _ => Status::Closed,
        }
    }
}

/// Go's `g.selectDone` plus `gp.param`: shared by all sudogs of one parked
/// select. A waker must win `done` (false -> true) before it may complete
/// any of the select's sudogs, so exactly one case commits; it then stores
/// the winning case index + 1 in `fired` (the select's wake-up signal).
///
/// `waker` is the parked select's waker, shared by all its sudogs (which
/// hold none of their own unless the select was polled again with a
/// different waker): one clone per park instead of one per case. The
/// select writes it once, under all its channels' locks and before its
/// first sudog is queued; afterwards it is only read (cloned), by the
/// waker that wins and by `Chan::become_foreign`, each under the lock of
/// a channel the sudog is queued on, so reads never meet the write.
#[doc(hidden)]
pub struct SelectDone {
    pub(crate) done: AtomicBool,
    pub(crate) fired: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

impl std::fmt::Debug for SelectDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectDone")
            .field("fired", &self.fired.load(Relaxed))
            .finish()
    }
}

impl SelectDone {
    pub(crate) fn new() -> SelectDone {
        SelectDone {
            done: AtomicBool::new(false),
            fired: AtomicUsize::new(0),
            waker: UnsafeCell::new(None),
        }
    }

    /// Set the select's waker, before any of its sudogs is queued.
    ///
    /// # Safety
    /// No sudog of this select is queued (no one else can read it).
    pub(crate) unsafe fn set_waker(&self, w: &Waker) {
        // SAFETY: exclusive: the caller's contract.
        unsafe { *self.waker.get() = Some(w.clone()) };
    }

    /// The select's waker.
    ///
    /// # Safety
    /// After `set_waker`; the caller is the select, or holds the lock of a
    /// channel one of its sudogs is queued on (see the type's docs).
    pub(crate) unsafe fn waker(&self) -> Option<&Waker> {
        // SAFETY: only reads happen after `set_waker`.
        unsafe { (*self.waker.get()).as_ref() }
    }
}

/// The fields of a sudog that are guarded by the lock of the channel it is
/// queued on (or owned outright by its `Waiter` while it is not queued).
struct SudogInner<T> {
    /// Null when not linked (a linked sudog's `next` is never null: the
    /// queue is circular).
    next: *const Sudog<T>,
    prev: *const Sudog<T>,
    waker: Option<Waker>,
    /// The value to send (send sudog), or the slot a sender fills (recv
    /// sudog).
    elem: Option<T>,
    /// Null unless the sudog belongs to a select (Go's `isSelect`).
    sel: *const SelectDone,
}

/// Go's sudog: one goroutine waiting on one channel. It lives inside the
/// pinned future or select case that waits (no allocation per blocking
/// op) and is linked into the channel's `recvq`/`sendq` intrusive
/// doubly-linked list. Its owner knows it as a `Waiter`.
///
/// The guarded part is written on first use (`Waiter::prepare`, when the op
/// parks), not when the future or select case holding it is built:
/// `.await` moves a future right after building it, and copying a freshly
/// stored sudog stalls on store forwarding, a large share of a
/// channel-heavy goroutine's time (measured in docs/benchmarks.md,
/// "Channels"). Most operations never park and never write it.
///
/// Size: the guarded part, the select case index, the atomic `status` and
/// the owner's two flags share one struct (the small fields fill what
/// would otherwise be the guarded part's tail padding), so that for a
/// word-sized `T` a sudog is 64 bytes and a goroutine parked on a receive
/// stays small.
pub(crate) struct Sudog<T> {
    inner: UnsafeCell<MaybeUninit<SudogInner<T>>>,
    /// The select case this sudog stands for, guarded like `inner`;
    /// written when a select queues it (`Waiter::prepare`), read only for
    /// select sudogs (`Dequeued::finish`).
    case: UnsafeCell<MaybeUninit<u32>>,
    /// A `Status`; see `Dequeued::finish`.
    status: AtomicU8,
    /// Owner-only: queued on a channel (set by `Locked::enqueue`, cleared
    /// by `Waiter::take_back` and `Waiter::unlinked`).
    queued: bool,
    /// Owner-only: `inner` has been written.
    init: bool,
    _pin: PhantomPinned,
}

/// The owner's handle on its sudog: the future or select case that waits
/// holds one, and only it calls these methods (the channel's side reaches
/// the sudog through `WaitQ` and `Dequeued`).
pub(crate) type Waiter<T> = Sudog<T>;

// SAFETY: a sudog is only reached from other threads through the channel
// lock discipline (inner fields under the lock, `status` atomic; the
// owner-only flags never), and it carries a `T` across threads, so
// `T: Send` is what it needs.
unsafe impl<T: Send> Send for Sudog<T> {}
// SAFETY: as above; shared access never hands out `&T` without the lock.
unsafe impl<T: Send> Sync for Sudog<T> {}

/// A completed sudog's outcome, taken back by its owner.
pub(crate) struct Completed<T> {
    pub(crate) status: Status,
    /// A receive's value, or a send's value it got back (closed).
    pub(crate) elem: Option<T>,
}

impl<T> Completed<T> {
    /// A receive's result: the value, or closed.
    #[inline]
    pub(crate) fn into_recv(self) -> Result<T, RecvError> {
        match self {
            Completed {
                status: Status::Ok,
                elem: Some(v),
            } => Ok(v),
            _ => Err(RecvError),
        }
    }

    /// A send's result: delivered, or closed with the value given back.
    #[inline]
    pub(crate) fn into_send(self) -> Result<(), T> {
        match self.status {
            Status::Closed => Err(self.elem.expect("closed send sudog lost its value")),
            _ => Ok(()),
        }
    }
}

/// How a sudog is to be queued (`Waiter::prepare`).
pub(crate) struct Park<'a, T> {
    /// A send's value (`None` for a receive).
    pub(crate) elem: Option<T>,
    /// The select it belongs to, with its case index.
    pub(crate) sel: Option<(*const SelectDone, u32)>,
    /// Its own waker (`None`: a select sudog uses the select's shared one).
    pub(crate) waker: Option<&'a Waker>,
}

impl<T> Sudog<T> {
    #[inline]
    pub(crate) fn new() -> Sudog<T> {
        Sudog {
            inner: UnsafeCell::new(MaybeUninit::uninit()),
            case: UnsafeCell::new(MaybeUninit::uninit()),
            status: AtomicU8::new(Status::Waiting as u8),
            queued: false,
            init: false,
            _pin: PhantomPinned,
        }
    }

    /// Queued on a channel, completed or not (owner's view).
    #[inline]
    pub(crate) fn queued(&self) -> bool {
        self.queued
    }

    /// The published status (Acquire: a completed sudog's fields are then
    /// visible to the owner).
    #[inline]
    pub(crate) fn status(&self) -> Status {
        Status::from_u8(self.status.load(Acquire))
    }

    /// Fill in a sudog that is not queued for its next park. The caller
    /// queues it next (`Locked::enqueue`).
    #[inline]
    pub(crate) fn prepare(&mut self, p: Park<'_, T>) {
        if self.queued {
            sudog_queued();
        }
        if !self.init {
            self.inner.get_mut().write(SudogInner {
                next: ptr::null(),
                prev: ptr::null(),
                waker: None,
                elem: None,
                sel: ptr::null(),
            });
            self.init = true;
        }
        // SAFETY: written just above (or before); not queued, so no channel
        // links to it, and `&mut self` excludes every other owner access.
        let i = unsafe { self.inner.get_mut().assume_init_mut() };
        i.elem = p.elem;
        match p.waker {
            Some(w) => {
                if !i.waker.as_ref().is_some_and(|k| k.will_wake(w)) {
                    i.waker = Some(w.clone());
                }
            }
            None => i.waker = None,
        }
        match p.sel {
            Some((sel, case)) => {
                i.sel = sel;
                self.case.get_mut().write(case);
            }
            None => i.sel = ptr::null(),
        }
        self.status.store(Status::Waiting as u8, Relaxed);
    }

    /// A queued sudog that is not completed yet gets a new waker (a
    /// spurious or moved poll); returns the status, read under the lock.
    /// The channel's lock guard is the proof that no waker is completing
    /// the sudog meanwhile: a `Waiter` is only ever queued on the one
    /// channel its owner holds, so the guard its owner can show is that
    /// channel's.
    #[inline]
    pub(crate) fn refresh_waker(&mut self, _locked: &Locked<'_, T>, waker: &Waker) -> Status {
        let s = self.status();
        if self.queued && s == Status::Waiting {
            // SAFETY: queued implies written; the owner holds the lock of
            // the channel it is queued on (see above), so no waker
            // touches it.
            let i = unsafe { (*self.inner.get()).assume_init_mut() };
            if !i.waker.as_ref().is_some_and(|k| k.will_wake(waker)) {
                i.waker = Some(waker.clone());
            }
        }
        s
    }

    /// A queued sudog that a waker has completed (status not `Waiting`,
    /// read with Acquire): it is unlinked and the owner's again. Returns
    /// its status and its value slot.
    #[inline]
    pub(crate) fn take_back(&mut self) -> Option<Completed<T>> {
        if !self.queued {
            return None;
        }
        let status = self.status();
        if status == Status::Waiting {
            return None;
        }
        self.queued = false;
        // SAFETY: it was queued, so written; a waker completed it (the
        // Acquire load above), after unlinking it, with the status store
        // as its last touch: no one else reaches it now.
        let elem = unsafe { self.inner.get_mut().assume_init_mut() }
            .elem
            .take();
        Some(Completed { status, elem })
    }

    /// The sudog's address, for the queue.
    #[inline]
    fn as_ptr(&self) -> *const Sudog<T> {
        self
    }
}

#[cold]
fn sudog_queued() -> ! {
    panic!("gmp-chan: a queued sudog prepared again")
}

impl<T> Drop for Sudog<T> {
    fn drop(&mut self) {
        if self.init {
            // SAFETY: written, and dropped once, here.
            unsafe { self.inner.get_mut().assume_init_drop() };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A sudog of a word-sized value is one cache line plus its status, so
    /// that a goroutine parked on a channel stays small.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn sudog_size() {
        assert!(std::mem::size_of::<Sudog<u64>>() <= 64);
    }
}
