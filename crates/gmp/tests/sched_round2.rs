//! The scheduler's promises about latency, exit and parallelism, seen
//! from the public API:
//! - main runs promptly while other goroutines sit in a `syscall` or a
//!   long poll, under `block_on` and under `#[gmp::main]`;
//! - the program ends as soon as main does, even with a goroutine in a
//!   `syscall`; a panic in `#[gmp::main]` exits with code 2;
//! - a goroutine made runnable (spawned or woken by a send) while a P is
//!   idle starts on that P while its creator keeps computing (Go's wakep);
//! - a goroutine whose `syscall` lost its P gets one back before it runs
//!   goroutine code again, so GOMAXPROCS bounds parallelism (exitsyscall);
//! - a pair ping-ponging through a foreign waker cannot keep a third
//!   goroutine of their P waiting (the scheduler ends the time slice).
//!
//! Latency bounds are generous (a 200 ms bound against a 1 s failure); the
//! latencies themselves are measured by the `wake_latency` benchmark.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{is_child, poll_until, rt, run_child, wait_for_reason, watchdog};

/// How long the blocking goroutines of the main-latency tests block.
const BLOCK: Duration = Duration::from_secs(1);
/// Main's 5 ms sleep must end within this, against `BLOCK` when main
/// waits behind a blocked goroutine.
const MAIN_LATENCY_BOUND: Duration = Duration::from_millis(200);
/// `block_on` / the process must end within this of main returning,
/// against the 3 s of the goroutine left in its syscall.
const EXIT_BOUND: Duration = Duration::from_millis(500);
/// Generous limit for waiting on a condition that normally takes µs.
const POLL_LIMIT: Duration = Duration::from_secs(10);

/// Spins on the CPU for `d` without yielding: a poll that never awaits.
fn compute(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn unix_micros(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap().as_micros()
}

#[derive(Clone, Copy, Debug)]
enum Blocker {
    /// `gmp::syscall(|| std::thread::sleep(BLOCK))`
    Syscall,
    /// one poll computing for `BLOCK`
    LongPoll,
}

/// Main starts three goroutines that block for `BLOCK` each, then sleeps
/// 5 ms: right away, and again once all three provably block. Each sleep
/// must end within `MAIN_LATENCY_BOUND`, with none of the three done.
async fn main_sleeps_while_three_block(kind: Blocker) {
    let entered = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let (e, f) = (entered.clone(), finished.clone());
        gmp::go(async move {
            e.fetch_add(1, SeqCst);
            match kind {
                Blocker::Syscall => gmp::syscall(|| std::thread::sleep(BLOCK)),
                Blocker::LongPoll => compute(BLOCK),
            }
            f.fetch_add(1, SeqCst);
        });
    }
    for (round, all_blocking) in [
        ("right after the spawns", false),
        ("with all three blocking", true),
    ] {
        if all_blocking {
            poll_until(POLL_LIMIT, "all three to start blocking", || {
                entered.load(SeqCst) == 3
            })
            .await;
        }
        let t = Instant::now();
        gmp::time::sleep(Duration::from_millis(5)).await;
        let took = t.elapsed();
        assert!(
            took < MAIN_LATENCY_BOUND,
            "{kind:?}, {round}: main's 5 ms sleep took {took:?}"
        );
        assert_eq!(
            finished.load(SeqCst),
            0,
            "{kind:?}, {round}: main only ran once a blocker was done"
        );
    }
}

#[test]

fn main_is_not_held_up_by_syscalls_under_block_on() {
    rt(2).block_on(main_sleeps_while_three_block(Blocker::Syscall));
}

#[test]

fn main_is_not_held_up_by_long_polls_under_block_on() {
    rt(2).block_on(main_sleeps_while_three_block(Blocker::LongPoll));
}

#[gmp::main(procs = 2)]
async fn main_behind_syscalls_child() {
    main_sleeps_while_three_block(Blocker::Syscall).await;
}

#[gmp::main(procs = 2)]
async fn main_behind_long_polls_child() {
    main_sleeps_while_three_block(Blocker::LongPoll).await;
}

#[test]

fn main_is_not_held_up_by_syscalls_under_gmp_main() {
    const NAME: &str = "main_is_not_held_up_by_syscalls_under_gmp_main";
    if is_child(NAME) {
        main_behind_syscalls_child();
        return;
    }
    let out = run_child(NAME, &[]);
    assert_eq!(out.code(), Some(0), "stderr:\n{}", out.stderr);
}

#[test]

fn main_is_not_held_up_by_long_polls_under_gmp_main() {
    const NAME: &str = "main_is_not_held_up_by_long_polls_under_gmp_main";
    if is_child(NAME) {
        main_behind_long_polls_child();
        return;
    }
    let out = run_child(NAME, &[]);
    assert_eq!(out.code(), Some(0), "stderr:\n{}", out.stderr);
}

/// Starts a goroutine that sits in a 3 s `syscall` and waits until it is
/// in there. Main sleeps first (rather than polling at once) so that the
/// goroutine typically runs on main's own thread while main is parked: the
/// case where that thread is then stuck in the syscall.
async fn leave_a_goroutine_in_a_syscall() {
    let entered = Arc::new(AtomicBool::new(false));
    let e = entered.clone();
    gmp::go(async move {
        gmp::syscall(|| {
            e.store(true, SeqCst);
            std::thread::sleep(Duration::from_secs(3));
        });
    });
    gmp::time::sleep(Duration::from_millis(10)).await;
    poll_until(POLL_LIMIT, "the goroutine to enter its syscall", || {
        entered.load(SeqCst)
    })
    .await;
}

#[test]

fn block_on_returns_when_main_does_despite_a_syscall() {
    let rt = rt(2);
    let start = Instant::now();
    let main_end = rt.block_on(async {
        leave_a_goroutine_in_a_syscall().await;
        Instant::now()
    });
    let (after, total) = (main_end.elapsed(), start.elapsed());
    assert!(
        after < EXIT_BOUND,
        "block_on returned {after:?} after main did"
    );
    // Main itself needs about 10 ms; were it stalled behind the syscall
    // (the thread it relies on is stuck there), the end would come late too.
    assert!(total < EXIT_BOUND, "block_on took {total:?} in all");
}

const MAIN_START: &str = "main_start_unix_us=";
const MAIN_END: &str = "main_end_unix_us=";

#[gmp::main(procs = 2)]
async fn exit_with_a_goroutine_in_a_syscall_child() {
    println!("{MAIN_START}{}", unix_micros(SystemTime::now()));
    leave_a_goroutine_in_a_syscall().await;
    // No newline: also checks that stdout is flushed on the way out.
    print!("{MAIN_END}{}", unix_micros(SystemTime::now()));
}

/// The number printed after `key` in `out`.
fn printed_micros(out: &str, key: &str) -> u128 {
    out.split(key)
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{key} missing from the child's stdout:\n{out}"))
}

#[test]

fn gmp_main_exits_with_code_0_when_main_returns_despite_a_syscall() {
    const NAME: &str = "gmp_main_exits_with_code_0_when_main_returns_despite_a_syscall";
    if is_child(NAME) {
        exit_with_a_goroutine_in_a_syscall_child();
        return;
    }
    let out = run_child(NAME, &[]);
    assert_eq!(out.code(), Some(0), "stderr:\n{}", out.stderr);
    let exited = unix_micros(out.exited_at);
    let since = |key| {
        Duration::from_micros(
            exited
                .saturating_sub(printed_micros(&out.stdout, key))
                .try_into()
                .unwrap(),
        )
    };
    let (after_end, after_start) = (since(MAIN_END), since(MAIN_START));
    assert!(
        after_end < EXIT_BOUND,
        "the process exited {after_end:?} after main returned"
    );
    assert!(
        after_start < EXIT_BOUND,
        "the process exited {after_start:?} after main started (main needs ~10 ms)"
    );
}

#[gmp::main(procs = 2)]
async fn panicking_main_child() {
    panic!("main goes down");
}

#[test]

fn gmp_main_panic_exits_with_code_2() {
    const NAME: &str = "gmp_main_panic_exits_with_code_2";
    if is_child(NAME) {
        panicking_main_child();
        return;
    }
    let out = run_child(NAME, &[]);
    assert_eq!(out.code(), Some(2), "stderr:\n{}", out.stderr);
    assert!(out.stderr.contains("main goes down"), "{}", out.stderr);
}

/// How long the parent computes in the wakep tests: under sysmon's 10 ms
/// long-poll retake, so only a wake-up of the idle P (not sysmon taking the
/// parent's P) can start the child before the parent is done.
const PARENT_COMPUTE: Duration = Duration::from_millis(8);
const WAKEP_TRIALS: usize = 10;

/// How a wakep trial makes the child runnable.
#[derive(Clone, Copy, Debug)]
enum MakeRunnable {
    Spawn,
    ChannelSend,
}

/// On procs = 2 with main parked (one P idle), a parent goroutine makes a
/// child runnable and then computes for `PARENT_COMPUTE` without awaiting.
/// Returns how long after that the child started, if it started before
/// the parent finished computing.
async fn wakep_trial(how: MakeRunnable) -> Option<Duration> {
    let started: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let s = started.clone();
    let mut parked_child = None;
    if let MakeRunnable::ChannelSend = how {
        let (tx, rx) = gmp::chan::bounded::<()>(1);
        let s = s.clone();
        let h = gmp::spawn(async move {
            rx.recv().await.unwrap();
            *s.lock().unwrap() = Some(Instant::now());
        });
        wait_for_reason(h.goid(), "chan receive", POLL_LIMIT).await;
        parked_child = Some((tx, h));
    }
    let parent = gmp::spawn(async move {
        let t0 = Instant::now();
        match parked_child {
            None => {
                let s = s.clone();
                gmp::go(async move {
                    *s.lock().unwrap() = Some(Instant::now());
                })
            }
            Some((tx, _)) => tx.try_send(()).unwrap(),
        }
        compute(PARENT_COMPUTE);
        let at = *s.lock().unwrap();
        at.map(|t| t.saturating_duration_since(t0))
    });
    let r = parent.await.unwrap();
    poll_until(POLL_LIMIT, "the child to run at all", || {
        started.lock().unwrap().is_some()
    })
    .await;
    r
}

fn check_wakep(how: MakeRunnable) {
    let results = rt(2).block_on(async move {
        let mut v = Vec::with_capacity(WAKEP_TRIALS);
        for _ in 0..WAKEP_TRIALS {
            v.push(wakep_trial(how).await);
        }
        v
    });
    // Most trials, not all: a thread wake-up on a loaded machine can take
    // longer than the parent's few milliseconds of work.
    let early = results.iter().filter(|r| r.is_some()).count();
    assert!(
        early * 2 >= WAKEP_TRIALS,
        "{how:?}: the child started while its parent computed in only {early} of \
         {WAKEP_TRIALS} trials (start delays: {results:?})"
    );
}

#[test]

fn spawned_goroutine_starts_on_the_idle_p_while_its_parent_computes() {
    check_wakep(MakeRunnable::Spawn);
}

#[test]

fn goroutine_woken_by_a_send_starts_on_the_idle_p_while_the_sender_computes() {
    check_wakep(MakeRunnable::ChannelSend);
}

/// Counts goroutines executing goroutine code (not inside `syscall`) at
/// once, and the most seen.
#[derive(Default)]
struct Running {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Running {
    fn enter(&self) {
        let n = self.now.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(n, SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, SeqCst);
    }
}

/// procs = 1: A's 50 ms syscall loses the P to B, which computes for
/// 200 ms in 1 ms slices with a `gosched` between them (never a long
/// poll, so sysmon has no reason to take B's P). When A's syscall returns
/// it must wait for the P: at no moment do both run goroutine code.
#[test]

fn gomaxprocs_bounds_goroutine_code_after_a_syscall() {
    let _dog = watchdog(
        "gomaxprocs_bounds_goroutine_code_after_a_syscall",
        Duration::from_secs(60),
    );
    let running = Arc::new(Running::default());
    let r = running.clone();
    let b_slices = rt(1).block_on(async move {
        let ra = r.clone();
        let a = gmp::spawn(async move {
            ra.enter();
            ra.leave();
            gmp::syscall(|| std::thread::sleep(Duration::from_millis(50)));
            ra.enter();
            compute(Duration::from_millis(5));
            ra.leave();
        });
        let rb = r.clone();
        let b = gmp::spawn(async move {
            let t = Instant::now();
            let mut slices = 0u32;
            while t.elapsed() < Duration::from_millis(200) {
                rb.enter();
                compute(Duration::from_millis(1));
                rb.leave();
                slices += 1;
                gmp::runtime::gosched().await;
            }
            slices
        });
        a.await.unwrap();
        b.await.unwrap()
    });
    assert!(b_slices > 0);
    assert_eq!(
        running.max.load(SeqCst),
        1,
        "two goroutines ran goroutine code at once with GOMAXPROCS = 1"
    );
}

/// procs = 1: a pair ping-pongs forever through `futures::channel::mpsc`
/// (a waker the scheduler does not own). Once it is going, main spawns a
/// third goroutine, which must run within a second.
#[test]
fn foreign_waker_ping_pong_cannot_hold_a_third_goroutine() {
    use futures::{SinkExt, StreamExt};
    let _dog = watchdog(
        "foreign_waker_ping_pong_cannot_hold_a_third_goroutine",
        Duration::from_secs(60),
    );
    let delay = rt(1).block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let (mut a_tx, mut b_rx) = futures::channel::mpsc::channel::<u8>(0);
        let (mut b_tx, mut a_rx) = futures::channel::mpsc::channel::<u8>(0);
        // The third goroutine is spawned by one of the pair, so it waits in
        // the pair's P's ring while the two hand the P to each other
        // through runnext (inheriting one time slice) on every round.
        let third: Arc<std::sync::Mutex<Option<gmp::JoinHandle<Instant>>>> = Default::default();
        let spawned: Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
        let (s, r, t3, sp) = (stop.clone(), rounds.clone(), third.clone(), spawned.clone());
        let a = gmp::spawn(async move {
            while !s.load(SeqCst) {
                if a_tx.send(1).await.is_err() || a_rx.next().await.is_none() {
                    break;
                }
                if r.fetch_add(1, SeqCst) == 1000 {
                    *sp.lock().unwrap() = Some(Instant::now());
                    *t3.lock().unwrap() = Some(gmp::spawn(async { Instant::now() }));
                }
            }
        });
        let b = gmp::spawn(async move {
            while let Some(v) = b_rx.next().await {
                if b_tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        poll_until(POLL_LIMIT, "the pair to spawn the third", || {
            third.lock().unwrap().is_some()
        })
        .await;
        let third = third.lock().unwrap().take().unwrap();
        let spawned = spawned.lock().unwrap().unwrap();
        let ran = third.await.unwrap();
        // Main, too, shares the pair's only P: it must get its turn.
        let main_back = Instant::now();
        let seen = rounds.load(SeqCst);
        poll_until(POLL_LIMIT, "the pair to keep ping-ponging", || {
            rounds.load(SeqCst) > seen + 100
        })
        .await;
        stop.store(true, SeqCst);
        a.await.unwrap();
        b.await.unwrap();
        (
            ran.saturating_duration_since(spawned),
            main_back.saturating_duration_since(spawned),
        )
    });
    let (third_delay, main_delay) = delay;
    assert!(
        third_delay < BLOCK,
        "the third goroutine waited {third_delay:?} behind the ping-pong pair"
    );
    assert!(
        main_delay < BLOCK,
        "main waited {main_delay:?} for the P the ping-pong pair kept"
    );
}
