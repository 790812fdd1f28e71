//! Go's `time.AfterFunc`: run a function in its own goroutine once a
//! duration has passed, with a handle that can stop or re-arm it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

type Func = Box<dyn FnOnce() + Send + 'static>;

/// The handle [`after_func`] returns (Go's `*Timer` from `AfterFunc`).
/// Dropping it does not stop the timer: `f` still runs, as in Go.
pub struct AfterFunc {
    timer: gmp_core::timer::Timer,
    /// `f` until the timer fires and hands it to its goroutine.
    f: Arc<Mutex<Option<Func>>>,
}

impl std::fmt::Debug for AfterFunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfterFunc")
            .field("active", &self.timer.is_armed())
            .finish()
    }
}

/// Run `f` in a goroutine of its own once `d` has passed (never, for a
/// `d` too long for `Instant`). Panics outside a runtime.
#[track_caller]
pub fn after_func(d: Duration, f: impl FnOnce() + Send + 'static) -> AfterFunc {
    let f: Arc<Mutex<Option<Func>>> = Arc::new(Mutex::new(Some(Box::new(f))));
    let slot = Arc::clone(&f);
    let timer = gmp_core::timer::Timer::new(move |_| {
        let f = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = f {
            gmp_core::go(async move { f() });
        }
    });
    timer.start_after(d, None);
    AfterFunc { timer, f }
}

impl AfterFunc {
    /// Stop the timer: true if this call stopped it before `f` was
    /// started. It does not wait for a running `f` to finish.
    pub fn stop(&self) -> bool {
        self.timer.stop()
    }

    /// Re-arm to run `f` `d` from now: true if the timer had been active.
    /// `f` is `FnOnce`, so once it has started a reset arms a timer with
    /// nothing to run (and returns false); see [`AfterFunc::has_run`].
    pub fn reset(&self, d: Duration) -> bool {
        let was = self.timer.stop();
        self.timer.start_after(d, None);
        was
    }

    /// Whether the timer has fired and handed `f` to its goroutine.
    pub fn has_run(&self) -> bool {
        self.f.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }
}
