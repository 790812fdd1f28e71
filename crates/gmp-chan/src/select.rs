//! Go's `selectgo`: the type-erased `SelectCase` interface it drives the
//! cases through (the cases are in `case.rs`, the macro in
//! `select_macro.rs`) and the `Select` future.
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
//! the lock order by channel address, lock each distinct channel once
//! (`SelLock`, a guard that unlocks them all when dropped),
//! pass 1 commits the first ready case in poll order, else `default`, else
//! pass 2 queues a select sudog on every channel and parks. Wakers race on
//! the shared `SelectDone`: only the one that wins the CAS completes a
//! sudog and records it in `fired`. Pass 3 (the poll after the wake)
//! unlinks the losing sudogs.

use crate::sudog::SelectDone;
use crate::sync::{fastrandn, poll_proceed_on_m, set_wait_reason, set_wait_reason_external, Wait};
use crate::wakes::Wakes;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::sync::atomic::Ordering::Acquire;
use std::task::{Context, Poll, Waker};

/// A case's look before `selectgo` locks anything. One virtual call per
/// case for both fields.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    /// The channel's address: the lock order key; 0 for a nil channel.
    pub(crate) addr: usize,
    /// A lock-free guess that `try_fire` would succeed now (the channel's
    /// readiness hint: only ever a reason to look under the lock).
    pub(crate) looks_ready: bool,
}

impl Probe {
    /// A nil channel's case: never ready.
    pub(crate) const NIL: Probe = Probe {
        addr: 0,
        looks_ready: false,
    };
}

/// What `selectgo` needs from one case, whatever its element type.
#[doc(hidden)]
pub trait SelectCase {
    /// See `Probe`.
    fn probe(&self) -> Probe;
    /// Take this case's channel lock, without a guard: only `SelLock`
    /// calls it, which locks all the select's channels in address order
    /// and releases them together (Go's `sellock`/`selunlock`), across
    /// type-erased cases.
    fn lock_raw(&self);
    /// # Safety
    /// The channel lock is held by the caller (`lock_raw`).
    unsafe fn unlock_raw(&self);
    /// Pass 1: commit now if ready. `wake` receives a counterpart to wake
    /// after all locks are released. `Held` is the proof that `SelLock`
    /// holds this case's channel lock.
    fn try_fire(self: Pin<&mut Self>, held: &Held, wakes: &mut Wakes) -> bool;
    /// The fast path: `try_fire` under this one channel's lock, taken and
    /// released inside.
    fn try_fire_alone(self: Pin<&mut Self>, wakes: &mut Wakes) -> bool;
    /// Pass 2: queue this case's sudog for the select, under the lock
    /// `held` proves held. `case` is this case's index (below the
    /// select's case count). Returns whether the channel is foreign (see
    /// `is_foreign`), read under its lock. Queueing on a channel with a
    /// lock-free ring may complete a sudog at once (possibly this
    /// select's own): its waker goes to `wakes`.
    ///
    /// # Safety
    /// `sel` outlives the queued sudog (the select unlinks every sudog
    /// before it goes away).
    unsafe fn enqueue(
        self: Pin<&mut Self>,
        held: &Held,
        sel: *const SelectDone,
        case: u32,
        wakes: &mut Wakes,
    ) -> bool;
    /// Pass 3 / cancellation: unlink the sudog if still queued (takes the
    /// lock itself).
    fn dequeue(self: Pin<&mut Self>);
    /// Give the queued sudog its own waker, overriding the select's shared
    /// one (takes the lock itself).
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

/// The proof, for a case's methods, that `selectgo` holds the case's
/// channel lock: only a `SelLock` makes one (the field is private).
#[doc(hidden)]
#[derive(Debug)]
pub struct Held(());

/// A pinned, type-erased case.
type CaseRef<'a> = Pin<&'a mut (dyn SelectCase + Send + 'a)>;

/// Go's `sellock` and `selunlock` as a guard: the locks of all of a
/// select's channels, taken in address order (each distinct channel once)
/// and released in reverse when it is dropped, also by a panic unwinding
/// (a waker clone may panic while the select parks). The raw lock calls
/// are here and nowhere else: no one guard per channel can express "these
/// locks, in this order, across element types". The cases are reached
/// through it while it holds the locks.
struct SelLock<'s, 'a, const N: usize> {
    cases: &'s mut [CaseRef<'a>; N],
    /// Case indices sorted by channel address, with those addresses.
    lockorder: &'s [usize],
    addrs: &'s [usize],
}

impl<'s, 'a, const N: usize> SelLock<'s, 'a, N> {
    fn lock(cases: &'s mut [CaseRef<'a>; N], lockorder: &'s [usize], addrs: &'s [usize]) -> Self {
        for k in 0..lockorder.len() {
            if k == 0 || addrs[k] != addrs[k - 1] {
                cases[lockorder[k]].lock_raw();
            }
        }
        SelLock {
            cases,
            lockorder,
            addrs,
        }
    }

    /// Pass 1 for case `i`.
    fn try_fire(&mut self, i: usize, wakes: &mut Wakes) -> bool {
        // Every case's channel is locked while `self` lives.
        self.cases[i].as_mut().try_fire(&Held(()), wakes)
    }

    /// Pass 2 for case `i`.
    ///
    /// # Safety
    /// As `SelectCase::enqueue`.
    unsafe fn enqueue(&mut self, i: usize, sel: *const SelectDone, wakes: &mut Wakes) -> bool {
        // SAFETY: every case's channel is locked while `self` lives; the
        // rest is the caller's contract. `i < N`, a macro-generated case
        // count, fits the `u32`.
        unsafe {
            self.cases[i]
                .as_mut()
                .enqueue(&Held(()), sel, i as u32, wakes)
        }
    }
}

impl<const N: usize> Drop for SelLock<'_, '_, N> {
    fn drop(&mut self) {
        for k in (0..self.lockorder.len()).rev() {
            if k == 0 || self.addrs[k] != self.addrs[k - 1] {
                // SAFETY: locked in `lock`, once per distinct channel.
                unsafe { self.cases[self.lockorder[k]].unlock_raw() };
            }
        }
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
    /// The waker the queued sudogs were last given, if the select was
    /// polled again with a waker other than the shared one it parked with
    /// (`SelectDone::waker`).
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
                // SAFETY: we are the select, past `set_waker`.
                let current = this.waker.as_ref().or(unsafe { this.sel.waker() });
                if !current.is_some_and(|w| w.will_wake(cx.waker())) {
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
            let p = this.cases[i].probe();
            (caddr[i], hint[i]) = (p.addr, p.looks_ready);
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
            let mut wakes = Wakes::new();
            if this.cases[i].as_mut().try_fire_alone(&mut wakes) {
                wakes.wake();
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
        // sellock.
        let mut held = SelLock::lock(&mut this.cases, lockorder, addrs);

        // Pass 1: the first ready case in poll order commits.
        let mut wakes = Wakes::new();
        for &i in &pollorder[..n] {
            if held.try_fire(i, &mut wakes) {
                drop(held);
                wakes.wake();
                return Poll::Ready(Some(i));
            }
        }
        if this.has_default {
            drop(held);
            wakes.wake();
            return Poll::Ready(None);
        }

        // Pass 2: queue a sudog on every channel, in lock order, and park.
        let sel: *const SelectDone = &this.sel;
        // SAFETY: nothing of this select is queued yet (a select parks
        // once: after this it only returns `Ready` or stays parked).
        unsafe { this.sel.set_waker(cx.waker()) };
        let mut foreign = false;
        for &i in lockorder {
            // SAFETY: `sel` lives in this pinned future, which unlinks
            // every sudog (pass 3 or drop) before it goes.
            foreign |= unsafe { held.enqueue(i, sel, &mut wakes) };
        }
        drop(held);
        // A ring channel may have completed one of our sudogs (this
        // select's own waker is then among these): the next poll sees
        // `fired`.
        wakes.wake();
        this.foreign = foreign;
        if n > 0 {
            this.parked = true;
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
