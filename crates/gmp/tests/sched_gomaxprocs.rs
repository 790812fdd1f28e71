//! `gmp::runtime::set_gomaxprocs`: GOMAXPROCS changed while the program
//! runs (Go's procresize). Ps are added and retired under a thousand
//! goroutines that run, park on channels and sleep on timers: none is lost
//! or run twice, `gomaxprocs()` follows, and timers armed before a shrink
//! (in the heaps of the Ps it retires) still fire.

mod support;

use gmp::runtime::{gomaxprocs, set_gomaxprocs};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{poll_until, rt, watchdog};

const N: usize = 1000;
const POLL_LIMIT: Duration = Duration::from_secs(10);
/// The sleepers' timers are armed at 4 Ps and must fire after the shrink
/// to 1, so they outlast the resize sequence.
const SLEEP: Duration = Duration::from_millis(300);

#[test]
fn set_gomaxprocs_reads_and_returns_the_previous_value() {
    rt(3).block_on(async {
        assert_eq!(set_gomaxprocs(0), 3, "0 only reads");
        assert_eq!(gomaxprocs(), 3);
        assert_eq!(set_gomaxprocs(5), 3);
        assert_eq!(gomaxprocs(), 5);
        assert_eq!(set_gomaxprocs(5), 5, "setting the same value");
        assert_eq!(set_gomaxprocs(1), 5);
        assert_eq!(set_gomaxprocs(0), 1);
        assert_eq!(gomaxprocs(), 1);
        assert_eq!(gmp::runtime::metrics().local_runq.len(), 1);
    });
}

/// Each of the N goroutines does one of three things (park on a channel,
/// sleep on a timer, compute and yield), a few times over, and counts its
/// one completion. GOMAXPROCS goes 1 -> 4 (the work spreads over the new
/// Ps), then 4 -> 1 while timers are armed and receivers parked, then
/// bounces between 1 and 4 while the rest finishes.
#[test]
fn grow_and_shrink_while_goroutines_run_park_and_sleep() {
    let _dog = watchdog(
        "grow_and_shrink_while_goroutines_run_park_and_sleep",
        Duration::from_secs(60),
    );
    let completions: Arc<Vec<AtomicUsize>> =
        Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
    let c = completions.clone();
    let fired_late = rt(1).block_on(async move {
        assert_eq!(gomaxprocs(), 1);
        let (tx, rx) = gmp::chan::bounded::<usize>(0);
        let armed = Arc::new(AtomicUsize::new(0));
        let parked = Arc::new(AtomicUsize::new(0));
        let sleepers_done = Arc::new(AtomicUsize::new(0));
        let shrunk_at: Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
        let late = Arc::new(AtomicUsize::new(0));
        let mut hs = Vec::with_capacity(N);
        for i in 0..N {
            let (c, rx) = (c.clone(), rx.clone());
            let (armed, parked, sleepers_done) =
                (armed.clone(), parked.clone(), sleepers_done.clone());
            let (shrunk_at, late) = (shrunk_at.clone(), late.clone());
            hs.push(gmp::spawn(async move {
                // Let the goroutines spread over the Ps the grow adds.
                gmp::runtime::gosched().await;
                match i % 3 {
                    0 => {
                        parked.fetch_add(1, SeqCst);
                        let v = rx.recv().await.expect("channel closed early");
                        assert!(v < N);
                    }
                    1 => {
                        armed.fetch_add(1, SeqCst);
                        gmp::time::sleep(SLEEP).await;
                        if shrunk_at.lock().unwrap().is_some() {
                            late.fetch_add(1, SeqCst);
                        }
                        sleepers_done.fetch_add(1, SeqCst);
                    }
                    _ => {
                        for _ in 0..20 {
                            std::hint::black_box((0..1000u64).sum::<u64>());
                            gmp::runtime::gosched().await;
                        }
                    }
                }
                c[i].fetch_add(1, SeqCst);
                i
            }));
        }
        let receivers = (0..N).filter(|i| i % 3 == 0).count();
        let sleepers = (0..N).filter(|i| i % 3 == 1).count();

        assert_eq!(set_gomaxprocs(4), 1);
        assert_eq!(gomaxprocs(), 4);
        assert_eq!(gmp::runtime::metrics().local_runq.len(), 4);
        // Half of the receivers get their value at 4 Ps.
        for v in 0..receivers / 2 {
            tx.send(v).await.unwrap();
        }
        poll_until(POLL_LIMIT, "every sleeper to arm its timer", || {
            armed.load(SeqCst) == sleepers
        })
        .await;
        assert_eq!(
            sleepers_done.load(SeqCst),
            0,
            "a sleeper woke before its timer was due"
        );

        *shrunk_at.lock().unwrap() = Some(Instant::now());
        assert_eq!(set_gomaxprocs(1), 4);
        assert_eq!(gomaxprocs(), 1);
        assert_eq!(gmp::runtime::metrics().local_runq.len(), 1);
        // The other half at 1 P.
        for v in receivers / 2..receivers {
            tx.send(v).await.unwrap();
        }
        // Bounce while the sleepers' timers come due.
        for k in 0..20 {
            let n = if k % 2 == 0 { 4 } else { 1 };
            set_gomaxprocs(n);
            assert_eq!(gomaxprocs(), n);
            gmp::time::sleep(Duration::from_millis(2)).await;
        }
        let mut seen = vec![false; N];
        for h in hs {
            let i = h.await.expect("a goroutine panicked or was lost");
            assert!(!seen[i], "goroutine {i} returned twice");
            seen[i] = true;
        }
        assert_eq!(parked.load(SeqCst), receivers);
        assert_eq!(sleepers_done.load(SeqCst), sleepers);
        late.load(SeqCst)
    });
    for (i, n) in completions.iter().enumerate() {
        assert_eq!(
            n.load(SeqCst),
            1,
            "goroutine {i} completed {} times",
            n.load(SeqCst)
        );
    }
    // Every sleeper armed its timer before the shrink; with SLEEP well past
    // the grow, most of them fire after it (from the heap they were moved to).
    assert!(
        fired_late > 0,
        "no timer armed before the shrink fired after it"
    );
}
