//! gmp::sync: WaitGroup, Mutex (normal and starvation modes), RwMutex
//! writer preference, Once.

use gmp::sync::{Mutex, Once, RwMutex, WaitGroup};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::{is_child, rt, run_child, wait_for_reason};

const POLL_LIMIT: Duration = Duration::from_secs(10);

#[test]
fn waitgroup_waits_for_all() {
    rt(4).block_on(async {
        let wg = WaitGroup::new();
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let n = n.clone();
            wg.go(async move {
                gmp::time::sleep(Duration::from_millis(1)).await;
                n.fetch_add(1, SeqCst);
            });
        }
        wg.wait().await;
        assert_eq!(n.load(SeqCst), 100);
        // Zero counter: wait returns at once.
        wg.wait().await;
        // add/done by hand across clones.
        let wg2 = wg.clone();
        wg.add(2);
        gmp::go(async move {
            wg2.done();
            wg2.done();
        });
        wg.wait().await;
    });
}

#[test]
fn waitgroup_negative_counter_panics_with_gos_message() {
    let wg = WaitGroup::new();
    let r = std::panic::catch_unwind(|| wg.done());
    let p = r.unwrap_err();
    assert_eq!(
        p.downcast_ref::<&str>(),
        Some(&"sync: negative WaitGroup counter")
    );
}

#[test]
fn mutex_mutual_exclusion_under_64_goroutines() {
    let (count, max_inside) = rt(4).block_on(async {
        let m = Arc::new(Mutex::new(0u64));
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for _ in 0..64 {
            let (m, inside, max) = (m.clone(), inside.clone(), max.clone());
            wg.go(async move {
                for _ in 0..200 {
                    let mut g = m.lock().await;
                    let now = inside.fetch_add(1, SeqCst) + 1;
                    max.fetch_max(now, SeqCst);
                    let v = *g;
                    if v % 7 == 0 {
                        gmp::runtime::gosched().await;
                    }
                    *g = v + 1;
                    inside.fetch_sub(1, SeqCst);
                }
            });
        }
        wg.wait().await;
        let v = *m.lock().await;
        (v, max.load(SeqCst))
    });
    assert_eq!(count, 64 * 200);
    assert_eq!(max_inside, 1, "two goroutines held the mutex at once");
}

/// A waiter that has waited over 1ms switches the mutex to starvation
/// mode, and the lock is then handed to it directly: a goroutine hammering
/// lock/unlock cannot keep it out.
#[test]
fn mutex_starvation_mode_hands_off_to_the_waiter() {
    let (waiter_got_it, saw_starving) = rt(2).block_on(async {
        let m = Arc::new(Mutex::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let saw = Arc::new(AtomicBool::new(false));
        let (m1, stop1, saw1) = (m.clone(), stop.clone(), saw.clone());
        let hog = gmp::spawn(async move {
            while !stop1.load(SeqCst) {
                let g = m1.lock().await;
                // Hold it for a while, then re-lock at once (barging).
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_micros(200) {}
                if m1.is_starving() {
                    saw1.store(true, SeqCst);
                }
                drop(g);
            }
        });
        gmp::time::sleep(Duration::from_millis(2)).await;
        let m2 = m.clone();
        let waiter = gmp::spawn(async move {
            let _g = m2.lock().await;
            true
        });
        let got = waiter.await.unwrap();
        stop.store(true, SeqCst);
        hog.await.unwrap();
        (got, saw.load(SeqCst))
    });
    assert!(waiter_got_it);
    let _ = saw_starving; // depends on timing; the handoff above is the property
}

#[test]
fn mutex_try_lock_and_cancelled_lock_pass_the_lock_on() {
    rt(2).block_on(async {
        let m = Arc::new(Mutex::new(1));
        let g = m.lock().await;
        assert!(m.try_lock().is_none());
        // A lock future dropped while queued must not strand the lock.
        {
            let mut f = Box::pin(m.lock());
            assert!(futures::poll!(f.as_mut()).is_pending());
        }
        let m2 = m.clone();
        let h = gmp::spawn(async move { *m2.lock().await + 1 });
        drop(g);
        assert_eq!(h.await.unwrap(), 2);
        assert!(m.try_lock().is_some());
    });
}

/// A pending writer blocks new readers (Go's RWMutex).
#[test]
fn rwmutex_writer_preference() {
    let order = rt(2).block_on(async {
        let rw = Arc::new(RwMutex::new(Vec::<&'static str>::new()));
        let r1 = rw.read().await;
        let rw_w = rw.clone();
        let writer = gmp::spawn(async move {
            rw_w.write().await.push("writer");
        });
        // The writer queues up behind the reader.
        wait_for_reason(writer.goid(), "sync.RWMutex.Lock", POLL_LIMIT).await;
        let rw_r = rw.clone();
        let late_reader = gmp::spawn(async move {
            let g = rw_r.read().await;
            let saw_writer = g.contains(&"writer");
            drop(g);
            rw_r.write().await.push(if saw_writer {
                "reader-after"
            } else {
                "reader-before"
            });
        });
        // The late reader queues up behind the pending writer.
        wait_for_reason(late_reader.goid(), "sync.RWMutex.RLock", POLL_LIMIT).await;
        drop(r1);
        writer.await.unwrap();
        late_reader.await.unwrap();
        let v = rw.read().await.clone();
        v
    });
    assert_eq!(order, vec!["writer", "reader-after"]);
}

#[test]
fn rwmutex_readers_share() {
    rt(4).block_on(async {
        let rw = Arc::new(RwMutex::new(5));
        let a = rw.read().await;
        let b = rw.read().await;
        assert_eq!(*a + *b, 10);
        drop((a, b));
        *rw.write().await += 1;
        assert_eq!(*rw.read().await, 6);
    });
}

#[test]
fn once_runs_exactly_once_under_contention() {
    let (runs, after) = rt(4).block_on(async {
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let done_seen = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for _ in 0..64 {
            let (once, runs, done_seen) = (once.clone(), runs.clone(), done_seen.clone());
            wg.go(async move {
                once.call_once(|| {
                    std::thread::sleep(Duration::from_millis(5));
                    runs.fetch_add(1, SeqCst);
                })
                .await;
                // Everyone returns only after the function finished.
                if runs.load(SeqCst) == 1 {
                    done_seen.fetch_add(1, SeqCst);
                }
            });
        }
        wg.wait().await;
        (runs.load(SeqCst), done_seen.load(SeqCst))
    });
    assert_eq!(runs, 1);
    assert_eq!(after, 64);
}

/// Everyone in `wg.wait()` with nobody left to call `done`: Go's
/// "all goroutines are asleep" instead of a hang.
#[test]
fn everyone_in_waitgroup_wait_is_a_deadlock() {
    const NAME: &str = "everyone_in_waitgroup_wait_is_a_deadlock";
    if is_child(NAME) {
        let r = std::panic::catch_unwind(|| {
            rt(2).block_on(async {
                let wg = WaitGroup::new();
                wg.add(1);
                for _ in 0..3 {
                    let wg = wg.clone();
                    gmp::go(async move { wg.wait().await });
                }
                wg.wait().await;
            })
        });
        let p = r.unwrap_err();
        let text = p.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            text.starts_with("fatal error: all goroutines are asleep - deadlock!"),
            "{text}"
        );
        return;
    }
    let out = run_child(NAME, &[]);
    let err = out.stderr.as_str();
    assert!(out.success(), "{err}");
    assert!(
        err.contains("fatal error: all goroutines are asleep - deadlock!"),
        "{err}"
    );
    assert!(err.contains("goroutine 1 [sync.WaitGroup.Wait]:"), "{err}");
    assert!(err.matches("[sync.WaitGroup.Wait]").count() >= 4, "{err}");
}
