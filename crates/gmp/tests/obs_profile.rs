//! The goroutine profile: `go tool pprof` reads `debug = 0` and shows the
//! creation sites; `debug = 1` is Go's text with totals matching
//! `num_goroutine()`; `debug = 2` is the dump.

use std::path::PathBuf;
use std::process::Command;

/// `go`, from PATH or Debian's golang-1.19-go; None (with a message) when
/// absent.
fn go_tool() -> Option<PathBuf> {
    for cand in ["go", "/usr/lib/go-1.19/bin/go"] {
        if Command::new(cand)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(PathBuf::from(cand));
        }
    }
    println!("go not found (PATH or /usr/lib/go-1.19/bin): skipping the go tool pprof check");
    None
}

/// 100 goroutines parked on one channel, spawned from one line; returns
/// the profile in the given form, that line, and num_goroutine().
fn parked_profile(debug: u8) -> (Vec<u8>, u32, usize) {
    let rt = gmp::Runtime::builder().procs(2).build().unwrap();
    rt.block_on(async move {
        let (tx, rx) = gmp::chan::bounded::<()>(0);
        let wg = gmp::sync::WaitGroup::new();
        let mut line = 0;
        for _ in 0..100 {
            let (rx, wg) = (rx.clone(), wg.clone());
            wg.add(1);
            line = line!() + 1;
            gmp::go(async move {
                wg.done();
                let _ = rx.recv().await;
            });
        }
        wg.wait().await;
        // Poll until all 100 are parked on the channel.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while gmp::runtime::goroutines()
            .iter()
            .filter(|g| g.wait_reason == Some("chan receive"))
            .count()
            < 100
        {
            assert!(
                std::time::Instant::now() < deadline,
                "goroutines never parked"
            );
            gmp::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let p = gmp::runtime::goroutine_profile(debug);
        let n = gmp::runtime::num_goroutine();
        drop(tx);
        (p, line, n)
    })
}

#[test]
fn debug1_groups_and_totals() {
    let (p, line, n) = parked_profile(1);
    let text = String::from_utf8(p).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(first, format!("goroutine profile: total {n}"), "{text}");
    // The counts of the blocks add up to the total.
    let sum: usize = text
        .lines()
        .filter_map(|l| l.split_once(" @ "))
        .map(|(c, _)| c.parse::<usize>().unwrap())
        .sum();
    assert_eq!(sum, n, "{text}");
    // The 100 parked goroutines are one group: the wait reason, then their
    // creation site, then main's.
    let block = text
        .split("\n\n")
        .map(|b| b.trim_start_matches(first).trim_start())
        .find(|b| b.starts_with("100 @ "))
        .unwrap_or_else(|| panic!("no group of 100:\n{text}"));
    let frames: Vec<&str> = block.lines().skip(1).collect();
    assert!(frames[0].ends_with("\tchan receive"), "{block}");
    let site = format!("obs_profile.rs:{line}");
    assert!(frames[1].ends_with(&site), "{block}");
    assert!(frames[2].contains("obs_profile.rs:"), "{block}");
    assert_eq!(frames.len(), 3, "{block}");
}

#[test]
fn debug2_is_the_dump() {
    let (p, line, _) = parked_profile(2);
    let text = String::from_utf8(p).unwrap();
    assert!(text.contains("[chan receive]:"), "{text}");
    assert!(text.contains(&format!("obs_profile.rs:{line}")), "{text}");
}

#[test]
fn go_tool_pprof_reads_debug0() {
    let (p, line, _) = parked_profile(0);
    assert_eq!(&p[..2], &[0x1f, 0x8b], "not gzip");
    let Some(go) = go_tool() else { return };
    let path = std::env::temp_dir().join(format!("gmp-goroutine-{}.pb.gz", std::process::id()));
    std::fs::write(&path, &p).unwrap();
    let site = format!("obs_profile.rs:{line}");
    for mode in ["-raw", "-traces", "-top"] {
        let out = Command::new(&go)
            .args(["tool", "pprof", mode])
            .arg(&path)
            .env("HOME", std::env::temp_dir())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "go tool pprof {mode} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("go tool pprof {mode}:\n{stdout}");
        assert!(stdout.contains(&site), "{mode} lacks {site}:\n{stdout}");
        assert!(stdout.contains("chan receive"), "{mode}:\n{stdout}");
        if mode == "-traces" {
            // The 100 goroutines are one sample of 100.
            assert!(
                stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with("100 ") && l.contains("chan receive")),
                "{stdout}"
            );
        }
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn creation_chain_survives_the_parents_exit() {
    let rt = gmp::Runtime::builder().procs(2).build().unwrap();
    let (text, lines) = rt.block_on(async {
        let (tx, rx) = gmp::chan::bounded::<()>(0);
        let (done_tx, done_rx) = gmp::chan::bounded::<()>(0);
        let middle_line = line!() + 1;
        let middle = gmp::spawn(async move {
            let line = line!() + 3;
            for _ in 0..10 {
                let rx = rx.clone();
                gmp::go(async move {
                    let _ = rx.recv().await;
                });
            }
            drop(done_tx);
            line
        });
        let leaf_line = middle.await.unwrap();
        let _ = done_rx.recv().await;
        // The middle goroutine has exited; its children keep its site.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while gmp::runtime::goroutines()
            .iter()
            .filter(|g| g.wait_reason == Some("chan receive"))
            .count()
            < 10
        {
            assert!(std::time::Instant::now() < deadline, "never parked");
            gmp::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let p = gmp::runtime::goroutine_profile(1);
        drop(tx);
        (String::from_utf8(p).unwrap(), (leaf_line, middle_line))
    });
    let (leaf, middle) = lines;
    let block = text
        .split("\n\n")
        .find(|b| b.lines().any(|l| l.starts_with("10 @ ")))
        .unwrap_or_else(|| panic!("no group of 10:\n{text}"));
    let frames: Vec<&str> = block.lines().filter(|l| l.starts_with('#')).collect();
    assert!(frames[0].ends_with("\tchan receive"), "{block}");
    assert!(
        frames[1].ends_with(&format!("obs_profile.rs:{leaf}")),
        "{block}"
    );
    assert!(
        frames[2].ends_with(&format!("obs_profile.rs:{middle}")),
        "{block}"
    );
    assert_eq!(frames.len(), 4, "leaf, middle, main: {block}");
}
