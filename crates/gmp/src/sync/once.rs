//! `sync.Once`: run a function exactly once; concurrent callers wait for
//! the first to finish.

use super::waitq::{wake_all, WaitQueue, Waiter};
use gmp_core::WaitReason;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};

/// Go's `sync.Once`.
#[derive(Default)]
pub struct Once {
    st: StdMutex<State>,
}

#[derive(Default)]
struct State {
    done: bool,
    running: bool,
    waiters: WaitQueue,
}

impl std::fmt::Debug for Once {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Once")
            .field("done", &self.is_completed())
            .finish()
    }
}

impl Once {
    pub const fn new() -> Once {
        Once {
            st: StdMutex::new(State {
                done: false,
                running: false,
                waiters: WaitQueue::new(),
            }),
        }
    }

    /// True once the function has run (or panicked: like Go, a panicking
    /// function still counts as done).
    pub fn is_completed(&self) -> bool {
        self.st.lock().unwrap().done
    }

    /// Run `f` if no call has; wait for the running call otherwise.
    pub fn call_once<F: FnOnce()>(&self, f: F) -> CallOnce<'_, F> {
        CallOnce {
            once: self,
            f: Some(f),
            waiter: None,
        }
    }
}

/// Future returned by [`Once::call_once`].
#[must_use = "futures do nothing unless awaited"]
pub struct CallOnce<'a, F> {
    once: &'a Once,
    f: Option<F>,
    waiter: Option<Arc<Waiter>>,
}

impl<F> Unpin for CallOnce<'_, F> {}

impl<F: FnOnce()> Future for CallOnce<'_, F> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.once.st.lock().unwrap();
        if s.done {
            return Poll::Ready(());
        }
        if !s.running {
            s.running = true;
            drop(s);
            let f = self.f.take().expect("CallOnce polled after completion");
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let wake: Vec<_> = {
                let mut s = self.once.st.lock().unwrap();
                s.done = true;
                s.running = false;
                s.waiters.drain().map(|w| w.grant()).collect()
            };
            wake_all(wake);
            if let Err(p) = r {
                std::panic::resume_unwind(p);
            }
            return Poll::Ready(());
        }
        match &self.waiter {
            Some(w) => w.update(cx.waker()),
            None => {
                let w = Waiter::new(cx.waker());
                s.waiters.push_back(w.clone());
                drop(s);
                self.waiter = Some(w);
            }
        }
        gmp_core::park::set_wait_reason(WaitReason::SyncMutexLock);
        Poll::Pending
    }
}

impl<F> Drop for CallOnce<'_, F> {
    fn drop(&mut self) {
        if let Some(w) = self.waiter.take() {
            self.once.st.lock().unwrap().waiters.remove(&w);
        }
    }
}
