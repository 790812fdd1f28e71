//! Channel benchmarks, side by side at procs 1 and 2: gmp's channels on
//! gmp; tokio mpsc, async-channel, flume and kanal on tokio's multi-thread
//! runtime (same worker count); Go's channels.
//!
//! - ping_pong: two goroutines, 1,000,000 round trips over two unbuffered
//!   channels (ns per round trip; tokio mpsc and async-channel need cap 1)
//! - chan_mpmc: 4 producers, 4 consumers, capacity 1024, 10,000,000 u64
//!   (ns per value; tokio mpsc is single-consumer, so its column is `-`)
//! - select_fanin: 8 senders on their own unbuffered channels, one receiver
//!   selecting over all 8, 1,000,000 values (ns per value; gmp `select!`,
//!   `tokio::select!` over tokio mpsc(1), Go `select`)
//! - idle_chan_memory: RSS growth per goroutine with 1,000,000 goroutines
//!   each parked on a receive from its own capacity-1 channel, main holding
//!   the senders (bytes; gmp `bounded(1)`, tokio `oneshot`, async-channel
//!   `bounded(1)` on tokio, Go `make(chan uint64, 1)`; each in a fresh
//!   process)
//!
//! `cargo bench -p gmp-benches --bench chan` (env BENCH_RUNS, BENCH_FILTER).

use gmp_benches::{
    build_go, chan_workloads, measure, once, per_op, print_table, rss_bytes, run_go_stat, selected,
    Row,
};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PP_N: u64 = 1_000_000;
const MPMC_N: u64 = 10_000_000;
const FANIN_N: u64 = 1_000_000;
const IDLE_N: usize = 1_000_000;

fn gmp_rt(procs: usize) -> gmp::Runtime {
    gmp::Runtime::builder().procs(procs).build().unwrap()
}

fn tokio_rt(procs: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(procs)
        .enable_all()
        .build()
        .unwrap()
}

// ---- ping_pong ----

fn gmp_ping_pong(rt: &gmp::Runtime) -> f64 {
    rt.block_on_goroutine(async {
        let t = Instant::now();
        chan_workloads::ping_pong(PP_N).await;
        per_op(t.elapsed(), PP_N)
    })
}

/// Ping-pong over any async channel pair on tokio.
macro_rules! tokio_ping_pong {
    ($rt:expr, $mk:expr, $send:ident, $recv:ident) => {{
        $rt.block_on(async {
            let (atx, arx) = $mk;
            let (btx, brx) = $mk;
            let t = Instant::now();
            let echo = tokio::spawn(async move {
                #[allow(unused_mut)]
                let mut arx = arx;
                while let Some(v) = $recv!(arx) {
                    if $send!(btx, v).is_err() {
                        break;
                    }
                }
            });
            let ping = tokio::spawn(async move {
                #[allow(unused_mut)]
                let mut brx = brx;
                for i in 0..PP_N {
                    $send!(atx, i).unwrap();
                    $recv!(brx).unwrap();
                }
            });
            ping.await.unwrap();
            echo.await.unwrap();
            per_op(t.elapsed(), PP_N)
        })
    }};
}

macro_rules! tokio_send {
    ($tx:expr, $v:expr) => {
        $tx.send($v).await.map_err(|_| ())
    };
}
macro_rules! tokio_recv {
    ($rx:expr) => {
        $rx.recv().await
    };
}
macro_rules! ac_recv {
    ($rx:expr) => {
        $rx.recv().await.ok()
    };
}
macro_rules! flume_send {
    ($tx:expr, $v:expr) => {
        $tx.send_async($v).await.map_err(|_| ())
    };
}
macro_rules! flume_recv {
    ($rx:expr) => {
        $rx.recv_async().await.ok()
    };
}
macro_rules! kanal_recv {
    ($rx:expr) => {
        $rx.recv().await.ok()
    };
}

fn ping_pong_row(procs: usize, go: Option<&std::path::Path>) -> Row {
    let g = gmp_rt(procs);
    let t = tokio_rt(procs);
    let gm = measure(|| gmp_ping_pong(&g));
    let tk = measure(|| {
        tokio_ping_pong!(
            t,
            tokio::sync::mpsc::channel::<u64>(1),
            tokio_send,
            tokio_recv
        )
    });
    let ac = measure(|| tokio_ping_pong!(t, async_channel::bounded::<u64>(1), tokio_send, ac_recv));
    let fl = measure(|| tokio_ping_pong!(t, flume::bounded::<u64>(0), flume_send, flume_recv));
    let ka =
        measure(|| tokio_ping_pong!(t, kanal::bounded_async::<u64>(0), tokio_send, kanal_recv));
    Row::from_stats(
        "ping_pong",
        procs,
        &[
            Some(gm),
            Some(tk),
            Some(ac),
            Some(fl),
            Some(ka),
            run_go_stat(go, "ping_pong", procs),
        ],
    )
}

// ---- chan_mpmc ----

fn gmp_mpmc(rt: &gmp::Runtime) -> f64 {
    rt.block_on_goroutine(async {
        let t = Instant::now();
        chan_workloads::mpmc(MPMC_N).await;
        per_op(t.elapsed(), MPMC_N)
    })
}

macro_rules! tokio_mpmc {
    ($rt:expr, $mk:expr, $send:ident, $recv:ident) => {{
        $rt.block_on(async {
            let (tx, rx) = $mk;
            let t = Instant::now();
            let per = MPMC_N / 4;
            let mut hs = Vec::new();
            for _ in 0..4 {
                let tx = tx.clone();
                hs.push(tokio::spawn(async move {
                    for i in 0..per {
                        $send!(tx, i).unwrap();
                    }
                    0u64
                }));
            }
            drop(tx);
            for _ in 0..4 {
                let rx = rx.clone();
                hs.push(tokio::spawn(async move {
                    let mut s = 0u64;
                    while let Some(v) = $recv!(rx) {
                        s = s.wrapping_add(v);
                    }
                    s
                }));
            }
            let mut sum = 0u64;
            for h in hs {
                sum = sum.wrapping_add(h.await.unwrap());
            }
            assert_eq!(sum, 4 * (per * (per - 1) / 2));
            per_op(t.elapsed(), MPMC_N)
        })
    }};
}

fn mpmc_row(procs: usize, go: Option<&std::path::Path>) -> Row {
    let g = gmp_rt(procs);
    let t = tokio_rt(procs);
    let gm = measure(|| gmp_mpmc(&g));
    let ac = measure(|| tokio_mpmc!(t, async_channel::bounded::<u64>(1024), tokio_send, ac_recv));
    let fl = measure(|| tokio_mpmc!(t, flume::bounded::<u64>(1024), flume_send, flume_recv));
    let ka = measure(|| tokio_mpmc!(t, kanal::bounded_async::<u64>(1024), tokio_send, kanal_recv));
    Row::from_stats(
        "chan_mpmc",
        procs,
        &[
            Some(gm),
            None,
            Some(ac),
            Some(fl),
            Some(ka),
            run_go_stat(go, "chan_mpmc", procs),
        ],
    )
}

// ---- select_fanin ----

fn gmp_fanin(rt: &gmp::Runtime) -> f64 {
    rt.block_on_goroutine(async {
        let t = Instant::now();
        chan_workloads::fanin(FANIN_N).await;
        per_op(t.elapsed(), FANIN_N)
    })
}

fn tokio_fanin(rt: &tokio::runtime::Runtime) -> f64 {
    rt.block_on(async {
        tokio::spawn(async {
            let per = FANIN_N / 8;
            let mut rxs = Vec::new();
            let mut keep = Vec::new();
            let t = Instant::now();
            for _ in 0..8 {
                let (tx, rx) = tokio::sync::mpsc::channel::<u64>(1);
                rxs.push(rx);
                keep.push(tx.clone());
                tokio::spawn(async move {
                    for i in 0..per {
                        if tx.send(i).await.is_err() {
                            return;
                        }
                    }
                });
            }
            let [mut r0, mut r1, mut r2, mut r3, mut r4, mut r5, mut r6, mut r7]: [tokio::sync::mpsc::Receiver<u64>; 8] =
                rxs.try_into().unwrap();
            let mut got = 0u64;
            while got < FANIN_N {
                let v = tokio::select! {
                    v = r0.recv() => v,
                    v = r1.recv() => v,
                    v = r2.recv() => v,
                    v = r3.recv() => v,
                    v = r4.recv() => v,
                    v = r5.recv() => v,
                    v = r6.recv() => v,
                    v = r7.recv() => v,
                };
                v.unwrap();
                got += 1;
            }
            let per_value = per_op(t.elapsed(), FANIN_N);
            drop(keep);
            per_value
        })
        .await
        .unwrap()
    })
}

fn fanin_row(procs: usize, go: Option<&std::path::Path>) -> Row {
    let g = gmp_rt(procs);
    let t = tokio_rt(procs);
    let gm = measure(|| gmp_fanin(&g));
    let tk = measure(|| tokio_fanin(&t));
    Row::from_stats(
        "select_fanin",
        procs,
        &[
            Some(gm),
            Some(tk),
            None,
            None,
            None,
            run_go_stat(go, "select_fanin", procs),
        ],
    )
}

// ---- idle_chan_memory ----

/// RSS growth per parked task since `before`.
fn idle_growth(before: u64) -> f64 {
    (rss_bytes() - before) as f64 / IDLE_N as f64
}

/// Child process: one runtime, one workload, prints `IDLE <bytes>`.
fn idle_chan_child(which: &str, procs: usize) {
    let before = rss_bytes();
    let started = Arc::new(AtomicUsize::new(0));
    let per = match which {
        "gmp" => gmp_rt(procs).block_on(async {
            let mut txs = Vec::with_capacity(IDLE_N);
            for _ in 0..IDLE_N {
                let (tx, rx) = gmp::chan::bounded::<u64>(1);
                txs.push(tx);
                let started = started.clone();
                gmp::go(async move {
                    started.fetch_add(1, Relaxed);
                    let _ = rx.recv().await;
                });
            }
            while started.load(Relaxed) < IDLE_N {
                gmp::time::sleep(Duration::from_millis(1)).await;
            }
            let per = idle_growth(before);
            drop(txs);
            per
        }),
        "tokio" => tokio_rt(procs).block_on(async {
            let mut txs = Vec::with_capacity(IDLE_N);
            for _ in 0..IDLE_N {
                let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
                txs.push(tx);
                let started = started.clone();
                tokio::spawn(async move {
                    started.fetch_add(1, Relaxed);
                    let _ = rx.await;
                });
            }
            while started.load(Relaxed) < IDLE_N {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            idle_growth(before)
        }),
        _ => tokio_rt(procs).block_on(async {
            let mut txs = Vec::with_capacity(IDLE_N);
            for _ in 0..IDLE_N {
                let (tx, rx) = async_channel::bounded::<u64>(1);
                txs.push(tx);
                let started = started.clone();
                tokio::spawn(async move {
                    started.fetch_add(1, Relaxed);
                    let _ = rx.recv().await;
                });
            }
            while started.load(Relaxed) < IDLE_N {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            idle_growth(before)
        }),
    };
    println!("IDLE {per}");
    // Skip teardown: the measurement is done.
    std::process::exit(0);
}

fn idle_chan(which: &str, procs: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args(["--idle-chan-child", which, &procs.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("IDLE "))
        .and_then(|v| v.trim().parse().ok())
}

fn idle_chan_row(procs: usize, go: Option<&std::path::Path>) -> Row {
    // One fresh process per cell: the min row repeats the value.
    Row::from_stats(
        "idle_chan_memory (bytes/goroutine)",
        procs,
        &[
            once(idle_chan("gmp", procs)),
            once(idle_chan("tokio", procs)),
            once(idle_chan("async-channel", procs)),
            run_go_stat(go, "idle_chan_memory", procs),
        ],
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--idle-chan-child") {
        idle_chan_child(&args[i + 1], args[i + 2].parse().unwrap());
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    println!("machine: {}", gmp_benches::machine());
    println!("runs per cell: {}\n", gmp_benches::runs());
    let go = build_go("chan_bench");
    let mut rows = Vec::new();
    for procs in [1, 2] {
        if selected("ping_pong") {
            rows.push(ping_pong_row(procs, go.as_deref()));
        }
        if selected("chan_mpmc") {
            rows.push(mpmc_row(procs, go.as_deref()));
        }
        if selected("select_fanin") {
            rows.push(fanin_row(procs, go.as_deref()));
        }
    }
    if !rows.is_empty() {
        print_table(
            "ns/op",
            &["gmp", "tokio-mpsc", "async-channel", "flume", "kanal", "go"],
            &rows,
        );
    }
    if selected("idle_chan_memory") {
        let rows: Vec<Row> = [1, 2]
            .into_iter()
            .map(|procs| idle_chan_row(procs, go.as_deref()))
            .collect();
        print_table(
            "bytes",
            &["gmp", "tokio-oneshot", "async-channel", "go"],
            &rows,
        );
    }
}
