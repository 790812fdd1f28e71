//! hchan: the channel object (`makechan`'s check, its layout, the
//! buffer), its lock guard, and the locked core of Go's `chansend`,
//! `chanrecv` and `closechan`: the methods of `Locked`, which only a held
//! lock can produce. The blocking side (a sudog parking, re-polling, cancelling) is in
//! `block.rs`; the sudogs and wait queues in `sudog.rs`. The futures, the
//! public handles and `selectgo` are thin layers over these functions.

use crate::error::RecvError;
use crate::sudog::{Status, WaitQ, Waiter};
use crate::sync::{set_wait_reason, AtomicBool, AtomicU32, RawLock, Wait};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
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
// through `Locked`, which exists only while `lock` is held; moving `T`s
// between threads needs `T: Send`.
unsafe impl<T: Send> Send for Chan<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Chan<T> {}

/// Which of a channel's wait queues a sudog is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Queue {
    /// `recvq`: blocked receivers.
    Recv,
    /// `sendq`: blocked senders.
    Send,
}

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
        {
            let g = self.lock();
            if !self.foreign.load(Relaxed) {
                self.foreign.store(true, Relaxed);
                g.st_ref().recvq.for_each(|k| wakers.push(k.clone()));
                g.st_ref().sendq.for_each(|k| wakers.push(k.clone()));
            }
        }
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

    #[inline]
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        if self.cap == 0 {
            return 0;
        }
        let n = self.lock().st().buf.len();
        // A cancelled receiver's value put back can overfill the buffer for a
        // moment; `len <= cap` is the contract.
        n.min(self.cap)
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Acquire)
    }

    /// Take the channel lock; it is released when the guard is dropped
    /// (also by a panic unwinding through the critical section).
    #[inline]
    pub(crate) fn lock(&self) -> ChanGuard<'_, T> {
        self.lock.lock();
        // SAFETY: we just took the lock, and the guard that holds this
        // proof releases it when it goes.
        ChanGuard(unsafe { self.assume_locked() })
    }

    /// The proof of a lock taken with `lock_raw` (selectgo's sellock).
    ///
    /// # Safety
    /// The caller holds the lock and keeps holding it for `'a`, and no
    /// other `Locked` of this channel is alive meanwhile.
    #[inline]
    pub(crate) unsafe fn assume_locked(&self) -> Locked<'_, T> {
        Locked { chan: self }
    }

    /// Take the lock without a guard: only for selectgo, which locks
    /// several channels in address order and releases them together
    /// (Go's `sellock`/`selunlock`).
    #[inline]
    pub(crate) fn lock_raw(&self) {
        self.lock.lock();
    }

    /// Release a lock taken with `lock_raw`.
    ///
    /// # Safety
    /// The caller holds the lock (taken with `lock_raw`) and no `Locked`
    /// of this channel is alive.
    #[inline]
    pub(crate) unsafe fn unlock_raw(&self) {
        #[cfg(debug_assertions)]
        // SAFETY: the caller holds the lock and no `Locked` is alive, so
        // a shared look at the state is exclusive of writers.
        unsafe {
            self.check_hints(&*self.state.get())
        };
        // SAFETY: the caller's contract.
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

    /// Go's `closechan`: returns false if it was already closed. Every
    /// queued receiver and sender is completed with `Closed` (senders keep
    /// their value, to return it) and woken after the lock is dropped.
    pub(crate) fn close(&self) -> bool {
        let mut wakers = Vec::new();
        {
            let mut g = self.lock();
            if g.closed() {
                return false;
            }
            self.closed.store(true, Release);
            while let Some(sg) = g.st().recvq.dequeue() {
                wakers.extend(sg.finish(Status::Closed));
            }
            while let Some(sg) = g.st().sendq.dequeue() {
                wakers.extend(sg.finish(Status::Closed));
            }
            g.refresh_recv_ready();
            g.refresh_send_ready();
        }
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
        {
            let mut g = self.lock();
            match g.st().recvq.dequeue() {
                Some(mut sg) => {
                    *sg.elem() = Some(v);
                    wake = sg.finish(Status::Ok);
                }
                None => {
                    g.st().buf.push_front(v);
                    self.recv_ready.store(true, Relaxed);
                }
            }
            g.refresh_send_ready();
        }
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Whether any goroutine is queued (tests and debug asserts).
    #[allow(dead_code)]
    pub(crate) fn has_waiters(&self) -> bool {
        let g = self.lock();
        !g.st_ref().recvq.is_empty() || !g.st_ref().sendq.is_empty()
    }
}

/// The proof that a channel's lock is held, and the only way to its
/// locked state: the locked halves of Go's `chansend`, `chanrecv` and the
/// queue operations are its methods. Made by `Chan::lock` (inside a
/// `ChanGuard`) or, for selectgo's locks taken together, by
/// `Chan::assume_locked`.
///
/// It is the channel pointer alone (the state is found from it), so that
/// it costs what a `&Chan` costs.
pub(crate) struct Locked<'a, T> {
    chan: &'a Chan<T>,
}

/// The channel lock, held: unlocks when dropped (also on a panic), and
/// derefs to the `Locked` proof.
pub(crate) struct ChanGuard<'a, T>(Locked<'a, T>);

impl<'a, T> Deref for ChanGuard<'a, T> {
    type Target = Locked<'a, T>;
    #[inline]
    fn deref(&self) -> &Locked<'a, T> {
        &self.0
    }
}

impl<'a, T> DerefMut for ChanGuard<'a, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Locked<'a, T> {
        &mut self.0
    }
}

impl<T> Drop for ChanGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // A panic may have left the hints half-updated: no second panic.
        #[cfg(debug_assertions)]
        if !std::thread::panicking() {
            self.0.chan.check_hints(self.0.st_ref());
        }
        // SAFETY: the guard's existence is our holding the lock, and its
        // `Locked` (with the `&mut State`) goes with it.
        unsafe { self.0.chan.lock.unlock() }
    }
}

impl<T> Locked<'_, T> {
    /// The locked state.
    #[inline(always)]
    fn st(&mut self) -> &mut State<T> {
        // SAFETY: this `Locked` is the proof that the lock is held, and it
        // is the only one of this channel (see `Chan::assume_locked`); the
        // `&mut self` borrow makes this the only reference into the state.
        unsafe { &mut *self.chan.state.get() }
    }

    /// The locked state, to read.
    #[inline(always)]
    fn st_ref(&self) -> &State<T> {
        // SAFETY: as in `st`, shared with `&self`.
        unsafe { &*self.chan.state.get() }
    }

    /// Closed? Lock held: the lock orders this load after `close`'s store.
    #[inline]
    fn closed(&self) -> bool {
        self.chan.closed.load(Relaxed)
    }

    /// Append to the buffer (there is room: `len < cap`), growing it first
    /// if it is full: doubling, but never past `cap`, so a large capacity
    /// costs memory only as values arrive.
    #[inline]
    fn push_back(&mut self, v: T) {
        if self.st().buf.len() == self.st().buf.capacity() {
            self.grow();
        }
        self.st().buf.push_back(v);
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let len = self.st().buf.len();
        let want = len
            .saturating_mul(2)
            .max(4)
            .clamp(len + 1, self.chan.cap.max(len + 1));
        self.st().buf.reserve_exact(want - len);
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
    // close they still describe the emptied queues); the readers look at
    // `closed` as well.

    /// After the buffer or `sendq` changed.
    #[inline]
    fn refresh_recv_ready(&self) {
        let st = self.st_ref();
        self.chan
            .recv_ready
            .store(!st.buf.is_empty() || !st.sendq.is_empty(), Relaxed);
    }

    /// After the buffer or `recvq` changed.
    #[inline]
    fn refresh_send_ready(&self) {
        let st = self.st_ref();
        self.chan.send_ready.store(
            !st.recvq.is_empty() || st.buf.len() < self.chan.cap,
            Relaxed,
        );
    }

    /// The non-blocking body of Go's `chanrecv`: buffer first (refilled
    /// from the first blocked sender: chan.go `recv` on a full buffer),
    /// else straight from a blocked sender, else closed. `None` means it
    /// would block.
    #[inline(always)]
    pub(crate) fn recv(&mut self, wake: &mut Option<Waker>) -> Option<Result<T, RecvError>> {
        let cap = self.chan.cap;
        if let Some(v) = self.st().buf.pop_front() {
            if self.st().buf.len() < cap {
                match self.st().sendq.dequeue() {
                    // A sender refilled the slot: the buffer is as long as
                    // before and still not empty, so both hints stand.
                    Some(mut sg) => {
                        let sv = sg.elem().take().expect("send sudog without value");
                        *wake = sg.finish(Status::Ok);
                        self.push_back(sv);
                    }
                    // `sendq` is empty now.
                    None => {
                        self.chan
                            .recv_ready
                            .store(!self.st().buf.is_empty(), Relaxed);
                        self.chan.send_ready.store(true, Relaxed);
                    }
                }
            } else {
                // Still full (or over-full after a `reinject`).
                self.refresh_recv_ready();
            }
            return Some(Ok(v));
        }
        // An empty `sendq` needs no dequeue and leaves the hint as it is,
        // which keeps the unbuffered park path free of hint work.
        if !self.st().sendq.is_empty() {
            if let Some(mut sg) = self.st().sendq.dequeue() {
                let v = sg.elem().take().expect("send sudog without value");
                *wake = sg.finish(Status::Ok);
                // The buffer is empty.
                self.chan
                    .recv_ready
                    .store(!self.st().sendq.is_empty(), Relaxed);
                return Some(Ok(v));
            }
            // `dequeue` dropped the sudogs of selects that were won
            // elsewhere, and the queue is empty now.
            self.chan.recv_ready.store(false, Relaxed);
        }
        if self.closed() {
            return Some(Err(RecvError));
        }
        None
    }

    /// The non-blocking body of Go's `chansend`: closed, else hand
    /// directly to the first waiting receiver, else the buffer.
    #[inline(always)]
    pub(crate) fn send(&mut self, v: T) -> SendTry<T> {
        if self.closed() {
            return SendTry::Closed(v);
        }
        // As in `recv`: no hint work when nobody is queued.
        if !self.st().recvq.is_empty() {
            if let Some(mut sg) = self.st().recvq.dequeue() {
                *sg.elem() = Some(v);
                let w = sg.finish(Status::Ok);
                self.refresh_send_ready();
                return SendTry::Sent(w);
            }
            // `dequeue` dropped the sudogs of selects won elsewhere.
            self.refresh_send_ready();
        }
        let cap = self.chan.cap;
        if self.st().buf.len() < cap {
            self.push_back(v);
            self.chan.recv_ready.store(true, Relaxed);
            // `recvq` is empty (no receiver took the value).
            self.chan
                .send_ready
                .store(self.st().buf.len() < cap, Relaxed);
            return SendTry::Sent(None);
        }
        SendTry::Full(v)
    }

    /// One of the two wait queues.
    #[inline(always)]
    fn waitq(&mut self, q: Queue) -> &mut WaitQ<T> {
        let st = self.st();
        match q {
            Queue::Recv => &mut st.recvq,
            Queue::Send => &mut st.sendq,
        }
    }

    /// Queue the owner's sudog on `q`.
    ///
    /// # Safety
    /// `w` was prepared (`Waiter::prepare`) and is not queued; it is
    /// pinned and stays alive until it is unlinked (its owner removes it
    /// from this channel before it goes away).
    #[inline]
    pub(crate) unsafe fn enqueue(&mut self, w: &mut Waiter<T>, q: Queue) {
        // SAFETY: the caller's contract.
        unsafe { self.waitq(q).enqueue(w) };
        // A waiter makes the other direction ready.
        match q {
            Queue::Send => self.chan.recv_ready.store(true, Relaxed),
            Queue::Recv => self.chan.send_ready.store(true, Relaxed),
        }
    }

    /// The owner unlinks its sudog from `q` if it is still linked there
    /// (see `WaitQ::remove`).
    ///
    /// # Safety
    /// If `w` is queued, it was queued on this channel's `q`.
    #[inline]
    pub(crate) unsafe fn remove(&mut self, w: &mut Waiter<T>, q: Queue) {
        // SAFETY: the caller's contract.
        unsafe { self.waitq(q).remove(w) };
        match q {
            Queue::Send => self.refresh_recv_ready(),
            Queue::Recv => self.refresh_send_ready(),
        }
    }

    /// The channel this proof is for.
    #[inline]
    pub(crate) fn chan(&self) -> &Chan<T> {
        self.chan
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
