//! `sync.Cond`: goroutines wait for a condition guarded by a gmp `Mutex`
//! (Go's `notifyList`: a waiter is queued before the mutex is released,
//! so a `signal` between the unlock and the park is never lost).

use super::mutex::MutexGuard;
use super::waitq::{wake_all, WaitQueue, Waiter, HANDED, WOKEN};
use gmp_core::WaitReason;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};

/// Go's `sync.Cond`, used with any gmp [`Mutex`](super::Mutex):
///
/// ```
/// # async fn f(m: &gmp::sync::Mutex<Vec<u32>>, c: &gmp::sync::Cond) {
/// let mut g = m.lock().await;
/// while g.is_empty() {
///     g = c.wait(g).await;
/// }
/// # }
/// ```
#[derive(Default)]
pub struct Cond {
    /// Waiters in arrival order (Go's ticket order).
    q: StdMutex<WaitQueue>,
}

impl std::fmt::Debug for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cond")
            .field("waiters", &self.lock().len())
            .finish()
    }
}

impl Cond {
    pub fn new() -> Cond {
        Cond::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WaitQueue> {
        self.q.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Unlock the guard's mutex, wait for `signal` or `broadcast`, lock it
    /// again and return the new guard (Go's `c.Wait()`). As in Go, a
    /// wake-up does not mean the condition holds: re-check it in a loop.
    /// Wait reason "sync.Cond.Wait".
    pub async fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let m = guard.mutex();
        let w = Waiter::new(std::task::Waker::noop());
        self.lock().push_back(w.clone());
        drop(guard);
        Notified {
            cond: self,
            w: Some(w),
        }
        .await;
        m.lock().await
    }

    /// Wake the longest-waiting goroutine, if any (Go's `c.Signal()`).
    pub fn signal(&self) {
        let w = self.lock().pop_front();
        wake_all([w.and_then(|w| w.grant_as(HANDED))]);
    }

    /// Wake every waiting goroutine (Go's `c.Broadcast()`).
    pub fn broadcast(&self) {
        let ws: Vec<_> = self.lock().drain().map(|w| w.grant_as(WOKEN)).collect();
        wake_all(ws);
    }
}

/// The park half of `wait`: ready once this waiter is signalled.
struct Notified<'c> {
    cond: &'c Cond,
    w: Option<Arc<Waiter>>,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(w) = &self.w else {
            return Poll::Ready(());
        };
        if !w.is_granted() {
            w.update(cx.waker());
            // A grant between the check and the update took the old waker.
            if !w.is_granted() {
                gmp_core::park::set_wait_reason(WaitReason::SyncCondWait);
                return Poll::Pending;
            }
        }
        self.w = None;
        Poll::Ready(())
    }
}

impl Drop for Notified<'_> {
    /// A wait cancelled before it returned: leave the queue, or pass a
    /// `signal` meant for it on to the next waiter, so it is not lost.
    fn drop(&mut self) {
        let Some(w) = self.w.take() else { return };
        let mut q = self.cond.lock();
        if q.remove(&w) || w.grant_state() != HANDED {
            return;
        }
        let next = q.pop_front();
        drop(q);
        wake_all([next.and_then(|n| n.grant_as(HANDED))]);
    }
}
