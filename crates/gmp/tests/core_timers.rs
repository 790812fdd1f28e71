//! Per-P timers (gmp-core) through `gmp_core`'s Sleep as the facade will
//! expose it: no early wake-ups, many concurrent sleeps, idle sleeping.

use std::time::{Duration, Instant};

mod support;
use support::{cpu_time, is_child, rt, run_child};

#[test]
fn sleep_zero_is_immediate_and_sleep_never_early() {
    rt(2).block_on(async {
        gmp::time::sleep(Duration::ZERO).await;
        for ms in [1u64, 5, 20] {
            let t = Instant::now();
            gmp::time::sleep(Duration::from_millis(ms)).await;
            assert!(t.elapsed() >= Duration::from_millis(ms), "woke early");
        }
    });
}

#[test]
fn hundred_thousand_sleeps_all_wake_none_early() {
    for procs in [1, 2] {
        let early = rt(procs).block_on(async {
            let hs: Vec<_> = (0..100_000u64)
                .map(|i| {
                    gmp::spawn(async move {
                        let d = Duration::from_millis(1 + i % 50);
                        let t = Instant::now();
                        gmp::time::sleep(d).await;
                        t.elapsed() < d
                    })
                })
                .collect();
            let mut early = 0;
            for h in hs {
                early += h.await.unwrap() as usize;
            }
            early
        });
        assert_eq!(early, 0, "procs={procs}: sleeps woke early");
    }
}

#[test]
fn timers_fire_in_order() {
    let order = rt(1).block_on(async {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let hs: Vec<_> = [30u64, 10, 20, 5]
            .into_iter()
            .map(|ms| {
                let log = log.clone();
                gmp::spawn(async move {
                    gmp::time::sleep(Duration::from_millis(ms)).await;
                    log.lock().unwrap().push(ms);
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        let v = log.lock().unwrap().clone();
        v
    });
    assert_eq!(order, vec![5, 10, 20, 30]);
}

#[test]
fn dropped_sleep_does_not_fire_or_leak_a_wake() {
    rt(2).block_on(async {
        for _ in 0..1000 {
            let s = gmp::time::sleep(Duration::from_secs(3600));
            let mut s = Box::pin(s);
            assert!(futures::poll!(s.as_mut()).is_pending());
            drop(s);
        }
        gmp::time::sleep(Duration::from_millis(2)).await;
    });
}

/// Timers keep firing while a goroutine sits in `gmp::syscall` with
/// procs = 1: the P is handed to another M, which runs the sleeper.
#[test]
fn timers_run_while_a_goroutine_sits_in_syscall() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    let finished_first = rt(1).block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let blocker = gmp::spawn(async move {
            gmp::syscall(|| std::thread::sleep(Duration::from_millis(500)));
            d.store(true, SeqCst);
        });
        let d = done.clone();
        let sleeper = gmp::spawn(async move {
            for _ in 0..5 {
                gmp::time::sleep(Duration::from_millis(2)).await;
            }
            !d.load(SeqCst)
        });
        let first = sleeper.await.unwrap();
        blocker.await.unwrap();
        first
    });
    assert!(finished_first, "the timers waited for the syscall to end");
}

#[test]
fn timeout_elapses_or_passes_the_value() {
    rt(2).block_on(async {
        let r = gmp::time::timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
        let e = r.unwrap_err();
        assert_eq!(e.to_string(), "deadline has elapsed");
        let r = gmp::time::timeout(Duration::from_secs(5), async { 9 }).await;
        assert_eq!(r, Ok(9));
    });
}

/// A runtime idle on a 2-second sleep (netpoller installed) uses under 5%
/// of a core: the one poller M blocks in epoll until the timer.
#[test]
fn idle_on_a_two_second_sleep_uses_under_5_percent() {
    const NAME: &str = "idle_on_a_two_second_sleep_uses_under_5_percent";
    if is_child(NAME) {
        let cpu = rt(4).block_on(async {
            let before = cpu_time();
            gmp::time::sleep(Duration::from_secs(2)).await;
            cpu_time() - before
        });
        assert!(
            cpu <= Duration::from_millis(100),
            "used {cpu:?} of CPU in 2s"
        );
        return;
    }
    let out = run_child(NAME, &[]);
    assert!(out.success(), "{}", out.stderr);
}

/// A timer armed by a goroutine on its own P wakes no M. When another M is
/// blocked in the netpoller until a much later timer, the earlier timers
/// must still fire on their own schedule, not when the later one does.
#[test]
fn a_short_timer_armed_on_a_busy_p_cuts_a_long_poller_wait_short() {
    for procs in [1, 2] {
        let elapsed = rt(procs).block_on_goroutine(async {
            // The long timer: whichever M goes idle blocks in the poller
            // until it (10 s away).
            let long = gmp::spawn(gmp::time::sleep(Duration::from_secs(10)));
            // Let that M settle into its wait.
            for _ in 0..100 {
                gmp::runtime::gosched().await;
            }
            gmp::time::sleep(Duration::from_millis(30)).await;
            let t = Instant::now();
            let mut n = 0;
            // Many short timers armed in turn by the running goroutine.
            while n < 20 {
                gmp::time::sleep(Duration::from_millis(5)).await;
                n += 1;
            }
            drop(long);
            t.elapsed()
        });
        // 20 x 5 ms; a missed wake-up would cost up to 10 s.
        assert!(
            elapsed < Duration::from_secs(5),
            "procs {procs}: 20 short sleeps took {elapsed:?}"
        );
    }
}

/// A timer armed on a P that sysmon then takes (its goroutine hogs the
/// poll) still fires: `handoffp` hands the P's timers on.
#[test]
fn a_timer_on_a_p_retaken_mid_poll_still_fires() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    let fired_during_hog = rt(2).block_on_goroutine(async {
        let hogging = Arc::new(AtomicBool::new(true));
        let h = hogging.clone();
        let sleeper = gmp::spawn(async move {
            gmp::time::sleep(Duration::from_millis(20)).await;
            h.load(SeqCst)
        });
        let h = hogging.clone();
        let hog = gmp::spawn(async move {
            // One poll that never yields, up to 3 s.
            let end = Instant::now() + Duration::from_secs(3);
            while h.load(SeqCst) && Instant::now() < end {
                std::hint::spin_loop();
            }
        });
        let fired = sleeper.await.unwrap();
        hogging.store(false, SeqCst);
        hog.await.unwrap();
        fired
    });
    assert!(fired_during_hog, "the sleeper waited for the hog to end");
}
