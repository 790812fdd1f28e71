//! hchan: the channel object (`makechan`'s check, its layout, the
//! readiness hints) and Go's `closechan`. The lock guard and the locked
//! core of `chansend` and `chanrecv` (the methods of `Locked`, which only a
//! held lock can produce) are in `hchan/locked.rs`; the blocking side (a
//! sudog parking, re-polling, cancelling) in `block.rs`; the sudogs in
//! `sudog.rs`, their wait queues in `sudog/waitq.rs`. The buffer of a
//! channel of capacity 2 to a few thousand is a lock-free ring
//! (`hchan/ring.rs`; its locked side, `hchan/settle.rs`). The futures, the
//! public handles and `selectgo` are thin layers over these functions.

use crate::sudog::{Status, WaitQ};
use crate::sync::{set_wait_reason, AtomicBool, AtomicU32, AtomicU8, RawLock, Wait};
use crate::wakes::Wakes;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::task::Waker;

mod locked;
mod ring;
mod settle;
pub(crate) use locked::{ChanGuard, Locked};
pub(crate) use ring::Ring;
use ring::{ring_cap, CLOSED, RECV_WAITING, SEND_WAITING};

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
    recvq: WaitQ<T>,
    sendq: WaitQ<T>,
}

/// The buffer, one of two kinds fixed at `make` by the capacity
/// (`ring_cap`): a `VecDeque` under the lock, at most `cap` slots,
/// allocated as it fills (see `Locked::push_back`), so an idle or
/// unbuffered channel has none; or, for capacities from 2 to a few
/// thousand, the lock-free `Ring` (its own allocation, see
/// `hchan/ring.rs`). A union rather than an enum: the kind is known from
/// `cap`, and a tag would cost the channel a word. The `VecDeque` can
/// briefly hold more than `cap` values when a cancelled receiver gives a
/// handed-off value back (see `reinject`).
union Buffer<T> {
    /// Only under the lock.
    deque: ManuallyDrop<UnsafeCell<VecDeque<T>>>,
    /// Never replaced: read without the lock.
    ring: ManuallyDrop<Box<Ring<T>>>,
}

/// Go's hchan.
///
/// Layout: one `Arc` allocation with no over-alignment, so that a channel
/// per goroutine stays small (an `align(64)` header cost a whole padding
/// line plus the aligned allocator's slack). Fields are in the order an
/// operation touches them: the lock, the four flag bytes (closed, the two
/// readiness hints, `foreign`) and the 32-bit sender count filling the
/// rest of that 16 bytes, the buffer (a `VecDeque` header, or the pointer
/// to a `Ring`) and both wait queues, all written under the lock; then
/// `cap`, read on every operation but never written: 72 bytes for a
/// word-sized `T`. There is no lock-free `qcount` mirror: it would be one
/// more store per operation.
#[repr(C)]
pub(crate) struct Chan<T> {
    lock: RawLock,
    /// Go's `closed`. Written under the lock (Release) and read under it,
    /// and without it by `is_closed` and the `*_looks_ready` hints (hence
    /// an atomic).
    closed: AtomicBool,
    /// Hint for `selectgo`'s lock-free fast path: a value is buffered or a
    /// sender is queued. See `recv_looks_ready`.
    recv_ready: Hint,
    /// Hint: a receiver is queued or there is buffer space. See
    /// `send_looks_ready`.
    send_ready: Hint,
    /// Code off the runtime (a plain thread, another executor's task) has
    /// used this channel: goroutines parked on it may be woken from
    /// outside, so the deadlock detector must not count them. Set once,
    /// under the lock (`become_foreign`); read by parking goroutines.
    foreign: AtomicBool,
    /// Live `Sender`s: the last one dropped closes the channel. 32 bits,
    /// in what would be padding after the flags (see `MAX_SENDERS`).
    pub(crate) senders: AtomicU32,
    buf: Buffer<T>,
    state: UnsafeCell<State<T>>,
    /// `dataqsiz`.
    cap: usize,
}

/// A readiness hint byte (see `Chan::recv_looks_ready`): 0 or 1, or,
/// fixed from `make` on, `RING` on a channel with a ring, whose readiness
/// is read off the ring's words instead. One byte load tells a select's
/// probe both, without looking at `cap`.
pub(crate) struct Hint(AtomicU8);

impl Hint {
    const RING: u8 = 2;

    fn new(ring: bool, ready: bool) -> Hint {
        Hint(AtomicU8::new(if ring { Hint::RING } else { ready as u8 }))
    }

    /// Only channels without a ring store hints.
    #[inline(always)]
    pub(crate) fn store(&self, ready: bool, o: std::sync::atomic::Ordering) {
        self.0.store(ready as u8, o);
    }

    #[inline(always)]
    pub(crate) fn load(&self, o: std::sync::atomic::Ordering) -> u8 {
        self.0.load(o)
    }
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
    /// With the receiver to wake, if the value went to a queued one.
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
            recv_ready: Hint::new(ring_cap::<T>(cap), false),
            send_ready: Hint::new(ring_cap::<T>(cap), cap > 0),
            foreign: AtomicBool::new(false),
            senders: AtomicU32::new(1),
            buf: if ring_cap::<T>(cap) {
                Buffer {
                    ring: ManuallyDrop::new(Box::new(Ring::new(cap))),
                }
            } else {
                Buffer {
                    deque: ManuallyDrop::new(UnsafeCell::new(VecDeque::new())),
                }
            },
            state: UnsafeCell::new(State {
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

    /// The lock-free ring, if this channel has one (see `Buffer`). Told
    /// by the `send_ready` hint byte, which holds `Hint::RING` exactly when
    /// `cap` does (set at `make`, never stored to on such a channel): the
    /// byte is on the lock's cache line, which every operation of a
    /// channel without a ring touches anyway, and `cap` may not be.
    #[inline(always)]
    pub(crate) fn ring(&self) -> Option<&Ring<T>> {
        if self.send_ready.load(Relaxed) == Hint::RING {
            debug_assert!(ring_cap::<T>(self.cap));
            // SAFETY: the byte says `new` wrote the ring (see above); its
            // box is never replaced.
            Some(unsafe { &self.buf.ring })
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        if self.cap == 0 {
            return 0;
        }
        let mut g = self.lock();
        let n = match self.ring() {
            // SAFETY: the lock is held (`g`).
            Some(r) => r.len() + unsafe { r.stash() }.len(),
            None => g.deque().len(),
        };
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

    /// The readiness hints match the state whenever the lock is released
    /// (a channel with a ring has none: its hints are read off the ring).
    ///
    /// # Safety
    /// The lock is held, and no `&mut` to the deque is alive.
    #[cfg(debug_assertions)]
    unsafe fn check_hints(&self, st: &State<T>) {
        if self.ring().is_some() {
            return;
        }
        // SAFETY: no ring: the deque; the caller's contract.
        let buf = unsafe { &*self.buf.deque.get() };
        debug_assert_eq!(
            self.recv_ready.load(Relaxed) != 0,
            !buf.is_empty() || !st.sendq.is_empty(),
            "stale recv_ready"
        );
        debug_assert_eq!(
            self.send_ready.load(Relaxed) != 0,
            !st.recvq.is_empty() || buf.len() < self.cap,
            "stale send_ready"
        );
    }

    /// Lock-free guess: might a receive proceed now? With a ring, read
    /// off its words: a value, or a flag (under the lock this errs only
    /// towards yes, as the hints do).
    #[inline]
    pub(crate) fn recv_looks_ready(&self) -> bool {
        match self.recv_ready.load(Relaxed) {
            Hint::RING => self.recv_looks_ready_ring(),
            h => h != 0 || self.closed.load(Relaxed),
        }
    }

    #[inline(never)]
    fn recv_looks_ready_ring(&self) -> bool {
        let Some(r) = self.ring() else { return true };
        let (h, t) = r.words();
        Ring::<T>::nonempty(h, t) || (h | t) & (RECV_WAITING | SEND_WAITING | CLOSED) != 0
    }

    /// Lock-free guess: might a send proceed now?
    #[inline]
    pub(crate) fn send_looks_ready(&self) -> bool {
        match self.send_ready.load(Relaxed) {
            Hint::RING => self.send_looks_ready_ring(),
            h => h != 0 || self.closed.load(Relaxed),
        }
    }

    #[inline(never)]
    fn send_looks_ready_ring(&self) -> bool {
        let Some(r) = self.ring() else { return true };
        let (h, t) = r.words();
        r.len() < r.cap() || (h & RECV_WAITING) | (t & CLOSED) != 0
    }

    /// Go's `closechan`: returns false if it was already closed. Every
    /// queued receiver and sender is completed with `Closed` (senders keep
    /// their value, to return it) and woken after the lock is dropped.
    pub(crate) fn close(&self) -> bool {
        let mut wakes = Wakes::new();
        {
            let mut g = self.lock();
            if g.closed() {
                return false;
            }
            if let Some(r) = self.ring() {
                // Before `closed`: whoever sees `closed` then sees the
                // flag, and no lock-free send lands after it. Sends that
                // claimed a slot before it still land; queued receivers
                // get what is buffered first.
                r.set_flag(CLOSED, true);
                g.settle(r, &mut wakes);
            }
            self.closed.store(true, Release);
            while let Some(sg) = g.st().recvq.dequeue() {
                wakes.add(sg.finish(Status::Closed));
            }
            while let Some(sg) = g.st().sendq.dequeue() {
                wakes.add(sg.finish(Status::Closed));
            }
            match self.ring() {
                Some(r) => g.update_flags(r),
                None => {
                    g.refresh_recv_ready();
                    g.refresh_send_ready();
                }
            }
        }
        wakes.wake();
        true
    }

    /// A value was handed to a receiver whose future is gone: give it to the
    /// next waiting receiver, or put it back at the head of the buffer (it
    /// was sent before anything buffered now), so it is neither lost nor
    /// reordered.
    pub(crate) fn reinject(&self, v: T) {
        let mut wakes = Wakes::new();
        {
            let mut g = self.lock();
            match g.st().recvq.dequeue() {
                Some(mut sg) => {
                    *sg.elem() = Some(v);
                    wakes.add(sg.finish(Status::Ok));
                }
                None => match self.ring() {
                    // SAFETY: the lock is held (`g`).
                    Some(r) => unsafe { r.stash() }.push_front(v),
                    None => {
                        g.deque().push_front(v);
                        self.recv_ready.store(true, Relaxed);
                    }
                },
            }
            match self.ring() {
                Some(r) => g.update_flags(r),
                None => g.refresh_send_ready(),
            }
        }
        wakes.wake();
    }

    /// Whether any goroutine is queued (tests and debug asserts).
    #[allow(dead_code)]
    pub(crate) fn has_waiters(&self) -> bool {
        let g = self.lock();
        !g.st_ref().recvq.is_empty() || !g.st_ref().sendq.is_empty()
    }
}

impl<T> Drop for Chan<T> {
    fn drop(&mut self) {
        if ring_cap::<T>(self.cap) {
            // SAFETY: `cap` says `new` wrote the ring; dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.buf.ring) };
        } else {
            // SAFETY: likewise the deque.
            unsafe { ManuallyDrop::drop(&mut self.buf.deque) };
        }
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
