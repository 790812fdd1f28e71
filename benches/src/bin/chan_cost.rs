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

async fn ping_pong(n: u64) {
    let (atx, arx) = gmp::chan::bounded::<u64>(0);
    let (btx, brx) = gmp::chan::bounded::<u64>(0);
    let echo = gmp::spawn(async move {
        while let Ok(v) = arx.recv().await {
            if btx.send(v).await.is_err() {
                break;
            }
        }
    });
    let ping = gmp::spawn(async move {
        for i in 0..n {
            atx.send(i).await.unwrap();
            brx.recv().await.unwrap();
        }
    });
    ping.await.unwrap();
    echo.await.unwrap();
}

/// 4 producers, 4 consumers, capacity 1024.
async fn mpmc(n: u64) {
    let (tx, rx) = gmp::chan::bounded::<u64>(1024);
    let mut hs = Vec::new();
    for _ in 0..4 {
        let tx = tx.clone();
        hs.push(gmp::spawn(async move {
            for i in 0..n / 4 {
                tx.send(i).await.unwrap();
            }
        }));
    }
    drop(tx);
    for _ in 0..4 {
        let rx = rx.clone();
        hs.push(gmp::spawn(async move { while rx.recv().await.is_ok() {} }));
    }
    for h in hs {
        h.await.unwrap();
    }
}

/// 8 senders on their own unbuffered channels, one select over all 8.
async fn fanin(n: u64) {
    let mut rxs = Vec::new();
    let mut keep = Vec::new();
    for _ in 0..8 {
        let (tx, rx) = gmp::chan::bounded::<u64>(0);
        rxs.push(rx);
        keep.push(tx.clone());
        gmp::go(async move {
            for i in 0..n / 8 {
                if tx.send(i).await.is_err() {
                    return;
                }
            }
        });
    }
    let [r0, r1, r2, r3, r4, r5, r6, r7]: [gmp::chan::Receiver<u64>; 8] = rxs.try_into().unwrap();
    for _ in 0..n / 8 * 8 {
        let v = gmp::select! {
            recv(r0) -> v => v,
            recv(r1) -> v => v,
            recv(r2) -> v => v,
            recv(r3) -> v => v,
            recv(r4) -> v => v,
            recv(r5) -> v => v,
            recv(r6) -> v => v,
            recv(r7) -> v => v,
        };
        v.unwrap();
    }
}

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
        "pp" => rt.block_on(ping_pong(n)),
        "mpmc" => rt.block_on(mpmc(n)),
        "fanin" => rt.block_on(fanin(n)),
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
