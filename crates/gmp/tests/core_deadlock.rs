//! Go's checkdead: a program whose goroutines all wait on gmp primitives
//! that nothing can complete is reported instead of hanging; live programs
//! (sleeping goroutines, values about to come from plain threads) never
//! are. Each scenario runs in a child process (the report is fatal).

use std::time::Duration;

mod support;
use support::{is_child, rt, wait_for_reason};

/// The deadlock detector's grace: it declares a deadlock only after the
/// runtime has stayed asleep this long (gmp-core's `checkdead::GRACE`,
/// which is private).
const DEADLOCK_GRACE: Duration = Duration::from_secs(1);

fn run_child(name: &str) -> support::ChildRun {
    support::run_child(name, &[])
}

#[allow(dead_code)]
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A goroutine asleep on a timer is alive: no report, the program ends.
/// The sleep outlasts the detector's grace by half a second, so the
/// detector does look at the sleeping program (with main waiting on a
/// join, nothing else is runnable) and must not call it dead.
#[test]
fn sleeping_goroutine_is_not_a_deadlock() {
    const NAME: &str = "sleeping_goroutine_is_not_a_deadlock";
    if is_child(NAME) {
        let nap = DEADLOCK_GRACE + Duration::from_millis(500);
        let slept = rt(2).block_on(async move {
            let t = std::time::Instant::now();
            let h = gmp::spawn(async move { gmp::time::sleep(nap).await });
            h.await.unwrap();
            t.elapsed()
        });
        assert!(slept >= nap, "woke after {slept:?}, before {nap:?}");
        return;
    }
    let out = run_child(NAME);
    let err = out.stderr.as_str();
    assert!(out.success(), "{err}");
    assert!(!err.contains("deadlock"), "{err}");
}

/// Main waits for a value a plain thread sends after longer than the
/// deadlock grace.
#[test]
fn value_from_plain_thread_is_not_a_deadlock() {
    const NAME: &str = "value_from_plain_thread_is_not_a_deadlock";
    if is_child(NAME) {
        let v = rt(2).block_on(async {
            let (tx, rx) = futures::channel::oneshot::channel();
            std::thread::spawn(move || {
                std::thread::sleep(DEADLOCK_GRACE + Duration::from_millis(500));
                tx.send(5).unwrap();
            });
            rx.await.unwrap()
        });
        assert_eq!(v, 5);
        return;
    }
    let out = run_child(NAME);
    let err = out.stderr.as_str();
    assert!(out.success(), "{err}");
    assert!(!err.contains("deadlock"), "{err}");
}

/// SIGQUIT prints the goroutine dump and exits with code 2, as in Go.
#[test]
fn sigquit_dumps_and_exits_2() {
    const NAME: &str = "sigquit_dumps_and_exits_2";
    if is_child(NAME) {
        rt(2).block_on(async {
            let h = gmp::spawn(gmp::time::sleep(Duration::from_secs(30)));
            wait_for_reason(h.goid(), "sleep", Duration::from_secs(10)).await;
            raise_sigquit();
            h.await.unwrap();
        });
        unreachable!("SIGQUIT should have ended the process");
    }
    let out = run_child(NAME);
    let err = out.stderr.as_str();
    assert_eq!(out.code(), Some(2), "{err}");
    assert!(err.contains("SIGQUIT: quit"), "{err}");
    assert!(err.contains("[sleep]:"), "{err}");
    assert!(err.contains("goroutine 1 ["), "{err}");
}

/// Send this process SIGQUIT (the runtime's goroutine dump, then exit 2).
fn raise_sigquit() {
    // SAFETY: raise(3) has no memory preconditions; SIGQUIT is a valid
    // signal number.
    let rc = unsafe { libc::raise(libc::SIGQUIT) };
    assert_eq!(rc, 0, "raise(SIGQUIT) failed");
}

fn expect_deadlock_child(name: &str) -> String {
    let out = run_child(name);
    let err = out.stderr.clone();
    assert!(out.success(), "child failed: {err}");
    assert!(
        err.contains("fatal error: all goroutines are asleep - deadlock!"),
        "{err}"
    );
    err
}

fn assert_deadlock_panic(r: std::thread::Result<()>) {
    let text = panic_text(r.unwrap_err());
    assert!(
        text.starts_with("fatal error: all goroutines are asleep - deadlock!"),
        "{text}"
    );
}

/// Main receives on a channel nobody sends to.
#[test]
fn main_waiting_on_a_silent_channel_is_a_deadlock() {
    const NAME: &str = "main_waiting_on_a_silent_channel_is_a_deadlock";
    if is_child(NAME) {
        assert_deadlock_panic(std::panic::catch_unwind(|| {
            rt(2).block_on(async {
                let (_tx, rx) = gmp::chan::bounded::<u8>(0);
                let _ = rx.recv().await;
            })
        }));
        return;
    }
    let err = expect_deadlock_child(NAME);
    assert!(err.contains("goroutine 1 [chan receive]:"), "{err}");
}

/// Two goroutines each wait for the other; main waits for both.
#[test]
fn two_goroutines_waiting_on_each_other_is_a_deadlock() {
    const NAME: &str = "two_goroutines_waiting_on_each_other_is_a_deadlock";
    if is_child(NAME) {
        assert_deadlock_panic(std::panic::catch_unwind(|| {
            rt(2).block_on(async {
                let (a_tx, a_rx) = gmp::chan::bounded::<u8>(0);
                let (b_tx, b_rx) = gmp::chan::bounded::<u8>(0);
                let x = gmp::spawn(async move {
                    let v = a_rx.recv().await.unwrap();
                    b_tx.send(v).await.unwrap();
                });
                let y = gmp::spawn(async move {
                    let v = b_rx.recv().await.unwrap();
                    a_tx.send(v).await.unwrap();
                });
                x.await.unwrap();
                y.await.unwrap();
            })
        }));
        return;
    }
    let err = expect_deadlock_child(NAME);
    assert!(err.contains("goroutine 1 [join]:"), "{err}");
    assert!(err.matches("[chan receive]:").count() >= 2, "{err}");
}

/// A value about to arrive from a plain thread through `send_blocking`
/// (first use after a delay, then again after longer than the grace) is a
/// live program.
#[test]
fn send_blocking_from_plain_thread_is_not_a_deadlock() {
    const NAME: &str = "send_blocking_from_plain_thread_is_not_a_deadlock";
    if is_child(NAME) {
        let got = rt(2).block_on(async {
            let (tx, rx) = gmp::chan::bounded::<u32>(0);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                tx.send_blocking(1).unwrap();
                std::thread::sleep(DEADLOCK_GRACE + Duration::from_millis(500));
                tx.send_blocking(2).unwrap();
            });
            let a = rx.recv().await.unwrap();
            let b = rx.recv().await.unwrap();
            a + b
        });
        assert_eq!(got, 3);
        return;
    }
    let out = run_child(NAME);
    let err = out.stderr.as_str();
    assert!(out.success(), "{err}");
    assert!(!err.contains("deadlock"), "{err}");
}

/// Leaves 100 `after(1h)` timers behind, each the losing case of a
/// `select!` whose other case was ready: nobody can receive from them.
async fn abandon_100_afters() {
    let (tx, rx) = gmp::chan::bounded::<u32>(1);
    for i in 0..100u32 {
        tx.try_send(i).unwrap();
        gmp::select! {
            recv(rx) -> v => assert_eq!(v, Ok(i)),
            recv(gmp::time::after(Duration::from_secs(3600))) -> _ => unreachable!(),
        }
    }
}

/// Go 1.23 collects unreferenced timers, so abandoned `after`s keep no
/// deadlocked program alive: main blocked for ever on a silent channel is
/// reported, with the exit code of any deadlock (the run is a child
/// process under `run_child`'s watchdog: a missed report fails, not hangs).
#[test]
fn abandoned_after_timers_do_not_hide_a_deadlock() {
    const NAME: &str = "abandoned_after_timers_do_not_hide_a_deadlock";
    if is_child(NAME) {
        let rt = gmp::Runtime::builder()
            .procs(2)
            .exit_on_deadlock(true)
            .build()
            .unwrap();
        rt.block_on(async {
            abandon_100_afters().await;
            let (_tx, rx) = gmp::chan::bounded::<u8>(0);
            let _ = rx.recv().await;
        });
        unreachable!("the deadlock report ends the process");
    }
    let out = run_child(NAME);
    let err = out.stderr.as_str();
    assert_eq!(out.code(), Some(2), "{err}");
    assert!(
        err.starts_with("fatal error: all goroutines are asleep - deadlock!"),
        "{err}"
    );
    assert!(err.contains("goroutine 1 [chan receive]:"), "{err}");
}

/// The converse: beside the abandoned timers, a goroutine's `sleep` that
/// outlasts the detector's grace is a live program; its wake-up sends
/// main the value it waits for.
#[test]
fn a_sleep_beside_abandoned_timers_is_not_a_deadlock() {
    const NAME: &str = "a_sleep_beside_abandoned_timers_is_not_a_deadlock";
    if is_child(NAME) {
        let nap = DEADLOCK_GRACE + Duration::from_millis(500);
        let v = rt(2).block_on(async move {
            abandon_100_afters().await;
            let (tx, rx) = gmp::chan::bounded::<u8>(0);
            gmp::go(async move {
                gmp::time::sleep(nap).await;
                tx.send(7).await.unwrap();
            });
            rx.recv().await.unwrap()
        });
        assert_eq!(v, 7);
        return;
    }
    let out = run_child(NAME);
    let err = out.stderr.as_str();
    assert!(out.success(), "{err}");
    assert!(!err.contains("deadlock"), "{err}");
}

/// The converse with a held `Timer`: main waits on its channel beside the
/// abandoned timers, past the detector's grace, and gets the value.
#[test]
fn a_held_timer_beside_abandoned_timers_is_not_a_deadlock() {
    const NAME: &str = "a_held_timer_beside_abandoned_timers_is_not_a_deadlock";
    if is_child(NAME) {
        let d = DEADLOCK_GRACE + Duration::from_millis(500);
        let waited = rt(2).block_on(async move {
            abandon_100_afters().await;
            let t = gmp::time::Timer::new(d);
            let start = std::time::Instant::now();
            t.channel().recv().await.unwrap();
            start.elapsed()
        });
        assert!(waited >= d - Duration::from_millis(100), "{waited:?}");
        return;
    }
    let out = run_child(NAME);
    let err = out.stderr.as_str();
    assert!(out.success(), "{err}");
    assert!(!err.contains("deadlock"), "{err}");
}
