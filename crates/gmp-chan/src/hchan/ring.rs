//! The lock-free buffer of a channel of moderate capacity (`Ring`): a
//! bounded ring of `cap` slots whose sends and receives claim a position
//! with one compare-and-swap and never take the channel lock while nobody
//! waits. The lock, the sudog queues and the rest of Go's hchan stay in
//! charge of everything else: the flag bits in the two position words send
//! an operation to the locked path (`hchan/settle.rs`) whenever a goroutine
//! is queued, a value was given back, or the channel is closed.
//!
//! Positions. `head` (next to receive) and `tail` (next to send) count
//! laps: a position is `lap * one_lap + index`, `index < cap`, `one_lap`
//! the power of two at or above `cap`, so that the index is a mask and
//! stepping past the last slot jumps to the next lap. Each slot carries a
//! `stamp`: equal to a position `p` mapping to it, the slot is free for
//! the send at `p`; equal to `p + 1`, it holds the value sent at `p`; a
//! receive at `p` sets it to `p + one_lap`, the next lap's send.
//!
//! A send claims `p = tail` by moving `tail` on (a compare-and-swap),
//! writes the value and publishes the stamp (Release); a receive claims
//! `head` the same way once the stamp says the value is there. Between a
//! claim and its stamp the slot is in flight; only the locked path ever
//! waits for one to land (`spin_wait`), lock-free callers give up and take
//! the lock instead.
//!
//! Why no wake-up is lost: the flags saying who is queued are in both
//! position words (`RECV_WAITING`, `SEND_WAITING`), so a lock-free op
//! learns them from the very compare-and-swap that claims its position,
//! with no load of the other side's line. A goroutine that parks sets its
//! flag in both words (read-modify-writes) and then looks at the ring
//! again (`Locked::settle`). All read-modify-writes of one word are in a
//! single order: a claim that came before the flag shows in the parking
//! goroutine's look, and a claim after it carried the flag in the value it
//! replaced, so the claimer settles the queues under the lock itself.

use crate::sync::{spin_wait, AtomicPtr, AtomicU64, SlotCell};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};

/// In both words: receivers are queued, or a value was given back ahead
/// of the ring (see `stash`). Lock-free receives refuse to run past them;
/// a lock-free send that claimed a slot settles the queues.
pub(crate) const RECV_WAITING: u64 = 1 << 61;
/// In both words: senders are queued. Lock-free sends refuse to run past
/// them; a lock-free receive that freed a slot settles the queues.
pub(crate) const SEND_WAITING: u64 = 1 << 62;
/// In `tail`: the channel is closed; sends fail (under the lock).
pub(crate) const CLOSED: u64 = 1 << 63;
const POS: u64 = RECV_WAITING - 1;

/// Capacities from 2 up to this many slots (and at most `RING_BYTES` of
/// them) get a ring; others keep the locked `VecDeque`, which grows as it
/// fills (a ring is allocated whole, on the first buffered value).
const RING_BYTES: usize = 64 << 10;

/// Whether a channel of `cap` values of `T` gets a `Ring`.
#[inline(always)]
pub(crate) const fn ring_cap<T>(cap: usize) -> bool {
    let slot = std::mem::size_of::<Slot<T>>();
    cap >= 2 && cap <= RING_BYTES / slot
}

/// A lost compare-and-swap: the other core has the position word. Wait
/// as long as Go's lock spin waits between looks (`procyield(30)`) before
/// retrying, so that the core holding the line runs a burst of operations
/// with it instead of both cores paying for its move on every one. A
/// shorter first wait, growing, measured worse at procs = 2 (docs/benchmarks.md).
#[inline]
fn contended() {
    #[cfg(not(loom))]
    for _ in 0..30 {
        std::hint::spin_loop();
    }
}

struct Slot<T> {
    stamp: AtomicU64,
    value: SlotCell<T>,
}

/// The position words on lines of their own: senders write `tail`,
/// receivers `head`, and neither should stall the other.
#[repr(align(64))]
struct Line<X>(X);

/// See the module docs.
pub(crate) struct Ring<T> {
    head: Line<AtomicU64>,
    tail: Line<AtomicU64>,
    /// `cap` slots, allocated under the lock on the first send that
    /// reaches the ring (null before: an idle channel holds no buffer).
    slots: AtomicPtr<Slot<T>>,
    cap: usize,
    /// `one_lap - 1`: a position's index bits.
    mask: u64,
    /// `cap - 1`, the last index.
    last: u64,
    /// From the last index of a lap to the first of the next:
    /// `one_lap - cap + 1`.
    wrap: u64,
    one_lap: u64,
    /// Values given back by cancelled receivers (`Chan::reinject`): they
    /// were sent before everything in the ring, so receivers take them
    /// first. Touched only under the channel lock; `head`'s `WAITING`
    /// flag is set while it is not empty.
    stash: UnsafeCell<VecDeque<T>>,
}

// SAFETY: values move between threads through the slots (claimed by one
// thread at a time, see the module docs) and the stash (under the channel
// lock): `T: Send` is what that needs.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    pub(crate) fn new(cap: usize) -> Ring<T> {
        debug_assert!(ring_cap::<T>(cap));
        Ring {
            head: Line(AtomicU64::new(0)),
            tail: Line(AtomicU64::new(0)),
            slots: AtomicPtr::new(ptr::null_mut()),
            cap,
            mask: cap.next_power_of_two() as u64 - 1,
            last: cap as u64 - 1,
            wrap: (cap.next_power_of_two() - cap) as u64 + 1,
            one_lap: cap.next_power_of_two() as u64,
            stash: UnsafeCell::new(VecDeque::new()),
        }
    }

    /// The position word after `p` (its flags kept).
    #[inline(always)]
    fn next(&self, p: u64) -> u64 {
        // The index bits are the low ones, under any flags, and positions
        // never carry into the flags (2^61 operations): stepping the word
        // itself keeps its flags.
        p + if p & self.mask == self.last {
            self.wrap
        } else {
            1
        }
    }

    /// The slot of position `p`.
    ///
    /// # Safety
    /// `slots` is this ring's (non-null) slot array.
    #[inline(always)]
    unsafe fn slot<'a>(&self, slots: *const Slot<T>, p: u64) -> &'a Slot<T> {
        // SAFETY: the index is below `cap`, the array's length.
        unsafe { &*slots.add((p & self.mask) as usize) }
    }

    /// Values between positions `h <= t`.
    #[inline]
    fn count(&self, h: u64, t: u64) -> usize {
        let m = self.mask;
        let laps = ((t & !m) - (h & !m)) / self.one_lap;
        (laps as usize * self.cap + (t & m) as usize).saturating_sub((h & m) as usize)
    }

    /// Values in the ring now, in-flight ones included (a snapshot).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        // `head` first: it never passes the `tail` read after it.
        let h = self.head.0.load(SeqCst) & POS;
        let t = self.tail.0.load(SeqCst) & POS;
        self.count(h, t.max(h)).min(self.cap)
    }

    /// The lock-free send: `Err(v)` if the ring is full, not allocated
    /// yet, or a flag sends senders to the lock. `Ok(true)` when
    /// receivers are waiting: the caller settles under the lock.
    #[inline(always)]
    pub(crate) fn push_fast(&self, v: T) -> Result<bool, T> {
        let slots = self.slots.load(Acquire);
        if slots.is_null() {
            return Err(v);
        }
        let mut t = self.tail.0.load(Relaxed);
        loop {
            if t & (SEND_WAITING | CLOSED) != 0 {
                return Err(v);
            }
            let p = t & POS;
            // SAFETY: `slots` is non-null.
            let slot = unsafe { self.slot(slots, p) };
            let s = slot.stamp.load(Acquire);
            if s == p {
                let next = self.next(t);
                match self.tail.0.compare_exchange_weak(t, next, AcqRel, Relaxed) {
                    Ok(_) => {
                        // SAFETY: the claim of position `p` makes the
                        // free slot ours until the stamp below.
                        unsafe { slot.value.write(v) };
                        slot.stamp.store(p + 1, Release);
                        return Ok(t & RECV_WAITING != 0);
                    }
                    Err(now) => {
                        t = now;
                        contended();
                    }
                }
            } else if s.wrapping_add(self.one_lap) == p + 1 {
                // Last lap's value is still there: full (or being taken).
                return Err(v);
            } else {
                // Another sender claimed `t` first.
                t = self.tail.0.load(Relaxed);
            }
        }
    }

    /// The lock-free receive: `None` if the ring is empty (or a value is
    /// in flight) or a flag sends receivers to the lock. With the value,
    /// whether senders are waiting: the caller settles under the lock.
    #[inline(always)]
    pub(crate) fn pop_fast(&self) -> Option<(T, bool)> {
        let slots = self.slots.load(Acquire);
        if slots.is_null() {
            return None;
        }
        let mut h = self.head.0.load(Relaxed);
        loop {
            if h & RECV_WAITING != 0 {
                return None;
            }
            let p = h & POS;
            // SAFETY: `slots` is non-null.
            let slot = unsafe { self.slot(slots, p) };
            let s = slot.stamp.load(Acquire);
            if s == p + 1 {
                let next = self.next(h);
                match self.head.0.compare_exchange_weak(h, next, AcqRel, Relaxed) {
                    Ok(_) => {
                        // SAFETY: the claim of `p` makes the written slot
                        // (its stamp, Acquire) ours until the stamp below.
                        let v = unsafe { slot.value.read() };
                        slot.stamp.store(p + self.one_lap, Release);
                        return Some((v, h & SEND_WAITING != 0));
                    }
                    Err(now) => {
                        h = now;
                        contended();
                    }
                }
            } else if s == p {
                // Empty, or the send at `h` is in flight.
                return None;
            } else {
                h = self.head.0.load(Relaxed);
            }
        }
    }

    /// The send under the channel lock, past any flag (the caller has
    /// checked `closed` and the queues): `Err(v)` only when full. Waits
    /// out a receive in flight in the slot it needs.
    pub(crate) fn push_locked(&self, v: T) -> Result<(), T> {
        let slots = self.slots_or_alloc();
        let mut round = 0;
        let mut t = self.tail.0.load(Relaxed);
        loop {
            let p = t & POS;
            // SAFETY: allocated.
            let slot = unsafe { self.slot(slots, p) };
            let s = slot.stamp.load(Acquire);
            if s == p {
                let next = self.next(t);
                match self.tail.0.compare_exchange(t, next, AcqRel, Relaxed) {
                    Ok(_) => {
                        // SAFETY: as in `push_fast`.
                        unsafe { slot.value.write(v) };
                        slot.stamp.store(p + 1, Release);
                        return Ok(());
                    }
                    Err(now) => t = now,
                }
            } else if s.wrapping_add(self.one_lap) == p + 1 {
                let h = self.head.0.load(Acquire) & POS;
                if h + self.one_lap == p {
                    return Err(v);
                }
                // A receiver claimed the slot and has not marked it yet.
                spin_wait(&mut round);
                t = self.tail.0.load(Relaxed);
            } else {
                t = self.tail.0.load(Relaxed);
            }
        }
    }

    /// The receive under the channel lock, past any flag: `None` only
    /// when empty. Waits out a send in flight in the head slot.
    pub(crate) fn pop_locked(&self) -> Option<T> {
        let slots = self.slots.load(Acquire);
        if slots.is_null() {
            return None;
        }
        let mut round = 0;
        let mut h = self.head.0.load(Relaxed);
        loop {
            let p = h & POS;
            // SAFETY: non-null.
            let slot = unsafe { self.slot(slots, p) };
            let s = slot.stamp.load(Acquire);
            if s == p + 1 {
                let next = self.next(h);
                match self.head.0.compare_exchange(h, next, AcqRel, Relaxed) {
                    Ok(_) => {
                        // SAFETY: as in `pop_fast`.
                        let v = unsafe { slot.value.read() };
                        slot.stamp.store(p + self.one_lap, Release);
                        return Some(v);
                    }
                    Err(now) => h = now,
                }
            } else if s == p {
                if self.tail.0.load(Acquire) & POS == p {
                    return None;
                }
                // A sender claimed `p` and has not marked it yet.
                spin_wait(&mut round);
                h = self.head.0.load(Relaxed);
            } else {
                h = self.head.0.load(Relaxed);
            }
        }
    }

    /// Under the lock: is there a free slot? Room only grows while the
    /// lock is held with senders queued (`WAITING` keeps lock-free senders
    /// out), so a `push_locked` after a yes succeeds.
    pub(crate) fn has_room(&self) -> bool {
        self.len() < self.cap
    }

    /// The slot array, allocated on first use (under the channel lock).
    fn slots_or_alloc(&self) -> *const Slot<T> {
        let s = self.slots.load(Acquire);
        if !s.is_null() {
            return s;
        }
        let b: Box<[Slot<T>]> = (0..self.cap as u64)
            .map(|i| Slot {
                stamp: AtomicU64::new(i),
                value: SlotCell::new(),
            })
            .collect();
        let p = Box::into_raw(b) as *mut Slot<T>;
        // Release: lock-free callers (Acquire) see initialized stamps.
        self.slots.store(p, Release);
        p
    }

    /// Set or clear a flag in both words (`CLOSED`: in `tail`), under
    /// the lock (the only writer of flags). The word that makes lock-free
    /// ops of that side refuse goes first, so that when the other word
    /// shows the flag, no lock-free op of that side starts any more.
    #[inline]
    pub(crate) fn set_flag(&self, flag: u64, on: bool) {
        let words = if flag == RECV_WAITING {
            [&self.head.0, &self.tail.0]
        } else if flag == SEND_WAITING {
            [&self.tail.0, &self.head.0]
        } else {
            [&self.tail.0, &self.tail.0]
        };
        for w in words {
            if (w.load(Relaxed) & flag != 0) != on {
                if on {
                    w.fetch_or(flag, AcqRel);
                } else {
                    w.fetch_and(!flag, AcqRel);
                }
            }
        }
    }

    /// Flag words, for the readiness hints: (head, tail).
    #[inline]
    pub(crate) fn words(&self) -> (u64, u64) {
        (self.head.0.load(Relaxed), self.tail.0.load(Relaxed))
    }

    /// Whether the words (from `words`) show a value in the ring.
    #[inline]
    pub(crate) fn nonempty(h: u64, t: u64) -> bool {
        (h ^ t) & POS != 0
    }

    /// The given-back values.
    ///
    /// # Safety
    /// The channel lock is held, and no other reference to the stash is.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn stash(&self) -> &mut VecDeque<T> {
        // SAFETY: the caller's contract.
        unsafe { &mut *self.stash.get() }
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let slots = self.slots.load(Relaxed);
        if slots.is_null() {
            return;
        }
        let mut h = self.head.0.load(Relaxed) & POS;
        let t = self.tail.0.load(Relaxed) & POS;
        while h != t {
            // SAFETY: the last owner: every claim has landed, and the
            // positions from head to tail hold values.
            unsafe { drop(self.slot(slots, h).value.read()) };
            h = self.next(h);
        }
        // SAFETY: allocated as a boxed slice of `cap` in `slots_or_alloc`.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(slots, self.cap)) });
    }
}
