//! Go's sudog and waitq: one waiting goroutine on one channel (`Sudog`,
//! living inside the pinned future or select case that waits), the
//! intrusive FIFO the channel queues them on (`WaitQ`), the select's shared
//! `SelectDone`, and `Waiter`, the owner's handle on its sudog.
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
use std::marker::{PhantomData, PhantomPinned};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::task::Waker;

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

/// The guarded fields of a linked sudog, reached from its queue.
///
/// # Safety
/// `sg` is linked on a queue whose channel lock the caller holds (linked
/// sudogs are alive and written), or was just dequeued from one; no other
/// reference to its fields is alive.
#[inline(always)]
unsafe fn fields<'a, T>(sg: *const Sudog<T>) -> &'a mut SudogInner<T> {
    // SAFETY: the caller's contract.
    unsafe { (*(*sg).inner.get()).assume_init_mut() }
}

/// Go's waitq: FIFO of sudogs, intrusive. It lives in the channel's locked
/// state, so a `&mut WaitQ` is itself the proof that the lock is held.
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

    /// Go's `enqueue`: append the owner's sudog (prepared with
    /// `Waiter::prepare`) at the tail.
    ///
    /// # Safety
    /// `w` was prepared and is not queued; it is pinned and stays alive
    /// until it is unlinked again (by `dequeue` or `remove`): its owner
    /// removes it before it goes away.
    pub(crate) unsafe fn enqueue(&mut self, w: &mut Waiter<T>) {
        debug_assert!(w.init && !w.queued);
        w.queued = true;
        let sg = w.as_ptr();
        // SAFETY: `sg` is written and ours (not linked); the queue's
        // sudogs are linked, and we hold the lock (`&mut self`). One field
        // reference at a time: the head and the tail may be one sudog.
        unsafe {
            if self.head.is_null() {
                let i = fields(sg);
                i.next = sg;
                i.prev = sg;
                self.head = sg;
            } else {
                let head = self.head;
                let tail = fields(head).prev;
                let i = fields(sg);
                i.prev = tail;
                i.next = head;
                fields(tail).next = sg;
                fields(head).prev = sg;
            }
        }
    }

    /// The owner takes its sudog out of the queue if it is still linked;
    /// if it was still `Waiting` it is then the owner's again (`queued()`
    /// turns false). If a waker completed it first, it stays `queued()`
    /// for `Waiter::take_back`.
    ///
    /// # Safety
    /// If `w` is linked, it is linked on this queue.
    pub(crate) unsafe fn remove(&mut self, w: &mut Waiter<T>) {
        if !w.queued {
            return;
        }
        // SAFETY: queued implies written; linked on this queue (caller),
        // whose lock `&mut self` proves held.
        unsafe { self.unlink(w.as_ptr()) };
        if w.status.load(Relaxed) == Status::Waiting as u8 {
            w.queued = false;
        }
    }

    /// Unlink `sg` if it is linked.
    ///
    /// # Safety
    /// `sg` is written and, if linked, linked on this queue.
    unsafe fn unlink(&mut self, sg: *const Sudog<T>) {
        // SAFETY: the caller's contract; linked neighbours are alive.
        unsafe {
            let i = fields(sg);
            if i.next.is_null() {
                return;
            }
            let (prev, next) = (i.prev, i.next);
            i.next = ptr::null();
            i.prev = ptr::null();
            if ptr::eq(next, sg) {
                // The only one.
                self.head = ptr::null();
            } else {
                fields(prev).next = next;
                fields(next).prev = prev;
                if ptr::eq(self.head, sg) {
                    self.head = next;
                }
            }
        }
    }

    /// Go's `dequeue`: pop the first sudog that may be completed. A select
    /// sudog is skipped (and stays unlinked) when its select was already won
    /// by another case: the `selectDone` CAS.
    #[inline]
    pub(crate) fn dequeue(&mut self) -> Option<Dequeued<'_, T>> {
        loop {
            let sg = self.head;
            if sg.is_null() {
                return None;
            }
            // SAFETY: the head is linked here and we hold the lock; a
            // select sudog's `sel` outlives its linked sudogs.
            let won = unsafe {
                self.unlink(sg);
                let sel = fields(sg).sel;
                sel.is_null()
                    || (*sel)
                        .done
                        .compare_exchange(false, true, AcqRel, Relaxed)
                        .is_ok()
            };
            if won {
                return Some(Dequeued {
                    sg,
                    _lock: PhantomData,
                });
            }
        }
    }

    /// Visit the waker of every queued sudog, head to tail.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Waker)) {
        let head = self.head;
        let mut sg = head;
        while !sg.is_null() {
            // SAFETY: linked sudogs are alive, and we hold the lock (the
            // queue is only reachable through it); a select sudog's `sel`
            // outlives it.
            unsafe {
                let i = fields(sg);
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

/// A sudog just taken off a wait queue, under the lock (the borrow of the
/// queue): the one party that may complete it, once, with `finish`.
#[must_use = "a dequeued sudog must be finished, or its owner waits forever"]
pub(crate) struct Dequeued<'q, T> {
    sg: *const Sudog<T>,
    _lock: PhantomData<&'q mut WaitQ<T>>,
}

impl<T> Dequeued<'_, T> {
    /// The value slot: a sender's value to take, or a receiver's slot to
    /// fill.
    #[inline]
    pub(crate) fn elem(&mut self) -> &mut Option<T> {
        // SAFETY: dequeued under the lock and not finished: only we reach
        // its fields now.
        unsafe { &mut fields(self.sg).elem }
    }

    /// Publish the outcome and hand back the waker (to be woken after the
    /// channel lock is released: Go's `goready` outside the lock).
    #[inline]
    pub(crate) fn finish(self, status: Status) -> Option<Waker> {
        let sg = self.sg;
        // SAFETY: as in `elem`. The `status`/`fired` store is the last
        // access: after it the owner may free the sudog (or the select).
        unsafe {
            let i = fields(sg);
            let sel = i.sel;
            // A select sudog uses the select's shared waker unless it has
            // its own (the select was polled again with another waker).
            let mut waker = i.waker.take();
            if waker.is_none() && !sel.is_null() {
                waker = shared_waker(sel);
            }
            // Written by `prepare` before a select queued this sudog.
            let case = if sel.is_null() {
                0
            } else {
                (*(*sg).case.get()).assume_init()
            };
            (*sg).status.store(status as u8, Release);
            if !sel.is_null() {
                (*sel).fired.store(case as usize + 1, Release);
            }
            waker
        }
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
        let mut sgs: Vec<Box<Sudog<u32>>> = (0..4)
            .map(|_| {
                let mut s = Box::new(Sudog::new());
                s.prepare(Park {
                    elem: None,
                    sel: None,
                    waker: None,
                });
                s
            })
            .collect();
        let p = |sgs: &[Box<Sudog<u32>>], i: usize| &*sgs[i] as *const Sudog<u32>;
        let pop = |q: &mut WaitQ<u32>| q.dequeue().map(|d| d.sg);
        let mut q = WaitQ::new();
        // SAFETY: the boxed sudogs outlive the queue and are not moved.
        unsafe {
            for s in sgs.iter_mut() {
                q.enqueue(s);
            }
            q.remove(&mut sgs[2]);
            q.remove(&mut sgs[0]);
            assert!(!sgs[2].queued() && !sgs[0].queued());
            assert_eq!(pop(&mut q), Some(p(&sgs, 1)));
            q.enqueue(&mut sgs[0]);
            assert_eq!(pop(&mut q), Some(p(&sgs, 3)));
            q.remove(&mut sgs[0]);
            assert!(q.is_empty());
            assert_eq!(pop(&mut q), None);
            q.enqueue(&mut sgs[2]);
            assert_eq!(pop(&mut q), Some(p(&sgs, 2)));
            assert!(q.is_empty());
        }
    }
}
