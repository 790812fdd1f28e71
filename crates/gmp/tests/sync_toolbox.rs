//! `Cond`, `Semaphore` and `ErrGroup`.

use gmp::sync::{Cond, ErrGroup, Mutex, Semaphore};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(procs: usize) -> gmp::Runtime {
    gmp::Runtime::builder().procs(procs).build().unwrap()
}

/// Poll until `n` goroutines wait with `reason` (5 s watchdog).
async fn until_waiting(reason: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let k = gmp::runtime::goroutines()
            .iter()
            .filter(|g| g.wait_reason == Some(reason))
            .count();
        if k >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{k} of {n} goroutines in {reason:?}"
        );
        gmp::time::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn cond_signal_wakes_one_in_order_and_broadcast_wakes_all() {
    rt(2).block_on(async {
        let m = Arc::new(Mutex::new(Vec::<u32>::new()));
        let c = Arc::new(Cond::new());
        let woke = Arc::new(Mutex::new(Vec::new()));
        let mut hs = Vec::new();
        for i in 0..3u32 {
            let (m, c, woke) = (m.clone(), c.clone(), woke.clone());
            hs.push(gmp::spawn(async move {
                let mut g = m.lock().await;
                while !g.contains(&i) && !g.contains(&99) {
                    g = c.wait(g).await;
                }
                woke.lock().await.push(i);
            }));
            // Queue in order: 0, 1, 2.
            until_waiting("sync.Cond.Wait", i as usize + 1).await;
        }
        // Each signal wakes the longest waiter; the condition then lets
        // exactly that one leave.
        for i in 0..2u32 {
            m.lock().await.push(i);
            c.signal();
            let deadline = Instant::now() + Duration::from_secs(5);
            while woke.lock().await.len() < i as usize + 1 {
                assert!(Instant::now() < deadline, "signal lost");
                gmp::time::sleep(Duration::from_millis(1)).await;
            }
        }
        assert_eq!(*woke.lock().await, vec![0, 1]);
        m.lock().await.push(99);
        c.broadcast();
        for h in hs {
            h.await.unwrap();
        }
        assert_eq!(woke.lock().await.len(), 3);
    });
}

#[test]
fn cond_broadcast_releases_a_crowd_and_producer_consumer_loses_nothing() {
    rt(4).block_on(async {
        let m = Arc::new(Mutex::new((0u64, false)));
        let c = Arc::new(Cond::new());
        let consumers: Vec<_> = (0..8)
            .map(|_| {
                let (m, c) = (m.clone(), c.clone());
                gmp::spawn(async move {
                    let mut got = 0u64;
                    loop {
                        let mut g = m.lock().await;
                        while g.0 == 0 && !g.1 {
                            g = c.wait(g).await;
                        }
                        if g.0 == 0 {
                            return got;
                        }
                        g.0 -= 1;
                        got += 1;
                    }
                })
            })
            .collect();
        for _ in 0..10_000 {
            m.lock().await.0 += 1;
            c.signal();
        }
        m.lock().await.1 = true;
        c.broadcast();
        let mut total = 0;
        for h in consumers {
            total += h.await.unwrap();
        }
        assert_eq!(total, 10_000);
    });
}

#[test]
fn cond_wait_cancelled_after_a_signal_passes_it_on() {
    rt(1).block_on(async {
        let m = Arc::new(Mutex::new(()));
        let c = Arc::new(Cond::new());
        // Main queues first, polling its wait once by hand.
        let second = {
            let g = m.lock().await;
            let mut wait = std::pin::pin!(c.wait(g));
            std::future::poll_fn(|cx| {
                assert!(wait.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            let (m2, c2) = (m.clone(), c.clone());
            let second = gmp::spawn(async move {
                let g = m2.lock().await;
                drop(c2.wait(g).await);
            });
            until_waiting("sync.Cond.Wait", 1).await;
            c.signal(); // to main, whose wait is dropped at the end of this block
            second
        };
        let r = gmp::time::timeout(Duration::from_secs(5), second).await;
        assert!(r.is_ok(), "the signal died with the cancelled wait");
    });
}

use std::future::Future;

#[test]
fn semaphore_is_fifo_a_large_request_is_not_overtaken() {
    rt(2).block_on(async {
        let sem = Arc::new(Semaphore::new(10));
        sem.acquire(10).await;
        let got = Arc::new(AtomicUsize::new(0));
        let mut hs = Vec::new();
        for (i, k) in [(0usize, 6u64), (1, 1), (2, 1)] {
            let (sem, got) = (sem.clone(), got.clone());
            hs.push(gmp::spawn(async move {
                sem.acquire(k).await;
                got.fetch_add(1, SeqCst);
            }));
            until_waiting("semacquire", i + 1).await;
        }
        sem.release(5);
        // 5 free: the 1-unit requests fit but must not pass the 6.
        gmp::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(got.load(SeqCst), 0, "a small request overtook");
        assert!(!sem.try_acquire(1), "try_acquire jumped the queue");
        sem.release(5);
        for h in hs {
            h.await.unwrap();
        }
        assert_eq!(got.load(SeqCst), 3);
        assert!(!sem.try_acquire(3), "8 of 10 are held");
        assert!(sem.try_acquire(2));
        sem.release(10);
    });
}

#[test]
fn semaphore_serves_equal_waiters_in_arrival_order() {
    rt(2).block_on(async {
        let sem = Arc::new(Semaphore::new(1));
        sem.acquire(1).await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut hs = Vec::new();
        for i in 0..8usize {
            let (sem, order) = (sem.clone(), order.clone());
            hs.push(gmp::spawn(async move {
                sem.acquire(1).await;
                // Only the holder runs this: the log is the grant order.
                order.lock().unwrap().push(i);
                gmp::runtime::gosched().await;
                sem.release(1);
            }));
            until_waiting("semacquire", i + 1).await;
        }
        sem.release(1);
        for h in hs {
            h.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    });
}

#[test]
fn semaphore_acquire_is_cancellation_safe() {
    rt(2).block_on(async {
        let sem = Semaphore::new(2);
        sem.acquire(2).await;
        // A waiter at the head gives up: the one behind it is served.
        let r = gmp::time::timeout(Duration::from_millis(10), sem.acquire(2)).await;
        assert!(r.is_err());
        sem.release(1);
        assert!(sem.try_acquire(1), "a cancelled waiter kept its place");
        sem.release(2);
        // Units granted to a future that is dropped before it is polled
        // again come back.
        sem.acquire(2).await;
        {
            let mut a = std::pin::pin!(sem.acquire(1));
            std::future::poll_fn(|cx| {
                assert!(a.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            sem.release(2); // grants 1 to `a`
        }
        assert!(
            sem.try_acquire(2),
            "units granted to a dropped acquire leaked"
        );
    });
}

#[test]
#[should_panic(expected = "exceeds the size")]
fn semaphore_acquire_beyond_size_is_an_error_not_a_hang() {
    drop(Semaphore::new(3).acquire(4));
}

#[test]
#[should_panic(expected = "released more than held")]
fn semaphore_over_release_panics() {
    Semaphore::new(3).release(1);
}

#[test]
fn errgroup_first_error_cancels_the_context_and_wait_waits_for_all() {
    rt(2).block_on(async {
        let (g, ctx) = ErrGroup::with_context(&gmp::context::background());
        let finished = Arc::new(AtomicUsize::new(0));
        for i in 0..10u32 {
            let (ctx, finished) = (ctx.clone(), finished.clone());
            g.go(async move {
                let r = if i == 3 {
                    gmp::time::sleep(Duration::from_millis(5)).await;
                    Err(format!("part {i} failed"))
                } else if i == 7 {
                    gmp::time::sleep(Duration::from_millis(50)).await;
                    Err("late error".to_string())
                } else {
                    // Work until cancelled.
                    let _ = ctx.done().recv().await;
                    Ok(())
                };
                finished.fetch_add(1, SeqCst);
                r
            });
        }
        assert_eq!(g.wait().await, Err("part 3 failed".to_string()));
        assert_eq!(finished.load(SeqCst), 10, "wait returned early");
        assert_eq!(ctx.err(), Some(gmp::context::Error::Canceled));
    });
}

#[test]
fn errgroup_without_errors_returns_ok_and_cancels_on_wait() {
    rt(2).block_on(async {
        let (g, ctx) = ErrGroup::<std::io::Error>::with_context(&gmp::context::background());
        for _ in 0..5 {
            g.go(async { Ok(()) });
        }
        assert!(g.wait().await.is_ok());
        assert!(ctx.err().is_some(), "wait cancels the context, as x/sync");
        let plain: ErrGroup<()> = ErrGroup::new();
        plain.go(async { Err(()) });
        assert_eq!(plain.wait().await, Err(()));
    });
}

#[test]
fn errgroup_limit_bounds_the_running_goroutines() {
    rt(4).block_on(async {
        let g: ErrGroup<()> = ErrGroup::new();
        g.set_limit(3);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..30 {
            let (running, peak, done) = (running.clone(), peak.clone(), done.clone());
            g.go(async move {
                let now = running.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                gmp::time::sleep(Duration::from_millis(2)).await;
                running.fetch_sub(1, SeqCst);
                done.fetch_add(1, SeqCst);
                Ok(())
            });
        }
        g.wait().await.unwrap();
        assert_eq!(done.load(SeqCst), 30);
        assert!(peak.load(SeqCst) <= 3, "{} ran at once", peak.load(SeqCst));
        assert_eq!(peak.load(SeqCst), 3, "the limit was never used");

        // try_go: false while every slot is taken.
        g.set_limit(1);
        let (tx, rx) = gmp::chan::bounded::<()>(0);
        assert!(g.try_go(async move {
            let _ = rx.recv().await;
            Ok(())
        }));
        assert!(
            !g.try_go(async { Ok(()) }),
            "a second goroutine got the only slot"
        );
        drop(tx);
        g.wait().await.unwrap();
    });
}

/// Goroutines of a group start more through a clone of it (a crawler's
/// shape); `wait` waits for those too.
#[test]
fn errgroup_goroutines_can_start_more() {
    rt(2).block_on(async {
        let g: ErrGroup<String> = ErrGroup::new();
        let n = Arc::new(AtomicUsize::new(0));
        fn crawl(g: ErrGroup<String>, n: Arc<AtomicUsize>, depth: u32) {
            let g2 = g.clone();
            g.go(async move {
                n.fetch_add(1, SeqCst);
                if depth < 5 {
                    crawl(g2.clone(), n.clone(), depth + 1);
                    crawl(g2, n, depth + 1);
                }
                Ok(())
            });
        }
        crawl(g.clone(), n.clone(), 0);
        g.wait().await.unwrap();
        assert_eq!(n.load(SeqCst), 63, "wait returned before the tree was done");
    });
}
