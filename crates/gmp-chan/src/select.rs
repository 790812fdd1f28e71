//! `select!` and Go's `selectgo`: the per-case state (`RecvCase`,
//! `SendCase`, each embedding its sudog), the type-erased `SelectCase`
//! interface `selectgo` drives them through, and the `Select` future.
//!
//! The macro evaluates every channel operand and send value once, in source
//! order, into pinned case locals of the enclosing async fn, awaits
//! `Select` over `Pin<&mut dyn SelectCase>`s (one virtual call per case per
//! step, no allocation), and then runs the chosen arm's body in a plain
//! `if`/`else` chain, outside any closure, so `break`, `continue`, `return`
//! and `?` act on the surrounding code.
//!
//! `Select::poll` is selectgo: shuffle the poll order (`fastrandn`, nil
//! cases left out). Fast path: the first case in poll order whose channel's
//! lock-free readiness hint is set is committed under that channel's lock
//! alone. Otherwise (no hint set, or a stale one), Go's full algorithm: sort
//! the lock order by channel address, lock each distinct channel once,
//! pass 1 commits the first ready case in poll order, else `default`, else
//! pass 2 queues a select sudog on every channel and parks. Wakers race on
//! the shared `SelectDone`: only the one that wins the CAS completes a
//! sudog and records it in `fired`. Pass 3 (the poll after the wake)
//! unlinks the losing sudogs.

use crate::ends::{Receiver, Sender};
use crate::error::{RecvError, SendError};
use crate::hchan::{Chan, SendTry};
use crate::sudog::{SelectDone, Waiter, CLOSED, OK, WAITING};
use crate::sync::{fastrandn, poll_proceed_on_m, set_wait_reason, set_wait_reason_external, Wait};
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::task::{Context, Poll, Waker};

/// What `selectgo` needs from one case, whatever its element type.
#[doc(hidden)]
pub trait SelectCase {
    /// The channel's address (the lock order key; 0 for a nil channel),
    /// and a lock-free guess that `try_fire` would succeed now (the
    /// channel's readiness hint: only ever a reason to look under the
    /// lock). One virtual call per case for both.
    fn probe(&self) -> (usize, bool);
    /// Take this case's channel lock.
    fn lock(&self);
    /// # Safety
    /// The channel lock is held by the caller.
    unsafe fn unlock(&self);
    /// Pass 1: commit now if ready. `wake` receives a counterpart to wake
    /// after all locks are released.
    ///
    /// # Safety
    /// The channel lock is held.
    unsafe fn try_fire(self: Pin<&mut Self>, wake: &mut Option<Waker>) -> bool;
    /// Pass 2: queue this case's sudog for the select.
    ///
    /// # Safety
    /// The channel lock is held; `sel` outlives the queued sudog (the
    /// select unlinks every sudog before it goes away).
    /// `case` is this case's index (below the select's case count).
    /// Returns whether the channel is foreign (see `is_foreign`), read
    /// under its lock.
    unsafe fn enqueue(
        self: Pin<&mut Self>,
        sel: *const SelectDone,
        case: u32,
        waker: &Waker,
    ) -> bool;
    /// Pass 3 / cancellation: unlink the sudog if still queued (takes the
    /// lock itself).
    fn dequeue(self: Pin<&mut Self>);
    /// Refresh the queued sudog's waker (takes the lock itself).
    fn update_waker(self: Pin<&mut Self>, waker: &Waker);
    /// This case won after parking: move the sudog's outcome into the
    /// case's result.
    fn complete(self: Pin<&mut Self>);
    /// The select runs off the runtime: mark the channel as used from
    /// outside (see `Chan::note_foreign`).
    fn note_foreign(&self);
    /// Whether code off the runtime has used the channel (the select then
    /// parks as waiting on the outside, for the deadlock detector).
    fn is_foreign(&self) -> bool;
}

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

    unsafe fn enqueue(
        self: Pin<&mut Self>,
        sel: *const SelectDone,
        case: u32,
        waker: &Waker,
    ) -> bool {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        let c = this.chan();
        let w = &mut this.waiter;
        w.init_sg();
        // SAFETY: the sudog is not queued (ours); lock held; the case is
        // pinned and unlinks itself before it is dropped.
        unsafe {
            let i = w.sg().inner();
            i.elem = None;
            i.sel = sel;
            i.waker = Some(waker.clone());
            w.sg().set_case(case);
            w.sg().status.store(WAITING, Relaxed);
            c.enqueue_locked(w.sg(), false);
        }
        w.queued = true;
        c.is_foreign()
    }

    fn dequeue(self: Pin<&mut Self>) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        if !this.waiter.queued {
            return;
        }
        let c = this.chan();
        c.lock();
        // SAFETY: lock held; queued on this channel's recvq.
        unsafe {
            c.remove_locked(this.waiter.sg(), false);
            c.unlock();
        }
        if this.waiter.sg().status.load(Acquire) == WAITING {
            this.waiter.queued = false;
        }
    }

    fn update_waker(self: Pin<&mut Self>, waker: &Waker) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        if !this.waiter.queued {
            return;
        }
        let c = this.chan();
        c.lock();
        // SAFETY: lock held.
        unsafe {
            let sg = this.waiter.sg();
            if sg.status.load(Relaxed) == WAITING {
                sg.inner().waker = Some(waker.clone());
            }
            c.unlock();
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

    unsafe fn enqueue(
        self: Pin<&mut Self>,
        sel: *const SelectDone,
        case: u32,
        waker: &Waker,
    ) -> bool {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        let c = this.chan();
        let w = &mut this.waiter;
        w.init_sg();
        // SAFETY: as in `RecvCase::enqueue`.
        unsafe {
            let i = w.sg().inner();
            i.elem = this.value.take();
            i.sel = sel;
            i.waker = Some(waker.clone());
            w.sg().set_case(case);
            w.sg().status.store(WAITING, Relaxed);
            c.enqueue_locked(w.sg(), true);
        }
        w.queued = true;
        c.is_foreign()
    }

    fn dequeue(self: Pin<&mut Self>) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        if !this.waiter.queued {
            return;
        }
        let c = this.chan();
        c.lock();
        // SAFETY: lock held; queued on this channel's sendq.
        unsafe {
            c.remove_locked(this.waiter.sg(), true);
            c.unlock();
        }
        if this.waiter.sg().status.load(Acquire) == WAITING {
            this.waiter.queued = false;
        }
    }

    fn update_waker(self: Pin<&mut Self>, waker: &Waker) {
        // SAFETY: not moved.
        let this = unsafe { self.get_unchecked_mut() };
        if !this.waiter.queued {
            return;
        }
        let c = this.chan();
        c.lock();
        // SAFETY: lock held.
        unsafe {
            if this.waiter.sg().status.load(Relaxed) == WAITING {
                this.waiter.sg().inner().waker = Some(waker.clone());
            }
            c.unlock();
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

impl<const N: usize> std::fmt::Debug for Select<'_, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Select")
            .field("cases", &N)
            .field("parked", &self.parked)
            .finish()
    }
}

/// Erase a pinned case to the trait object `Select` works on.
#[doc(hidden)]
#[inline]
pub fn erase<'a, C: SelectCase + Send + 'a>(
    c: Pin<&'a mut C>,
) -> Pin<&'a mut (dyn SelectCase + Send + 'a)> {
    c
}

/// The `select!` future: resolves to the chosen case's index, or `None`
/// for `default`.
#[doc(hidden)]
#[must_use = "futures do nothing unless awaited"]
pub struct Select<'a, const N: usize> {
    cases: [Pin<&'a mut (dyn SelectCase + Send + 'a)>; N],
    has_default: bool,
    sel: SelectDone,
    /// Sudogs are queued on every case's channel.
    parked: bool,
    /// One of the channels was used from off the runtime (as of parking):
    /// the select parks as waiting on the outside.
    foreign: bool,
    /// The waker the queued sudogs hold.
    waker: Option<Waker>,
    _pin: PhantomPinned,
}

impl<'a, const N: usize> Select<'a, N> {
    /// Build the select over `cases` (in source order).
    pub fn new(cases: [Pin<&'a mut (dyn SelectCase + Send + 'a)>; N], has_default: bool) -> Self {
        Select {
            cases,
            has_default,
            sel: SelectDone::new(),
            parked: false,
            foreign: false,
            waker: None,
            _pin: PhantomPinned,
        }
    }

    /// Pass 3: the winner is `w`; unlink the other sudogs and collect the
    /// winner's outcome.
    fn finish(&mut self, w: usize) -> usize {
        self.parked = false;
        for (i, c) in self.cases.iter_mut().enumerate() {
            if i != w {
                c.as_mut().dequeue();
            }
        }
        self.cases[w].as_mut().complete();
        w
    }

    /// The wait reason of a parked select: "select", marked as waiting on
    /// the outside if any of its channels was used from off the runtime.
    fn park_reason(&self) {
        if self.foreign {
            set_wait_reason_external(Wait::Select);
        } else {
            set_wait_reason(Wait::Select);
        }
    }
}

impl<const N: usize> Future for Select<'_, N> {
    type Output = Option<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<usize>> {
        // SAFETY: `sel` is pointed to by queued sudogs, and we never move
        // it (nor anything else) out of the pinned future.
        let this = unsafe { self.get_unchecked_mut() };
        if this.parked {
            let mut f = this.sel.fired.load(Acquire);
            if f == 0 {
                if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    for c in this.cases.iter_mut() {
                        c.as_mut().update_waker(cx.waker());
                    }
                    this.waker = Some(cx.waker().clone());
                    // A case may have fired and woken the old waker while we
                    // were switching.
                    f = this.sel.fired.load(Acquire);
                }
                if f == 0 {
                    // A spurious wake, e.g. from `Chan::become_foreign`
                    // (whose store the wake-up orders before this load):
                    // look again.
                    this.foreign = this.cases.iter().any(|c| c.is_foreign());
                    this.park_reason();
                    return Poll::Pending;
                }
            }
            return Poll::Ready(Some(this.finish(f - 1)));
        }
        match poll_proceed_on_m(cx) {
            Some(Poll::Pending) => return Poll::Pending,
            Some(Poll::Ready(())) => {}
            None => {
                for c in this.cases.iter() {
                    c.note_foreign();
                }
            }
        }

        // Poll order: Go's inside-out Fisher-Yates over the non-nil cases.
        // Go draws `fastrandn` for every case, but here each draw is a
        // thread-local lookup, a good part of a fast-path select's cost, so
        // one 32-bit draw `r` serves several cases: with x = r / 2^32, each
        // step takes j = floor(x * m) and keeps x = frac(x * m), which makes
        // the choices the digits of floor(x * M), M the product of their
        // ranges. As long as M <= 2^16, every poll order's probability is
        // within 2^-16 (relative) of uniform: 8! < 2^16, so up to eight
        // cases take one draw, and larger selects draw again whenever M
        // would pass 2^16.
        let mut caddr = [0usize; N];
        let mut hint = [false; N];
        for i in 0..N {
            (caddr[i], hint[i]) = this.cases[i].probe();
        }
        let mut pollorder = [0usize; N];
        let mut n = 0usize;
        let mut r = if N > 1 { fastrandn(u32::MAX) } else { 0 };
        let mut used = 1u64;
        for (i, &a) in caddr.iter().enumerate() {
            if a == 0 {
                continue;
            }
            let m = n as u64 + 1;
            if N > 8 {
                used *= m;
                if used > 1 << 16 {
                    r = fastrandn(u32::MAX);
                    used = m;
                }
            }
            let x = r as u64 * m;
            r = x as u32;
            // `min` only spares a bounds check: x >> 32 < m = n + 1.
            let j = ((x >> 32) as usize).min(n);
            pollorder[n] = pollorder[j];
            pollorder[j] = i;
            n += 1;
        }

        // Fast path: the first case in poll order whose channel looks ready
        // is tried under its own lock alone, with pass 1's commit. If the
        // hint was wrong, the full pass below decides under all the locks,
        // so a stale hint never changes the outcome: it can only cost the
        // trip. Committing while the other channels are unlocked is still
        // a select that took a ready case: the case is ready at the moment
        // it commits, and the hints of always-ready channels stay set, so
        // the random poll order keeps the choice uniform. A select with
        // nothing ready (or with `default`) still ends in the full pass,
        // where `try_fire` skips the not-ready cases by the hint, which
        // is exact under the lock.
        if let Some(&i) = pollorder[..n].iter().find(|&&i| hint[i]) {
            let c = &mut this.cases[i];
            c.lock();
            let mut wake = None;
            // SAFETY: its channel is locked (just above).
            let fired = unsafe { c.as_mut().try_fire(&mut wake) };
            // SAFETY: locked above.
            unsafe { c.unlock() };
            if fired {
                if let Some(w) = wake {
                    w.wake();
                }
                return Poll::Ready(Some(i));
            }
        }

        // Lock order: by channel address (insertion sort: N is small).
        let mut addrs = [0usize; N];
        let mut lockorder = [0usize; N];
        for (k, &i) in pollorder[..n].iter().enumerate() {
            let a = caddr[i];
            let mut p = k;
            while p > 0 && addrs[p - 1] > a {
                addrs[p] = addrs[p - 1];
                lockorder[p] = lockorder[p - 1];
                p -= 1;
            }
            addrs[p] = a;
            lockorder[p] = i;
        }
        let lockorder = &lockorder[..n];
        let addrs = &addrs[..n];
        // sellock: each distinct channel once.
        for k in 0..n {
            if k == 0 || addrs[k] != addrs[k - 1] {
                this.cases[lockorder[k]].lock();
            }
        }
        let unlock = |cases: &[Pin<&mut (dyn SelectCase + Send + '_)>]| {
            for k in (0..n).rev() {
                if k == 0 || addrs[k] != addrs[k - 1] {
                    // SAFETY: locked above, once per distinct channel.
                    unsafe { cases[lockorder[k]].unlock() };
                }
            }
        };

        // Pass 1: the first ready case in poll order commits.
        let mut wake = None;
        for &i in &pollorder[..n] {
            // SAFETY: its channel is locked.
            if unsafe { this.cases[i].as_mut().try_fire(&mut wake) } {
                unlock(&this.cases);
                if let Some(w) = wake {
                    w.wake();
                }
                return Poll::Ready(Some(i));
            }
        }
        if this.has_default {
            unlock(&this.cases);
            return Poll::Ready(None);
        }

        // Pass 2: queue a sudog on every channel, in lock order, and park.
        let sel: *const SelectDone = &this.sel;
        let mut foreign = false;
        for &i in lockorder {
            // SAFETY: channel locked; `sel` lives in this pinned future,
            // which unlinks every sudog (pass 3 or drop) before it goes.
            // `i < N`, a macro-generated case count.
            foreign |= unsafe { this.cases[i].as_mut().enqueue(sel, i as u32, cx.waker()) };
        }
        this.foreign = foreign;
        unlock(&this.cases);
        if n > 0 {
            this.parked = true;
            this.waker = Some(cx.waker().clone());
        }
        this.park_reason();
        Poll::Pending
    }
}

impl<const N: usize> Drop for Select<'_, N> {
    fn drop(&mut self) {
        if self.parked {
            // Cancelled while parked: unlink everything. Taking each lock
            // also waits out a waker that is completing one of our sudogs;
            // a case that won keeps its outcome and its own drop passes a
            // received value on.
            for c in self.cases.iter_mut() {
                c.as_mut().dequeue();
            }
        }
    }
}

/// `select! {}`: park forever ("select (no cases)").
#[doc(hidden)]
pub fn select_no_cases() -> NoCases {
    NoCases
}

/// Future of `select! {}`.
#[doc(hidden)]
#[derive(Debug)]
pub struct NoCases;

impl Future for NoCases {
    type Output = Infallible;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Infallible> {
        set_wait_reason(Wait::SelectNoCases);
        Poll::Pending
    }
}

/// Go's `select` statement. See the crate docs for the syntax.
///
/// ```ignore
/// gmp::select! {
///     recv(rx_a) -> v => { ... },
///     send(tx_b, value) -> res => { ... },
///     default => { ... },
/// }
/// ```
#[macro_export]
macro_rules! select {
    () => {
        match $crate::__private::select_no_cases().await {}
    };
    ($($arms:tt)+) => {
        $crate::__select_parse!(@cases () @default () @idx (0usize) $($arms)+)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // All arms read.
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)) => {
        $crate::__select_emit!(($($c)*) $d)
    };
    // recv arms.
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        recv($rx:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [recv __op __case __res ($i) ($rx) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        recv($rx:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [recv __op __case __res ($i) ($rx) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        recv($rx:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [recv __op __case __res ($i) ($rx) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        recv($rx:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(@cases ($($c)* [recv __op __case __res ($i) ($rx) ($p) {$body}])
            @default $d @idx ($i + 1usize))
    };
    // send arms.
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        send($tx:expr, $v:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [send __op __case __res ($i) ($tx, $v) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        send($tx:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [send __op __case __res ($i) ($tx, $v) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        send($tx:expr, $v:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases ($($c)* [send __op __case __res ($i) ($tx, $v) ($p) {$body}])
            @default $d @idx ($i + 1usize) $($rest)*)
    };
    (@cases ($($c:tt)*) @default $d:tt @idx ($i:expr)
        send($tx:expr, $v:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(@cases ($($c)* [send __op __case __res ($i) ($tx, $v) ($p) {$body}])
            @default $d @idx ($i + 1usize))
    };
    // default arm (at most one).
    (@cases $c:tt @default () @idx ($i:expr) default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@cases $c @default ({$body}) @idx ($i) $($rest)*)
    };
    (@cases $c:tt @default () @idx ($i:expr) default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@cases $c @default ({$body}) @idx ($i) $($rest)*)
    };
    (@cases $c:tt @default () @idx ($i:expr) default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@cases $c @default ({$body}) @idx ($i) $($rest)*)
    };
    (@cases $c:tt @default () @idx ($i:expr) default => $body:expr) => {
        $crate::__select_parse!(@cases $c @default ({$body}) @idx ($i))
    };
    (@cases $c:tt @default ($d:tt) @idx ($i:expr) default $($rest:tt)*) => {
        ::core::compile_error!("select!: more than one `default` arm")
    };
    (@cases $c:tt @default $d:tt @idx ($i:expr) $($rest:tt)+) => {
        ::core::compile_error!(
            "select!: expected `recv(rx) -> pat => body`, `send(tx, value) -> pat => body` or `default => body`"
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_case {
    (recv $op:ident $case:ident ($rx:expr)) => {
        let $op = &$rx;
        let mut $case = ::core::pin::pin!($crate::__private::RecvCase::new($op));
    };
    (send $op:ident $case:ident ($tx:expr, $v:expr)) => {
        let $op = &$tx;
        let mut $case = ::core::pin::pin!($crate::__private::SendCase::new($op, $v));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_emit {
    (($([$kind:ident $op:ident $case:ident $res:ident ($i:expr) $args:tt ($p:pat) $body:tt])*) ()) => {
        $crate::__select_emit!(@go ($([$kind $op $case $res ($i) $args ($p) $body])*)
            false { ::core::unreachable!() })
    };
    (($([$kind:ident $op:ident $case:ident $res:ident ($i:expr) $args:tt ($p:pat) $body:tt])*) ($default:tt)) => {
        $crate::__select_emit!(@go ($([$kind $op $case $res ($i) $args ($p) $body])*)
            true $default)
    };
    (@go ($([$kind:ident $op:ident $case:ident $res:ident ($i:expr) $args:tt ($p:pat) $body:tt])*)
        $has_default:tt $default:tt) => {{
        // The chosen case's outcome is moved out here, so that the cases
        // (and their borrows of the operands) are gone before an arm body
        // runs: a body may reassign an operand, as Go code sets `c = nil`.
        $( let mut $res = ::core::option::Option::None; )*
        let __sel_idx = {
            $( $crate::__select_case!($kind $op $case $args); )*
            let __sel_idx = $crate::__private::Select::new(
                [$($crate::__private::erase($case.as_mut())),*],
                $has_default,
            )
            .await;
            if let ::core::option::Option::Some(__sel_i) = __sel_idx {
                $( if __sel_i == $i { $res = ::core::option::Option::Some($case.as_mut().take()); } else )*
                {}
            }
            __sel_idx
        };
        match __sel_idx {
            ::core::option::Option::None => $default,
            ::core::option::Option::Some(__sel_i) => {
                $(
                    if __sel_i == $i {
                        let $p = match $res {
                            ::core::option::Option::Some(__v) => __v,
                            ::core::option::Option::None => ::core::unreachable!(),
                        };
                        $body
                    } else
                )*
                { ::core::unreachable!() }
            }
        }
    }};
}
