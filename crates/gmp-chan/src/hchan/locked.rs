//! The channel lock held: `ChanGuard` (unlocks when dropped, also while
//! a panic unwinds) and `Locked`, the proof that the lock is held and the
//! only way to the channel's locked state. The locked halves of Go's
//! `chansend` and `chanrecv` (`Locked::send`, `Locked::recv`) and the
//! wait-queue operations are its methods.

use super::{Chan, SendTry, State};
use crate::error::RecvError;
use crate::hchan::Queue;
use crate::sudog::{Status, WaitQ, Waiter};
use crate::wakes::Wakes;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::Relaxed;
use std::task::Waker;

/// The proof that a channel's lock is held, and the only way to its
/// locked state: the locked halves of Go's `chansend`, `chanrecv` and the
/// queue operations are its methods. Made by `Chan::lock` (inside a
/// `ChanGuard`) or, for selectgo's locks taken together, by
/// `Chan::assume_locked`.
///
/// It is the channel pointer alone (the state is found from it), so that
/// it costs what a `&Chan` costs.
pub(crate) struct Locked<'a, T> {
    pub(super) chan: &'a Chan<T>,
}

/// The channel lock, held: unlocks when dropped (also on a panic), and
/// derefs to the `Locked` proof.
pub(crate) struct ChanGuard<'a, T>(pub(super) Locked<'a, T>);

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
            // SAFETY: we hold the lock; only shared looks are alive.
            unsafe { self.0.chan.check_hints(self.0.st_ref()) };
        }
        // SAFETY: the guard's existence is our holding the lock, and its
        // `Locked` (with the `&mut State`) goes with it.
        unsafe { self.0.chan.lock.unlock() }
    }
}

impl<T> Locked<'_, T> {
    /// The locked state.
    #[inline(always)]
    pub(super) fn st(&mut self) -> &mut State<T> {
        // SAFETY: this `Locked` is the proof that the lock is held, and it
        // is the only one of this channel (see `Chan::assume_locked`); the
        // `&mut self` borrow makes this the only reference into the state.
        unsafe { &mut *self.chan.state.get() }
    }

    /// The locked state, to read.
    #[inline(always)]
    pub(super) fn st_ref(&self) -> &State<T> {
        // SAFETY: as in `st`, shared with `&self`.
        unsafe { &*self.chan.state.get() }
    }

    /// The `VecDeque` buffer of a channel without a ring.
    #[inline(always)]
    pub(super) fn deque(&mut self) -> &mut VecDeque<T> {
        debug_assert!(self.chan.ring().is_none());
        // SAFETY: no ring, so `new` wrote the deque (see `Buffer`); this
        // `Locked` proves the lock held and `&mut self` makes the
        // reference the only one.
        unsafe { &mut *self.chan.buf.deque.get() }
    }

    /// The deque, to read.
    #[inline(always)]
    fn deque_ref(&self) -> &VecDeque<T> {
        // SAFETY: as in `deque`, shared with `&self`.
        unsafe { &*self.chan.buf.deque.get() }
    }

    /// Closed? Lock held: the lock orders this load after `close`'s store.
    #[inline]
    pub(super) fn closed(&self) -> bool {
        self.chan.closed.load(Relaxed)
    }

    /// Append to the buffer (there is room: `len < cap`), growing it first
    /// if it is full: doubling, but never past `cap`, so a large capacity
    /// costs memory only as values arrive.
    #[inline]
    fn push_back(&mut self, v: T) {
        if self.deque().len() == self.deque().capacity() {
            self.grow();
        }
        self.deque().push_back(v);
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let len = self.deque().len();
        let want = len
            .saturating_mul(2)
            .max(4)
            .clamp(len + 1, self.chan.cap.max(len + 1));
        self.deque().reserve_exact(want - len);
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
    pub(super) fn refresh_recv_ready(&self) {
        let empty = self.deque_ref().is_empty();
        self.chan
            .recv_ready
            .store(!empty || !self.st_ref().sendq.is_empty(), Relaxed);
    }

    /// After the buffer or `recvq` changed.
    #[inline]
    pub(super) fn refresh_send_ready(&self) {
        let len = self.deque_ref().len();
        self.chan.send_ready.store(
            !self.st_ref().recvq.is_empty() || len < self.chan.cap,
            Relaxed,
        );
    }

    /// The non-blocking body of Go's `chanrecv`: buffer first (refilled
    /// from the first blocked sender: chan.go `recv` on a full buffer),
    /// else straight from a blocked sender, else closed. `None` means it
    /// would block. A channel with a ring: `recv_ring`.
    #[inline(always)]
    pub(crate) fn recv(&mut self, wakes: &mut Wakes) -> Option<Result<T, RecvError>> {
        match self.chan.ring() {
            Some(r) => self.recv_ring(r, wakes),
            None => {
                let mut wake = None;
                let got = self.recv_deque(&mut wake);
                wakes.add(wake);
                got
            }
        }
    }

    /// `recv` for a channel without a ring: at most one party to wake.
    #[inline(always)]
    pub(crate) fn recv_deque(&mut self, wake: &mut Option<Waker>) -> Option<Result<T, RecvError>> {
        let cap = self.chan.cap;
        if let Some(v) = self.deque().pop_front() {
            if self.deque().len() < cap {
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
                            .store(!self.deque().is_empty(), Relaxed);
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
    /// directly to the first waiting receiver, else the buffer. A
    /// channel with a ring: `send_ring`.
    #[inline(always)]
    pub(crate) fn send(&mut self, v: T, wakes: &mut Wakes) -> SendTry<T> {
        match self.chan.ring() {
            Some(r) => self.send_ring(r, v, wakes),
            None => self.send_deque(v),
        }
    }

    /// `send` for a channel without a ring: `Sent` carries the receiver
    /// to wake.
    #[inline(always)]
    pub(crate) fn send_deque(&mut self, v: T) -> SendTry<T> {
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
        if self.deque().len() < cap {
            self.push_back(v);
            self.chan.recv_ready.store(true, Relaxed);
            // `recvq` is empty (no receiver took the value).
            self.chan
                .send_ready
                .store(self.deque().len() < cap, Relaxed);
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

    /// Queue the owner's sudog on `q` (a channel without a ring; with
    /// one, `enqueue_ring`).
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

    /// Queue the owner's sudog on `q` of a channel with the ring `r`: the
    /// queue's flag goes up and the ring is looked at again (`settle`): a
    /// lock-free op that missed the flag left its value (or its free
    /// slot) there, and this may complete the sudog at once; `wakes` then
    /// holds its waker.
    ///
    /// # Safety
    /// As `enqueue`.
    #[inline]
    pub(crate) unsafe fn enqueue_ring(
        &mut self,
        w: &mut Waiter<T>,
        q: Queue,
        r: &super::Ring<T>,
        wakes: &mut Wakes,
    ) {
        // SAFETY: the caller's contract.
        unsafe { self.waitq(q).enqueue(w) };
        r.set_flag(
            match q {
                Queue::Recv => super::ring::RECV_WAITING,
                Queue::Send => super::ring::SEND_WAITING,
            },
            true,
        );
        self.settle(r, wakes);
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
        if let Some(r) = self.chan.ring() {
            self.update_flags(r);
            return;
        }
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
