//! The execution trace after every way a program ends (a `go` panic, the
//! deadlock report, SIGQUIT; main returning is in `core_trace.rs` and
//! `main_exit.rs`), `trace::start`/`stop` windows, bad `GMP_TRACE` paths,
//! and `GMP_DEBUG=leakcheck=1`. Each case runs in a child process: the
//! trace is process-wide and these programs end the process.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{field, is_child, run_child_output as run_child, temp_path, trace_events};

const LIMIT: Duration = Duration::from_secs(120);

/// Spawns `n` goroutines that each yield a few times, and waits for them.
async fn busy_goroutines(n: usize) -> Vec<u64> {
    let mut hs = Vec::new();
    for _ in 0..n {
        hs.push(gmp::spawn(async {
            for _ in 0..4 {
                gmp::runtime::gosched().await;
            }
            gmp::runtime::goid()
        }));
    }
    let mut ids = Vec::new();
    for h in hs {
        ids.push(h.await.unwrap());
    }
    ids
}

/// The goroutine ids of the trace's spawn events.
fn spawned(path: &Path) -> HashSet<u64> {
    trace_events(path)
        .iter()
        .filter_map(|e| field(e, "name")?.strip_prefix("spawn G")?.parse().ok())
        .collect()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn trace_is_valid_after_a_go_panic() {
    const NAME: &str = "trace_is_valid_after_a_go_panic";
    if is_child(NAME) {
        let rt = gmp::Runtime::builder().procs(2).build().unwrap();
        rt.block_on(async {
            busy_goroutines(5000).await;
            let (_tx, rx) = gmp::chan::bounded::<()>(0);
            gmp::go(async { panic!("boom") });
            let _ = rx.recv().await;
        });
        unreachable!("the go panic ends the process");
    }
    let path = temp_path("trace-panic");
    let out = run_child(NAME, &[("GMP_TRACE", path.to_str())], LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("panic: boom"), "{}", stderr(&out));
    let spawns = spawned(&path);
    let _ = std::fs::remove_file(&path);
    // Main's spawns were all in its M's buffer or already written.
    assert!(spawns.len() > 5000, "spawn events: {}", spawns.len());
}

#[test]
fn trace_is_valid_after_the_deadlock_report() {
    const NAME: &str = "trace_is_valid_after_the_deadlock_report";
    if is_child(NAME) {
        let rt = gmp::Runtime::builder()
            .procs(2)
            .exit_on_deadlock(true)
            .build()
            .unwrap();
        rt.block_on(async {
            busy_goroutines(100).await;
            let (_tx, rx) = gmp::chan::bounded::<()>(0);
            let _ = rx.recv().await;
        });
        unreachable!("the deadlock report ends the process");
    }
    let path = temp_path("trace-deadlock");
    let out = run_child(NAME, &[("GMP_TRACE", path.to_str())], LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("fatal error: all goroutines are asleep - deadlock!"),
        "{}",
        stderr(&out)
    );
    let events = trace_events(&path);
    let _ = std::fs::remove_file(&path);
    assert!(
        events
            .iter()
            .any(|e| field(e, "cat") == Some("run") && field(e, "name") == Some("G1")),
        "no run slice of main"
    );
}

#[test]
fn trace_is_valid_after_sigquit() {
    const NAME: &str = "trace_is_valid_after_sigquit";
    let marker = std::env::var("GMP_TEST_MARKER").unwrap_or_default();
    if is_child(NAME) {
        let rt = gmp::Runtime::builder().procs(2).build().unwrap();
        rt.block_on(async move {
            busy_goroutines(1000).await;
            std::fs::write(&marker, b"ready").unwrap();
            // Keep running until the signal; bounded in case it never comes.
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(60) {
                gmp::time::sleep(Duration::from_millis(1)).await;
            }
        });
        std::process::exit(3);
    }
    let path = temp_path("trace-sigquit");
    let marker = temp_path("marker");
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env("GMP_CHILD", NAME)
        .env("GMP_TRACE", &path)
        .env("GMP_TEST_MARKER", &marker)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the child never got ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
    let out = support::wait_with_watchdog(child, NAME, LIMIT);
    let _ = std::fs::remove_file(&marker);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("SIGQUIT: quit"),
        "{}",
        stderr(&out)
    );
    let spawns = spawned(&path);
    let _ = std::fs::remove_file(&path);
    assert!(spawns.len() >= 1000, "spawn events: {}", spawns.len());
}

#[test]
fn start_and_stop_trace_a_window() {
    const NAME: &str = "start_and_stop_trace_a_window";
    if is_child(NAME) {
        let (p1, p2) = (temp_path("window1"), temp_path("window2"));
        let rt = gmp::Runtime::builder().procs(2).build().unwrap();
        let windows = rt.block_on(async {
            let before = busy_goroutines(200).await;
            gmp::runtime::trace::start(&p1).unwrap();
            let e = gmp::runtime::trace::start(&p2).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
            let first = busy_goroutines(2000).await;
            gmp::runtime::trace::stop().unwrap();
            let between = busy_goroutines(200).await;
            gmp::runtime::trace::start(&p2).unwrap();
            let second = busy_goroutines(2000).await;
            gmp::runtime::trace::stop().unwrap();
            // stop() again is a no-op.
            gmp::runtime::trace::stop().unwrap();
            (before, first, between, second)
        });
        let (before, first, between, second) = windows;
        for (path, inside, outside) in [(&p1, &first, &between), (&p2, &second, &before)] {
            let spawns = spawned(path);
            let runs = trace_events(path)
                .iter()
                .filter(|e| field(e, "cat") == Some("run"))
                .count();
            let _ = std::fs::remove_file(path);
            for id in inside {
                assert!(
                    spawns.contains(id),
                    "G{id} spawned in the window is missing"
                );
            }
            for id in outside.iter().chain(&before) {
                assert!(!spawns.contains(id), "G{id} spawned outside the window");
            }
            assert!(runs > 0, "no run slices in {}", path.display());
        }
        return;
    }
    let out = run_child(NAME, &[("GMP_TRACE", None)], LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn bad_gmp_trace_paths_fail_at_build() {
    const NAME: &str = "bad_gmp_trace_paths_fail_at_build";
    if is_child(NAME) {
        let dir = std::env::temp_dir();
        let ro = temp_path("read-only");
        std::fs::write(&ro, b"keep").unwrap();
        let mut perm = std::fs::metadata(&ro).unwrap().permissions();
        perm.set_readonly(true);
        std::fs::set_permissions(&ro, perm).unwrap();
        let ro = if std::fs::OpenOptions::new().write(true).open(&ro).is_ok() {
            // Root ignores permission bits: use a file nobody can write.
            println!("running as root: /proc/version stands in for a read-only file");
            std::path::PathBuf::from("/proc/version")
        } else {
            ro
        };
        let missing = dir.join("gmp-no-such-dir").join("t.json");
        for bad in [missing.as_path(), ro.as_path(), dir.as_path()] {
            std::env::set_var("GMP_TRACE", bad);
            let e = gmp::Runtime::builder().procs(1).build().unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}: {e}");
            assert!(e.to_string().contains("GMP_TRACE"), "{bad:?}: {e}");
        }
        std::env::set_var("GMP_TRACE", "  ");
        let e = gmp::Runtime::builder().procs(1).build().unwrap_err();
        assert!(e.to_string().contains("GMP_TRACE"), "{e}");
        assert!(!missing.exists());
        return;
    }
    let out = run_child(NAME, &[("GMP_TRACE", None)], LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn leakcheck_prints_blocked_goroutines_when_main_returns() {
    const NAME: &str = "leakcheck_prints_blocked_goroutines_when_main_returns";
    if is_child(NAME) {
        let rt = gmp::Runtime::builder().procs(2).build().unwrap();
        rt.block_on(async {
            let (tx, rx) = gmp::chan::bounded::<()>(0);
            for _ in 0..3 {
                let rx = rx.clone();
                gmp::go(async move {
                    let _ = rx.recv().await;
                });
            }
            let (tx2, rx2) = gmp::chan::bounded::<()>(0);
            gmp::go(async move {
                gmp::select! {
                    recv(rx2) -> _ => {},
                    recv(gmp::chan::never::<()>()) -> _ => {},
                }
            });
            let wg = gmp::sync::WaitGroup::new();
            wg.add(1);
            let w = wg.clone();
            gmp::go(async move { w.wait().await });
            let m: &'static gmp::sync::Mutex<()> = Box::leak(Box::new(gmp::sync::Mutex::new(())));
            let guard = m.lock().await;
            gmp::go(async move {
                let _g = m.lock().await;
            });
            // Not a leak: sleeping goroutines wait on the clock.
            gmp::go(async { gmp::time::sleep(Duration::from_secs(3600)).await });
            let deadline = Instant::now() + Duration::from_secs(10);
            while gmp::runtime::goroutines()
                .iter()
                .filter(|g| g.wait_reason.is_some())
                .count()
                < 7
            {
                assert!(Instant::now() < deadline, "goroutines never parked");
                gmp::time::sleep(Duration::from_millis(1)).await;
            }
            std::mem::forget((tx, tx2, wg, guard));
        });
        return;
    }
    let out = run_child(NAME, &[("GMP_DEBUG", Some("leakcheck=1"))], LIMIT);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.starts_with("gmp: 6 goroutines leaked\n\n"), "{err}");
    assert_eq!(err.matches("[chan receive]:").count(), 3, "{err}");
    for what in ["[select]:", "[sync.WaitGroup.Wait]:", "[sync.Mutex.Lock]:"] {
        assert_eq!(err.matches(what).count(), 1, "{what}: {err}");
    }
    assert!(!err.contains("[sleep"), "{err}");
    assert!(!err.contains("goroutine 1 ["), "main is not a leak: {err}");
    // Off by default.
    let out = run_child(NAME, &[("GMP_DEBUG", None)], LIMIT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("leaked"), "{}", stderr(&out));
}

/// Peak RSS of this process in KiB (Linux's VmHWM).
fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// The streaming trace's memory bound: 2M goroutines with and without
/// `GMP_TRACE`, peak RSS within 64 MiB of each other. Ignored by default
/// (it writes ~1 GB and takes a while); run with
/// `cargo test --release -p gmp --test obs_trace -- --ignored --nocapture`
/// (docs/benchmarks.md records a run).
#[test]
#[ignore]
fn trace_memory_is_bounded_2m_goroutines() {
    const NAME: &str = "trace_memory_is_bounded_2m_goroutines";
    const N: usize = 2_000_000;
    if is_child(NAME) {
        let rt = gmp::Runtime::builder().procs(2).build().unwrap();
        rt.block_on(async {
            let wg = gmp::sync::WaitGroup::new();
            for _ in 0..N {
                let wg = wg.clone();
                wg.add(1);
                gmp::go(async move {
                    gmp::runtime::gosched().await;
                    wg.done();
                });
            }
            wg.wait().await;
        });
        println!("VmHWM_KiB={}", peak_rss_kib());
        return;
    }
    let rss = |trace: Option<&str>| -> u64 {
        let out = run_child(NAME, &[("GMP_TRACE", trace)], Duration::from_secs(600));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{}", stderr(&out));
        text.lines()
            .find_map(|l| l.split("VmHWM_KiB=").nth(1))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM line:\n{text}"))
    };
    let path = temp_path("trace-2m");
    let traced = rss(path.to_str());
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    // Too big for the test's JSON parser (the exit-path tests parse whole
    // files): check the ends and count the spawn events.
    let text = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(text.starts_with(b"{\"displayTimeUnit\""));
    assert!(text.ends_with(b"\n]}\n"));
    let needle = b"\"cat\":\"spawn\"";
    let spawns = text.windows(needle.len()).filter(|w| w == needle).count();
    drop(text);
    let untraced = rss(None);
    println!(
        "2M goroutines: peak RSS untraced {} MiB, traced {} MiB ({} MiB trace file, {spawns} spawn events)",
        untraced / 1024,
        traced / 1024,
        size >> 20
    );
    assert_eq!(spawns, N, "spawn events");
    assert!(
        traced <= untraced + 64 * 1024,
        "traced peak RSS {traced} KiB vs untraced {untraced} KiB"
    );
}
