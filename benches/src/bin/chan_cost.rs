//! The channel cost driver: the gmp side of the chan bench's workloads,
//! alone, with the size and procs on the command line, so that
//! `valgrind --tool=callgrind` counts instructions and `perf stat -e
//! task-clock` measures CPU time without the other columns' runtimes in
//! the process. Also the one-channel-per-goroutine memory workload.
//!
//! `chan_cost <pp|mpmc|fanin|idle|idle_shared> [procs] [n]`; prints one
//! line (ns per value or round trip, or bytes per goroutine).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gmp_benches::chan_workloads;

/// RSS growth per goroutine with `n` goroutines parked on a receive: each
/// from its own capacity-1 channel (`own`), or all from one channel.
async fn idle(n: u64, own: bool) -> f64 {
    let before = gmp_benches::rss_bytes();
    let started = Arc::new(AtomicUsize::new(0));
    let mut txs = Vec::new();
    let (shared_tx, shared_rx) = gmp::chan::bounded::<u64>(0);
    for _ in 0..n {
        let started = started.clone();
        let rx = if own {
            let (tx, rx) = gmp::chan::bounded::<u64>(1);
            txs.push(tx);
            rx
        } else {
            shared_rx.clone()
        };
        gmp::go(async move {
            started.fetch_add(1, Relaxed);
            let _ = rx.recv().await;
        });
    }
    while started.load(Relaxed) < n as usize {
        gmp::time::sleep(Duration::from_millis(1)).await;
    }
    let per = (gmp_benches::rss_bytes() - before) as f64 / n as f64;
    drop((txs, shared_tx));
    per
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).cloned().unwrap_or_default();
    let procs: usize = args.get(2).map_or(1, |s| s.parse().expect("procs"));
    let n: u64 = args.get(3).map_or(100_000, |s| s.parse().expect("n"));
    let rt = gmp::Runtime::builder().procs(procs).build().unwrap();
    let t = Instant::now();
    match which.as_str() {
        "pp" => rt.block_on_goroutine(chan_workloads::ping_pong(n)),
        "mpmc" => rt.block_on_goroutine(chan_workloads::mpmc(n)),
        "fanin" => rt.block_on_goroutine(chan_workloads::fanin(n)),
        "idle" | "idle_shared" => {
            let per = rt.block_on(idle(n, which == "idle"));
            println!("{which} procs {procs}: {per:.1} bytes/goroutine");
            // Skip the teardown of a million goroutines.
            std::process::exit(0);
        }
        _ => {
            eprintln!("usage: chan_cost <pp|mpmc|fanin|idle|idle_shared> [procs] [n]");
            std::process::exit(2);
        }
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64;
    println!("{which} procs {procs}: {per:.1} ns/op");
}
