//! The cases of a `select!`: the operand traits (`RecvOperand`,
//! `SendOperand`, with `Option` operands as Go's nil channels) and the
//! per-case state `selectgo` drives through `SelectCase` (`RecvCase`,
//! `SendCase`, each embedding its sudog).

use crate::ends::{Receiver, Sender};
use crate::error::{RecvError, SendError};
use crate::hchan::{Chan, SendTry};
use crate::select::SelectCase;
use crate::sudog::{SelectDone, Waiter, CLOSED, OK, WAITING};
use std::pin::Pin;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::task::Waker;

/// A `recv(..)` operand: a `Receiver`, a reference to one, or an `Option`
/// of those, where `None` is Go's nil channel (a case never ready).
pub trait RecvOperand {
    /// The element type.
    type Item;
    /// The receiver behind the operand; `None` for a nil channel.
    fn as_receiver(&self) -> Option<&Receiver<Self::Item>>;
}

impl<T> RecvOperand for Receiver<T> {
    type Item = T;
    fn as_receiver(&self) -> Option<&Receiver<T>> {
        Some(self)
    }
}

impl<R: RecvOperand + ?Sized> RecvOperand for &R {
    type Item = R::Item;
    fn as_receiver(&self) -> Option<&Receiver<R::Item>> {
        (**self).as_receiver()
    }
}

impl<R: RecvOperand + ?Sized> RecvOperand for &mut R {
    type Item = R::Item;
    fn as_receiver(&self) -> Option<&Receiver<R::Item>> {
        (**self).as_receiver()
    }
}

impl<R: RecvOperand> RecvOperand for Option<R> {
    type Item = R::Item;
    fn as_receiver(&self) -> Option<&Receiver<R::Item>> {
        self.as_ref().and_then(|r| r.as_receiver())
    }
}

/// A `send(..)` operand: a `Sender`, a reference to one, or an `Option` of
/// those, where `None` is Go's nil channel (a case never ready; its value
/// stays in the case and is dropped with the select).
pub trait SendOperand {
    /// The element type.
    type Item;
    /// The sender behind the operand; `None` for a nil channel.
    fn as_sender(&self) -> Option<&Sender<Self::Item>>;
}

impl<T> SendOperand for Sender<T> {
    type Item = T;
    fn as_sender(&self) -> Option<&Sender<T>> {
        Some(self)
    }
}

impl<S: SendOperand + ?Sized> SendOperand for &S {
    type Item = S::Item;
    fn as_sender(&self) -> Option<&Sender<S::Item>> {
        (**self).as_sender()
    }
}

impl<S: SendOperand + ?Sized> SendOperand for &mut S {
    type Item = S::Item;
    fn as_sender(&self) -> Option<&Sender<S::Item>> {
        (**self).as_sender()
    }
}

impl<S: SendOperand> SendOperand for Option<S> {
    type Item = S::Item;
    fn as_sender(&self) -> Option<&Sender<S::Item>> {
        self.as_ref().and_then(|s| s.as_sender())
    }
}

/// One `recv(rx) -> v` case.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    chan: Option<&'a Chan<T>>,
    waiter: Waiter<T>,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvCase<'a, T> {
    /// Evaluate the operand (Go evaluates each channel expression once).
    pub fn new<R: RecvOperand<Item = T> + ?Sized>(r: &'a R) -> Self {
        RecvCase {
            chan: r.as_receiver().and_then(|r| r.chan.as_deref()),
            waiter: Waiter::new(),
            result: None,
        }
    }

    /// The chosen case's outcome, for the arm's pattern.
    pub fn take(self: Pin<&mut Self>) -> Result<T, RecvError> {
        // SAFETY: `result` is not structurally pinned.
        let this = unsafe { self.get_unchecked_mut() };
        this.result.take().expect("select case taken twice")
    }

    fn chan(&self) -> &'a Chan<T> {
        self.chan.expect("nil select case used")
    }
}

impl<T> SelectCase for RecvCase<'_, T> {
    fn probe(&self) -> (usize, bool) {
        match self.chan {
            Some(c) => (c as *const Chan<T> as usize, c.recv_looks_ready()),
            None => (0, false),
        }
    }

    fn lock(&self) {
        self.chan().lock();
    }

    unsafe fn unlock(&self) {
        // SAFETY: caller holds it.
        unsafe { self.chan().unlock() }
    }

    unsafe fn try_fire(self: Pin<&mut Self>, wake: &mut Option<Waker>) -> bool {
        // SAFETY: only `result` is written; the waiter is not moved.
        let this = unsafe { self.get_unchecked_mut() };
        let c = this.chan();
        // Under the lock the hint is exact (see `Chan::recv_ready`): a
        // quick no, with the same outcome as `recv_locked`'s.
        if !c.recv_looks_ready() {
            return false;
        }
        // SAFETY: lock held (caller).
        match unsafe { c.recv_locked(wake) } {
            Some(r) => {
                this.result = Some(r);
                true
            }
            None => false,
        }
    }

    unsafe fn enqueue(self: Pin<&mut Self>, sel: *const SelectDone, case: u32) -> bool {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        let c = this.chan();
        // SAFETY: caller contract (lock held, case pinned).
        unsafe { queue_case(&mut this.waiter, c, sel, case, None, false) }
    }

    fn dequeue(self: Pin<&mut Self>) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        if let Some(c) = this.chan {
            unqueue_case(&mut this.waiter, c, false);
        }
    }

    fn update_waker(self: Pin<&mut Self>, waker: &Waker) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        if let Some(c) = this.chan {
            rewake_case(&mut this.waiter, c, waker);
        }
    }

    fn complete(self: Pin<&mut Self>) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        this.waiter.queued = false;
        let s = this.waiter.sg().status.load(Acquire);
        // SAFETY: completed and unlinked: ours.
        let v = unsafe { this.waiter.sg().inner().elem.take() };
        this.result = Some(match (s, v) {
            (OK, Some(v)) => Ok(v),
            _ => Err(RecvError),
        });
    }

    fn note_foreign(&self) {
        if let Some(c) = self.chan {
            c.note_foreign();
        }
    }

    fn is_foreign(&self) -> bool {
        self.chan.is_some_and(|c| c.is_foreign())
    }
}

impl<T> Drop for RecvCase<'_, T> {
    fn drop(&mut self) {
        if !self.waiter.queued {
            return;
        }
        // SAFETY: a case is only used pinned; this is its drop.
        unsafe { Pin::new_unchecked(&mut *self) }.dequeue();
        if !self.waiter.queued {
            return;
        }
        // Won but never reported (the select was dropped): pass the value on.
        self.waiter.queued = false;
        if self.waiter.sg().status.load(Acquire) == OK {
            // SAFETY: completed and unlinked: ours.
            if let Some(v) = unsafe { self.waiter.sg().inner().elem.take() } {
                self.chan().reinject(v);
            }
        }
    }
}

/// One `send(tx, value) -> res` case.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    /// `None`: a nil channel, whose `value` is never taken.
    chan: Option<&'a Chan<T>>,
    value: Option<T>,
    waiter: Waiter<T>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendCase<'a, T> {
    /// Evaluate the operand and the value (both once, in source order).
    pub fn new<S: SendOperand<Item = T> + ?Sized>(s: &'a S, value: T) -> Self {
        SendCase {
            chan: s.as_sender().map(|s| &*s.chan),
            value: Some(value),
            waiter: Waiter::new(),
            result: None,
        }
    }

    /// The chosen case's outcome, for the arm's pattern.
    pub fn take(self: Pin<&mut Self>) -> Result<(), SendError<T>> {
        // SAFETY: `result` is not structurally pinned.
        let this = unsafe { self.get_unchecked_mut() };
        this.result.take().expect("select case taken twice")
    }

    fn chan(&self) -> &'a Chan<T> {
        self.chan.expect("nil select case used")
    }
}

impl<T> SelectCase for SendCase<'_, T> {
    fn probe(&self) -> (usize, bool) {
        match self.chan {
            Some(c) => (c as *const Chan<T> as usize, c.send_looks_ready()),
            None => (0, false),
        }
    }

    fn lock(&self) {
        self.chan().lock();
    }

    unsafe fn unlock(&self) {
        // SAFETY: caller holds it.
        unsafe { self.chan().unlock() }
    }

    unsafe fn try_fire(self: Pin<&mut Self>, wake: &mut Option<Waker>) -> bool {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        let c = this.chan();
        // As in `RecvCase::try_fire`: exact under the lock.
        if !c.send_looks_ready() {
            return false;
        }
        let v = this.value.take().expect("send case without value");
        // SAFETY: lock held (caller).
        match unsafe { c.send_locked(v) } {
            SendTry::Sent(w) => {
                *wake = w;
                this.result = Some(Ok(()));
                true
            }
            SendTry::Closed(v) => {
                this.result = Some(Err(SendError(v)));
                true
            }
            SendTry::Full(v) => {
                this.value = Some(v);
                false
            }
        }
    }

    unsafe fn enqueue(self: Pin<&mut Self>, sel: *const SelectDone, case: u32) -> bool {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        let c = this.chan();
        let v = this.value.take();
        // SAFETY: caller contract (lock held, case pinned).
        unsafe { queue_case(&mut this.waiter, c, sel, case, v, true) }
    }

    fn dequeue(self: Pin<&mut Self>) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        if let Some(c) = this.chan {
            unqueue_case(&mut this.waiter, c, true);
        }
    }

    fn update_waker(self: Pin<&mut Self>, waker: &Waker) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        if let Some(c) = this.chan {
            rewake_case(&mut this.waiter, c, waker);
        }
    }

    fn complete(self: Pin<&mut Self>) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        this.waiter.queued = false;
        let s = this.waiter.sg().status.load(Acquire);
        this.result = Some(if s == CLOSED {
            // SAFETY: completed and unlinked: ours.
            let v = unsafe { this.waiter.sg().inner().elem.take() };
            Err(SendError(v.expect("closed send sudog lost its value")))
        } else {
            Ok(())
        });
    }

    fn note_foreign(&self) {
        if let Some(c) = self.chan {
            c.note_foreign();
        }
    }

    fn is_foreign(&self) -> bool {
        self.chan.is_some_and(|c| c.is_foreign())
    }
}

impl<T> Drop for SendCase<'_, T> {
    fn drop(&mut self) {
        if self.waiter.queued {
            // SAFETY: a case is only used pinned; this is its drop.
            unsafe { Pin::new_unchecked(&mut *self) }.dequeue();
        }
    }
}

impl<T> std::fmt::Debug for RecvCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvCase")
            .field("queued", &self.waiter.queued)
            .finish()
    }
}

impl<T> std::fmt::Debug for SendCase<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendCase")
            .field("queued", &self.waiter.queued)
            .finish()
    }
}

// What a receive case and a send case do alike with their sudog: queue it
// for a parked select, take it back out, and point it at a new waker.

/// Queue `w`'s sudog on `c` for case `case` of select `sel`, carrying
/// `elem` (a send's value), on `c`'s sendq if `send`. True if `c` is used
/// from outside the runtime.
///
/// # Safety
/// `c`'s lock is held, and the case that owns `w` is pinned and unlinks
/// the sudog before it is dropped.
unsafe fn queue_case<T>(
    w: &mut Waiter<T>,
    c: &Chan<T>,
    sel: *const SelectDone,
    case: u32,
    elem: Option<T>,
    send: bool,
) -> bool {
    w.init_sg();
    // SAFETY: the sudog is not queued (ours); the lock is held (caller).
    unsafe {
        let i = w.sg().inner();
        i.elem = elem;
        i.sel = sel;
        // The select's shared waker (`SelectDone::waker`) serves.
        i.waker = None;
        w.sg().set_case(case);
        w.sg().status.store(WAITING, Relaxed);
        c.enqueue_locked(w.sg(), send);
    }
    w.queued = true;
    c.is_foreign()
}

/// Unlink `w`'s sudog from `c`'s recvq or sendq (`send`) if it is queued.
fn unqueue_case<T>(w: &mut Waiter<T>, c: &Chan<T>, send: bool) {
    if !w.queued {
        return;
    }
    c.lock();
    // SAFETY: lock held; queued on this queue of this channel.
    unsafe {
        c.remove_locked(w.sg(), send);
        c.unlock();
    }
    if w.sg().status.load(Acquire) == WAITING {
        w.queued = false;
    }
}

/// Point `w`'s queued sudog at `waker` (a later poll of the select).
fn rewake_case<T>(w: &mut Waiter<T>, c: &Chan<T>, waker: &Waker) {
    if !w.queued {
        return;
    }
    c.lock();
    // SAFETY: lock held.
    unsafe {
        if w.sg().status.load(Relaxed) == WAITING {
            w.sg().inner().waker = Some(waker.clone());
        }
        c.unlock();
    }
}
