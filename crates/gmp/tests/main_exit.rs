//! `#[gmp::main]` end to end: builds `examples/main_ok.rs` and
//! `examples/main_err.rs` once with a nested cargo (in its own target dir,
//! so it never waits on the outer cargo's lock) and checks exit codes and
//! output:
//! - `Ok(())` exits 0; `procs = N` in code wins over a malformed
//!   `GMP_MAXPROCS`;
//! - `Err(e)` prints `Error: {e:?}` on stderr and exits 1;
//! - a malformed `GMP_MAXPROCS` (`abc`, `0`, `-1`) prints an error naming
//!   the variable and exits 2 before main runs.

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
    let exe = dir.join(format!("{example}{}", std::env::consts::EXE_SUFFIX));
    let mut cmd = Command::new(&exe);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    match maxprocs {
        Some(v) => cmd.env("GMP_MAXPROCS", v),
        None => cmd.env_remove("GMP_MAXPROCS"),
    };
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
}
