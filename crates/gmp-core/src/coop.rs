//! Cooperative preemption. A stackless goroutine can only be switched out
//! where it awaits, so gmp's own awaits (channel ops, gosched, sleeps, I/O)
//! call `poll_proceed` first: after `BUDGET` ready operations in one time
//! slice, or once sysmon has flagged the slice as over 10ms, it yields
//! instead. A goroutine whose channel is always ready still lets the others
//! of its P run.

use crate::sched::{expect_current, with_current};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Consume one unit of the current goroutine's budget. `Pending` means the
/// goroutine has been rescheduled and must return `Pending` now (without
/// registering anywhere else). Outside a runtime it is always `Ready`.
#[inline]
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    yield_if(with_current(must_yield).unwrap_or(false), cx)
}

/// [`poll_proceed`] for the first poll of an operation that only works on
/// a runtime: the same thread-local lookup that finds the budget tells
/// whether we are on an M, so the check costs nothing extra. Outside a
/// runtime it panics with a message naming `what`.
#[inline]
#[track_caller]
pub fn poll_proceed_in_runtime(cx: &mut Context<'_>, what: &str) -> Poll<()> {
    match with_current(must_yield) {
        Some(must) => yield_if(must, cx),
        None => crate::park::not_in_runtime(what),
    }
}

/// [`poll_proceed`] that also says where it runs: `None` off the runtime
/// (a plain thread, another executor's task), where there is no budget to
/// take, so a caller that also works there can note that it was used from
/// outside.
#[inline]
pub fn poll_proceed_on_m(cx: &mut Context<'_>) -> Option<Poll<()>> {
    with_current(must_yield).map(|must| yield_if(must, cx))
}

#[inline]
fn yield_if(must: bool, cx: &mut Context<'_>) -> Poll<()> {
    if must {
        self_wake(cx);
        Poll::Pending
    } else {
        Poll::Ready(())
    }
}

/// One budget step on this M: true when the goroutine must yield now.
#[inline]
fn must_yield(ctx: &crate::sched::MCtx) -> bool {
    if ctx.curg.get().is_none() {
        return false;
    }
    let preempt = ctx
        .curp()
        .is_some_and(|p| p.preempt.load(std::sync::atomic::Ordering::Relaxed));
    if preempt {
        // Go's preempted goroutine goes to the global queue.
        ctx.yield_global.set(true);
        return true;
    }
    let b = ctx.budget.get();
    if b == 0 {
        return true;
    }
    ctx.budget.set(b - 1);
    false
}

/// Ask to be polled again. When the context's waker is the goroutine's
/// own, tell the M directly (it requeues the G with one CAS instead of a
/// wake CAS plus an idle CAS); otherwise wake through the waker, which a
/// combinator may need to see.
#[inline]
fn self_wake(cx: &mut Context<'_>) {
    let fast = with_current(|ctx| match ctx.curg.get() {
        Some(g) if crate::g::is_own_waker(cx.waker(), g) => {
            ctx.self_yield.set(true);
            true
        }
        _ => false,
    })
    .unwrap_or(false);
    if !fast {
        cx.waker().wake_by_ref();
    }
}

/// `runtime.Gosched`: yield the P; the goroutine goes to the global run
/// queue's tail.
#[track_caller]
pub fn gosched() -> Gosched {
    expect_current("gmp::runtime::gosched", |_| ());
    Gosched { yielded: false }
}

/// Future returned by [`gosched`].
#[derive(Debug)]
#[must_use = "gosched does nothing unless awaited"]
pub struct Gosched {
    yielded: bool,
}

impl Future for Gosched {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        with_current(|ctx| ctx.yield_global.set(true));
        self_wake(cx);
        Poll::Pending
    }
}
