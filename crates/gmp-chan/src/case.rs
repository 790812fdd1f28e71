//! The cases of a `select!`: the operand traits (`RecvOperand`,
//! `SendOperand`, with `Option` operands as Go's nil channels) and the
//! per-case state `selectgo` drives through `SelectCase`: one `Case`
//! (the channel, the embedded sudog) with a receive or a send `Side`, the
//! part where the two differ; `RecvCase` and `SendCase` name the two.

use crate::ends::{Receiver, Sender};
use crate::error::{RecvError, SendError};
use crate::hchan::{Chan, Locked, Queue, SendTry};
use crate::select::{Held, Probe, SelectCase};
use crate::sudog::{Completed, Park, SelectDone, Waiter};
use crate::wakes::Wakes;
use std::pin::Pin;
use std::task::Waker;

/// A `recv(..)` operand: a `Receiver`, a reference to one, or an `Option`
/// of those, where `None` is Go's nil channel (a case never ready).
pub trait RecvOperand {
    /// The element type.
    type Item;
    /// The receiver behind the operand; `None` for a nil channel.
    fn as_receiver(&self) -> Option<&Receiver<Self::Item>>;
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

/// The operand trait `$op` (with method `$as`) for the handle `$end`,
/// references to an operand and `Option`s of one: the same four impls for
/// both directions.
macro_rules! operand_impls {
    ($op:ident, $end:ident, $as:ident) => {
        impl<T> $op for $end<T> {
            type Item = T;
            fn $as(&self) -> Option<&$end<T>> {
                Some(self)
            }
        }

        impl<X: $op + ?Sized> $op for &X {
            type Item = X::Item;
            fn $as(&self) -> Option<&$end<X::Item>> {
                (**self).$as()
            }
        }

        impl<X: $op + ?Sized> $op for &mut X {
            type Item = X::Item;
            fn $as(&self) -> Option<&$end<X::Item>> {
                (**self).$as()
            }
        }

        impl<X: $op> $op for Option<X> {
            type Item = X::Item;
            fn $as(&self) -> Option<&$end<X::Item>> {
                self.as_ref().and_then(|x| x.$as())
            }
        }
    };
}

operand_impls!(RecvOperand, Receiver, as_receiver);
operand_impls!(SendOperand, Sender, as_sender);

/// One case of a `select!`: its channel (`None`: Go's nil channel, never
/// ready), the sudog it parks with, and its direction's `Side`.
#[doc(hidden)]
pub struct Case<'a, T, S> {
    chan: Option<&'a Chan<T>>,
    /// Structurally pinned: queued sudogs are reached by address. No
    /// method of a case moves it (see `Case::this`).
    waiter: Waiter<T>,
    /// `S::QUEUE`, for the drop (which cannot ask `S`).
    queue: Queue,
    side: S,
}

/// One `recv(rx) -> v` case.
#[doc(hidden)]
pub type RecvCase<'a, T> = Case<'a, T, RecvSide<T>>;

/// One `send(tx, value) -> res` case.
#[doc(hidden)]
pub type SendCase<'a, T> = Case<'a, T, SendSide<T>>;

/// A receive case's own part: its outcome.
#[doc(hidden)]
pub struct RecvSide<T> {
    result: Option<Result<T, RecvError>>,
}

/// A send case's own part: the value (not yet sent; never taken for a nil
/// channel) and the outcome.
#[doc(hidden)]
pub struct SendSide<T> {
    value: Option<T>,
    result: Option<Result<(), SendError<T>>>,
}

/// Where a receive case and a send case differ; `SelectCase` is
/// implemented once for both over it.
pub(crate) trait Side<T> {
    /// The wait queue this side's sudog parks on.
    const QUEUE: Queue;
    /// The channel's lock-free readiness hint for this direction.
    fn looks_ready(c: &Chan<T>) -> bool;
    /// Pass 1 under the lock: commit now if ready (the hint said it
    /// might be).
    fn fire(&mut self, g: &mut Locked<'_, T>, wakes: &mut Wakes) -> bool;
    /// The value the sudog carries when it parks.
    fn elem(&mut self) -> Option<T>;
    /// Record the outcome of a parked sudog that won.
    fn complete(&mut self, c: Completed<T>);
}

impl<T> Side<T> for RecvSide<T> {
    const QUEUE: Queue = Queue::Recv;

    fn looks_ready(c: &Chan<T>) -> bool {
        c.recv_looks_ready()
    }

    fn fire(&mut self, g: &mut Locked<'_, T>, wakes: &mut Wakes) -> bool {
        match g.recv(wakes) {
            Some(r) => {
                self.result = Some(r);
                true
            }
            None => false,
        }
    }

    fn elem(&mut self) -> Option<T> {
        None
    }

    fn complete(&mut self, c: Completed<T>) {
        self.result = Some(c.into_recv());
    }
}

impl<T> Side<T> for SendSide<T> {
    const QUEUE: Queue = Queue::Send;

    fn looks_ready(c: &Chan<T>) -> bool {
        c.send_looks_ready()
    }

    fn fire(&mut self, g: &mut Locked<'_, T>, wakes: &mut Wakes) -> bool {
        let v = self.value.take().expect("send case without value");
        match g.send(v, wakes) {
            SendTry::Sent(w) => {
                wakes.add(w);
                self.result = Some(Ok(()));
                true
            }
            SendTry::Closed(v) => {
                self.result = Some(Err(SendError(v)));
                true
            }
            SendTry::Full(v) => {
                self.value = Some(v);
                false
            }
        }
    }

    fn elem(&mut self) -> Option<T> {
        self.value.take()
    }

    fn complete(&mut self, c: Completed<T>) {
        self.result = Some(c.into_send().map_err(SendError));
    }
}

impl<'a, T> RecvCase<'a, T> {
    /// Evaluate the operand (Go evaluates each channel expression once).
    pub fn new<R: RecvOperand<Item = T> + ?Sized>(r: &'a R) -> Self {
        Case {
            chan: r.as_receiver().and_then(|r| r.chan.as_deref()),
            waiter: Waiter::new(),
            queue: Queue::Recv,
            side: RecvSide { result: None },
        }
    }

    /// The chosen case's outcome, for the arm's pattern.
    pub fn take(self: Pin<&mut Self>) -> Result<T, RecvError> {
        Case::this(self)
            .side
            .result
            .take()
            .expect("select case taken twice")
    }
}

impl<'a, T> SendCase<'a, T> {
    /// Evaluate the operand and the value (both once, in source order).
    pub fn new<S: SendOperand<Item = T> + ?Sized>(s: &'a S, value: T) -> Self {
        Case {
            chan: s.as_sender().map(|s| &*s.chan),
            waiter: Waiter::new(),
            queue: Queue::Send,
            side: SendSide {
                value: Some(value),
                result: None,
            },
        }
    }

    /// The chosen case's outcome, for the arm's pattern.
    pub fn take(self: Pin<&mut Self>) -> Result<(), SendError<T>> {
        Case::this(self)
            .side
            .result
            .take()
            .expect("select case taken twice")
    }
}

impl<'a, T, S> Case<'a, T, S> {
    /// The pinned case, to work on: nothing here moves the waiter (it is
    /// only handed on as `&mut Waiter`, to methods that never move it).
    #[inline]
    fn this(self: Pin<&mut Self>) -> &mut Self {
        // SAFETY: see above; every other field is plain data.
        unsafe { self.get_unchecked_mut() }
    }

    fn chan(&self) -> &'a Chan<T> {
        self.chan.expect("nil select case used")
    }

    /// Unlink the sudog if it is queued. Always under the lock, even when
    /// it was completed: a waker that won this case may still be storing
    /// the select's `fired`, and the lock waits it out before the select
    /// can go away.
    fn unlink(&mut self) {
        if let (Some(c), true) = (self.chan, self.waiter.queued()) {
            // SAFETY: queued by `enqueue` on this channel's `queue`.
            unsafe { c.lock().remove(&mut self.waiter, self.queue) };
        }
    }
}

impl<T, S: Side<T>> SelectCase for Case<'_, T, S> {
    fn probe(&self) -> Probe {
        match self.chan {
            Some(c) => Probe {
                addr: c as *const Chan<T> as usize,
                looks_ready: S::looks_ready(c),
            },
            None => Probe::NIL,
        }
    }

    fn lock_raw(&self) {
        self.chan().lock_raw();
    }

    /// # Safety
    /// As `SelectCase::unlock_raw`: the caller holds the lock.
    unsafe fn unlock_raw(&self) {
        // SAFETY: the caller holds it (`lock_raw`).
        unsafe { self.chan().unlock_raw() }
    }

    fn try_fire(self: Pin<&mut Self>, _held: &Held, wakes: &mut Wakes) -> bool {
        let this = Case::this(self);
        // SAFETY: the select holds this channel's lock (`Held`) and makes
        // no other proof of it meanwhile.
        let mut g = unsafe { this.chan().assume_locked() };
        // Under the lock the hint is exact (see `Chan::recv_ready`): a
        // quick no, with the same outcome as the locked op's.
        S::looks_ready(g.chan()) && this.side.fire(&mut g, wakes)
    }

    fn try_fire_alone(self: Pin<&mut Self>, wakes: &mut Wakes) -> bool {
        let this = Case::this(self);
        let mut g = this.chan().lock();
        S::looks_ready(g.chan()) && this.side.fire(&mut g, wakes)
    }

    /// # Safety
    /// As `SelectCase::enqueue`: `sel` outlives the queued sudog.
    unsafe fn enqueue(
        self: Pin<&mut Self>,
        _held: &Held,
        sel: *const SelectDone,
        case: u32,
        wakes: &mut Wakes,
    ) -> bool {
        let this = Case::this(self);
        let c = this.chan();
        this.waiter.prepare(Park {
            elem: this.side.elem(),
            sel: Some((sel, case)),
            // The select's shared waker (`SelectDone::waker`) serves.
            waker: None,
        });
        // SAFETY: just prepared; the select holds the lock (`Held`), and
        // the case is pinned and unlinks its sudog (`dequeue`, or its drop) before it goes.
        unsafe {
            match c.ring() {
                Some(r) => c
                    .assume_locked()
                    .enqueue_ring(&mut this.waiter, S::QUEUE, r, wakes),
                None => c.assume_locked().enqueue(&mut this.waiter, S::QUEUE),
            }
        };
        c.is_foreign()
    }

    fn dequeue(self: Pin<&mut Self>) {
        Case::this(self).unlink();
    }

    fn update_waker(self: Pin<&mut Self>, waker: &Waker) {
        let this = Case::this(self);
        if let (Some(c), true) = (this.chan, this.waiter.queued()) {
            this.waiter.refresh_waker(&c.lock(), waker);
        }
    }

    fn complete(self: Pin<&mut Self>) {
        let this = Case::this(self);
        let c = this
            .waiter
            .take_back()
            .expect("select case completed without an outcome");
        this.side.complete(c);
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

impl<T, S> Drop for Case<'_, T, S> {
    /// The select went away while this case was queued: unlink, and if
    /// the case won but was never reported, pass a received value on.
    fn drop(&mut self) {
        if let (Some(c), true) = (self.chan, self.waiter.queued()) {
            self.unlink();
            c.reclaim(&mut self.waiter, self.queue);
        }
    }
}

impl<T> std::fmt::Debug for RecvSide<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvSide")
            .field("done", &self.result.is_some())
            .finish()
    }
}

impl<T> std::fmt::Debug for SendSide<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendSide")
            .field("done", &self.result.is_some())
            .finish()
    }
}

impl<T, S> std::fmt::Debug for Case<'_, T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("queued", &self.waiter.queued())
            .finish()
    }
}
