//! Go's `time` package on gmp's per-P timers: `sleep`, `sleep_until`,
//! `timeout`, and the channel timers `after`, `Timer` and `Ticker`;
//! `after_func` is in `time/after_func.rs`.
//!
//! Channel timers follow Go 1.23: after `stop()` or `reset()` returns no
//! value from before the call is received, and a timer whose handles are
//! all gone (its channel's receivers, and the `Timer`/`Ticker` itself) is
//! dropped from its heap unfired. A duration too long for `Instant` means
//! "never" (Go's `maxWhen`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

mod after_func;
pub use after_func::{after_func, AfterFunc};

use crate::chan::{Receiver, Sender};

pub use gmp_core::timer::{sleep, sleep_until, Sleep};

/// `timeout` ran out before its future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Run `fut` for at most `d`: `Err(Elapsed)` if it has not finished by
/// then (the future is dropped).
pub fn timeout<F: Future>(d: Duration, fut: F) -> Timeout<F> {
    Timeout {
        fut,
        sleep: sleep(d),
    }
}

pin_project_lite::pin_project! {
    /// Future returned by [`timeout`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        fut: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A channel timer's action: send the time without blocking (a full
/// channel drops it: a Ticker skips ticks a slow reader misses). Observed
/// while anyone besides this sender refers to the channel.
struct SendTime(Sender<Instant>);

impl gmp_core::timer::TimerFn for SendTime {
    fn fire(&self, now: Instant) {
        let _ = self.0.try_send(now);
    }

    fn observed(&self) -> bool {
        gmp_chan::__private::handle_count(&self.0) > 1
    }
}

/// A stopped channel timer (cap 1, never closed) and its channel.
#[track_caller]
fn chan_timer() -> (gmp_core::timer::Timer, Receiver<Instant>) {
    let (tx, rx) = gmp_chan::__private::bounded_never_closed(1);
    (gmp_core::timer::Timer::with(SendTime(tx)), rx)
}

/// Go's `time.After`: a channel that receives the time once `d` has
/// passed. It is never closed; use it as a `select!` case for timeouts.
/// A receiver dropped before the timer fires (a `select!` loop that took
/// another case) takes its timer with it. Panics outside a runtime.
#[track_caller]
pub fn after(d: Duration) -> Receiver<Instant> {
    let (timer, rx) = chan_timer();
    timer.start_after(d, None);
    rx
}

/// A channel timer owned by a handle: stops it when the handle goes,
/// unless a clone of its channel is still around (which keeps it, as Go
/// keeps a timer its channel refers to).
struct ChanTimer {
    timer: gmp_core::timer::Timer,
    /// Always `Some` but in `drop`, which lets it go before asking whether
    /// the timer is still observed.
    rx: Option<Receiver<Instant>>,
}

impl ChanTimer {
    #[track_caller]
    fn new() -> ChanTimer {
        let (timer, rx) = chan_timer();
        ChanTimer {
            timer,
            rx: Some(rx),
        }
    }

    fn rx(&self) -> &Receiver<Instant> {
        self.rx.as_ref().expect("a live ChanTimer has its receiver")
    }

    /// Disarm and drain, under the timer's lock so that no firing
    /// interleaves: true if a value had not yet been received (armed, or
    /// fired into the channel with nobody taking it yet).
    fn stop(&self) -> bool {
        let rx = self.rx();
        let (armed, drained) = self.timer.stop_and(|| rx.try_recv().is_ok());
        armed || drained
    }

    async fn recv(&self) -> Instant {
        match self.rx().recv().await {
            Ok(t) => t,
            Err(_) => unreachable!("timer channels are never closed"),
        }
    }
}

impl Drop for ChanTimer {
    fn drop(&mut self) {
        drop(self.rx.take());
        if !self.timer.is_observed() {
            self.timer.stop();
        }
    }
}

/// Go's `time.Timer` (`time.NewTimer`): delivers the time once, `d` from
/// now, on its channel. Go 1.23 semantics: after `stop()` or `reset()`
/// returns, no value from before the call is received.
pub struct Timer {
    t: ChanTimer,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("active", &self.t.timer.is_armed())
            .finish()
    }
}

impl Timer {
    /// A timer that fires after `d` (never, for a `d` too long for
    /// `Instant`). Panics outside a runtime.
    #[track_caller]
    pub fn new(d: Duration) -> Timer {
        let t = ChanTimer::new();
        t.timer.start_after(d, None);
        Timer { t }
    }

    /// Wait for the timer to fire (Go's `<-t.C`).
    pub async fn recv(&self) -> Instant {
        self.t.recv().await
    }

    /// The timer's channel (Go's `t.C`), for `select!`.
    pub fn channel(&self) -> &Receiver<Instant> {
        self.t.rx()
    }

    /// Stop the timer: true if this call stopped it before its value was
    /// received (Go 1.23's `Stop`). Once it returns no value is received
    /// until the timer is `reset`.
    pub fn stop(&self) -> bool {
        self.t.stop()
    }

    /// Re-arm to fire `d` from now, discarding an unreceived value: true
    /// if the timer had been active (Go 1.23's `Reset`).
    pub fn reset(&self, d: Duration) -> bool {
        let was = self.t.stop();
        self.t.timer.start_after(d, None);
        was
    }
}

/// Go's `time.Ticker`: delivers the time every period. Holds at most one
/// pending tick: a slow reader misses ticks rather than queueing them.
/// After `stop()` returns, no stale tick is received (Go 1.23).
pub struct Ticker {
    t: ChanTimer,
    period: Duration,
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("period", &self.period)
            .finish()
    }
}

impl Ticker {
    /// A ticker of period `d` (never ticking, for a `d` too long for
    /// `Instant`). Panics if `d` is zero (Go: non-positive interval) or
    /// outside a runtime.
    #[track_caller]
    pub fn new(d: Duration) -> Ticker {
        assert!(
            !d.is_zero(),
            "non-positive interval for gmp::time::Ticker::new"
        );
        let t = ChanTimer::new();
        t.timer.start_after(d, Some(d));
        Ticker { t, period: d }
    }

    /// Wait for the next tick.
    pub async fn recv(&mut self) -> Instant {
        self.t.recv().await
    }

    /// The tick channel (Go's `Ticker.C`), for `select!`.
    pub fn channel(&self) -> &Receiver<Instant> {
        self.t.rx()
    }

    /// Stop ticking. Once this returns no further tick is delivered and
    /// any pending one is discarded.
    pub fn stop(&self) {
        self.t.stop();
    }

    /// Restart with a new period (Go's `Reset`), discarding a pending tick.
    pub fn reset(&mut self, d: Duration) {
        assert!(
            !d.is_zero(),
            "non-positive interval for gmp::time::Ticker::reset"
        );
        self.t.stop();
        self.period = d;
        self.t.timer.start_after(d, Some(d));
    }
}
