//! `Sleep`, Go's `time.Sleep` as a future: a timer of the current P's heap
//! (`timer.rs`) that wakes the sleeping goroutine. A duration too long for
//! `Instant` sleeps forever (Go's `maxWhen`), never panics or wraps.

use crate::sched::expect_current;
use crate::timer::{deadline_after, TimerInner};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Go's `time.Sleep`: resolves at or after its deadline, never before.
/// Dropping it removes its timer.
#[derive(Debug)]
#[must_use = "sleep does nothing unless awaited"]
pub struct Sleep {
    /// `None`: never (the duration overflowed `Instant`).
    deadline: Option<Instant>,
    timer: Option<Arc<TimerInner>>,
}

/// Sleep for `d` (`time.Sleep`); `sleep(Duration::ZERO)` is ready at once
/// and `sleep(Duration::MAX)` never ends.
pub fn sleep(d: Duration) -> Sleep {
    Sleep {
        deadline: deadline_after(d),
        timer: None,
    }
}

/// Sleep until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline: Some(deadline),
        timer: None,
    }
}

impl Sleep {
    /// When this sleep ends; `None` if never (its duration was too long
    /// for `Instant`).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Move the deadline (re-arming the timer if it was armed).
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
        if let Some(t) = &self.timer {
            let mut st = t.state();
            if st.armed || st.fired {
                let when = t.sched.nanotime_of(deadline);
                t.arm(&mut st, when, 0);
            }
        }
    }

    /// Stop the timer without dropping the `Sleep`: it wakes nobody until
    /// polled again, which re-arms it for its deadline (set a new one with
    /// `reset` first). Keeping a stopped `Sleep` for the next wait, rather
    /// than making a new one, saves the timer's allocation, and when the
    /// new deadline is later than the old one, any heap work: what a
    /// server's per-request timeout wants.
    pub fn stop(&mut self) {
        if let Some(t) = &self.timer {
            let mut st = t.state();
            t.disarm(&mut st);
            st.waker = None;
        }
    }

    /// Whether the deadline has passed. A deadline well past the coarse
    /// clock (`clock.rs`) is not, and needs no precise read: a server's
    /// header timeout is first polled 30 s ahead of its deadline.
    fn expired(&self) -> bool {
        self.deadline
            .is_some_and(|d| !crate::clock::certainly_before(d) && Instant::now() >= d)
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.expired() {
            return Poll::Ready(());
        }
        if crate::coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let deadline = self.deadline;
        match &self.timer {
            None => {
                let sched = expect_current("gmp::time::sleep(..).await", |ctx| ctx.sched.clone());
                let t = TimerInner::new_wake(sched);
                {
                    let mut st = t.state();
                    st.waker = Some(cx.waker().clone());
                    let when = t.sched.when_of(deadline);
                    t.arm(&mut st, when, 0);
                }
                self.timer = Some(t);
            }
            Some(t) => {
                let mut st = t.state();
                if !st.armed {
                    // Fired (the heap fires at or after `when`, but the
                    // clock check above decides), or refused by a runtime
                    // that has ended: arm again.
                    let when = t.sched.when_of(deadline);
                    t.arm(&mut st, when, 0);
                }
                match &st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => st.waker = Some(cx.waker().clone()),
                }
            }
        }
        crate::park::set_wait_reason(crate::WaitReason::Sleep);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.stop();
    }
}
