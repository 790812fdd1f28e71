//! Helpers shared by the facade's integration tests: building a runtime,
//! re-running the test binary as a child process (for behaviour that ends
//! the process or must be measured alone), process CPU time, polling until
//! a condition holds, and a watchdog for tests that could hang.
//!
//! Each test file includes this with `mod support;` and uses only part of
//! it, hence the crate-level `dead_code` allowance.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// The environment variable naming the test a child process must run.
pub const CHILD_ENV: &str = "GMP_CHILD";

/// How long a child process may run before it is killed and the test
/// fails (a hang must never stall the suite).
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// A runtime with `procs` Ps.
pub fn rt(procs: usize) -> gmp::Runtime {
    gmp::Runtime::builder().procs(procs).build().unwrap()
}

/// True in the child process started by [`run_child`] for test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(name)
}

/// What a child process did.
#[derive(Debug)]
pub struct ChildRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// From spawning the child to its exit.
    pub elapsed: Duration,
    /// Wall-clock time its exit was seen (within a millisecond), to compare
    /// with times the child printed.
    pub exited_at: SystemTime,
}

impl ChildRun {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs this test binary again with only test `name` selected (ignored
/// or not) and `GMP_CHILD=name`, so that test's child branch runs alone in
/// its own process. The child is killed, and the calling test fails, if it has
/// not exited within [`CHILD_TIMEOUT`].
pub fn run_child(name: &str, env: &[(&str, &str)]) -> ChildRun {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        name,
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, name)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let start = Instant::now();
    let mut child = c.spawn().expect("spawning the test binary as a child");
    // Drain the pipes on their own threads so a chatty child never blocks
    // on a full pipe while we wait for it.
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out_pipe, &mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err_pipe, &mut s).ok();
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for the child") {
            break st;
        }
        if start.elapsed() > CHILD_TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            let err = err_reader.join().unwrap_or_default();
            panic!(
                "child {name} did not exit within {CHILD_TIMEOUT:?}; stderr:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let elapsed = start.elapsed();
    let exited_at = SystemTime::now();
    ChildRun {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
        elapsed,
        exited_at,
    }
}

/// CPU time (user + system) this process has used so far, from
/// `getrusage`: exact to the microsecond, no clock-tick unit to assume,
/// and no file to open (it works with the descriptor table full).
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the zeroed struct we pass it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Inside a goroutine: awaits until `cond()` holds, checking every
/// millisecond; panics with `what` if it still does not after `limit`.
pub async fn poll_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        gmp::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Inside a goroutine: polls `gmp::runtime::goroutines()` until goroutine
/// `id` is parked with wait reason `reason` (so a test acts on a
/// goroutine only once it provably waits), or panics after `limit`.
pub async fn wait_for_reason(id: u64, reason: &'static str, limit: Duration) {
    poll_until(
        limit,
        &format!("goroutine {id} to wait on {reason:?}"),
        || {
            gmp::runtime::goroutines()
                .iter()
                .any(|g| g.id == id && g.wait_reason == Some(reason))
        },
    )
    .await
}

/// Aborts the whole test process if it is still armed after `limit`: for
/// a test whose failure mode is a hang (a starved goroutine never runs).
/// Dropping it disarms it.
pub struct Watchdog {
    disarm: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn watchdog(what: &'static str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            // Straight to the process's stderr: the test harness's output
            // capture would swallow a message printed with eprintln!.
            let _ = writeln!(
                std::io::stderr(),
                "watchdog: {what} still not done after {limit:?}; aborting"
            );
            std::process::abort();
        }
    });
    Watchdog {
        disarm: Some(tx),
        thread: Some(thread),
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.disarm.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
