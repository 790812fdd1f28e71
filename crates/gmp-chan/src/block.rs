//! The blocking side of Go's `chansend` and `chanrecv`: a send or
//! receive that cannot complete at once queues its `Waiter`'s sudog and
//! returns `Pending` (Go's `gopark`), finds its outcome on a later poll,
//! or, dropped while queued, unlinks itself and passes on a value it was
//! already handed (cancellation, which Go does not have).

use crate::error::RecvError;
use crate::hchan::{Chan, SendTry};
use crate::sudog::{Waiter, OK, WAITING};
use crate::sync::Wait;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::task::{Context, Poll};

impl<T> Chan<T> {
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
    #[inline(always)]
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
    #[inline(always)]
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
}
