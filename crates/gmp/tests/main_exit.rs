//! `#[gmp::main]` end to end: builds `examples/main_ok.rs` and
//! `examples/main_err.rs` once with a nested cargo (in its own target dir,
//! so it never waits on the outer cargo's lock) and checks exit codes and
//! output:
//! - `Ok(())` exits 0; `procs = N` in code wins over a malformed
//!   `GMP_MAXPROCS`;
//! - `Err(e)` prints `Error: {e:?}` on stderr and exits 1;
//! - a malformed `GMP_MAXPROCS` (`abc`, `0`, `-1`) prints an error naming
//!   the variable and exits 2 before main runs.
//! - `GMP_TRACE`: the file is valid JSON after main returns and after the
//!   deadlock report; a path that cannot be created exits 2 naming the
//!   variable; `GMP_DEBUG=leakcheck=1` reports and keeps the exit code.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXAMPLES: [&str; 3] = ["main_ok", "main_err", "main_deadlock"];

/// Builds the examples and returns the directory holding their binaries.
fn build_examples() -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("main_exit");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", &target_dir)
        // The outer cargo already fetched every dependency of this package.
        .args(["build", "--offline", "--quiet", "-p", "gmp"]);
    for e in EXAMPLES {
        cmd.args(["--example", e]);
    }
    let out = cmd.output().expect("spawning cargo");
    assert!(
        out.status.success(),
        "cargo build of the examples failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("debug").join("examples")
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs an example binary with `GMP_MAXPROCS` set to `maxprocs` (or unset),
/// killing it if it has not exited within a minute.
fn run(dir: &Path, example: &str, maxprocs: Option<&str>) -> Run {
    run_env(dir, example, &[("GMP_MAXPROCS", maxprocs)])
}

/// Runs an example binary with `env` set (`None` removes a variable) and
/// `GMP_TRACE`/`GMP_DEBUG` unset unless given, killing it if it has not
/// exited within a minute.
fn run_env(dir: &Path, example: &str, env: &[(&str, Option<&str>)]) -> Run {
    let maxprocs = env
        .iter()
        .find(|(k, _)| *k == "GMP_MAXPROCS")
        .and_then(|(_, v)| *v);
    let exe = dir.join(format!("{example}{}", std::env::consts::EXE_SUFFIX));
    let mut cmd = Command::new(&exe);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("GMP_MAXPROCS")
        .env_remove("GMP_TRACE")
        .env_remove("GMP_DEBUG");
    for (k, v) in env {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", exe.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("waiting for the example").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{example} (GMP_MAXPROCS={maxprocs:?}) did not exit within 60s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("collecting output");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn gmp_main_exit_codes() {
    let dir = build_examples();

    // Ok(()) -> exit 0; `procs = 3` in code; main is goroutine 1.
    for env in [None, Some("1"), Some("abc"), Some("0")] {
        let r = run(&dir, "main_ok", env);
        assert_eq!(
            r.code,
            Some(0),
            "main_ok GMP_MAXPROCS={env:?}: stderr:\n{}",
            r.stderr
        );
        assert_eq!(
            r.stdout.trim(),
            "procs=3 goid=1 sum=2470",
            "GMP_MAXPROCS={env:?}"
        );
        assert_eq!(r.stderr, "", "GMP_MAXPROCS={env:?}");
    }

    // Err(e) -> `Error: {e:?}` on stderr, exit 1; GMP_MAXPROCS applies.
    let r = run(&dir, "main_err", Some("2"));
    assert_eq!(r.code, Some(1), "stderr:\n{}", r.stderr);
    assert_eq!(r.stdout.trim(), "main ran with procs=2");
    assert_eq!(r.stderr.trim(), "Error: Failed { procs: 2 }");

    let r = run(&dir, "main_err", None);
    assert_eq!(r.code, Some(1), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr.starts_with("Error: Failed { procs: "),
        "stderr:\n{}",
        r.stderr
    );

    // A malformed GMP_MAXPROCS is an error, never a silent default: exit 2,
    // the message names the variable, main never runs.
    for bad in ["abc", "0", "-1"] {
        let r = run(&dir, "main_err", Some(bad));
        assert_eq!(
            r.code,
            Some(2),
            "GMP_MAXPROCS={bad:?}: stderr:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("GMP_MAXPROCS"),
            "GMP_MAXPROCS={bad:?}: stderr does not name the variable:\n{}",
            r.stderr
        );
        assert_eq!(r.stdout, "", "GMP_MAXPROCS={bad:?}: main ran");
    }

    // A deadlocked program: Go's fatal error and the dump, exit code 2.
    let r = run(&dir, "main_deadlock", None);
    assert_eq!(r.code, Some(2), "stderr:\n{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("fatal error: all goroutines are asleep - deadlock!"),
        "stderr:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("goroutine 1 [chan receive]:"),
        "stderr:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("main_deadlock.rs"),
        "stderr:\n{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");

    // GMP_TRACE: complete after main returns and after the deadlock report.
    for example in ["main_ok", "main_deadlock"] {
        let path = support::temp_path(example);
        let r = run_env(&dir, example, &[("GMP_TRACE", path.to_str())]);
        assert_eq!(
            r.code,
            Some(if example == "main_ok" { 0 } else { 2 }),
            "{example} with GMP_TRACE: stderr:\n{}",
            r.stderr
        );
        let events = support::trace_events(&path);
        let _ = std::fs::remove_file(&path);
        assert!(
            events
                .iter()
                .any(|e| support::field(e, "name") == Some("G1")),
            "{example}: no slice of main in the trace"
        );
    }

    // A GMP_TRACE path that cannot be created: exit 2 naming the variable,
    // before main runs.
    let missing = std::env::temp_dir().join("gmp-no-such-dir").join("t.json");
    let tmp = std::env::temp_dir();
    for bad in [missing.to_str(), tmp.to_str()] {
        let r = run_env(&dir, "main_ok", &[("GMP_TRACE", bad)]);
        assert_eq!(r.code, Some(2), "GMP_TRACE={bad:?}: stderr:\n{}", r.stderr);
        assert!(
            r.stderr.contains("GMP_TRACE"),
            "GMP_TRACE={bad:?}: stderr does not name the variable:\n{}",
            r.stderr
        );
        assert_eq!(r.stdout, "", "GMP_TRACE={bad:?}: main ran");
    }

    // leakcheck: the deadlock example's goroutine is reported only when
    // main returns, which it never does; main_ok leaks nothing and keeps
    // its exit code and output.
    let r = run_env(&dir, "main_ok", &[("GMP_DEBUG", Some("leakcheck=1"))]);
    assert_eq!(r.code, Some(0), "stderr:\n{}", r.stderr);
    assert_eq!(r.stderr, "");
}
