//! A weighted semaphore (golang.org/x/sync/semaphore's `Weighted`):
//! acquirers are served strictly in arrival order, so a large request is
//! never starved by a stream of small ones.

use super::waitq::{wake_all, Waiter};
use gmp_core::WaitReason;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll, Waker};

/// A weighted semaphore of `size` units.
///
/// `acquire(k)` waits until `k` units are free *and* every earlier waiter
/// has been served (FIFO); `release(k)` gives units back. Acquiring more
/// than the size can never succeed: x/sync's `Acquire` then blocks until
/// its context is done, which without a context would be a silent hang,
/// so here it panics with a message naming both numbers.
pub struct Semaphore {
    size: u64,
    st: StdMutex<State>,
}

struct State {
    /// Units held.
    cur: u64,
    /// Waiting acquirers and their weights, oldest first.
    waiters: VecDeque<(u64, Arc<Waiter>)>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Semaphore")
            .field("size", &self.size)
            .field("held", &st.cur)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore of `n` units, none held.
    pub fn new(n: u64) -> Semaphore {
        Semaphore {
            size: n,
            st: StdMutex::new(State {
                cur: 0,
                waiters: VecDeque::new(),
            }),
        }
    }

    /// The number of units (`new`'s `n`).
    pub fn size(&self) -> u64 {
        self.size
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for `k` units (FIFO). Dropping the future before it completes
    /// gives back anything it was granted. Wait reason "semacquire".
    ///
    /// # Panics
    /// If `k` exceeds the size: such a request could never be served.
    #[track_caller]
    pub fn acquire(&self, k: u64) -> Acquire<'_> {
        assert!(
            k <= self.size,
            "semaphore: acquire of {k} units exceeds the size {}",
            self.size
        );
        Acquire {
            sem: self,
            k,
            waiter: None,
        }
    }

    /// Take `k` units if they are free and nobody waits; never blocks.
    pub fn try_acquire(&self, k: u64) -> bool {
        let mut st = self.lock();
        if self.size - st.cur >= k && st.waiters.is_empty() {
            st.cur += k;
            true
        } else {
            false
        }
    }

    /// Give back `k` units, waking the waiters they now satisfy in order.
    ///
    /// # Panics
    /// If more units are released than are held (x/sync's message).
    #[track_caller]
    pub fn release(&self, k: u64) {
        let wake = {
            let mut st = self.lock();
            if k > st.cur {
                drop(st);
                panic!("semaphore: released more than held");
            }
            st.cur -= k;
            self.notify_waiters(&mut st)
        };
        wake_all(wake);
    }

    /// Grant the front waiters while they fit. Stops at the first that
    /// does not, even if a later, smaller one would: that is what keeps
    /// large requests from starving.
    fn notify_waiters(&self, st: &mut State) -> Vec<Option<Waker>> {
        let mut wake = Vec::new();
        while let Some((k, _)) = st.waiters.front() {
            if self.size - st.cur < *k {
                break;
            }
            let (k, w) = st.waiters.pop_front().unwrap();
            st.cur += k;
            wake.push(w.grant());
        }
        wake
    }
}

/// Future returned by [`Semaphore::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    k: u64,
    waiter: Option<Arc<Waiter>>,
}

impl Future for Acquire<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if gmp_core::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let sem = self.sem;
        match &self.waiter {
            None => {
                let mut st = sem.lock();
                if sem.size - st.cur >= self.k && st.waiters.is_empty() {
                    st.cur += self.k;
                    return Poll::Ready(());
                }
                let w = Waiter::new(cx.waker());
                st.waiters.push_back((self.k, w.clone()));
                drop(st);
                self.waiter = Some(w);
            }
            Some(w) => {
                if w.is_granted() {
                    self.waiter = None;
                    return Poll::Ready(());
                }
                w.update(cx.waker());
                if w.is_granted() {
                    self.waiter = None;
                    return Poll::Ready(());
                }
            }
        }
        gmp_core::park::set_wait_reason(WaitReason::Semacquire);
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    /// Cancelled: leave the queue (letting the waiters behind us go if we
    /// were what held them up), or give back units granted meanwhile.
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else { return };
        let wake = {
            let mut st = self.sem.lock();
            match st.waiters.iter().position(|(_, x)| Arc::ptr_eq(x, &w)) {
                Some(i) => {
                    st.waiters.remove(i);
                    if i == 0 {
                        self.sem.notify_waiters(&mut st)
                    } else {
                        Vec::new()
                    }
                }
                None => {
                    // Granted after we stopped waiting: put the units back.
                    st.cur -= self.k;
                    self.sem.notify_waiters(&mut st)
                }
            }
        };
        wake_all(wake);
    }
}
