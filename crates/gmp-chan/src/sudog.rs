//! Go's sudog and waitq: one waiting goroutine on one channel (`Sudog`,
//! living inside the pinned future or select case that waits), the
//! intrusive FIFO the channel queues them on (`WaitQ`), the select's shared
//! `SelectDone`, and `Waiter`, an owner's lazily written sudog. Everything
//! here is touched under the lock of the channel the sudog is queued on, or
//! by its owner while it is not queued.

use crate::sync::{AtomicBool, AtomicU8, AtomicUsize};
use std::cell::UnsafeCell;
use std::marker::PhantomPinned;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, Release};
use std::task::Waker;

/// A sudog's outcome, published with a Release store as the very last write
/// a waker makes to it (after which the owner may free it).
pub(crate) const WAITING: u8 = 0;
/// Go's `success == true`: the value was handed over.
pub(crate) const OK: u8 = 1;
/// Go's `success == false`: woken by `closechan`.
pub(crate) const CLOSED: u8 = 2;

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
/// queued on (or owned outright by its future while it is not queued).
pub(crate) struct SudogInner<T> {
    /// Null when not linked (a linked sudog's `next` is never null: the
    /// queue is circular).
    next: *const Sudog<T>,
    prev: *const Sudog<T>,
    pub(crate) waker: Option<Waker>,
    /// The value to send (send sudog), or the slot a sender fills (recv
    /// sudog).
    pub(crate) elem: Option<T>,
    /// Null unless the sudog belongs to a select (Go's `isSelect`).
    pub(crate) sel: *const SelectDone,
}

/// Go's sudog: one goroutine waiting on one channel. It lives inside the
/// pinned future or select case that waits (no allocation per blocking
/// op) and is linked into the channel's `recvq`/`sendq` intrusive
/// doubly-linked list. Its owner knows it as a `Waiter`.
///
/// The guarded part is written on first use (`init_sg`, when the op
/// parks), not when the future or select case holding it is built:
/// `.await` moves a future right after building it, and copying a freshly
/// stored 80-byte sudog stalled on store forwarding, 40% of a
/// channel-heavy goroutine's time (half of chan_mpmc's). Most operations
/// never park and never write it.
///
/// Size: the guarded part, the select case index, the atomic `status` and
/// the owner's two flags share one struct (the small fields fill what
/// would otherwise be the guarded part's tail padding), so that for a
/// word-sized `T` a sudog is 64 bytes and a goroutine parked on a receive
/// stays small.
pub(crate) struct Sudog<T> {
    inner: UnsafeCell<MaybeUninit<SudogInner<T>>>,
    /// The select case this sudog stands for, guarded like `inner`;
    /// written when a select queues it (`set_case`), read only for select
    /// sudogs (`finish`).
    case: UnsafeCell<MaybeUninit<u32>>,
    /// `WAITING`, `OK` or `CLOSED`; see `finish`.
    pub(crate) status: AtomicU8,
    /// Owner-only: queued on a channel (so drop knows whether to look at
    /// it).
    pub(crate) queued: bool,
    /// Owner-only: `inner` has been written.
    init: bool,
    _pin: PhantomPinned,
}

/// The owner's name for its sudog: the future or select case that waits
/// holds one, and only it touches `queued` and calls `init_sg`.
pub(crate) type Waiter<T> = Sudog<T>;

// SAFETY: a sudog is only reached from other threads through the channel
// lock discipline (inner fields under the lock, `status` atomic; the
// owner-only flags never), and it carries a `T` across threads, so
// `T: Send` is what it needs.
unsafe impl<T: Send> Send for Sudog<T> {}
// SAFETY: as above; shared access never hands out `&T` without the lock.
unsafe impl<T: Send> Sync for Sudog<T> {}

impl<T> Sudog<T> {
    #[inline]
    pub(crate) fn new() -> Sudog<T> {
        Sudog {
            inner: UnsafeCell::new(MaybeUninit::uninit()),
            case: UnsafeCell::new(MaybeUninit::uninit()),
            status: AtomicU8::new(WAITING),
            queued: false,
            init: false,
            _pin: PhantomPinned,
        }
    }

    /// Write the guarded part if this is its first use.
    #[inline]
    pub(crate) fn init_sg(&mut self) {
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
    }

    /// The sudog, checked to be written. Only after `init_sg` (every
    /// caller is on a path that parked, or checks `queued`, which
    /// `init_sg` precedes).
    #[inline]
    pub(crate) fn sg(&self) -> &Sudog<T> {
        if !self.init {
            sudog_unwritten();
        }
        self
    }

    /// # Safety
    /// Written (`init_sg`), and the caller holds the lock of the channel
    /// this sudog is (or is about to be) queued on, or the sudog is not
    /// queued and the caller owns it.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn inner(&self) -> &mut SudogInner<T> {
        // SAFETY: written and exclusive: the caller's contract above.
        unsafe { (*self.inner.get()).assume_init_mut() }
    }

    /// Record the select case this sudog stands for.
    ///
    /// # Safety
    /// As for `inner`.
    pub(crate) unsafe fn set_case(&self, case: u32) {
        // SAFETY: exclusive: the caller's contract.
        unsafe { (*self.case.get()).write(case) };
    }
}

#[cold]
fn sudog_unwritten() -> ! {
    panic!("gmp-chan: sudog used before its first park")
}

impl<T> Drop for Sudog<T> {
    fn drop(&mut self) {
        if self.init {
            // SAFETY: written, and dropped once, here.
            unsafe { self.inner.get_mut().assume_init_drop() };
        }
    }
}

/// Go's waitq: FIFO of sudogs, intrusive, guarded by the channel lock.
/// Circular (the head's `prev` is the tail) so that the queue is one
/// pointer: both queues' heads then fit in the channel's first cache line
/// next to the lock and the buffer (see `Chan`).
pub(crate) struct WaitQ<T> {
    head: *const Sudog<T>,
}

impl<T> WaitQ<T> {
    pub(crate) const fn new() -> WaitQ<T> {
        WaitQ { head: ptr::null() }
    }

    /// Go's `enqueue`: append at the tail.
    ///
    /// # Safety
    /// Channel lock held; `sg` is pinned, not linked, and stays alive until
    /// it is unlinked (by `dequeue` or `remove`).
    pub(crate) unsafe fn enqueue(&mut self, sg: *const Sudog<T>) {
        // SAFETY: lock held, sg valid (caller); linked sudogs are alive.
        unsafe {
            let i = (*sg).inner();
            debug_assert!(i.next.is_null());
            if self.head.is_null() {
                i.next = sg;
                i.prev = sg;
                self.head = sg;
            } else {
                let head = self.head;
                let tail = (*head).inner().prev;
                i.prev = tail;
                i.next = head;
                (*tail).inner().next = sg;
                (*head).inner().prev = sg;
            }
        }
    }

    /// Unlink `sg` if it is still linked.
    ///
    /// # Safety
    /// Channel lock held; `sg` was enqueued on this queue (if linked).
    pub(crate) unsafe fn remove(&mut self, sg: *const Sudog<T>) {
        // SAFETY: lock held; every linked sudog is alive (its owner unlinks
        // it under this lock before it goes away).
        unsafe {
            let i = (*sg).inner();
            if i.next.is_null() {
                return;
            }
            let (prev, next) = (i.prev, i.next);
            if ptr::eq(next, sg) {
                // The only one.
                self.head = ptr::null();
            } else {
                (*prev).inner().next = next;
                (*next).inner().prev = prev;
                if ptr::eq(self.head, sg) {
                    self.head = next;
                }
            }
            i.next = ptr::null();
            i.prev = ptr::null();
        }
    }

    /// Go's `dequeue`: pop the first sudog that may be completed. A select
    /// sudog is skipped (and stays unlinked) when its select was already won
    /// by another case: the `selectDone` CAS.
    ///
    /// # Safety
    /// Channel lock held.
    pub(crate) unsafe fn dequeue(&mut self) -> Option<*const Sudog<T>> {
        loop {
            let sg = self.head;
            if sg.is_null() {
                return None;
            }
            // SAFETY: lock held, linked sudogs are alive.
            unsafe {
                self.remove(sg);
                let sel = (*sg).inner().sel;
                if !sel.is_null()
                    && (*sel)
                        .done
                        .compare_exchange(false, true, AcqRel, Relaxed)
                        .is_err()
                {
                    continue;
                }
            }
            return Some(sg);
        }
    }

    /// Visit the waker of every queued sudog, head to tail.
    ///
    /// # Safety
    /// Channel lock held.
    pub(crate) unsafe fn for_each(&self, mut f: impl FnMut(&Waker)) {
        let head = self.head;
        let mut sg = head;
        while !sg.is_null() {
            // SAFETY: lock held, linked sudogs are alive; a select
            // sudog's `sel` outlives it.
            unsafe {
                let i = (*sg).inner();
                let w = match &i.waker {
                    Some(w) => Some(w),
                    None if !i.sel.is_null() => (*i.sel).waker(),
                    None => None,
                };
                if let Some(w) = w {
                    f(w);
                }
                sg = i.next;
            }
            if ptr::eq(sg, head) {
                break;
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }
}

/// A select sudog's waker: the select's shared one (out of line: the
/// plain send/recv path never needs it).
///
/// # Safety
/// As `SelectDone::waker`; `sel` is alive.
#[cold]
#[inline(never)]
unsafe fn shared_waker(sel: *const SelectDone) -> Option<Waker> {
    // SAFETY: caller contract.
    unsafe { (*sel).waker().cloned() }
}

/// Publish a dequeued sudog's outcome and hand back its waker (to be woken
/// after the channel lock is released: Go's `goready` outside the lock).
///
/// # Safety
/// Channel lock held; `sg` was just returned by `dequeue`.
pub(crate) unsafe fn finish<T>(sg: *const Sudog<T>, status: u8) -> Option<Waker> {
    // SAFETY: caller contract. The `status`/`fired` store is the last
    // access: after it the owner may free the sudog (or the select).
    unsafe {
        let i = (*sg).inner();
        let sel = i.sel;
        // A select sudog uses the select's shared waker unless it has its
        // own (the select was polled again with another waker).
        let mut waker = i.waker.take();
        if waker.is_none() && !sel.is_null() {
            waker = shared_waker(sel);
        }
        // Written by `set_case` before a select queued this sudog.
        let case = if sel.is_null() {
            0
        } else {
            (*(*sg).case.get()).assume_init()
        };
        (*sg).status.store(status, Release);
        if !sel.is_null() {
            (*sel).fired.store(case as usize + 1, Release);
        }
        waker
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

    /// The circular waitq: FIFO order, removal from the middle, the head
    /// and the only element.
    #[test]
    fn waitq_fifo_and_remove() {
        let sgs: Vec<Sudog<u32>> = (0..4)
            .map(|_| {
                let mut s = Sudog::new();
                s.init_sg();
                s
            })
            .collect();
        let p = |i: usize| &sgs[i] as *const Sudog<u32>;
        let mut q = WaitQ::new();
        // SAFETY: the sudogs outlive the queue and are not moved.
        unsafe {
            for i in 0..4 {
                q.enqueue(p(i));
            }
            q.remove(p(2));
            q.remove(p(0));
            assert_eq!(q.dequeue(), Some(p(1)));
            q.enqueue(p(0));
            assert_eq!(q.dequeue(), Some(p(3)));
            q.remove(p(0));
            assert!(q.is_empty());
            assert_eq!(q.dequeue(), None);
            q.enqueue(p(2));
            assert_eq!(q.dequeue(), Some(p(2)));
            assert!(q.is_empty());
        }
    }
}
