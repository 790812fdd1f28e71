//! Scheduler behaviour (gmp-core) seen through the facade: goroutine
//! lifecycle, Go's runnext ordering, sysmon retake on syscalls and long
//! polls, panics, end-of-main, configuration errors. What the scheduler
//! reports about itself (dump, metrics, schedtrace) is in `core_diag.rs`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::{cpu_time, is_child, poll_until, rt, run_child, watchdog};

#[test]
fn hundred_thousand_goroutines_complete_with_unique_ids() {
    for procs in [1, 2, 4] {
        let ids = rt(procs).block_on(async {
            let hs: Vec<_> = (0..100_000)
                .map(|_| gmp::spawn(async { gmp::runtime::goid() }))
                .collect();
            let mut ids = Vec::with_capacity(hs.len());
            for h in hs {
                ids.push(h.await.unwrap());
            }
            ids
        });
        let set: HashSet<u64> = ids.iter().copied().collect();
        assert_eq!(set.len(), 100_000, "procs={procs}: duplicate goroutine ids");
        assert!(!set.contains(&1), "goroutine 1 is main");
    }
}

#[test]
fn main_is_goroutine_one_and_counts() {
    rt(2).block_on(async {
        assert_eq!(gmp::runtime::goid(), 1);
        assert_eq!(gmp::runtime::gomaxprocs(), 2);
        assert_eq!(gmp::runtime::num_goroutine(), 1);
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let h = gmp::spawn(async move {
            let _ = rx.await;
        });
        assert_eq!(gmp::runtime::num_goroutine(), 2);
        tx.send(()).unwrap();
        h.await.unwrap();
        assert_eq!(gmp::runtime::num_goroutine(), 1);
    });
}

/// Go's runnext order: on one P, `go f(i)` for i in 0..=5 runs 5 first (it sits
/// in runnext), then 0..4 in order.
#[test]
fn runnext_order_on_one_p() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    rt(1).block_on(async move {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let o = o.clone();
                gmp::spawn(async move { o.lock().unwrap().push(i) })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    assert_eq!(*order.lock().unwrap(), vec![5, 0, 1, 2, 3, 4]);
}

/// `gosched` puts the goroutine at the global queue's tail: on one P, the
/// goroutines it queued before yielding all run before it resumes. Were
/// `gosched` a no-op, or did it put the caller back in `runnext`, "a2"
/// would come before some "b".
#[test]
fn gosched_yields_to_queued_goroutines() {
    const QUEUED: usize = 4;
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    rt(1).block_on(async move {
        let a = gmp::spawn(async move {
            l.lock().unwrap().push("a1".to_string());
            // Queued behind `a` on its P: the last in runnext, the others
            // in the local run queue. None can run before `a` yields.
            for i in 0..QUEUED {
                let l = l.clone();
                gmp::go(async move { l.lock().unwrap().push(format!("b{i}")) });
            }
            assert_eq!(
                l.lock().unwrap().len(),
                1,
                "a goroutine ran before a yielded"
            );
            gmp::runtime::gosched().await;
            l.lock().unwrap().push("a2".to_string());
        });
        a.await.unwrap();
    });
    let log = log.lock().unwrap();
    assert_eq!(log.len(), QUEUED + 2, "{log:?}");
    assert_eq!(log[0], "a1", "{log:?}");
    assert_eq!(
        log[QUEUED + 1],
        "a2",
        "gosched did not yield to every queued goroutine: {log:?}"
    );
    let mut bs: Vec<&str> = log[1..=QUEUED].iter().map(|s| s.as_str()).collect();
    bs.sort_unstable();
    let want: Vec<String> = (0..QUEUED).map(|i| format!("b{i}")).collect();
    assert_eq!(
        bs,
        want.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "{log:?}"
    );
}

/// Go's `gosched` appends to the global queue's tail, which is FIFO: on
/// one P, goroutines that keep yielding run in strict rotation (our P
/// batches its yields and appends them in order; this checks the order
/// survives).
#[test]
fn gosched_rotation_is_fifo() {
    const N: usize = 5;
    const ROUNDS: usize = 4;
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    rt(1).block_on(async move {
        let hs: Vec<_> = (0..N)
            .map(|i| {
                let l = l.clone();
                gmp::spawn(async move {
                    for _ in 0..ROUNDS {
                        l.lock().unwrap().push(i);
                        gmp::runtime::gosched().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    let log = log.lock().unwrap();
    assert_eq!(log.len(), N * ROUNDS);
    // The first round follows spawn order with the last spawn in runnext
    // (Go's newproc); from then on the rotation repeats exactly.
    let first: Vec<usize> = log[..N].to_vec();
    for (k, chunk) in log.chunks(N).enumerate() {
        assert_eq!(chunk, &first[..], "round {k} broke the rotation: {log:?}");
    }
}

/// A goroutine blocked in `gmp::syscall` for 200ms with procs = 1 must not
/// stop the P's other goroutines: sysmon hands the P to another M.
#[test]
fn syscall_hands_off_the_p() {
    let progressed_during = rt(1).block_on(async {
        let in_syscall = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (i2, d2) = (in_syscall.clone(), done.clone());
        let sleeper = gmp::spawn(async move {
            gmp::syscall(|| {
                i2.store(true, SeqCst);
                std::thread::sleep(Duration::from_millis(200));
                d2.store(true, SeqCst);
            });
        });
        let (i3, d3) = (in_syscall.clone(), done.clone());
        let worker = gmp::spawn(async move {
            // Count yields made while the sleeper is inside its syscall.
            let mut during = 0u64;
            while !d3.load(SeqCst) {
                if i3.load(SeqCst) {
                    during += 1;
                }
                gmp::runtime::gosched().await;
            }
            during
        });
        sleeper.await.unwrap();
        worker.await.unwrap()
    });
    assert!(
        progressed_during > 0,
        "no goroutine ran while another sat in gmp::syscall"
    );
}

/// A goroutine whose single poll spins for 100ms with procs = 1 does not
/// freeze the others: sysmon retakes the P after ~10ms.
#[test]
fn long_poll_does_not_freeze_the_p() {
    let (ran_during, spin_ms) = rt(1).block_on(async {
        let spinning = Arc::new(AtomicBool::new(false));
        let spun = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicUsize::new(0));
        let (s1, d1) = (spinning.clone(), spun.clone());
        let hog = gmp::spawn(async move {
            s1.store(true, SeqCst);
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(100) {
                std::hint::spin_loop();
            }
            d1.store(true, SeqCst);
            t.elapsed()
        });
        let (s2, d2, t2) = (spinning.clone(), spun.clone(), ticks.clone());
        let other = gmp::spawn(async move {
            let mut during = 0;
            while !d2.load(SeqCst) {
                if s2.load(SeqCst) {
                    during += 1;
                    t2.fetch_add(1, SeqCst);
                }
                gmp::runtime::gosched().await;
            }
            during
        });
        let spin = hog.await.unwrap();
        (other.await.unwrap(), spin)
    });
    assert!(spin_ms >= Duration::from_millis(100));
    assert!(ran_during > 0, "the P stayed frozen behind a 100ms poll");
}

/// Go's TestPingPongHog: two goroutines ping-ponging through runnext cannot
/// starve a third on the same P. The pair wakes each other through
/// `futures::channel` (not gmp's own channels), and the third is spawned
/// by the pair itself once it is ping-ponging, so it provably sits in the
/// run queue behind the pair's runnext chain; it must run while the pair
/// still runs (the pair stops only after main has seen the third finish).
#[test]
fn ping_pong_pair_does_not_starve_others() {
    use futures::{SinkExt, StreamExt};
    const SPAWN_AFTER: u64 = 1000;
    let _dog = watchdog(
        "ping_pong_pair_does_not_starve_others",
        Duration::from_secs(30),
    );
    let rounds_seen = rt(1).block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let (third_tx, third_rx) = futures::channel::oneshot::channel::<u64>();
        let (tx1, mut rx1) = futures::channel::mpsc::channel::<u32>(0);
        let (mut b_tx, mut rx2) = futures::channel::mpsc::channel::<u32>(0);
        let (s, r) = (stop.clone(), rounds.clone());
        let mut a_tx = tx1;
        let mut third_tx = Some(third_tx);
        let a = gmp::spawn(async move {
            while !s.load(SeqCst) {
                if a_tx.send(1).await.is_err() || rx2.next().await.is_none() {
                    break;
                }
                let n = r.fetch_add(1, SeqCst) + 1;
                if n == SPAWN_AFTER {
                    let (r, tx) = (r.clone(), third_tx.take().unwrap());
                    gmp::go(async move {
                        let _ = tx.send(r.load(SeqCst));
                    });
                }
            }
        });
        let s = stop.clone();
        let b = gmp::spawn(async move {
            while let Some(v) = rx1.next().await {
                if b_tx.send(v).await.is_err() || s.load(SeqCst) {
                    break;
                }
            }
        });
        let seen = third_rx.await.expect("the third goroutine was dropped");
        // The pair was still going when the third ran, and still is.
        poll_until(
            Duration::from_secs(10),
            "the pair to keep ping-ponging",
            || rounds.load(SeqCst) > seen + 100,
        )
        .await;
        stop.store(true, SeqCst);
        a.await.unwrap();
        drop(b);
        seen
    });
    assert!(
        rounds_seen >= SPAWN_AFTER,
        "the third goroutine ran before it was spawned? {rounds_seen}"
    );
}

#[test]
fn spawn_panic_is_a_join_error() {
    rt(2).block_on(async {
        let h = gmp::spawn(async {
            if gmp::runtime::goid() > 0 {
                panic!("boom in goroutine");
            }
            5
        });
        let id = h.goid();
        let err = h.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.goid(), id);
        assert!(err.to_string().contains("boom in goroutine"), "{err}");
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in goroutine"));
    });
}

#[test]
fn go_panic_ignored_when_configured() {
    let rt = gmp::Runtime::builder()
        .procs(2)
        .unhandled_panic(gmp::UnhandledPanic::Ignore)
        .build()
        .unwrap();
    let v = rt.block_on(async {
        gmp::go(async { panic!("ignored") });
        let h = gmp::spawn(async { 7 });
        h.await.unwrap()
    });
    assert_eq!(v, 7);
}

#[test]
fn main_panic_propagates_from_block_on() {
    let r = std::panic::catch_unwind(|| rt(1).block_on(async { panic!("main panicked") }));
    let p = r.unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"main panicked"));
}

struct DropFlag(Arc<AtomicUsize>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// When main returns, goroutines that never finished are dropped (their
/// destructors run) and never polled again; block_on returns.
#[test]
fn main_exit_drops_remaining_goroutines() {
    let drops = Arc::new(AtomicUsize::new(0));
    let polls_after = Arc::new(AtomicUsize::new(0));
    let main_done = Arc::new(AtomicBool::new(false));
    let (d, p, m) = (drops.clone(), polls_after.clone(), main_done.clone());
    rt(2).block_on(async move {
        for _ in 0..1000 {
            let flag = DropFlag(d.clone());
            gmp::go(async move {
                let _f = flag;
                std::future::pending::<()>().await;
            });
        }
        for _ in 0..4 {
            let (p, m) = (p.clone(), m.clone());
            let flag = DropFlag(d.clone());
            gmp::go(async move {
                let _f = flag;
                loop {
                    if m.load(SeqCst) {
                        p.fetch_add(1, SeqCst);
                    }
                    gmp::runtime::gosched().await;
                }
            });
        }
        gmp::runtime::gosched().await;
        m.store(true, SeqCst);
    });
    let after = polls_after.load(SeqCst);
    // A goroutine whose poll was in flight when main returned finishes
    // that poll on its own M and is dropped there; the others are dropped
    // before block_on returns.
    let deadline = Instant::now() + Duration::from_secs(10);
    while drops.load(SeqCst) < 1004 {
        assert!(
            Instant::now() < deadline,
            "unfinished goroutines not dropped: {} of 1004",
            drops.load(SeqCst)
        );
        std::thread::yield_now();
    }
    // Every goroutine is gone now; none was polled again, beyond the one
    // poll each looper may have had in flight.
    assert!(
        polls_after.load(SeqCst) <= after + 4,
        "a goroutine ran after block_on returned: {} polls, {after} before",
        polls_after.load(SeqCst)
    );
}

/// A JoinHandle for a goroutine cut off by the end of main reports
/// cancellation if awaited from elsewhere afterwards.
#[test]
fn join_handle_after_teardown_is_cancelled() {
    #[allow(clippy::async_yields_async)] // the handle is the point
    let h = rt(1).block_on(async { gmp::spawn(std::future::pending::<u8>()) });
    let err = futures::executor::block_on(h).unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
}

#[test]
fn several_runtimes_at_once() {
    let ts: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                rt(2).block_on(async move {
                    let hs: Vec<_> = (0..1000u64)
                        .map(|j| gmp::spawn(async move { j * i }))
                        .collect();
                    let mut s = 0;
                    for h in hs {
                        s += h.await.unwrap();
                    }
                    s
                })
            })
        })
        .collect();
    for (i, t) in ts.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), (0..1000u64).sum::<u64>() * i as u64);
    }
}

#[test]
fn wake_from_plain_thread() {
    let v = rt(2).block_on(async {
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            tx.send(42).unwrap();
        });
        rx.await.unwrap()
    });
    assert_eq!(v, 42);
}

#[test]
fn procs_zero_is_invalid_input() {
    let e = gmp::Runtime::builder().procs(0).build().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn malformed_maxprocs_values_are_rejected() {
    for bad in ["abc", "0", "-1", "", "1.5"] {
        let e = gmp_core_parse(bad).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("GMP_MAXPROCS"), "{e}");
    }
    assert_eq!(gmp_core_parse("3").unwrap(), 3);
}

fn gmp_core_parse(v: &str) -> std::io::Result<usize> {
    gmp::runtime::parse_maxprocs(v)
}

#[test]
fn calls_outside_a_runtime_panic_clearly() {
    fn msg(r: std::thread::Result<()>) -> String {
        let p = r.unwrap_err();
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap()
    }
    let m = msg(std::panic::catch_unwind(|| gmp::go(async {})));
    assert!(
        m.contains("gmp::go") && m.contains("outside a gmp runtime"),
        "{m}"
    );
    let m = msg(std::panic::catch_unwind(|| {
        drop(gmp::spawn(async {}));
    }));
    assert!(
        m.contains("gmp::spawn") && m.contains("outside a gmp runtime"),
        "{m}"
    );
    let m = msg(std::panic::catch_unwind(|| {
        drop(gmp::runtime::gosched());
    }));
    assert!(m.contains("gosched"), "{m}");
    let m = msg(std::panic::catch_unwind(|| {
        gmp::runtime::goid();
    }));
    assert!(m.contains("goid"), "{m}");
    let m = msg(std::panic::catch_unwind(|| {
        rt(1).block_on(async { rt(1).block_on(async {}) });
    }));
    assert!(m.contains("inside a gmp runtime"), "{m}");
}

/// Go: a panic in a goroutine started with `go` ends the process with exit
/// code 2, naming the goroutine and where it was created.
#[test]
fn go_panic_exits_with_code_2() {
    const NAME: &str = "go_panic_exits_with_code_2";
    if is_child(NAME) {
        rt(2).block_on(async {
            gmp::go(async { panic!("child boom") });
            std::future::pending::<()>().await;
        });
        unreachable!();
    }
    let out = run_child(NAME, &[]);
    let err = out.stderr.as_str();
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("panic: child boom"), "{err}");
    assert!(err.contains("[running]:"), "{err}");
    assert!(
        err.contains("created by goroutine 1 at") && err.contains("core_sched.rs"),
        "{err}"
    );
}

/// A malformed GMP_MAXPROCS makes `build()` fail, naming the variable;
/// a procs given in code wins over the environment.
#[test]
fn gmp_maxprocs_env_is_validated() {
    const NAME: &str = "gmp_maxprocs_env_is_validated";
    if is_child(NAME) {
        let e = gmp::Runtime::builder().build().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        eprintln!("child error: {e}");
        let v = std::env::var("GMP_MAXPROCS").unwrap();
        assert!(e.to_string().contains("GMP_MAXPROCS"), "{e}");
        assert!(e.to_string().contains(&v), "{e}");
        let ok = gmp::Runtime::builder().procs(3).build().unwrap();
        assert_eq!(ok.procs(), 3);
        return;
    }
    for bad in ["abc", "0", "-1"] {
        let out = run_child(NAME, &[("GMP_MAXPROCS", bad)]);
        assert!(
            out.status.success(),
            "GMP_MAXPROCS={bad}: {}",
            out.stderr.as_str()
        );
        assert!(out.stderr.as_str().contains("child error: GMP_MAXPROCS"));
    }
    let out = run_child("gmp_maxprocs_env_is_used", &[("GMP_MAXPROCS", "3")]);
    assert!(out.status.success(), "{}", out.stderr.as_str());
}

#[test]
fn gmp_maxprocs_env_is_used() {
    if is_child("gmp_maxprocs_env_is_used") {
        let rt = gmp::Runtime::builder().build().unwrap();
        assert_eq!(rt.procs(), 3);
        assert_eq!(rt.block_on(async { gmp::runtime::gomaxprocs() }), 3);
    }
}

/// An idle runtime (main parked, waiting for a plain thread) burns no CPU:
/// Ms park on their notes and sysmon sleeps while every P is idle.
#[test]
fn idle_runtime_uses_no_cpu() {
    const NAME: &str = "idle_runtime_uses_no_cpu";
    if !is_child(NAME) {
        // Measured in a child so other tests' threads don't count.
        let out = run_child(NAME, &[]);
        assert!(out.status.success(), "{}", out.stderr.as_str());
        return;
    }
    let cpu = rt(4).block_on(async {
        // Get some Ms going first, then go idle.
        let hs: Vec<_> = (0..1000).map(|i| gmp::spawn(async move { i })).collect();
        for h in hs {
            h.await.unwrap();
        }
        let before = cpu_time();
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1000));
            tx.send(()).unwrap();
        });
        rx.await.unwrap();
        cpu_time() - before
    });
    // 1s idle; allow 5% of a core for thread wake-ups and clock granularity.
    assert!(
        cpu <= Duration::from_millis(50),
        "idle runtime used {cpu:?} of CPU in 1s"
    );
}

/// The per-goroutine overhead target: the G header is at most 64 bytes.
#[test]
fn g_header_is_at_most_64_bytes() {
    let size = std::hint::black_box(gmp::runtime::G_HEADER_SIZE);
    assert!(size <= 64, "{}", gmp::runtime::G_HEADER_SIZE);
}
