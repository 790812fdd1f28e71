//! `sync.WaitGroup`: a counter goroutines wait on until it is zero.

use super::waitq::{wake_all, WaitQueue, Waiter};
use gmp_core::WaitReason;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Go's `sync.WaitGroup`. Clones share one counter.
#[derive(Clone, Default)]
pub struct WaitGroup {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    count: isize,
    /// Bumped each time the count reaches zero: a waiter registered before
    /// returns even if the count went up again since (Go's semantics).
    gen: u64,
    waiters: WaitQueue,
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.lock().unwrap();
        f.debug_struct("WaitGroup")
            .field("count", &s.count)
            .finish()
    }
}

impl WaitGroup {
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Add `n` (may be negative). Panics with Go's message if the counter
    /// goes negative.
    pub fn add(&self, n: isize) {
        let wake = {
            let mut s = self.inner.lock().unwrap();
            s.count += n;
            if s.count < 0 {
                s.count -= n;
                drop(s);
                panic!("sync: negative WaitGroup counter");
            }
            if s.count == 0 && !s.waiters.is_empty() {
                s.gen += 1;
                s.waiters.drain().map(|w| w.grant()).collect::<Vec<_>>()
            } else {
                Vec::new()
            }
        };
        wake_all(wake);
    }

    /// `add(-1)`.
    pub fn done(&self) {
        self.add(-1);
    }

    /// Wait until the counter is zero.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            wg: self,
            waiter: None,
        }
    }

    /// Go 1.25's `WaitGroup.Go`: `add(1)`, run `fut` in a new goroutine,
    /// `done()` when it finishes (or unwinds).
    #[track_caller]
    pub fn go<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.add(1);
        let done = DoneOnDrop(self.clone());
        crate::go(async move {
            let _done = done;
            fut.await;
        });
    }
}

struct DoneOnDrop(WaitGroup);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        self.0.done();
    }
}

/// Future returned by [`WaitGroup::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<'a> {
    wg: &'a WaitGroup,
    waiter: Option<(Arc<Waiter>, u64)>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if gmp_core::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let mut s = self.wg.inner.lock().unwrap();
        if s.count == 0 {
            return Poll::Ready(());
        }
        match &self.waiter {
            Some((w, gen)) => {
                if w.is_granted() || s.gen != *gen {
                    drop(s);
                    self.waiter = None;
                    return Poll::Ready(());
                }
                w.update(cx.waker());
            }
            None => {
                let w = Waiter::new(cx.waker());
                s.waiters.push_back(w.clone());
                let gen = s.gen;
                drop(s);
                self.waiter = Some((w, gen));
            }
        }
        gmp_core::park::set_wait_reason(WaitReason::SyncWaitGroupWait);
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some((w, _)) = self.waiter.take() {
            self.wg.inner.lock().unwrap().waiters.remove(&w);
        }
    }
}
