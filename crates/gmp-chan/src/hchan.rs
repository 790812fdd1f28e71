//! hchan: the channel object (`makechan`'s check, its layout, the
//! buffer), and the locked core of Go's `chansend`, `chanrecv` and
//! `closechan`: the `*_locked` functions run with the channel lock held.
//! The blocking side (a sudog parking, re-polling, cancelling) is in
//! `block.rs`; the sudogs and wait queues in `sudog.rs`. The futures, the
//! public handles and `selectgo` are thin layers over these functions.

use crate::error::RecvError;
use crate::sudog::{finish, Sudog, WaitQ, CLOSED, OK};
use crate::sync::{set_wait_reason, AtomicBool, AtomicU32, RawLock, Wait};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::task::Waker;

/// Go's `maxAlloc` on 64-bit targets (the heap's address range); a
/// channel whose buffer could need more is refused at `make`, as Go does.
#[cfg(target_pointer_width = "64")]
const MAX_ALLOC: usize = 1 << 48;
#[cfg(not(target_pointer_width = "64"))]
const MAX_ALLOC: usize = isize::MAX as usize;

/// Go's `makechan` check: a capacity whose buffer bytes overflow or pass
/// `MAX_ALLOC` is a panic with Go's message, at the `make`, rather than an
/// allocation failure (or abort) whenever the buffer fills up.
#[track_caller]
fn check_cap<T>(cap: usize) {
    let fits = match std::mem::size_of::<T>().checked_mul(cap) {
        Some(bytes) => bytes <= MAX_ALLOC - std::mem::size_of::<Chan<T>>(),
        None => false,
    };
    if !fits {
        panic!("makechan: size out of range");
    }
}

/// Channel state guarded by the lock. `repr(C)`: see `Chan`.
#[repr(C)]
pub(crate) struct State<T> {
    /// The ring buffer, at most `cap` slots, allocated as it fills (see
    /// `push_back`), so an idle or unbuffered channel has none. It can
    /// briefly hold more than `cap` values when a cancelled receiver gives
    /// a handed-off value back (see `reinject`).
    buf: VecDeque<T>,
    recvq: WaitQ<T>,
    sendq: WaitQ<T>,
}

/// Go's hchan.
///
/// Layout: one `Arc` allocation with no over-alignment, so that a channel
/// per goroutine stays small (an `align(64)` header cost a whole padding
/// line plus the aligned allocator's slack). Fields are in the order an
/// operation touches them: the lock, the four flag bytes (closed, the two
/// readiness hints, `foreign`) and the 32-bit sender count filling the
/// rest of that 16 bytes, the buffer's header and both wait queues, all
/// written under the lock; then `cap`, read on every operation but never
/// written: 72 bytes for a word-sized `T`. There is no lock-free `qcount`
/// mirror: it would be one more store per operation.
#[repr(C)]
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
    /// Code off the runtime (a plain thread, another executor's task) has
    /// used this channel: goroutines parked on it may be woken from
    /// outside, so the deadlock detector must not count them. Set once,
    /// under the lock (`become_foreign`); read by parking goroutines.
    foreign: AtomicBool,
    /// Live `Sender`s: the last one dropped closes the channel. 32 bits,
    /// in what would be padding after the flags (see `MAX_SENDERS`).
    pub(crate) senders: AtomicU32,
    state: UnsafeCell<State<T>>,
    /// `dataqsiz`.
    cap: usize,
}

/// More live `Sender`s of one channel than this is refused with a panic
/// (a leak of clones, as `Arc`'s count overflow is an abort).
pub(crate) const MAX_SENDERS: u32 = u32::MAX / 2;

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

impl<T> Chan<T> {
    /// Record a use (try forms, close) if it comes from off the runtime.
    #[inline]
    pub(crate) fn note_use(&self) {
        if !crate::sync::in_runtime() {
            self.note_foreign();
        }
    }

    /// Record a use known to come from off the runtime.
    #[inline]
    pub(crate) fn note_foreign(&self) {
        if !self.foreign.load(Relaxed) {
            self.become_foreign();
        }
    }

    /// The first use from off the runtime. Goroutines already parked here
    /// carry a wait reason the deadlock detector counts as dead; they are
    /// woken (a spurious wake: their next poll finds the sudog still
    /// queued) so that they park again as waiting on the outside.
    #[cold]
    fn become_foreign(&self) {
        let mut wakers = Vec::new();
        self.lock();
        if !self.foreign.load(Relaxed) {
            self.foreign.store(true, Relaxed);
            // SAFETY: lock held; queued sudogs are alive.
            unsafe {
                let st = self.st();
                st.recvq.for_each(|k| wakers.push(k.clone()));
                st.sendq.for_each(|k| wakers.push(k.clone()));
            }
        }
        // SAFETY: we hold it.
        unsafe { self.unlock() };
        for w in wakers {
            w.wake();
        }
    }

    /// Whether code off the runtime has used this channel. Read by a
    /// goroutine about to park, after taking the lock at least once in the
    /// same poll, which orders it after `become_foreign`'s store.
    #[inline]
    pub(crate) fn is_foreign(&self) -> bool {
        self.foreign.load(Relaxed)
    }

    /// The wait reason for a park on this channel.
    #[inline]
    pub(crate) fn park_reason(&self, w: Wait) {
        if self.is_foreign() {
            crate::sync::set_wait_reason_external(w);
        } else {
            set_wait_reason(w);
        }
    }

    #[track_caller]
    pub(crate) fn new(cap: usize) -> Chan<T> {
        check_cap::<T>(cap);
        Chan {
            lock: RawLock::new(),
            closed: AtomicBool::new(false),
            recv_ready: AtomicBool::new(false),
            send_ready: AtomicBool::new(cap > 0),
            foreign: AtomicBool::new(false),
            senders: AtomicU32::new(1),
            state: UnsafeCell::new(State {
                buf: VecDeque::new(),
                recvq: WaitQ::new(),
                sendq: WaitQ::new(),
            }),
            cap,
        }
    }

    /// Append to the buffer (there is room: `len < cap`), growing it first
    /// if it is full: doubling, but never past `cap`, so a large capacity
    /// costs memory only as values arrive.
    #[inline]
    fn push_back(&self, st: &mut State<T>, v: T) {
        if st.buf.len() == st.buf.capacity() {
            self.grow(st);
        }
        st.buf.push_back(v);
    }

    #[cold]
    #[inline(never)]
    fn grow(&self, st: &mut State<T>) {
        let len = st.buf.len();
        let want = len
            .saturating_mul(2)
            .max(4)
            .clamp(len + 1, self.cap.max(len + 1));
        st.buf.reserve_exact(want - len);
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
    #[inline(always)]
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
                        self.push_back(st, sv);
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
    #[inline(always)]
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
            self.push_back(st, v);
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

    /// The lock and what an operation writes come first (see `Chan`).
    #[test]
    fn hot_fields_first() {
        assert_eq!(offset_of!(Chan<u64>, lock), 0);
        assert!(offset_of!(Chan<u64>, closed) < 16);
        assert!(offset_of!(Chan<u64>, recv_ready) < 16);
        assert!(offset_of!(Chan<u64>, send_ready) < 16);
        assert!(offset_of!(Chan<u64>, state) < offset_of!(Chan<u64>, cap));
        assert_eq!(std::mem::align_of::<Chan<u64>>(), 8);
    }

    /// A lean channel: the `Arc` allocation (two counts and the `Chan`) of
    /// a channel of `u64`, with malloc's 8-byte chunk header rounded to 16,
    /// and its `Sender` handle, stay within 160 bytes, with the buffer's one
    /// slot (malloc's smallest chunk, 32 bytes) once it has been used.
    #[test]
    fn channel_and_sender_fit_160_bytes() {
        assert!(size_of::<Chan<u64>>() <= 72, "{}", size_of::<Chan<u64>>());
        let arc = 16 + size_of::<Chan<u64>>();
        let chunk = (arc + 8).div_ceil(16) * 16;
        let total = chunk + size_of::<crate::Sender<u64>>() + 32;
        assert!(total <= 160, "{total} bytes");
    }
}
