//! hchan: the channel object, its sudog wait queues and the locked core of
//! Go's `chansend`, `chanrecv` and `closechan`. Everything here runs with the
//! channel lock held (the `*_locked` functions) or is the owner side of a
//! sudog (poll, cancel). The futures, the public handles and `selectgo` are
//! thin layers over these functions.

use crate::error::RecvError;
use crate::sync::{set_wait_reason, AtomicBool, AtomicU8, AtomicUsize, RawLock, Wait};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::task::{Context, Poll, Waker};

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
#[doc(hidden)]
pub struct SelectDone {
    pub(crate) done: AtomicBool,
    pub(crate) fired: AtomicUsize,
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
        }
    }
}

/// The fields of a sudog that are guarded by the lock of the channel it is
/// queued on (or owned outright by its future while it is not queued).
pub(crate) struct SudogInner<T> {
    next: *const Sudog<T>,
    prev: *const Sudog<T>,
    linked: bool,
    pub(crate) waker: Option<Waker>,
    /// The value to send (send sudog), or the slot a sender fills (recv
    /// sudog).
    pub(crate) elem: Option<T>,
    /// Null unless the sudog belongs to a select (Go's `isSelect`).
    pub(crate) sel: *const SelectDone,
    /// The select case this sudog stands for.
    pub(crate) case: usize,
}

/// Go's sudog: one goroutine waiting on one channel. It lives inside the
/// pinned future that waits (no allocation per blocking op) and is linked
/// into the channel's `recvq`/`sendq` intrusive doubly-linked list.
pub(crate) struct Sudog<T> {
    inner: UnsafeCell<SudogInner<T>>,
    pub(crate) status: AtomicU8,
    _pin: PhantomPinned,
}

// SAFETY: a sudog is only reached from other threads through the channel
// lock discipline (inner fields under the lock, `status` atomic), and it
// carries a `T` across threads, so `T: Send` is what it needs.
unsafe impl<T: Send> Send for Sudog<T> {}
// SAFETY: as above; shared access never hands out `&T` without the lock.
unsafe impl<T: Send> Sync for Sudog<T> {}

impl<T> Sudog<T> {
    pub(crate) fn new() -> Sudog<T> {
        Sudog {
            inner: UnsafeCell::new(SudogInner {
                next: ptr::null(),
                prev: ptr::null(),
                linked: false,
                waker: None,
                elem: None,
                sel: ptr::null(),
                case: 0,
            }),
            status: AtomicU8::new(WAITING),
            _pin: PhantomPinned,
        }
    }

    /// # Safety
    /// The caller holds the lock of the channel this sudog is (or is about
    /// to be) queued on, or the sudog is not queued and the caller owns it.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn inner(&self) -> &mut SudogInner<T> {
        // SAFETY: exclusivity is the caller's contract above.
        unsafe { &mut *self.inner.get() }
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
    const fn new() -> WaitQ<T> {
        WaitQ { head: ptr::null() }
    }

    /// Go's `enqueue`: append at the tail.
    ///
    /// # Safety
    /// Channel lock held; `sg` is pinned, not linked, and stays alive until
    /// it is unlinked (by `dequeue` or `remove`).
    unsafe fn enqueue(&mut self, sg: *const Sudog<T>) {
        // SAFETY: lock held, sg valid (caller); linked sudogs are alive.
        unsafe {
            let i = (*sg).inner();
            debug_assert!(!i.linked);
            i.linked = true;
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
    unsafe fn remove(&mut self, sg: *const Sudog<T>) {
        // SAFETY: lock held; every linked sudog is alive (its owner unlinks
        // it under this lock before it goes away).
        unsafe {
            let i = (*sg).inner();
            if !i.linked {
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
            i.linked = false;
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
    unsafe fn dequeue(&mut self) -> Option<*const Sudog<T>> {
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

    fn is_empty(&self) -> bool {
        self.head.is_null()
    }
}

/// Publish a dequeued sudog's outcome and hand back its waker (to be woken
/// after the channel lock is released: Go's `goready` outside the lock).
///
/// # Safety
/// Channel lock held; `sg` was just returned by `dequeue`.
unsafe fn finish<T>(sg: *const Sudog<T>, status: u8) -> Option<Waker> {
    // SAFETY: caller contract. The `status`/`fired` store is the last
    // access: after it the owner may free the sudog (or the select).
    unsafe {
        let i = (*sg).inner();
        let waker = i.waker.take();
        let sel = i.sel;
        let case = i.case;
        (*sg).status.store(status, Release);
        if !sel.is_null() {
            (*sel).fired.store(case + 1, Release);
        }
        waker
    }
}

/// Channel state guarded by the lock. `repr(C)`: see `Chan`.
#[repr(C)]
pub(crate) struct State<T> {
    /// The ring buffer of `cap` slots (allocated once, at `make`). It can
    /// briefly hold more than `cap` values when a cancelled receiver gives
    /// a handed-off value back (see `reinject`).
    buf: VecDeque<T>,
    recvq: WaitQ<T>,
    sendq: WaitQ<T>,
}

/// Go's hchan.
///
/// Layout: when goroutines on two Ms use one channel, every send and
/// receive moves the lock's cache line between the cores, so everything
/// an operation writes lives on that one line: the lock, the closed flag
/// and the two readiness hints (one byte each), the ring buffer's header
/// and both wait queues (one pointer each) fill the first 64 bytes (on
/// 64-bit targets). The second line holds what is read
/// on every operation but written almost never (`cap`, the close mirror,
/// the sender count), so both cores keep it cached; that is also why there
/// is no lock-free `qcount` mirror to store on each operation.
//
// Not aligned under loom: loom 0.7's `unpark` makes a thread runnable
// whatever it is blocked on (tokio-rs/loom#249, fix proposed in #418), so
// a waker that reaches a thread while it waits for a channel lock resumes
// it inside loom's mutex and aborts the model ("expected to be able to
// acquire lock"). Real threads ignore such a wake. With `Chan` aligned,
// the allocations fall so that `select_exactly_once` explores exactly
// that interleaving; see docs/design.md, "Open questions".
#[cfg_attr(not(loom), repr(C, align(64)))]
#[cfg_attr(loom, repr(C))]
pub(crate) struct Chan<T> {
    lock: RawLock,
    /// Go's `closed`. Written under the lock (Release) and read under it,
    /// and without it by `is_closed` and the `*_looks_ready` hints (hence
    /// an atomic).
    closed: AtomicBool,
    /// Hint for `selectgo`'s lock-free fast path: a value is buffered or a
    /// sender is queued. See `recv_looks_ready`.
    recv_ready: AtomicBool,
    /// Hint: a receiver is queued or there is buffer space. See
    /// `send_looks_ready`.
    send_ready: AtomicBool,
    state: UnsafeCell<State<T>>,
    /// `dataqsiz`.
    cap: usize,
    /// Live `Sender`s: the last one dropped closes the channel.
    pub(crate) senders: AtomicUsize,
    /// A plain (non-goroutine) thread has used this channel: goroutines
    /// parked on it may be woken from outside the runtime, so the deadlock
    /// detector must not count them.
    foreign: AtomicBool,
}

// SAFETY: the state (values of `T`, raw sudog pointers) is only touched
// with `lock` held; moving `T`s between threads needs `T: Send`.
unsafe impl<T: Send> Send for Chan<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Chan<T> {}

/// Result of `chansend` attempted without blocking.
pub(crate) enum SendTry<T> {
    Sent(Option<Waker>),
    Closed(T),
    Full(T),
}

/// An owner's view of one blocking op: the sudog and whether it was queued
/// (so drop knows whether to look at the channel).
///
/// The sudog is written on first use (`init_sg`, when the op parks), not
/// when the future or select case holding it is built: `.await` moves a
/// future right after building it, and copying a freshly stored 80-byte
/// sudog stalled on store forwarding, 40% of a channel-heavy goroutine's
/// time (half of chan_mpmc's). Most operations never park and never write
/// it.
pub(crate) struct Waiter<T> {
    sg: std::mem::MaybeUninit<Sudog<T>>,
    pub(crate) queued: bool,
    init: bool,
}

impl<T> Waiter<T> {
    #[inline]
    pub(crate) const fn new() -> Waiter<T> {
        Waiter {
            sg: std::mem::MaybeUninit::uninit(),
            queued: false,
            init: false,
        }
    }

    /// Write the sudog if this is its first use.
    #[inline]
    pub(crate) fn init_sg(&mut self) {
        if !self.init {
            self.sg.write(Sudog::new());
            self.init = true;
        }
    }

    /// The sudog. Only after `init_sg` (every caller is on a path that
    /// parked, or checks `queued`, which `init_sg` precedes).
    #[inline]
    pub(crate) fn sg(&self) -> &Sudog<T> {
        if !self.init {
            sudog_unwritten();
        }
        // SAFETY: written by `init_sg` (checked above).
        unsafe { self.sg.assume_init_ref() }
    }
}

#[cold]
fn sudog_unwritten() -> ! {
    panic!("gmp-chan: sudog used before its first park")
}

impl<T> Drop for Waiter<T> {
    fn drop(&mut self) {
        if self.init {
            // SAFETY: written, and dropped once, here.
            unsafe { self.sg.assume_init_drop() };
        }
    }
}

impl<T> Chan<T> {
    /// Record a use from outside the runtime (try/blocking forms, close).
    #[inline]
    pub(crate) fn note_use(&self) {
        if !crate::sync::in_runtime() && !self.foreign.load(std::sync::atomic::Ordering::Relaxed) {
            self.foreign
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The wait reason for a park on this channel.
    #[inline]
    fn park_reason(&self, w: Wait) {
        if self.foreign.load(std::sync::atomic::Ordering::Relaxed) {
            crate::sync::set_wait_reason_external(w);
        } else {
            set_wait_reason(w);
        }
    }

    pub(crate) fn new(cap: usize) -> Chan<T> {
        Chan {
            lock: RawLock::new(),
            closed: AtomicBool::new(false),
            recv_ready: AtomicBool::new(false),
            send_ready: AtomicBool::new(cap > 0),
            state: UnsafeCell::new(State {
                buf: VecDeque::with_capacity(cap),
                recvq: WaitQ::new(),
                sendq: WaitQ::new(),
            }),
            cap,
            senders: AtomicUsize::new(1),
            foreign: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        if self.cap == 0 {
            return 0;
        }
        self.lock();
        // SAFETY: lock held.
        let n = unsafe { self.st().buf.len() };
        // SAFETY: we hold it.
        unsafe { self.unlock() };
        // A cancelled receiver's value put back can overfill the buffer for a
        // moment; `len <= cap` is the contract.
        n.min(self.cap)
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Acquire)
    }

    #[inline]
    pub(crate) fn lock(&self) {
        self.lock.lock();
    }

    /// # Safety
    /// The caller holds the lock.
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        #[cfg(debug_assertions)]
        // SAFETY: the caller holds the lock and no longer uses its
        // `&mut State`, so a shared look is exclusive of writers.
        unsafe {
            self.check_hints(&*self.state.get())
        };
        // SAFETY: caller contract.
        unsafe { self.lock.unlock() }
    }

    /// The readiness hints match the state whenever the lock is released.
    #[cfg(debug_assertions)]
    fn check_hints(&self, st: &State<T>) {
        debug_assert_eq!(
            self.recv_ready.load(Relaxed),
            !st.buf.is_empty() || !st.sendq.is_empty(),
            "stale recv_ready"
        );
        debug_assert_eq!(
            self.send_ready.load(Relaxed),
            !st.recvq.is_empty() || st.buf.len() < self.cap,
            "stale send_ready"
        );
    }

    /// # Safety
    /// The caller holds the lock and does not keep two of these alive.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    unsafe fn st(&self) -> &mut State<T> {
        // SAFETY: the lock gives exclusive access.
        unsafe { &mut *self.state.get() }
    }

    /// Closed? Lock held: the lock orders this load after `close`'s store.
    #[inline]
    fn closed_locked(&self) -> bool {
        self.closed.load(Relaxed)
    }

    // The readiness hints. `recv_ready` and `send_ready` equal what they
    // describe whenever the lock is free: every change of the buffer or a
    // queue stores them before the unlock, a branch-free byte store on the
    // line the lock holder already owns (where a change can only set a
    // hint, the store is a constant). A lock-free reader may still see an
    // old value, and a queued select sudog may belong to a select that has
    // already been won elsewhere, so `selectgo` only takes a hint as a
    // reason to look under the lock: the hints affect speed, never an
    // outcome. Relaxed throughout for that reason (lock holders are
    // ordered by the lock itself). They do not cover `closed` (after a
    // close they still describe the emptied queues); the readers below
    // look at `closed` as well.

    /// After the buffer or `sendq` changed (lock held).
    #[inline]
    fn refresh_recv_ready(&self, st: &State<T>) {
        self.recv_ready
            .store(!st.buf.is_empty() || !st.sendq.is_empty(), Relaxed);
    }

    /// After the buffer or `recvq` changed (lock held).
    #[inline]
    fn refresh_send_ready(&self, st: &State<T>) {
        self.send_ready
            .store(!st.recvq.is_empty() || st.buf.len() < self.cap, Relaxed);
    }

    /// Lock-free guess: might a receive proceed now?
    #[inline]
    pub(crate) fn recv_looks_ready(&self) -> bool {
        self.recv_ready.load(Relaxed) || self.closed.load(Relaxed)
    }

    /// Lock-free guess: might a send proceed now?
    #[inline]
    pub(crate) fn send_looks_ready(&self) -> bool {
        self.send_ready.load(Relaxed) || self.closed.load(Relaxed)
    }

    /// The non-blocking body of Go's `chanrecv` (lock held): buffer first
    /// (refilled from the first blocked sender: chan.go `recv` on a full
    /// buffer), else straight from a blocked sender, else closed. `None`
    /// means it would block.
    ///
    /// # Safety
    /// Lock held.
    pub(crate) unsafe fn recv_locked(
        &self,
        wake: &mut Option<Waker>,
    ) -> Option<Result<T, RecvError>> {
        // SAFETY: lock held (caller).
        let st = unsafe { self.st() };
        if let Some(v) = st.buf.pop_front() {
            if st.buf.len() < self.cap {
                // SAFETY: lock held.
                match unsafe { st.sendq.dequeue() } {
                    // A sender refilled the slot: the buffer is as long as
                    // before and still not empty, so both hints stand.
                    // SAFETY: lock held; a dequeued sudog is ours to
                    // complete.
                    Some(sg) => unsafe {
                        let sv = (*sg).inner().elem.take().expect("send sudog without value");
                        st.buf.push_back(sv);
                        *wake = finish(sg, OK);
                    },
                    // `sendq` is empty now.
                    None => {
                        self.recv_ready.store(!st.buf.is_empty(), Relaxed);
                        self.send_ready.store(true, Relaxed);
                    }
                }
            } else {
                // Still full (or over-full after a `reinject`).
                self.refresh_recv_ready(st);
            }
            return Some(Ok(v));
        }
        // An empty `sendq` needs no dequeue and leaves the hint as it is,
        // which keeps the unbuffered park path free of hint work.
        if !st.sendq.is_empty() {
            // SAFETY: lock held.
            let sg = unsafe { st.sendq.dequeue() };
            // Also when nothing was dequeued: `dequeue` drops the sudogs
            // of selects that were won elsewhere. The buffer is empty.
            self.recv_ready.store(!st.sendq.is_empty(), Relaxed);
            if let Some(sg) = sg {
                // SAFETY: lock held; dequeued sudog.
                unsafe {
                    let v = (*sg).inner().elem.take().expect("send sudog without value");
                    *wake = finish(sg, OK);
                    return Some(Ok(v));
                }
            }
        }
        if self.closed_locked() {
            return Some(Err(RecvError));
        }
        None
    }

    /// The non-blocking body of Go's `chansend` (lock held): closed, else
    /// hand directly to the first waiting receiver, else the buffer.
    ///
    /// # Safety
    /// Lock held.
    pub(crate) unsafe fn send_locked(&self, v: T) -> SendTry<T> {
        if self.closed_locked() {
            return SendTry::Closed(v);
        }
        // SAFETY: lock held (caller).
        let st = unsafe { self.st() };
        // As in `recv_locked`: no hint work when nobody is queued.
        if !st.recvq.is_empty() {
            // SAFETY: lock held.
            let sg = unsafe { st.recvq.dequeue() };
            self.refresh_send_ready(st);
            if let Some(sg) = sg {
                // SAFETY: lock held; dequeued sudog.
                unsafe {
                    (*sg).inner().elem = Some(v);
                    return SendTry::Sent(finish(sg, OK));
                }
            }
        }
        if st.buf.len() < self.cap {
            st.buf.push_back(v);
            self.recv_ready.store(true, Relaxed);
            // `recvq` is empty (no receiver took the value).
            self.send_ready.store(st.buf.len() < self.cap, Relaxed);
            return SendTry::Sent(None);
        }
        SendTry::Full(v)
    }

    /// Queue a sudog on `recvq` (or `sendq`).
    ///
    /// # Safety
    /// Lock held; `sg` pinned and alive until unlinked; `sg` not linked.
    pub(crate) unsafe fn enqueue_locked(&self, sg: *const Sudog<T>, send: bool) {
        // SAFETY: caller contract.
        unsafe {
            let st = self.st();
            if send {
                st.sendq.enqueue(sg);
                self.recv_ready.store(true, Relaxed);
            } else {
                st.recvq.enqueue(sg);
                self.send_ready.store(true, Relaxed);
            }
        }
    }

    /// Unlink a sudog if it is still queued.
    ///
    /// # Safety
    /// Lock held; `sg` was queued on this channel's `sendq` if `send`, else
    /// `recvq`.
    pub(crate) unsafe fn remove_locked(&self, sg: *const Sudog<T>, send: bool) {
        // SAFETY: caller contract.
        unsafe {
            let st = self.st();
            if send {
                st.sendq.remove(sg);
                self.refresh_recv_ready(st);
            } else {
                st.recvq.remove(sg);
                self.refresh_send_ready(st);
            }
        }
    }

    /// Go's `closechan`: returns false if it was already closed. Every
    /// queued receiver and sender is completed with `CLOSED` (senders keep
    /// their value, to return it) and woken after the lock is dropped.
    pub(crate) fn close(&self) -> bool {
        let mut wakers = Vec::new();
        self.lock();
        {
            // SAFETY: lock held.
            let st = unsafe { self.st() };
            if self.closed_locked() {
                // SAFETY: we hold it.
                unsafe { self.unlock() };
                return false;
            }
            self.closed.store(true, Release);
            // SAFETY: lock held; dequeued sudogs are ours to complete.
            unsafe {
                while let Some(sg) = st.recvq.dequeue() {
                    wakers.extend(finish(sg, CLOSED));
                }
                while let Some(sg) = st.sendq.dequeue() {
                    wakers.extend(finish(sg, CLOSED));
                }
            }
            self.refresh_recv_ready(st);
            self.refresh_send_ready(st);
        }
        // SAFETY: we hold it.
        unsafe { self.unlock() };
        for w in wakers {
            w.wake();
        }
        true
    }

    /// A value was handed to a receiver whose future is gone: give it to the
    /// next waiting receiver, or put it back at the head of the buffer (it
    /// was sent before anything buffered now), so it is neither lost nor
    /// reordered.
    pub(crate) fn reinject(&self, v: T) {
        let mut wake = None;
        self.lock();
        {
            // SAFETY: lock held.
            let st = unsafe { self.st() };
            // SAFETY: lock held; dequeued sudog.
            match unsafe { st.recvq.dequeue() } {
                Some(sg) => unsafe {
                    (*sg).inner().elem = Some(v);
                    wake = finish(sg, OK);
                },
                None => {
                    st.buf.push_front(v);
                    self.recv_ready.store(true, Relaxed);
                }
            }
            self.refresh_send_ready(st);
        }
        // SAFETY: we hold it.
        unsafe { self.unlock() };
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Owner side of a blocking op that was queued: has a waker completed
    /// it? If not, refresh the stored waker (a spurious or moved poll).
    /// Returns the final status, or `WAITING`.
    fn check_queued(&self, w: &mut Waiter<T>, cx: &Context<'_>) -> u8 {
        let s = w.sg().status.load(Acquire);
        if s != WAITING {
            return s;
        }
        self.lock();
        let s = w.sg().status.load(Acquire);
        if s == WAITING {
            // SAFETY: lock held, sudog linked on this channel.
            let i = unsafe { w.sg().inner() };
            if !i.waker.as_ref().is_some_and(|k| k.will_wake(cx.waker())) {
                i.waker = Some(cx.waker().clone());
            }
        }
        // SAFETY: we hold it.
        unsafe { self.unlock() };
        s
    }

    /// Prepare a not-queued sudog for (re)use and queue it. Lock held.
    ///
    /// # Safety
    /// Lock held; `w` pinned.
    unsafe fn park_locked(&self, w: &mut Waiter<T>, cx: &Context<'_>, send: bool, elem: Option<T>) {
        w.init_sg();
        // SAFETY: the sudog is not linked, so we own it; then lock held.
        unsafe {
            let i = w.sg().inner();
            i.elem = elem;
            i.sel = ptr::null();
            if !i.waker.as_ref().is_some_and(|k| k.will_wake(cx.waker())) {
                i.waker = Some(cx.waker().clone());
            }
            w.sg().status.store(WAITING, Relaxed);
            self.enqueue_locked(w.sg(), send);
        }
        w.queued = true;
    }

    /// Go's `chanrecv` with `block == true`, as a poll.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        w: Pin<&mut Waiter<T>>,
    ) -> Poll<Result<T, RecvError>> {
        // SAFETY: we never move out of the waiter; the sudog stays put.
        let w = unsafe { w.get_unchecked_mut() };
        if w.queued {
            let s = self.check_queued(w, cx);
            if s == WAITING {
                self.park_reason(Wait::ChanReceive);
                return Poll::Pending;
            }
            w.queued = false;
            // SAFETY: completed and unlinked: the sudog is ours again.
            let v = unsafe { w.sg().inner().elem.take() };
            return Poll::Ready(match (s, v) {
                (OK, Some(v)) => Ok(v),
                _ => Err(RecvError),
            });
        }
        let mut wake = None;
        self.lock();
        // SAFETY: lock held.
        let r = unsafe { self.recv_locked(&mut wake) };
        match r {
            Some(r) => {
                // SAFETY: we hold it.
                unsafe { self.unlock() };
                if let Some(k) = wake {
                    k.wake();
                }
                Poll::Ready(r)
            }
            None => {
                // SAFETY: lock held, waiter pinned.
                unsafe {
                    self.park_locked(w, cx, false, None);
                    self.unlock();
                }
                self.park_reason(Wait::ChanReceive);
                Poll::Pending
            }
        }
    }

    /// Go's `chansend` with `block == true`, as a poll. `value` is the
    /// value not yet handed to the channel (taken on the first poll).
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        w: Pin<&mut Waiter<T>>,
        value: &mut Option<T>,
    ) -> Poll<Result<(), T>> {
        // SAFETY: we never move out of the waiter.
        let w = unsafe { w.get_unchecked_mut() };
        if w.queued {
            let s = self.check_queued(w, cx);
            if s == WAITING {
                self.park_reason(Wait::ChanSend);
                return Poll::Pending;
            }
            w.queued = false;
            if s == OK {
                return Poll::Ready(Ok(()));
            }
            // SAFETY: completed and unlinked: ours again.
            let v = unsafe { w.sg().inner().elem.take() };
            return Poll::Ready(Err(v.expect("closed send sudog lost its value")));
        }
        let v = value.take().expect("send future polled after completion");
        self.lock();
        // SAFETY: lock held.
        match unsafe { self.send_locked(v) } {
            SendTry::Sent(wake) => {
                // SAFETY: we hold it.
                unsafe { self.unlock() };
                if let Some(k) = wake {
                    k.wake();
                }
                Poll::Ready(Ok(()))
            }
            SendTry::Closed(v) => {
                // SAFETY: we hold it.
                unsafe { self.unlock() };
                Poll::Ready(Err(v))
            }
            SendTry::Full(v) => {
                // SAFETY: lock held, waiter pinned.
                unsafe {
                    self.park_locked(w, cx, true, Some(v));
                    self.unlock();
                }
                self.park_reason(Wait::ChanSend);
                Poll::Pending
            }
        }
    }

    /// Cancellation (the future is dropped): unlink the sudog, or, if a
    /// sender already handed it a value, pass that value on.
    /// Inline: every completed send and recv future runs this on drop, and
    /// almost all of them were never queued.
    #[inline]
    pub(crate) fn cancel(&self, w: Pin<&mut Waiter<T>>, send: bool) {
        // SAFETY: not moved.
        let w = unsafe { w.get_unchecked_mut() };
        if w.queued {
            self.cancel_queued(w, send);
        }
    }

    #[cold]
    fn cancel_queued(&self, w: &mut Waiter<T>, send: bool) {
        w.queued = false;
        if w.sg().status.load(Acquire) == WAITING {
            self.lock();
            if w.sg().status.load(Acquire) == WAITING {
                // SAFETY: lock held; queued on this channel.
                unsafe {
                    self.remove_locked(w.sg(), send);
                    self.unlock();
                }
                return;
            }
            // SAFETY: we hold it.
            unsafe { self.unlock() };
        }
        if !send && w.sg().status.load(Acquire) == OK {
            // SAFETY: completed: ours.
            if let Some(v) = unsafe { w.sg().inner().elem.take() } {
                self.reinject(v);
            }
        }
    }

    /// Whether any goroutine is queued (tests and debug asserts).
    #[allow(dead_code)]
    pub(crate) fn has_waiters(&self) -> bool {
        self.lock();
        // SAFETY: lock held.
        let r = unsafe {
            let st = self.st();
            !st.recvq.is_empty() || !st.sendq.is_empty()
        };
        // SAFETY: we hold it.
        unsafe { self.unlock() };
        r
    }
}

#[cfg(all(test, not(loom), target_pointer_width = "64"))]
mod layout_tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// The hot fields share the first cache line (see `Chan`).
    #[test]
    fn hot_fields_fill_the_first_cache_line() {
        assert_eq!(offset_of!(Chan<u64>, lock), 0);
        assert!(offset_of!(Chan<u64>, closed) < 64);
        assert!(offset_of!(Chan<u64>, recv_ready) < 64);
        assert!(offset_of!(Chan<u64>, send_ready) < 64);
        let state = offset_of!(Chan<u64>, state);
        assert!(state + size_of::<State<u64>>() <= 64);
        assert!(offset_of!(Chan<u64>, cap) >= 64);
        assert_eq!(std::mem::align_of::<Chan<u64>>(), 64);
    }

    /// The circular waitq: FIFO order, removal from the middle, the head
    /// and the only element.
    #[test]
    fn waitq_fifo_and_remove() {
        let sgs: Vec<Sudog<u32>> = (0..4).map(|_| Sudog::new()).collect();
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
