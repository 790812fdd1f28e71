//! `Timer`, `after_func`, durations past what `Instant` holds, and
//! collectable timers (Go 1.23 semantics).

use gmp::time::{after, after_func, sleep, timeout, Ticker, Timer};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(procs: usize) -> gmp::Runtime {
    gmp::Runtime::builder().procs(procs).build().unwrap()
}

/// 2^64 ns + 50 ms: wraps to 50 ms if deadlines are kept in a u64.
fn past_u64_ns() -> Duration {
    Duration::from_nanos(u64::MAX) + Duration::from_millis(50)
}

#[test]
fn duration_max_waits_forever_without_panicking() {
    rt(2).block_on(async {
        let ticker = Ticker::new(Duration::MAX);
        let timer = Timer::new(Duration::MAX);
        let forever = after(Duration::MAX);
        let wrapped = after(past_u64_ns());
        let sleeper = gmp::spawn(async { sleep(Duration::MAX).await });
        let t = Instant::now();
        gmp::select! {
            recv(ticker.channel()) -> _ => panic!("Ticker(Duration::MAX) ticked"),
            recv(timer.channel()) -> _ => panic!("Timer(Duration::MAX) fired"),
            recv(forever) -> _ => panic!("after(Duration::MAX) fired"),
            recv(wrapped) -> _ => panic!("after(2^64 ns + 50 ms) fired: the deadline wrapped"),
            recv(after(Duration::from_millis(300))) -> _ => {}
        }
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(!sleeper.is_finished(), "sleep(Duration::MAX) ended");
        // Timeout(MAX) is "no timeout".
        assert_eq!(timeout(Duration::MAX, async { 7 }).await, Ok(7));
        let r = timeout(Duration::from_millis(20), sleep(past_u64_ns())).await;
        assert!(r.is_err(), "sleep(2^64 ns + 50 ms) ended early");
        // A context with a MAX timeout has no deadline and is not done.
        let (ctx, cancel) = gmp::context::with_timeout(&gmp::context::background(), Duration::MAX);
        assert_eq!(ctx.deadline(), None);
        assert!(ctx.err().is_none());
        cancel();
        assert!(ctx.err().is_some());
        assert!(timer.stop(), "an unfired timer stops with true");
    });
}

#[test]
fn timer_fires_once_with_a_time_not_before_its_deadline() {
    rt(2).block_on(async {
        let start = Instant::now();
        let t = Timer::new(Duration::from_millis(20));
        let at = t.recv().await;
        assert!(at >= start + Duration::from_millis(20), "fired early");
        assert!(!t.stop(), "stop after the value was received reports false");
        assert!(t.channel().try_recv().is_err(), "a second value");
    });
}

#[test]
fn stop_and_reset_discard_values_from_before_the_call() {
    rt(2).block_on(async {
        // Stopped before firing.
        let t = Timer::new(Duration::from_millis(10));
        assert!(t.stop());
        assert!(!t.stop(), "second stop");
        gmp::select! {
            recv(t.channel()) -> _ => panic!("a stopped timer fired"),
            recv(after(Duration::from_millis(50))) -> _ => {}
        }
        // Fired but not received: stop drains it and reports true (Go 1.23).
        let t = Timer::new(Duration::from_millis(1));
        sleep(Duration::from_millis(20)).await;
        assert!(t.stop(), "fired-but-unreceived counts as stopped in time");
        assert!(t.channel().try_recv().is_err(), "stale value after stop");
        // Reset of a fired-but-unreceived timer: the old value is gone.
        let t = Timer::new(Duration::from_millis(1));
        sleep(Duration::from_millis(20)).await;
        let before = Instant::now();
        assert!(t.reset(Duration::from_millis(30)));
        let at = t.recv().await;
        assert!(
            at >= before + Duration::from_millis(30),
            "stale value after reset"
        );
        // Reset of a received timer reports false and fires again.
        assert!(!t.reset(Duration::from_millis(1)));
        t.recv().await;
    });
}

/// Re-arming a timer for a later deadline while its heap entry is queued
/// keeps that entry, which moves on when it surfaces: the timer fires at
/// the new deadline, never at an old one. Re-arming earlier fires earlier.
#[test]
fn reset_later_or_earlier_fires_at_the_newest_deadline() {
    const D: Duration = Duration::from_millis(30);
    for procs in [1, 2] {
        rt(procs).block_on(async {
            // Pushed later again and again while queued.
            let t = Timer::new(D);
            let mut last = Instant::now();
            for _ in 0..5 {
                sleep(Duration::from_millis(10)).await;
                last = Instant::now();
                t.reset(D);
            }
            let at = t.recv().await;
            assert!(at >= last + D, "fired at an old deadline");
            // Stopped, then re-armed later: fires for the new deadline only.
            let t = Timer::new(Duration::from_millis(20));
            assert!(t.stop());
            let before = Instant::now();
            assert!(!t.reset(Duration::from_millis(60)));
            let at = t.recv().await;
            assert!(at >= before + Duration::from_millis(60), "fired early");
            assert!(t.channel().try_recv().is_err(), "a second value");
            // Earlier than the queued entry.
            let t = Timer::new(Duration::from_secs(3600));
            let before = Instant::now();
            assert!(t.reset(Duration::from_millis(20)));
            let at = gmp::select! {
                recv(t.channel()) -> v => v.unwrap(),
                recv(after(Duration::from_secs(30))) -> _ => panic!("the earlier deadline was lost"),
            };
            assert!(at >= before + Duration::from_millis(20), "fired early");
        });
    }
}

/// One `Sleep` stopped and re-armed for later deadlines, as a server's
/// per-request timeout is: every wait lasts until its own deadline.
#[test]
fn a_stopped_sleep_reset_later_waits_for_its_new_deadline() {
    use std::future::{poll_fn, Future};
    use std::pin::Pin;
    use std::task::Poll;
    rt(2).block_on(async {
        let mut s = sleep(Duration::from_millis(40));
        for i in 0..5 {
            // Armed (polled once), then stopped before its deadline.
            poll_fn(|cx| {
                let _ = Pin::new(&mut s).poll(cx);
                Poll::Ready(())
            })
            .await;
            s.stop();
            let before = Instant::now();
            let d = Duration::from_millis(if i == 2 { 5 } else { 50 });
            s.reset(before + d);
            (&mut s).await;
            assert!(before.elapsed() >= d, "wait {i} ended early");
            s.reset(Instant::now() + Duration::from_millis(40));
        }
    });
}

/// Goroutines race `reset`/`stop` against firings: every value received
/// after a `reset(d)` was produced at least `d` after the call, and no
/// value arrives after a `stop`.
#[test]
fn stop_reset_race_stress() {
    for procs in [1, 2, 4] {
        rt(procs).block_on(async move {
            let hs: Vec<_> = (0..8u64)
                .map(|g| {
                    gmp::spawn(async move {
                        for i in 0..300u64 {
                            let t = Timer::new(Duration::from_micros((g * 7 + i) % 50));
                            // Let some fire first, race others.
                            for _ in 0..(i % 3) {
                                gmp::runtime::gosched().await;
                            }
                            if i % 2 == 0 {
                                t.stop();
                                assert!(t.channel().try_recv().is_err(), "value after stop");
                            } else {
                                let d = Duration::from_micros(100 + i % 100);
                                let before = Instant::now();
                                t.reset(d);
                                let at = t.recv().await;
                                assert!(at >= before + d, "stale value after reset");
                            }
                        }
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
    }
}

#[test]
fn after_func_runs_in_its_own_goroutine_and_can_be_stopped() {
    rt(2).block_on(async {
        let (tx, rx) = gmp::chan::bounded(1);
        let main_id = gmp::runtime::goid();
        let h = after_func(Duration::from_millis(10), move || {
            tx.try_send(gmp::runtime::goid()).unwrap();
        });
        let id = rx.recv().await.unwrap();
        assert_ne!(id, main_id, "f ran on main");
        assert!(h.has_run());
        assert!(!h.stop(), "stop after f started");

        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let h = after_func(Duration::from_millis(10), move || {
            r.fetch_add(1, SeqCst);
        });
        assert!(h.stop());
        sleep(Duration::from_millis(40)).await;
        assert_eq!(ran.load(SeqCst), 0, "f ran after stop");
        // Reset re-arms a stopped timer; dropping the handle does not stop it.
        assert!(!h.reset(Duration::from_millis(5)));
        drop(h);
        let deadline = Instant::now() + Duration::from_secs(5);
        while ran.load(SeqCst) == 0 {
            assert!(Instant::now() < deadline, "f never ran after reset");
            sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(ran.load(SeqCst), 1);
    });
}

/// Go 1.23: an `after` receiver abandoned by a `select!` loop takes its
/// timer with it, so the heaps stay small however long the loop runs.
#[test]
fn abandoned_after_timers_leave_the_heap() {
    for procs in [1, 2] {
        rt(procs).block_on(async {
            let (tx, rx) = gmp::chan::bounded::<u32>(1);
            let mut peak = 0;
            for i in 0..200_000u32 {
                tx.try_send(i).unwrap();
                gmp::select! {
                    recv(rx) -> v => assert_eq!(v, Ok(i)),
                    recv(after(Duration::from_secs(3600))) -> _ => unreachable!(),
                }
                if i % 10_000 == 0 {
                    peak = peak.max(gmp::runtime::metrics().timers);
                }
            }
            assert!(peak < 5_000, "procs={procs}: {peak} timers still heaped");
        });
    }
}

#[test]
fn dropped_timers_tickers_and_sleeps_leave_the_heap() {
    rt(1).block_on(async {
        let base = gmp::runtime::metrics().timers;
        let t = Timer::new(Duration::from_secs(3600));
        let tk = Ticker::new(Duration::from_secs(3600));
        let s = timeout(Duration::from_secs(3600), std::future::pending::<()>());
        let s = gmp::time::timeout(Duration::from_millis(1), s).await;
        assert!(s.is_err());
        assert!(gmp::runtime::metrics().timers > base);
        drop((t, tk));
        assert_eq!(gmp::runtime::metrics().timers, base, "timers left behind");
        // A clone of a timer's channel keeps it (Go: the channel refers to
        // its timer): it still fires.
        let t = Timer::new(Duration::from_millis(5));
        let c = t.channel().clone();
        drop(t);
        assert!(c.recv().await.is_ok());
    });
}

/// Sweeps triggered by abandoned `after`s on every P, racing with live
/// sleeps, tickers and timer resets: no live timer is swept away (every
/// sleep ends, on time or later, never early), and the heaps stay small.
#[test]
fn sweeps_never_drop_live_timers() {
    for procs in [2, 4] {
        rt(procs).block_on(async move {
            let woke = Arc::new(AtomicUsize::new(0));
            let sleepers: Vec<_> = (0..200u64)
                .map(|i| {
                    let woke = woke.clone();
                    gmp::spawn(async move {
                        let d = Duration::from_millis(1 + i % 40);
                        let t = Instant::now();
                        sleep(d).await;
                        assert!(t.elapsed() >= d, "woke early");
                        woke.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            let churners: Vec<_> = (0..4u64)
                .map(|g| {
                    gmp::spawn(async move {
                        let (tx, rx) = gmp::chan::bounded::<u64>(1);
                        let t = Timer::new(Duration::from_millis(3));
                        let mut fired = 0;
                        for i in 0..20_000u64 {
                            tx.try_send(i).unwrap();
                            gmp::select! {
                                recv(rx) -> v => assert_eq!(v, Ok(i)),
                                recv(after(Duration::from_secs(3600))) -> _ => unreachable!(),
                            }
                            if i % 500 == g {
                                if t.channel().try_recv().is_ok() {
                                    fired += 1;
                                }
                                t.reset(Duration::from_micros(200));
                            }
                        }
                        // The last reset still fires.
                        t.recv().await;
                        fired
                    })
                })
                .collect();
            for c in churners {
                c.await.unwrap();
            }
            for s in sleepers {
                s.await.unwrap();
            }
            assert_eq!(woke.load(SeqCst), 200);
            let left = gmp::runtime::metrics().timers;
            assert!(left < 5_000 * procs, "{left} timers still heaped");
        });
    }
}
