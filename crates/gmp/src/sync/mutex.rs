//! `sync.Mutex` with Go's two modes.
//!
//! Normal mode: a woken waiter competes with goroutines that just arrived
//! (which usually win: they are already running), and goes back to the
//! front of the queue if it loses. Once a waiter has waited over 1ms the
//! mutex enters starvation mode: unlock hands ownership straight to the
//! oldest waiter, and arrivals queue at the tail instead of barging. It
//! returns to normal when the handed-to waiter is the last one or waited
//! under 1ms.

use super::waitq::{wake_all, WaitQueue, Waiter, HANDED, WOKEN};
use gmp_core::WaitReason;
use std::cell::UnsafeCell;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};
use std::time::Duration;

const LOCKED: u32 = 1;
const STARVING: u32 = 2;
const WAITERS: u32 = 4;
/// Go's `starvationThresholdNs`.
const STARVATION: Duration = Duration::from_millis(1);

/// Go's `sync.Mutex`, owning the data it protects.
pub struct Mutex<T: ?Sized> {
    state: AtomicU32,
    q: StdMutex<WaitQueue>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives exclusive access to `data`, as for std's Mutex.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above; `&Mutex` only hands out `&mut T` under the lock.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.load(Relaxed);
        f.debug_struct("Mutex")
            .field("locked", &(s & LOCKED != 0))
            .field("starving", &(s & STARVING != 0))
            .finish_non_exhaustive()
    }
}

impl<T> Mutex<T> {
    pub fn new(v: T) -> Mutex<T> {
        Mutex {
            state: AtomicU32::new(0),
            q: StdMutex::new(WaitQueue::default()),
            data: UnsafeCell::new(v),
        }
    }

    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquire the lock.
    pub fn lock(&self) -> Lock<'_, T> {
        Lock {
            m: self,
            waiter: None,
        }
    }

    /// Acquire the lock if it is free and nobody is starving for it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.try_acquire().then(|| MutexGuard { m: self })
    }

    /// True while starvation mode is on (for tests and diagnostics).
    pub fn is_starving(&self) -> bool {
        self.state.load(Relaxed) & STARVING != 0
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn try_acquire(&self) -> bool {
        let mut s = self.state.load(Relaxed);
        loop {
            if s & (LOCKED | STARVING) != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
            {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    /// Take a free lock regardless of starvation mode (the caller is the
    /// front waiter, holding the queue lock); leaves starvation and waiter
    /// flags consistent when the queue is empty.
    fn acquire_as_oldest(&self, queue_empty: bool) -> bool {
        let mut s = self.state.load(Relaxed);
        loop {
            if s & LOCKED != 0 {
                return false;
            }
            let mut new = s | LOCKED;
            if queue_empty {
                new &= !(STARVING | WAITERS);
            }
            match self.state.compare_exchange_weak(s, new, Acquire, Relaxed) {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Release, Relaxed)
            .is_ok()
        {
            return;
        }
        let mut q = self.q.lock().unwrap();
        let wake = self.unlock_locked(&mut q);
        drop(q);
        wake_all([wake]);
    }

    /// Release with the queue locked; returns the waker to call.
    fn unlock_locked(&self, q: &mut WaitQueue) -> Option<std::task::Waker> {
        let s = self.state.load(Acquire);
        if s & STARVING != 0 {
            if let Some(w) = q.pop_front() {
                // Hand off: LOCKED stays set, ownership moves to `w`.
                if q.is_empty() || w.since.elapsed() < STARVATION {
                    self.state.fetch_and(!STARVING, AcqRel);
                }
                if q.is_empty() {
                    self.state.fetch_and(!WAITERS, AcqRel);
                }
                return w.grant_as(HANDED);
            }
            self.state.fetch_and(!(STARVING | LOCKED), AcqRel);
            return None;
        }
        self.state.fetch_and(!LOCKED, AcqRel);
        let w = q.pop_front()?;
        if q.is_empty() {
            self.state.fetch_and(!WAITERS, AcqRel);
        }
        w.grant_as(WOKEN)
    }
}

/// Future returned by [`Mutex::lock`].
#[must_use = "futures do nothing unless awaited"]
pub struct Lock<'a, T: ?Sized> {
    m: &'a Mutex<T>,
    waiter: Option<Arc<Waiter>>,
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<MutexGuard<'a, T>> {
        if gmp_core::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let m = self.m;
        match self.waiter.clone() {
            None => {
                if m.try_acquire() {
                    return Poll::Ready(MutexGuard { m });
                }
                let mut q = m.q.lock().unwrap();
                m.state.fetch_or(WAITERS, AcqRel);
                if m.try_acquire() {
                    if q.is_empty() {
                        m.state.fetch_and(!WAITERS, AcqRel);
                    }
                    return Poll::Ready(MutexGuard { m });
                }
                let w = Waiter::new(cx.waker());
                q.push_back(w.clone());
                drop(q);
                self.waiter = Some(w);
            }
            Some(w) => match w.grant_state() {
                HANDED => {
                    self.waiter = None;
                    return Poll::Ready(MutexGuard { m });
                }
                WOKEN => {
                    if m.try_acquire() {
                        self.waiter = None;
                        return Poll::Ready(MutexGuard { m });
                    }
                    // Lost to an arrival: back to the front of the queue;
                    // after 1ms of waiting, stop the barging.
                    let mut q = m.q.lock().unwrap();
                    w.clear_grant();
                    w.update(cx.waker());
                    let mut flags = WAITERS;
                    if w.since.elapsed() > STARVATION {
                        flags |= STARVING;
                    }
                    m.state.fetch_or(flags, AcqRel);
                    // We are the oldest waiter: starvation mode does not
                    // keep us out, only a holder does.
                    if m.acquire_as_oldest(q.is_empty()) {
                        self.waiter = None;
                        return Poll::Ready(MutexGuard { m });
                    }
                    q.push_front(w);
                }
                _ => w.update(cx.waker()),
            },
        }
        gmp_core::park::set_wait_reason(WaitReason::SyncMutexLock);
        Poll::Pending
    }
}

impl<T: ?Sized> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else { return };
        let m = self.m;
        let mut q = m.q.lock().unwrap();
        if q.remove(&w) {
            if q.is_empty() {
                m.state.fetch_and(!WAITERS, AcqRel);
            }
            return;
        }
        // Dequeued by an unlock: give back what it gave us.
        let wake = match w.grant_state() {
            HANDED => m.unlock_locked(&mut q),
            WOKEN => {
                // We took a wake-up meant to make someone retry: pass it on.
                let next = q.pop_front();
                if q.is_empty() {
                    m.state.fetch_and(!WAITERS, AcqRel);
                }
                next.and_then(|n| n.grant_as(WOKEN))
            }
            _ => None,
        };
        drop(q);
        wake_all([wake]);
    }
}

/// Holds a [`Mutex`] locked; unlocks on drop.
#[must_use = "the lock is released as soon as the guard drops"]
pub struct MutexGuard<'a, T: ?Sized> {
    m: &'a Mutex<T>,
}

// SAFETY: like std's guard: sharing the guard shares `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, exclusively.
        unsafe { &mut *self.m.data.get() }
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard holds (`Cond::wait` unlocks and re-locks it).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.m
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.unlock();
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}
