//! Go's `time` package on gmp's per-P timers: `sleep`, `sleep_until`,
//! `timeout`, and (with channels) `after` and `Ticker`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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

/// Go's `time.After`: a channel that receives the time once `d` has
/// passed. It is never closed; use it as a `select!` case for timeouts.
#[track_caller]
pub fn after(d: Duration) -> crate::chan::Receiver<Instant> {
    let (tx, rx) = gmp_chan::__private::bounded_never_closed(1);
    let timer = gmp_core::timer::Timer::new(move |now| {
        let _ = tx.try_send(now);
    });
    timer.start(Instant::now() + d, None);
    rx
}

/// Go's `time.Ticker`: delivers the time every period. Holds at most one
/// pending tick: a slow reader misses ticks rather than queueing them.
/// After `stop()` returns, no stale tick is received (Go 1.23).
pub struct Ticker {
    timer: gmp_core::timer::Timer,
    rx: crate::chan::Receiver<Instant>,
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
    /// A ticker of period `d`. Panics if `d` is zero (Go: non-positive
    /// interval) or outside a runtime.
    #[track_caller]
    pub fn new(d: Duration) -> Ticker {
        assert!(
            !d.is_zero(),
            "non-positive interval for gmp::time::Ticker::new"
        );
        let (tx, rx) = gmp_chan::__private::bounded_never_closed(1);
        let timer = gmp_core::timer::Timer::new(move |now| {
            // Full: the reader has not taken the last tick; drop this one.
            let _ = tx.try_send(now);
        });
        timer.start(Instant::now() + d, Some(d));
        Ticker {
            timer,
            rx,
            period: d,
        }
    }

    /// Wait for the next tick.
    pub async fn recv(&mut self) -> Instant {
        match self.rx.recv().await {
            Ok(t) => t,
            Err(_) => unreachable!("ticker channels are never closed"),
        }
    }

    /// The tick channel (Go's `Ticker.C`), for `select!`.
    pub fn channel(&self) -> &crate::chan::Receiver<Instant> {
        &self.rx
    }

    /// Stop ticking. Once this returns no further tick is delivered and
    /// any pending one is discarded.
    pub fn stop(&self) {
        let rx = &self.rx;
        self.timer.stop_and(|| while rx.try_recv().is_ok() {});
    }

    /// Restart with a new period (Go's `Reset`), discarding a pending tick.
    pub fn reset(&mut self, d: Duration) {
        assert!(
            !d.is_zero(),
            "non-positive interval for gmp::time::Ticker::reset"
        );
        self.stop();
        self.period = d;
        self.timer.start(Instant::now() + d, Some(d));
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.timer.stop();
    }
}
