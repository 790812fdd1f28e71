//! Timer benchmarks, side by side at procs 1 and 2.
//!
//! - timer_churn: 1,000,000 iterations of a select over a ready channel
//!   and a one-hour timer that never fires: gmp `select!` with
//!   `time::after`, tokio `select!` with `time::sleep` over an mpsc(1),
//!   Go `select` with `time.After`. Reported: ns per iteration, and the
//!   growth of the resident set between iteration 1,000 and the end
//!   (bytes). Go 1.19 keeps every unfired `After` timer until it fires, so
//!   its growth is the leak Go 1.23 fixed; gmp and tokio drop a timer with
//!   its last handle.
//!
//! `cargo bench -p gmp-benches --bench timer` (env BENCH_RUNS, BENCH_FILTER).

use gmp_benches::{build_go, machine, measure, per_op, print_table, rss_bytes, run_go_stat, Row};
use std::time::{Duration, Instant};

const N: u64 = 1_000_000;
const HOUR: Duration = Duration::from_secs(3600);

/// (ns per iteration, RSS growth in bytes after iteration 1,000).
type Churn = (f64, f64);

fn gmp_churn(procs: usize) -> Churn {
    let rt = gmp::Runtime::builder().procs(procs).build().unwrap();
    rt.block_on(async {
        let (tx, rx) = gmp::chan::bounded::<u64>(1);
        let mut base = 0;
        let t = Instant::now();
        for i in 0..N {
            tx.try_send(i).unwrap();
            gmp::select! {
                recv(rx) -> v => assert_eq!(v, Ok(i)),
                recv(gmp::time::after(HOUR)) -> _ => unreachable!("the timer fired"),
            }
            if i == 1000 {
                base = rss_bytes();
            }
        }
        let ns = per_op(t.elapsed(), N);
        (ns, rss_bytes() as f64 - base as f64)
    })
}

fn tokio_churn(procs: usize) -> Churn {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(procs)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // On a worker, as gmp's loop runs on a P.
        tokio::spawn(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
            let mut base = 0;
            let t = Instant::now();
            for i in 0..N {
                tx.try_send(i).unwrap();
                tokio::select! {
                    v = rx.recv() => assert_eq!(v, Some(i)),
                    _ = tokio::time::sleep(HOUR) => unreachable!("the timer fired"),
                }
                if i == 1000 {
                    base = rss_bytes();
                }
            }
            let ns = per_op(t.elapsed(), N);
            (ns, rss_bytes() as f64 - base as f64)
        })
        .await
        .unwrap()
    })
}

fn main() {
    println!("machine: {}\n", machine());
    if !gmp_benches::selected("timer_churn") {
        return;
    }
    let go = build_go("timer_bench");
    let mut time_rows = Vec::new();
    let mut rss_rows = Vec::new();
    for procs in [1, 2] {
        let mut g_rss = Vec::new();
        let g = measure(|| {
            let (ns, grow) = gmp_churn(procs);
            g_rss.push(grow);
            ns
        });
        let mut t_rss = Vec::new();
        let t = measure(|| {
            let (ns, grow) = tokio_churn(procs);
            t_rss.push(grow);
            ns
        });
        let go_t = run_go_stat(go.as_deref(), "timer_churn", procs);
        let go_rss = run_go_stat(go.as_deref(), "timer_churn_rss", procs);
        time_rows.push(Row::from_stats(
            "timer_churn",
            procs,
            &[Some(g), Some(t), go_t],
        ));
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        rss_rows.push(Row {
            workload: "timer_churn RSS growth".into(),
            procs,
            cells: vec![
                Some(median(&mut g_rss)),
                Some(median(&mut t_rss)),
                go_rss.map(|s| s.median),
            ],
            mins: None,
        });
    }
    print_table("ns/iteration", &["gmp", "tokio", "go"], &time_rows);
    println!();
    print_table("bytes", &["gmp", "tokio", "go"], &rss_rows);
}
