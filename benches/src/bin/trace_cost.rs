//! What tracing costs while it is on, gmp against Go's `runtime/trace`:
//! spawn_many, yield_many and ping_pong (the obs_cost workloads), each
//! timed with tracing off and on (`gmp::runtime::trace::start` before the
//! workload, `stop` after it, inside the timing; Go's `trace.Start` /
//! `trace.Stop` the same way in `benches/go/trace_bench.go`). Median of
//! `BENCH_RUNS` (default 5) runs, ns per operation.
//! Usage: `cargo run --release -p gmp-benches --bin trace_cost`

use gmp_benches::{build_go, measure, Stat};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

const SPAWNS: usize = 100_000;
const YIELDERS: usize = 200;
const YIELDS: usize = 500;
const ROUND_TRIPS: u64 = 100_000;

async fn spawn_many() {
    let (tx, rx) = gmp::chan::bounded::<()>(1);
    let left = Arc::new(AtomicUsize::new(SPAWNS));
    for _ in 0..SPAWNS {
        let (left, tx) = (left.clone(), tx.clone());
        gmp::go(async move {
            if left.fetch_sub(1, Relaxed) == 1 {
                let _ = tx.try_send(());
            }
        });
    }
    rx.recv().await.unwrap();
}

async fn yield_many() {
    let wg = gmp::sync::WaitGroup::new();
    for _ in 0..YIELDERS {
        let wg2 = wg.clone();
        wg.add(1);
        gmp::go(async move {
            for _ in 0..YIELDS {
                gmp::runtime::gosched().await;
            }
            wg2.done();
        });
    }
    wg.wait().await;
}

async fn ping_pong() {
    let (tx1, rx1) = gmp::chan::bounded::<u64>(0);
    let (tx2, rx2) = gmp::chan::bounded::<u64>(0);
    gmp::go(async move {
        while let Ok(v) = rx1.recv().await {
            if tx2.send(v + 1).await.is_err() {
                break;
            }
        }
    });
    for i in 0..ROUND_TRIPS {
        tx1.send(i).await.unwrap();
        assert_eq!(rx2.recv().await.unwrap(), i + 1);
    }
}

/// One timed run of `w` at `procs`, traced into `trace` when given.
fn gmp_run(w: &str, procs: usize, trace: Option<&Path>) -> f64 {
    let rt = gmp::Runtime::builder().procs(procs).build().unwrap();
    // Main as goroutine 1, as obs_cost and `#[gmp::main]` run it: a
    // `block_on` main lives on the calling thread, and every hand-off
    // between it and a goroutine is a thread switch.
    let trace = trace.map(Path::to_path_buf);
    let w = w.to_string();
    rt.block_on_goroutine(async move {
        let trace = trace.as_deref();
        let t = Instant::now();
        if let Some(p) = trace {
            gmp::runtime::trace::start(p).unwrap();
        }
        let ops = match w.as_str() {
            "spawn_many" => {
                spawn_many().await;
                SPAWNS as f64
            }
            "yield_many" => {
                yield_many().await;
                (YIELDERS * YIELDS) as f64
            }
            _ => {
                ping_pong().await;
                ROUND_TRIPS as f64
            }
        };
        if trace.is_some() {
            gmp::runtime::trace::stop().unwrap();
        }
        t.elapsed().as_nanos() as f64 / ops
    })
}

fn go_run(bin: &Path, w: &str, procs: usize, traced: bool) -> Option<Stat> {
    let runs = gmp_benches::runs().to_string();
    let procs = procs.to_string();
    let mut args = vec!["-bench", w, "-procs", &procs, "-runs", &runs];
    if traced {
        args.push("-trace");
    }
    let out = Command::new(bin).args(&args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))?
        .split_whitespace()
        .skip(2)
        .map_while(|v| v.parse().ok())
        .collect();
    Some(Stat {
        median: *f.first()?,
        min: *f.get(1)?,
    })
}

fn main() {
    let go = build_go("trace_bench");
    let path = std::env::temp_dir().join(format!("gmp-trace-cost-{}.json", std::process::id()));
    println!("{}\n", gmp_benches::machine());
    println!(
        "median of {} runs, ns/op; on/off = traced / untraced\n",
        gmp_benches::runs()
    );
    println!("| workload | procs | gmp off | gmp on | gmp on/off | go off | go on | go on/off |");
    println!("|---|---|---|---|---|---|---|---|");
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.1}x", a / b),
        _ => "-".into(),
    };
    for w in ["spawn_many", "yield_many", "ping_pong"] {
        if !gmp_benches::selected(w) {
            continue;
        }
        for procs in [1, 2] {
            let off = measure(|| gmp_run(w, procs, None)).median;
            let on = measure(|| gmp_run(w, procs, Some(&path))).median;
            let _ = std::fs::remove_file(&path);
            let (goff, gon) = match go.as_deref() {
                Some(b) => (
                    go_run(b, w, procs, false).map(|s| s.median),
                    go_run(b, w, procs, true).map(|s| s.median),
                ),
                None => (None, None),
            };
            println!(
                "| {w} | {procs} | {off:.1} | {on:.1} | {} | {} | {} | {} |",
                ratio(Some(on), Some(off)),
                f(goff),
                f(gon),
                ratio(gon, goff)
            );
        }
    }
}
