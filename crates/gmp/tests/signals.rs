//! gmp::signal::notify: signals become channel values instead of their
//! default action; once the receiver is dropped the default action is
//! back; SIGQUIT goes to the channel instead of the dump when notified;
//! `Builder::sigquit_dump(false)` installs nothing. Signals are
//! process-wide, so each case runs in a child process of this test binary.
#![cfg(unix)]

use gmp::signal::{notify, Signal};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const WATCHDOG: Duration = Duration::from_secs(20);

/// Run this test's body in a child (env `GMP_CHILD` = name); returns
/// `None` in the child (which then runs the body), the child's output in
/// the parent. The child is killed if it outlives the watchdog.
fn in_child(name: &str) -> Option<Output> {
    if std::env::var("GMP_CHILD").as_deref() == Ok(name) {
        // A harness started as a background job of a non-interactive
        // shell inherits SIGINT and SIGQUIT ignored; these tests are about
        // the default actions, so the child starts from them.
        for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
            // SAFETY: only sets the disposition to the default, before the
            // test body starts any runtime or handler.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
        return None;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("GMP_CHILD", name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > WATCHDOG {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(child.wait_with_output().unwrap())
}

fn rt() -> gmp::Runtime {
    gmp::Runtime::builder().procs(2).build().unwrap()
}

fn raise(sig: i32) {
    // SAFETY: raise(3) takes no memory.
    unsafe { libc::raise(sig) };
}

async fn recv_within(rx: &gmp::chan::Receiver<Signal>) -> Signal {
    gmp::time::timeout(WATCHDOG, rx.recv())
        .await
        .expect("signal never delivered")
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn notify_delivers_sigint_without_killing() {
    const NAME: &str = "notify_delivers_sigint_without_killing";
    if let Some(out) = in_child(NAME) {
        assert!(
            out.status.success(),
            "{:?} {}",
            out.status,
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("got interrupt twice"));
        return;
    }
    rt().block_on(async {
        let rx = notify(&[Signal::Interrupt, Signal::Terminate]);
        raise(libc::SIGINT);
        assert_eq!(recv_within(&rx).await, Signal::Interrupt);
        raise(libc::SIGINT);
        assert_eq!(recv_within(&rx).await, Signal::Interrupt);
        raise(libc::SIGTERM);
        assert_eq!(recv_within(&rx).await, Signal::Terminate);
        println!("got {} twice", Signal::Interrupt);
    });
}

#[test]
fn after_the_receiver_drops_sigint_kills_again() {
    const NAME: &str = "after_the_receiver_drops_sigint_kills_again";
    if let Some(out) = in_child(NAME) {
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGINT),
            "{:?} {}",
            out.status,
            text(&out.stdout)
        );
        assert!(text(&out.stdout).contains("delivered once"));
        return;
    }
    rt().block_on(async {
        let rx = notify(&[Signal::Interrupt]);
        raise(libc::SIGINT);
        assert_eq!(recv_within(&rx).await, Signal::Interrupt);
        println!("delivered once");
        drop(rx);
        raise(libc::SIGINT);
        // The default action ends the process; reaching the end is the
        // failure.
        gmp::time::sleep(WATCHDOG / 2).await;
        println!("survived SIGINT");
    });
}

#[test]
fn sigquit_under_notify_goes_to_the_channel() {
    const NAME: &str = "sigquit_under_notify_goes_to_the_channel";
    if let Some(out) = in_child(NAME) {
        assert!(
            out.status.success(),
            "{:?} {}",
            out.status,
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("got quit"));
        assert!(
            !text(&out.stderr).contains("goroutine 1 ["),
            "dumped anyway"
        );
        return;
    }
    rt().block_on(async {
        let rx = notify(&[Signal::Quit]);
        raise(libc::SIGQUIT);
        assert_eq!(recv_within(&rx).await, Signal::Quit);
        println!("got {}", Signal::Quit);
    });
}

/// Once the `notify(Quit)` receiver is gone, SIGQUIT dumps and exits 2
/// again.
#[test]
fn sigquit_dump_comes_back_after_the_receiver_drops() {
    const NAME: &str = "sigquit_dump_comes_back_after_the_receiver_drops";
    if let Some(out) = in_child(NAME) {
        assert_eq!(out.status.code(), Some(2), "{:?}", out.status);
        assert!(
            text(&out.stderr).contains("goroutine 1 ["),
            "{}",
            text(&out.stderr)
        );
        return;
    }
    rt().block_on(async {
        let rx = notify(&[Signal::Quit]);
        raise(libc::SIGQUIT);
        assert_eq!(recv_within(&rx).await, Signal::Quit);
        drop(rx);
        raise(libc::SIGQUIT);
        gmp::time::sleep(WATCHDOG / 2).await;
    });
}

/// `sigquit_dump(false)`: no handler, so SIGQUIT's own default action
/// (terminate) applies.
#[test]
fn sigquit_dump_false_installs_no_handler() {
    const NAME: &str = "sigquit_dump_false_installs_no_handler";
    if let Some(out) = in_child(NAME) {
        assert_eq!(out.status.signal(), Some(libc::SIGQUIT), "{:?}", out.status);
        assert!(!text(&out.stderr).contains("goroutine 1 ["));
        return;
    }
    // No core file from the default action.
    let lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &lim) };
    let rt = gmp::Runtime::builder()
        .procs(1)
        .sigquit_dump(false)
        .build()
        .unwrap();
    rt.block_on(async {
        raise(libc::SIGQUIT);
        gmp::time::sleep(WATCHDOG / 2).await;
    });
}

#[test]
fn signal_numbers_and_names() {
    assert_eq!(Signal::Interrupt.as_raw(), libc::SIGINT);
    assert_eq!(Signal::from_raw(libc::SIGTERM), Some(Signal::Terminate));
    assert_eq!(Signal::from_raw(libc::SIGKILL), None);
    assert_eq!(Signal::Terminate.to_string(), "terminated");
}

#[test]
fn notify_outside_a_runtime_is_a_clear_panic() {
    let p = std::panic::catch_unwind(|| notify(&[Signal::User2])).unwrap_err();
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("outside a gmp runtime"), "{msg}");
}
