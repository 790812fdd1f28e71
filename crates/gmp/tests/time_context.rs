//! gmp::time (after, Ticker, select timeouts) and gmp::context.

use gmp::context::{self, Error};
use std::time::{Duration, Instant};

mod support;
use support::rt;

#[test]
fn after_fires_once_and_is_never_closed() {
    rt(2).block_on(async {
        let t = Instant::now();
        let rx = gmp::time::after(Duration::from_millis(15));
        let at = rx.recv().await.unwrap();
        assert!(at >= t + Duration::from_millis(15), "fired early");
        assert!(t.elapsed() >= Duration::from_millis(15));
        // Never closed: a second receive is not ready (and not an error).
        let second = gmp::select! {
            recv(rx) -> v => Some(v),
            recv(gmp::time::after(Duration::from_millis(20))) -> _ => None,
        };
        assert!(
            second.is_none(),
            "after's channel delivered twice or closed: {second:?}"
        );
        assert!(!rx.is_closed());
    });
}

#[test]
fn select_timeout_with_after() {
    rt(2).block_on(async {
        let (_tx, rx) = gmp::chan::bounded::<u8>(0);
        let t = Instant::now();
        let r = gmp::select! {
            recv(rx) -> _ => "value",
            recv(gmp::time::after(Duration::from_millis(10))) -> _ => "timeout",
        };
        assert_eq!(r, "timeout");
        assert!(t.elapsed() >= Duration::from_millis(10));
    });
}

#[test]
fn ticker_ticks_drops_missed_ticks_and_stops_clean() {
    rt(2).block_on(async {
        let start = Instant::now();
        let mut t = gmp::time::Ticker::new(Duration::from_millis(5));
        let a = t.recv().await;
        let b = t.recv().await;
        // No tick early: the k-th tick comes at or after start + k*period.
        assert!(a >= start + Duration::from_millis(5), "first tick early");
        assert!(b >= start + Duration::from_millis(10), "second tick early");
        t.stop();
        // A slow reader misses eight periods: exactly one tick is pending,
        // and the missed ones are gone, not delivered late. Were they kept
        // (queued, or fired back to back to catch up), the receives below
        // would all be ready at once. Dropped, the first is the pending
        // tick and the later ones come a period apart: RECEIVED of them
        // take at least RECEIVED - 2 periods, less one period of slack for
        // a tick that was due, but not yet fired, when main woke.
        const PERIOD: Duration = Duration::from_millis(10);
        const RECEIVED: u32 = 5;
        t.reset(PERIOD);
        gmp::time::sleep(PERIOD * 8 + PERIOD / 2).await;
        assert_eq!(
            t.channel().len(),
            1,
            "a slow reader's ticker holds one tick"
        );
        let woke = Instant::now();
        for _ in 0..RECEIVED {
            let _ = t.recv().await;
        }
        let took = woke.elapsed();
        assert!(
            took >= PERIOD * (RECEIVED - 3),
            "{RECEIVED} ticks after a slow read came in {took:?}: missed ticks were not dropped"
        );
        t.stop();
        // After stop returns, no stale tick arrives.
        let r = gmp::select! {
            recv(t.channel()) -> v => Some(v),
            recv(gmp::time::after(Duration::from_millis(20))) -> _ => None,
        };
        assert!(r.is_none(), "tick after stop: {r:?}");
        t.reset(Duration::from_millis(3));
        let _ = t.recv().await;
    });
}

#[test]
fn timeout_helper() {
    rt(1).block_on(async {
        let r = gmp::time::timeout(
            Duration::from_millis(5),
            gmp::time::sleep(Duration::from_secs(5)),
        )
        .await;
        assert!(r.is_err());
    });
}

#[test]
fn context_cancel_closes_done_and_cancels_descendants() {
    rt(2).block_on(async {
        let bg = context::background();
        let (parent, cancel) = context::with_cancel(&bg);
        let (child, _c2) = context::with_cancel(&parent);
        let grandchild = context::with_value(&child, "k", 7u32);
        assert_eq!(parent.err(), None);
        let done = grandchild.done();
        let waiter = gmp::spawn(async move {
            let r = done.recv().await;
            r.is_err() // closed, not a value
        });
        gmp::time::sleep(Duration::from_millis(2)).await;
        cancel();
        cancel(); // idempotent
        let cancel2 = cancel.clone();
        cancel2();
        assert!(waiter.await.unwrap());
        assert_eq!(parent.err(), Some(Error::Canceled));
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(grandchild.err(), Some(Error::Canceled));
        assert_eq!(grandchild.value::<u32>("k").as_deref(), Some(&7));
        assert!(grandchild.value::<u32>("missing").is_none());
        // A context made from a done parent is done at once.
        let (late, _c) = context::with_cancel(&child);
        assert_eq!(late.err(), Some(Error::Canceled));
        // background is never done.
        let r = gmp::select! {
            recv(bg.done()) -> _ => "done",
            default => "not done",
        };
        assert_eq!(r, "not done");
    });
}

#[test]
fn context_timeout_in_select_and_deadline_inheritance() {
    rt(2).block_on(async {
        let bg = context::background();
        let (ctx, _cancel) = context::with_timeout(&bg, Duration::from_millis(10));
        let (_tx, work) = gmp::chan::bounded::<u8>(0);
        let t = Instant::now();
        let r = gmp::select! {
            recv(work) -> _ => "work",
            recv(ctx.done()) -> _ => "cancelled",
        };
        assert_eq!(r, "cancelled");
        assert!(t.elapsed() >= Duration::from_millis(10));
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        assert_eq!(ctx.err().unwrap().to_string(), "context deadline exceeded");

        let (p, _c) = context::with_timeout(&bg, Duration::from_millis(50));
        let (c, _c2) = context::with_timeout(&p, Duration::from_secs(60));
        assert_eq!(
            c.deadline(),
            p.deadline(),
            "child deadline later than parent's"
        );
        let (c3, _c3) = context::with_timeout(&p, Duration::from_millis(1));
        assert!(c3.deadline() < p.deadline());
        c3.done().recv().await.unwrap_err();
        assert_eq!(c3.err(), Some(Error::DeadlineExceeded));
        assert_eq!(p.err(), None, "a child's deadline cancelled its parent");
    });
}
