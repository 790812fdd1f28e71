//! `ErrGroup` (golang.org/x/sync/errgroup): goroutines working on parts
//! of one task; the first error cancels the group's context, and `wait`
//! returns it once every goroutine has returned.

use super::{Semaphore, WaitGroup};
use crate::context::{self, Context};
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex};

type CancelFn = Box<dyn Fn() + Send + Sync>;

/// x/sync's `errgroup.Group`, for goroutines returning `Result<(), E>`.
///
/// ```
/// # async fn f() -> Result<(), std::io::Error> {
/// let (g, ctx) = gmp::sync::ErrGroup::with_context(&gmp::context::background());
/// g.set_limit(4);
/// for i in 0..10 {
///     let ctx = ctx.clone();
///     g.go(async move {
///         if ctx.err().is_some() { return Ok(()); }
///         // ... work on part i ...
///         Ok::<(), std::io::Error>(())
///     });
/// }
/// g.wait().await
/// # }
/// ```
///
/// Clones are handles to one group (Go shares a `*Group`), so goroutines
/// of the group can start more.
pub struct ErrGroup<E> {
    inner: Arc<Inner<E>>,
}

impl<E> Clone for ErrGroup<E> {
    fn clone(&self) -> Self {
        ErrGroup {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<E> {
    wg: WaitGroup,
    /// The first error; later ones are dropped, as in x/sync.
    err: StdMutex<Option<E>>,
    cancel: Option<CancelFn>,
    /// `set_limit`'s slots; `None`: no limit.
    limit: StdMutex<Option<Arc<Semaphore>>>,
}

impl<E> Inner<E> {
    fn cancel(&self) {
        if let Some(c) = &self.cancel {
            c();
        }
    }
}

impl<E> std::fmt::Debug for ErrGroup<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrGroup")
            .field("wg", &self.inner.wg)
            .finish_non_exhaustive()
    }
}

impl<E: Send + 'static> Default for ErrGroup<E> {
    fn default() -> Self {
        ErrGroup::with_cancel(None)
    }
}

impl<E: Send + 'static> ErrGroup<E> {
    /// A group with no context (x/sync's zero `Group`).
    pub fn new() -> ErrGroup<E> {
        ErrGroup::default()
    }

    /// A group and a child of `parent` that is cancelled when a goroutine
    /// of the group first returns an error, or when `wait` returns.
    pub fn with_context(parent: &Context) -> (ErrGroup<E>, Context) {
        let (ctx, cancel) = context::with_cancel(parent);
        (ErrGroup::with_cancel(Some(Box::new(cancel))), ctx)
    }

    fn with_cancel(cancel: Option<CancelFn>) -> ErrGroup<E> {
        ErrGroup {
            inner: Arc::new(Inner {
                wg: WaitGroup::new(),
                err: StdMutex::new(None),
                cancel,
                limit: StdMutex::new(None),
            }),
        }
    }

    /// At most `n` of the group's goroutines run at once (`usize::MAX`:
    /// no limit). Goroutines started later wait for a slot, in order.
    ///
    /// # Panics
    /// While goroutines of the group are active, as x/sync does.
    pub fn set_limit(&self, n: usize) {
        let mut l = self.inner.limit.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sem) = &*l {
            if !sem.try_acquire(sem.size()) {
                panic!("errgroup: modify limit while goroutines in the group are still active");
            }
            sem.release(sem.size());
        }
        *l = (n != usize::MAX).then(|| Arc::new(Semaphore::new(n as u64)));
    }

    /// The semaphore `set_limit` installed, if any.
    fn limit(&self) -> Option<Arc<Semaphore>> {
        self.inner
            .limit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Start `fut` in a new goroutine (x/sync's `Go`). With a limit set,
    /// `go` returns at once and the goroutine waits for a slot (FIFO)
    /// before it polls `fut`: a goroutine cannot block its caller without
    /// making `go` a future, and x/sync's only promise is that at most
    /// `n` run.
    ///
    /// # Panics
    /// With a limit of 0 (no goroutine could ever start), or outside a
    /// runtime.
    #[track_caller]
    pub fn go<F>(&self, fut: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let sem = self.limit();
        if let Some(s) = &sem {
            assert!(
                s.size() > 0,
                "errgroup: go with a limit of 0 would wait forever (use try_go)"
            );
        }
        self.spawn(fut, sem, false);
    }

    /// Start `fut` only if a slot is free now (x/sync's `TryGo`); false,
    /// and `fut` dropped, otherwise.
    #[track_caller]
    pub fn try_go<F>(&self, fut: F) -> bool
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let sem = self.limit();
        if let Some(s) = &sem {
            if !s.try_acquire(1) {
                return false;
            }
        }
        self.spawn(fut, sem, true);
        true
    }

    #[track_caller]
    fn spawn<F>(&self, fut: F, sem: Option<Arc<Semaphore>>, have_slot: bool)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        inner.wg.add(1);
        // Done (and the slot released) even if `fut` panics and the
        // runtime ignores the panic, so `wait` cannot hang on it.
        let done = Done {
            inner: Arc::clone(&inner),
            sem: sem.clone(),
            slot: have_slot,
        };
        gmp_core::go(async move {
            let mut done = done;
            if let (Some(s), false) = (&sem, done.slot) {
                s.acquire(1).await;
                done.slot = true;
            }
            if let Err(e) = fut.await {
                let mut first = inner.err.lock().unwrap_or_else(|e| e.into_inner());
                if first.is_none() {
                    *first = Some(e);
                    drop(first);
                    inner.cancel();
                }
            }
        });
    }

    /// Wait until every goroutine started with `go` has returned, cancel
    /// the context, and return the first error (x/sync's `Wait`). The
    /// error is handed out once: a second `wait` returns `Ok(())`.
    pub async fn wait(&self) -> Result<(), E> {
        self.inner.wg.wait().await;
        self.inner.cancel();
        match self
            .inner
            .err
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Marks one goroutine of the group finished when dropped.
struct Done<E> {
    inner: Arc<Inner<E>>,
    sem: Option<Arc<Semaphore>>,
    slot: bool,
}

impl<E> Drop for Done<E> {
    fn drop(&mut self) {
        if let (Some(s), true) = (&self.sem, self.slot) {
            s.release(1);
        }
        self.inner.wg.done();
    }
}
