//! The blocking side of Go's `chansend` and `chanrecv`: a send or
//! receive that cannot complete at once queues its `Waiter`'s sudog and
//! returns `Pending` (Go's `gopark`), finds its outcome on a later poll,
//! or, dropped while queued, unlinks itself and passes on a value it was
//! already handed (cancellation, which Go does not have).

use crate::error::RecvError;
use crate::hchan::{Chan, ChanGuard, Queue, Ring, SendTry};
use crate::sudog::{Completed, Park, Status, Waiter};
use crate::sync::Wait;
use crate::wakes::Wakes;
use std::pin::Pin;
use std::task::{Context, Poll};

impl<T> Chan<T> {
    /// Owner side of a blocking op that was queued: has a waker completed
    /// it? If so, the sudog is the owner's again and this is its outcome;
    /// if not, the stored waker is refreshed under the lock (a spurious or
    /// moved poll) and the op stays parked, with `wait` as its reason.
    #[inline(always)]
    fn poll_queued(&self, w: &mut Waiter<T>, cx: &Context<'_>, wait: Wait) -> Poll<Completed<T>> {
        if w.status() == Status::Waiting
            && w.refresh_waker(&self.lock(), cx.waker()) == Status::Waiting
        {
            self.park_reason(wait);
            return Poll::Pending;
        }
        Poll::Ready(w.take_back().expect("a completed sudog"))
    }

    /// Queue a sudog that is not queued, and park (Go's `gopark`: the
    /// lock is released by dropping the guard, before the wait reason is
    /// set). A channel without a ring.
    fn park(
        &self,
        mut g: ChanGuard<'_, T>,
        w: &mut Waiter<T>,
        cx: &Context<'_>,
        q: Queue,
        elem: Option<T>,
    ) {
        Self::prepare(w, cx, elem);
        // SAFETY: just prepared, not queued; the waiter is pinned inside
        // its future, whose drop (`cancel`) unlinks it from this channel.
        unsafe { g.enqueue(w, q) };
        drop(g);
        self.park_reason(Self::wait(q));
    }

    /// `park` on a channel with the ring `r` (`g`'s): queueing may
    /// complete the sudog at once (see `Locked::enqueue_ring`): its own
    /// waker is then among the wakers woken here, and the next poll takes
    /// the outcome.
    fn park_ring(
        &self,
        (mut g, r): (ChanGuard<'_, T>, &Ring<T>),
        w: &mut Waiter<T>,
        cx: &Context<'_>,
        q: Queue,
        elem: Option<T>,
        mut wakes: Wakes,
    ) {
        Self::prepare(w, cx, elem);
        // SAFETY: as in `park`.
        unsafe { g.enqueue_ring(w, q, r, &mut wakes) };
        drop(g);
        wakes.wake();
        self.park_reason(Self::wait(q));
    }

    #[inline(always)]
    fn prepare(w: &mut Waiter<T>, cx: &Context<'_>, elem: Option<T>) {
        w.prepare(Park {
            elem,
            sel: None,
            waker: Some(cx.waker()),
        });
    }

    #[inline(always)]
    fn wait(q: Queue) -> Wait {
        match q {
            Queue::Recv => Wait::ChanReceive,
            Queue::Send => Wait::ChanSend,
        }
    }

    /// Go's `chanrecv` with `block == true`, as a poll.
    #[inline(always)]
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        w: Pin<&mut Waiter<T>>,
    ) -> Poll<Result<T, RecvError>> {
        // SAFETY: we never move out of the waiter; the sudog stays put.
        let w = unsafe { w.get_unchecked_mut() };
        if w.queued() {
            return self
                .poll_queued(w, cx, Wait::ChanReceive)
                .map(Completed::into_recv);
        }
        if let Some(r) = self.ring() {
            return self.poll_recv_ring(r, cx, w);
        }
        let mut wake = None;
        let mut g = self.lock();
        match g.recv_deque(&mut wake) {
            Some(r) => {
                drop(g);
                if let Some(k) = wake {
                    k.wake();
                }
                Poll::Ready(r)
            }
            None => {
                self.park(g, w, cx, Queue::Recv, None);
                Poll::Pending
            }
        }
    }

    /// `poll_recv` on a channel with the ring `r`: lock-free first.
    #[inline(always)]
    fn poll_recv_ring(
        &self,
        r: &Ring<T>,
        cx: &mut Context<'_>,
        w: &mut Waiter<T>,
    ) -> Poll<Result<T, RecvError>> {
        if let Some(v) = self.recv_fast_in(r) {
            return Poll::Ready(Ok(v));
        }
        self.poll_recv_ring_locked(r, cx, w)
    }

    /// The locked half of `poll_recv_ring` (out of line: the lock-free
    /// half is the one on the hot path).
    #[inline(never)]
    fn poll_recv_ring_locked(
        &self,
        r: &Ring<T>,
        cx: &mut Context<'_>,
        w: &mut Waiter<T>,
    ) -> Poll<Result<T, RecvError>> {
        let mut wakes = Wakes::new();
        let mut g = self.lock();
        match g.recv_ring(r, &mut wakes) {
            Some(res) => {
                drop(g);
                wakes.wake();
                Poll::Ready(res)
            }
            None => {
                self.park_ring((g, r), w, cx, Queue::Recv, None, wakes);
                Poll::Pending
            }
        }
    }

    /// After a lock-free op that found the other side's flag up: settle
    /// the queues under the lock (see `hchan/settle.rs`).
    #[cold]
    #[inline(never)]
    pub(crate) fn settle_now(&self, r: &Ring<T>) {
        let mut wakes = Wakes::new();
        self.lock().settle(r, &mut wakes);
        wakes.wake();
    }

    /// The lock-free send of a channel with a ring: `Err(v)` when it must
    /// go through the lock.
    #[inline(always)]
    pub(crate) fn send_fast(&self, v: T) -> Result<(), T> {
        match self.ring() {
            Some(r) => self.send_fast_in(r, v),
            None => Err(v),
        }
    }

    /// `send_fast` on this channel's ring `r`.
    #[inline(always)]
    fn send_fast_in(&self, r: &Ring<T>, v: T) -> Result<(), T> {
        if r.push_fast(v)? {
            self.settle_now(r);
        }
        Ok(())
    }

    /// The lock-free receive of a channel with a ring.
    #[inline(always)]
    pub(crate) fn recv_fast(&self) -> Option<T> {
        self.recv_fast_in(self.ring()?)
    }

    /// `recv_fast` on this channel's ring `r`.
    #[inline(always)]
    fn recv_fast_in(&self, r: &Ring<T>) -> Option<T> {
        let (v, senders_waiting) = r.pop_fast()?;
        if senders_waiting {
            self.settle_now(r);
        }
        Some(v)
    }

    /// Go's `chansend` with `block == true`, as a poll. `value` is the
    /// value not yet handed to the channel (taken on the first poll).
    #[inline(always)]
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        w: Pin<&mut Waiter<T>>,
        value: &mut Option<T>,
    ) -> Poll<Result<(), T>> {
        // SAFETY: we never move out of the waiter.
        let w = unsafe { w.get_unchecked_mut() };
        if w.queued() {
            return self
                .poll_queued(w, cx, Wait::ChanSend)
                .map(Completed::into_send);
        }
        let v = value.take().expect("send future polled after completion");
        if let Some(r) = self.ring() {
            return self.poll_send_ring(r, cx, w, v);
        }
        let mut g = self.lock();
        match g.send_deque(v) {
            SendTry::Sent(wake) => {
                drop(g);
                if let Some(k) = wake {
                    k.wake();
                }
                Poll::Ready(Ok(()))
            }
            SendTry::Closed(v) => Poll::Ready(Err(v)),
            SendTry::Full(v) => {
                self.park(g, w, cx, Queue::Send, Some(v));
                Poll::Pending
            }
        }
    }

    /// `poll_send` on a channel with the ring `r`: lock-free first.
    #[inline(always)]
    fn poll_send_ring(
        &self,
        r: &Ring<T>,
        cx: &mut Context<'_>,
        w: &mut Waiter<T>,
        v: T,
    ) -> Poll<Result<(), T>> {
        match self.send_fast_in(r, v) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(v) => self.poll_send_ring_locked(r, cx, w, v),
        }
    }

    /// The locked half of `poll_send_ring`.
    #[inline(never)]
    fn poll_send_ring_locked(
        &self,
        r: &Ring<T>,
        cx: &mut Context<'_>,
        w: &mut Waiter<T>,
        v: T,
    ) -> Poll<Result<(), T>> {
        let mut wakes = Wakes::new();
        let mut g = self.lock();
        match g.send_ring(r, v, &mut wakes) {
            SendTry::Sent(_) => {
                drop(g);
                wakes.wake();
                Poll::Ready(Ok(()))
            }
            SendTry::Closed(v) => Poll::Ready(Err(v)),
            SendTry::Full(v) => {
                self.park_ring((g, r), w, cx, Queue::Send, Some(v), wakes);
                Poll::Pending
            }
        }
    }

    /// Cancellation (the future is dropped): unlink the sudog, or, if a
    /// sender already handed it a value, pass that value on.
    /// Inline: every completed send and recv future runs this on drop, and
    /// almost all of them were never queued.
    #[inline]
    pub(crate) fn cancel(&self, w: Pin<&mut Waiter<T>>, q: Queue) {
        // SAFETY: not moved.
        let w = unsafe { w.get_unchecked_mut() };
        if w.queued() {
            self.cancel_queued(w, q);
        }
    }

    /// Unlink a queued sudog (under the lock, so that a waker completing
    /// it is waited out), then `reclaim` it.
    #[cold]
    fn cancel_queued(&self, w: &mut Waiter<T>, q: Queue) {
        if w.status() == Status::Waiting {
            // SAFETY: queued by its owner on this channel's `q`.
            unsafe { self.lock().remove(w, q) };
        }
        self.reclaim(w, q);
    }

    /// A sudog whose owner is going away: if a waker completed it, take
    /// it back, and give a value it received to the next receiver.
    pub(crate) fn reclaim(&self, w: &mut Waiter<T>, q: Queue) {
        if let Some(c) = w.take_back() {
            if let (Queue::Recv, Status::Ok, Some(v)) = (q, c.status, c.elem) {
                self.reinject(v);
            }
        }
    }
}
