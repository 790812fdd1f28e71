//! Helpers shared by the facade's integration tests: building a runtime,
//! re-running the test binary as a child process (for behaviour that ends
//! the process or must be measured alone), process CPU time, polling until
//! a condition holds, a watchdog for tests that could hang, and for the
//! observability tests a child runner with per-variable removal and a
//! small JSON parser for trace files.
//!
//! Each test file includes this with `mod support;` and uses only part of
//! it, hence the crate-level `dead_code` allowance.
#![allow(dead_code)]

pub mod go_ports;

use std::io::Write;
use std::process::{Command, ExitStatus, Output, Stdio};
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

/// Runs this test binary's test `name` alone in a child process, with
/// `GMP_CHILD=name` and `env` set (a `None` value removes the variable),
/// killing it after `limit`.
pub fn run_child_output(name: &str, env: &[(&str, Option<&str>)], limit: Duration) -> Output {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        name,
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ])
    .env(CHILD_ENV, name)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let child = c.spawn().unwrap();
    wait_with_watchdog(child, name, limit)
}

/// Waits for `child`, killing it (and failing) after `limit`.
pub fn wait_with_watchdog(mut child: std::process::Child, what: &str, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{what}: child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// A fresh path in the temp directory.
pub fn temp_path(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "gmp-{tag}-{}-{}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Parses a trace file and returns its events, each as (name, ph, fields).
pub fn trace_events(path: &std::path::Path) -> Vec<json::V> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let v = json::parse(&text).unwrap_or_else(|e| {
        let tail = &text[text.len().saturating_sub(200)..];
        panic!(
            "{} is not valid JSON: {e}; it ends with:\n{tail}",
            path.display()
        )
    });
    let json::V::Obj(top) = v else {
        panic!("not an object")
    };
    let Some((_, json::V::Arr(events))) = top.into_iter().find(|(k, _)| k == "traceEvents") else {
        panic!("no traceEvents array")
    };
    events
}

/// An event's string field.
pub fn field<'a>(e: &'a json::V, k: &str) -> Option<&'a str> {
    let json::V::Obj(kv) = e else { return None };
    kv.iter().find(|(n, _)| n == k).and_then(|(_, v)| match v {
        json::V::Str(s) => Some(s.as_str()),
        _ => None,
    })
}

/// A small JSON parser: enough to prove the file is valid JSON.
pub mod json {
    #[derive(Debug)]
    pub enum V {
        Null,
        Bool,
        Num,
        Str(String),
        Arr(Vec<V>),
        Obj(Vec<(String, V)>),
    }
    pub fn parse(s: &str) -> Result<V, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let v = value(b, &mut i)?;
        ws(b, &mut i);
        if i != b.len() {
            return Err(format!("trailing data at {i}"));
        }
        Ok(v)
    }
    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn value(b: &[u8], i: &mut usize) -> Result<V, String> {
        ws(b, i);
        match b.get(*i) {
            Some(b'{') => {
                *i += 1;
                let mut kv = Vec::new();
                ws(b, i);
                if b.get(*i) == Some(&b'}') {
                    *i += 1;
                    return Ok(V::Obj(kv));
                }
                loop {
                    ws(b, i);
                    let V::Str(k) = value(b, i)? else {
                        return Err("key".into());
                    };
                    ws(b, i);
                    if b.get(*i) != Some(&b':') {
                        return Err(format!("':' expected at {i}"));
                    }
                    *i += 1;
                    kv.push((k, value(b, i)?));
                    ws(b, i);
                    match b.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b'}') => {
                            *i += 1;
                            return Ok(V::Obj(kv));
                        }
                        _ => return Err(format!("',' or '}}' expected at {i}")),
                    }
                }
            }
            Some(b'[') => {
                *i += 1;
                let mut a = Vec::new();
                ws(b, i);
                if b.get(*i) == Some(&b']') {
                    *i += 1;
                    return Ok(V::Arr(a));
                }
                loop {
                    a.push(value(b, i)?);
                    ws(b, i);
                    match b.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b']') => {
                            *i += 1;
                            return Ok(V::Arr(a));
                        }
                        _ => return Err(format!("',' or ']' expected at {i}")),
                    }
                }
            }
            Some(b'"') => {
                *i += 1;
                let start = *i;
                while *i < b.len() && b[*i] != b'"' {
                    if b[*i] == b'\\' {
                        *i += 1;
                    }
                    *i += 1;
                }
                let s = String::from_utf8(b[start..*i].to_vec()).map_err(|e| e.to_string())?;
                *i += 1;
                Ok(V::Str(s))
            }
            Some(b't') if b[*i..].starts_with(b"true") => {
                *i += 4;
                Ok(V::Bool)
            }
            Some(b'f') if b[*i..].starts_with(b"false") => {
                *i += 5;
                Ok(V::Bool)
            }
            Some(b'n') if b[*i..].starts_with(b"null") => {
                *i += 4;
                Ok(V::Null)
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                *i += 1;
                while *i < b.len() && (b[*i].is_ascii_digit() || b".eE+-".contains(&b[*i])) {
                    *i += 1;
                }
                Ok(V::Num)
            }
            _ => Err(format!("unexpected byte at {i}")),
        }
    }
}

/// Inside a runtime: a TCP echo server on a loopback port, one goroutine
/// per connection; its accept loop's handle.
pub async fn echo_server() -> (std::net::SocketAddr, gmp::JoinHandle<()>) {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ln.local_addr().unwrap();
    let h = gmp::spawn(async move {
        loop {
            let Ok((mut c, _)) = ln.accept().await else {
                return;
            };
            gmp::go(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, h)
}
