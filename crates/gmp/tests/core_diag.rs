//! What the scheduler (gmp-core) reports about itself, seen through the
//! facade: the goroutine dump's statuses, wait reasons and creation sites,
//! the scheduler metrics, and `GMP_DEBUG=schedtrace` lines.

use std::time::Duration;

mod support;
use support::{is_child, rt, run_child, wait_for_reason};

/// The dump shows each goroutine with Go's status/wait reason and where it
/// was created.
#[test]
fn goroutine_dump_shows_wait_reason_and_creation_site() {
    rt(2).block_on(async {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let line = line!() + 1;
        let h = gmp::spawn(async move {
            gmp::time::sleep(Duration::from_secs(3600)).await;
            drop(tx);
        });
        wait_for_reason(h.goid(), "sleep", Duration::from_secs(10)).await;
        let gs = gmp::runtime::goroutines();
        let me = gs.iter().find(|g| g.id == 1).unwrap();
        assert_eq!(me.status, gmp::runtime::GStatus::Running);
        let g = gs.iter().find(|g| g.id == h.goid()).unwrap();
        assert_eq!(g.status, gmp::runtime::GStatus::Waiting);
        assert_eq!(g.status as u32, 4);
        assert_eq!(g.wait_reason, Some("sleep"));
        assert_eq!(g.parent, Some(1));
        assert_eq!(g.created_at.line(), line);
        assert!(g.created_at.file().ends_with("core_diag.rs"));
        let d = gmp::runtime::dump();
        assert!(
            d.contains(&format!("goroutine {} [sleep]:", h.goid())),
            "{d}"
        );
        assert!(
            d.contains(&format!(
                "created by goroutine 1 at {}:{line}",
                g.created_at.file()
            )),
            "{d}"
        );
        assert!(d.contains("goroutine 1 [running]:"), "{d}");
        drop(rx);
    });
}

#[test]
fn metrics_count_spawns_and_sample_latency() {
    rt(2).block_on(async {
        let hs: Vec<_> = (0..1000).map(|i| gmp::spawn(async move { i })).collect();
        for h in hs {
            h.await.unwrap();
        }
        let m = gmp::runtime::metrics();
        assert!(m.spawned_total >= 1000, "{m:?}");
        assert_eq!(m.goroutines, 1);
        assert_eq!(m.local_runq.len(), 2);
        assert!(m.threads >= 1);
        assert!(m.sched_latency.count() > 0, "no latency samples: {m:?}");
        assert!(m.sched_latency.quantile(0.5).is_some());
    });
}

/// `GMP_DEBUG=schedtrace=N` prints Go's SCHED lines; a malformed value is
/// an error naming the variable.
#[test]
fn schedtrace_lines_parse() {
    const NAME: &str = "schedtrace_lines_parse";
    if is_child(NAME) {
        rt(2).block_on(async {
            let hs: Vec<_> = (0..4)
                .map(|_| gmp::spawn(gmp::time::sleep(Duration::from_millis(120))))
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
        return;
    }
    let out = run_child(NAME, &[("GMP_DEBUG", "schedtrace=20")]);
    let err = out.stderr.as_str();
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("SCHED ")).collect();
    assert!(lines.len() >= 2, "{err}");
    for l in &lines {
        // SCHED 1004ms: gomaxprocs=2 idleprocs=0 threads=6 spinningthreads=1 idlethreads=1 runqueue=0 [2 0]
        let (head, rest) = l.split_once(": ").unwrap();
        assert!(
            head.trim_start_matches("SCHED ")
                .trim_end_matches("ms")
                .parse::<u64>()
                .is_ok(),
            "{l}"
        );
        let (kv, queues) = rest.split_once(" [").unwrap();
        let keys: Vec<&str> = kv
            .split(' ')
            .map(|f| f.split_once('=').unwrap().0)
            .collect();
        assert_eq!(
            keys,
            [
                "gomaxprocs",
                "idleprocs",
                "threads",
                "spinningthreads",
                "idlethreads",
                "runqueue"
            ],
            "{l}"
        );
        assert!(kv.contains("gomaxprocs=2"), "{l}");
        let qs: Vec<&str> = queues.trim_end_matches(']').split(' ').collect();
        assert_eq!(qs.len(), 2, "{l}");
        assert!(qs.iter().all(|q| q.parse::<usize>().is_ok()), "{l}");
    }
    let out = run_child(NAME, &[("GMP_DEBUG", "schedtrace=20,scheddetail=1")]);
    let err = out.stderr.as_str();
    assert!(err.contains("  P0: status="), "{err}");
    assert!(err.contains("  G1: status="), "{err}");
    for bad in ["schedtrace", "schedtrace=abc", "bogus=1", "scheddetail=2"] {
        let e = gmp::runtime::parse_debug(bad).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("GMP_DEBUG"), "{e}");
    }
}

/// The dump shows a goroutine parked in `rx.recv()` as
/// `[chan receive]` with its creation file and line.
#[test]
fn dump_shows_chan_receive_with_creation_site() {
    rt(2).block_on(async {
        let (tx, rx) = gmp::chan::bounded::<u8>(0);
        let line = line!() + 1;
        let h = gmp::spawn(async move { rx.recv().await.ok() });
        wait_for_reason(h.goid(), "chan receive", Duration::from_secs(10)).await;
        let d = gmp::runtime::dump();
        let want = format!(
            "goroutine {} [chan receive]:\ncreated by goroutine 1 at {}:{line}",
            h.goid(),
            file!()
        );
        assert!(d.contains(&want), "want {want:?} in:\n{d}");
        let g = gmp::runtime::goroutines()
            .into_iter()
            .find(|g| g.id == h.goid())
            .unwrap();
        assert_eq!(g.wait_reason, Some("chan receive"));
        assert!(g.waiting_for.is_some());
        tx.send(1).await.unwrap();
        assert_eq!(h.await.unwrap(), Some(1));
    });
}
