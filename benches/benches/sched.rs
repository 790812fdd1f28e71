//! Scheduler benchmarks, side by side: gmp, tokio's multi-thread runtime
//! (same worker count) and Go, at procs 1 and 2.
//!
//! - spawn_many: 1,000,000 goroutines that each signal completion (ns/spawn)
//! - chained_spawn: each goroutine spawns the next, depth 1,000,000 (ns/spawn)
//! - yield_many: 200 goroutines each yielding 10,000 times (ns/yield)
//! - idle_memory: RSS growth per parked goroutine, 1,000,000 of them
//!   (bytes; each runtime measured in a fresh process)
//! - wake_latency (procs 2 only): a parent goroutine that keeps computing
//!   (no await) makes a child runnable, by spawning it (`_spawn`) or by a
//!   channel send it is parked on (`_send`), while the other P is idle;
//!   µs from the spawn/send to the child's first instruction, median of
//!   `WAKE_SAMPLES` samples (its own table)
//!
//! `cargo bench -p gmp-benches --bench sched` (env BENCH_RUNS, default 5).

use gmp_benches::{build_go, measure, once, per_op, print_table, rss_bytes, run_go_stat, Row};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SPAWN_N: u64 = 1_000_000;
const CHAIN_N: u64 = 1_000_000;
const YIELD_G: u64 = 200;
const YIELD_N: u64 = 10_000;
const IDLE_N: u64 = 1_000_000;
const WAKE_SAMPLES: usize = 200;
/// The parent computes until the child has started, or this long; past
/// it, it awaits, and the sample is whenever the child started.
const WAKE_CAP: Duration = Duration::from_millis(20);
/// Pause between samples, so the other P's thread is idle again.
const WAKE_PAUSE: Duration = Duration::from_millis(1);

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

fn gmp_spawn_many(rt: &gmp::Runtime) -> f64 {
    rt.block_on_goroutine(async {
        let t = Instant::now();
        let (tx, rx) = gmp::chan::bounded::<()>(1);
        let left = Arc::new(AtomicUsize::new(SPAWN_N as usize));
        for _ in 0..SPAWN_N {
            let (left, tx) = (left.clone(), tx.clone());
            gmp::go(async move {
                if left.fetch_sub(1, Relaxed) == 1 {
                    let _ = tx.try_send(());
                }
            });
        }
        rx.recv().await.unwrap();
        per_op(t.elapsed(), SPAWN_N)
    })
}

fn tokio_spawn_many(rt: &tokio::runtime::Runtime) -> f64 {
    rt.block_on(async {
        tokio::spawn(async {
            let t = Instant::now();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
            let left = Arc::new(AtomicUsize::new(SPAWN_N as usize));
            for _ in 0..SPAWN_N {
                let (left, tx) = (left.clone(), tx.clone());
                tokio::spawn(async move {
                    if left.fetch_sub(1, Relaxed) == 1 {
                        let _ = tx.try_send(());
                    }
                });
            }
            rx.recv().await.unwrap();
            per_op(t.elapsed(), SPAWN_N)
        })
        .await
        .unwrap()
    })
}

fn gmp_chain_step(n: u64, tx: gmp::chan::Sender<()>) {
    if n == 0 {
        let _ = tx.try_send(());
    } else {
        gmp::go(async move { gmp_chain_step(n - 1, tx) });
    }
}

fn gmp_chained_spawn(rt: &gmp::Runtime) -> f64 {
    rt.block_on_goroutine(async {
        let t = Instant::now();
        let (tx, rx) = gmp::chan::bounded::<()>(1);
        gmp_chain_step(CHAIN_N, tx);
        rx.recv().await.unwrap();
        per_op(t.elapsed(), CHAIN_N)
    })
}

fn tokio_chain_step(n: u64, tx: tokio::sync::mpsc::Sender<()>) {
    if n == 0 {
        let _ = tx.try_send(());
    } else {
        tokio::spawn(async move { tokio_chain_step(n - 1, tx) });
    }
}

fn tokio_chained_spawn(rt: &tokio::runtime::Runtime) -> f64 {
    rt.block_on(async {
        tokio::spawn(async {
            let t = Instant::now();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
            tokio_chain_step(CHAIN_N, tx);
            rx.recv().await.unwrap();
            per_op(t.elapsed(), CHAIN_N)
        })
        .await
        .unwrap()
    })
}

fn gmp_yield_many(rt: &gmp::Runtime) -> f64 {
    rt.block_on_goroutine(async {
        let t = Instant::now();
        let hs: Vec<_> = (0..YIELD_G)
            .map(|_| {
                gmp::spawn(async {
                    for _ in 0..YIELD_N {
                        gmp::runtime::gosched().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        per_op(t.elapsed(), YIELD_G * YIELD_N)
    })
}

fn tokio_yield_many(rt: &tokio::runtime::Runtime) -> f64 {
    rt.block_on(async {
        let t = Instant::now();
        let hs: Vec<_> = (0..YIELD_G)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..YIELD_N {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        per_op(t.elapsed(), YIELD_G * YIELD_N)
    })
}

/// How a wake_latency sample makes the child runnable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    Spawn,
    Send,
}

impl Wake {
    fn workload(self) -> &'static str {
        match self {
            Wake::Spawn => "wake_latency_spawn",
            Wake::Send => "wake_latency_send",
        }
    }
}

/// When the child started, in ns since `base` (+1, so 0 means "not yet").
fn stamp(base: Instant, at: &AtomicU64) {
    at.store(base.elapsed().as_nanos() as u64 + 1, Relaxed);
}

/// The parent's side of one sample, after it made the child runnable at
/// `t0` (ns since `base`): compute until the child has started or
/// `WAKE_CAP` has passed. Returns the start stamp if it came in time.
fn compute_until_started(base: Instant, t0: u64, at: &AtomicU64) -> Option<u64> {
    loop {
        let v = at.load(Relaxed);
        if v != 0 {
            return Some(v);
        }
        if base.elapsed().as_nanos() as u64 > t0 + WAKE_CAP.as_nanos() as u64 {
            return None;
        }
        std::hint::spin_loop();
    }
}

fn median_us(mut v: Vec<u64>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64 / 1000.0
}

fn gmp_wake_latency(rt: &gmp::Runtime, how: Wake) -> f64 {
    rt.block_on_goroutine(async move {
        let parent = gmp::spawn(async move {
            let base = Instant::now();
            let at = Arc::new(AtomicU64::new(0));
            let (tx, rx) = gmp::chan::bounded::<()>(1);
            if how == Wake::Send {
                let at = at.clone();
                gmp::go(async move {
                    while rx.recv().await.is_ok() {
                        stamp(base, &at);
                    }
                });
            }
            let mut samples = Vec::with_capacity(WAKE_SAMPLES);
            for _ in 0..WAKE_SAMPLES {
                gmp::time::sleep(WAKE_PAUSE).await;
                at.store(0, Relaxed);
                let t0 = base.elapsed().as_nanos() as u64;
                match how {
                    Wake::Spawn => {
                        let at = at.clone();
                        gmp::go(async move { stamp(base, &at) });
                    }
                    Wake::Send => tx.try_send(()).unwrap(),
                }
                let started = match compute_until_started(base, t0, &at) {
                    Some(v) => v,
                    None => loop {
                        gmp::time::sleep(Duration::from_micros(100)).await;
                        let v = at.load(Relaxed);
                        if v != 0 {
                            break v;
                        }
                    },
                };
                samples.push(started - 1 - t0);
            }
            median_us(samples)
        });
        parent.await.unwrap()
    })
}

fn tokio_wake_latency(rt: &tokio::runtime::Runtime, how: Wake) -> f64 {
    rt.block_on(async move {
        let parent = tokio::spawn(async move {
            let base = Instant::now();
            let at = Arc::new(AtomicU64::new(0));
            let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
            if how == Wake::Send {
                let at = at.clone();
                tokio::spawn(async move {
                    while rx.recv().await.is_some() {
                        stamp(base, &at);
                    }
                });
            }
            let mut samples = Vec::with_capacity(WAKE_SAMPLES);
            for _ in 0..WAKE_SAMPLES {
                tokio::time::sleep(WAKE_PAUSE).await;
                at.store(0, Relaxed);
                let t0 = base.elapsed().as_nanos() as u64;
                match how {
                    Wake::Spawn => {
                        let at = at.clone();
                        tokio::spawn(async move { stamp(base, &at) });
                    }
                    Wake::Send => tx.try_send(()).unwrap(),
                }
                let started = match compute_until_started(base, t0, &at) {
                    Some(v) => v,
                    None => loop {
                        tokio::time::sleep(Duration::from_micros(100)).await;
                        let v = at.load(Relaxed);
                        if v != 0 {
                            break v;
                        }
                    },
                };
                samples.push(started - 1 - t0);
            }
            median_us(samples)
        });
        parent.await.unwrap()
    })
}

/// Child process: park IDLE_N goroutines and print the RSS growth per one.
fn idle_memory_child(which: &str, procs: usize) {
    let before = rss_bytes();
    let per = match which {
        "gmp" => gmp_rt(procs).block_on_goroutine(async move {
            let (tx, rx) = gmp::chan::bounded::<()>(0);
            let started = Arc::new(AtomicUsize::new(0));
            for _ in 0..IDLE_N {
                let (rx, started) = (rx.clone(), started.clone());
                gmp::go(async move {
                    started.fetch_add(1, Relaxed);
                    let _ = rx.recv().await;
                });
            }
            while started.load(Relaxed) < IDLE_N as usize {
                gmp::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let per = (rss_bytes() - before) as f64 / IDLE_N as f64;
            drop(tx);
            per
        }),
        _ => tokio_rt(procs).block_on(async {
            let notify = Arc::new(tokio::sync::Notify::new());
            let started = Arc::new(AtomicUsize::new(0));
            for _ in 0..IDLE_N {
                let (n, started) = (notify.clone(), started.clone());
                tokio::spawn(async move {
                    started.fetch_add(1, Relaxed);
                    n.notified().await;
                });
            }
            while started.load(Relaxed) < IDLE_N as usize {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            (rss_bytes() - before) as f64 / IDLE_N as f64
        }),
    };
    println!("IDLE {per}");
    // Skip teardown: the measurement is done.
    std::process::exit(0);
}

fn idle_memory(which: &str, procs: usize) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args(["--idle-child", which, &procs.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("IDLE "))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--idle-child") {
        idle_memory_child(&args[i + 1], args[i + 2].parse().unwrap());
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    println!("machine: {}", gmp_benches::machine());
    println!(
        "gmp G header: {} bytes; runs per cell: {}\n",
        gmp::runtime::G_HEADER_SIZE,
        gmp_benches::runs()
    );
    let go = build_go("sched_bench");
    let mut rows = Vec::new();
    for procs in [1, 2] {
        let g = gmp_rt(procs);
        let t = tokio_rt(procs);
        type Pair<'a> = (
            &'a str,
            Box<dyn Fn(&gmp::Runtime) -> f64>,
            Box<dyn Fn(&tokio::runtime::Runtime) -> f64>,
        );
        let work: Vec<Pair> = vec![
            (
                "spawn_many",
                Box::new(gmp_spawn_many),
                Box::new(tokio_spawn_many),
            ),
            (
                "chained_spawn",
                Box::new(gmp_chained_spawn),
                Box::new(tokio_chained_spawn),
            ),
            (
                "yield_many",
                Box::new(gmp_yield_many),
                Box::new(tokio_yield_many),
            ),
        ];
        for (name, gf, tf) in work {
            if !gmp_benches::selected(name) {
                continue;
            }
            let gs = measure(|| gf(&g));
            let ts = measure(|| tf(&t));
            let gos = run_go_stat(go.as_deref(), name, procs);
            rows.push(Row::from_stats(name, procs, &[Some(gs), Some(ts), gos]));
        }
        if !gmp_benches::selected("idle_memory") {
            continue;
        }
        // One fresh process per cell: the min row repeats the value.
        rows.push(Row::from_stats(
            "idle_memory (bytes/goroutine)",
            procs,
            &[
                once(idle_memory("gmp", procs)),
                once(idle_memory("tokio", procs)),
                run_go_stat(go.as_deref(), "idle_memory", procs),
            ],
        ));
    }
    print_table("ns/op", &["gmp", "tokio", "go"], &rows);

    let mut wake_rows = Vec::new();
    let (g, t) = (gmp_rt(2), tokio_rt(2));
    for how in [Wake::Spawn, Wake::Send] {
        let name = how.workload();
        if !gmp_benches::selected(name) {
            continue;
        }
        let gs = measure(|| gmp_wake_latency(&g, how));
        let ts = measure(|| tokio_wake_latency(&t, how));
        let gos = run_go_stat(go.as_deref(), name, 2);
        wake_rows.push(Row::from_stats(name, 2, &[Some(gs), Some(ts), gos]));
    }
    if !wake_rows.is_empty() {
        println!(
            "\nwake_latency: median of {WAKE_SAMPLES} samples per run; the parent computes \
             for up to {WAKE_CAP:?}, so a child that waits for it shows about that\n"
        );
        print_table("µs to child start", &["gmp", "tokio", "go"], &wake_rows);
    }
}
