//! The observability cost driver: spawn_many, yield_many and ping_pong at
//! procs = 1, small and fixed so that `valgrind --tool=callgrind` counts
//! the same instructions on every run. `benches/obs_cost.sh` builds it
//! with the observability hooks compiled in and compiled out and compares.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

const SPAWNS: usize = 100_000;
const SPAWN_SLICE: usize = 256;
const YIELDERS: usize = 200;
const YIELDS: usize = 500;
const ROUND_TRIPS: u64 = 100_000;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let rt = gmp::Runtime::builder().procs(1).build().unwrap();
    match which.as_str() {
        "spawn" => rt.block_on_goroutine(async {
            let (tx, rx) = gmp::chan::bounded::<()>(1);
            let left = Arc::new(AtomicUsize::new(SPAWNS));
            for i in 0..SPAWNS {
                let (left, tx) = (left.clone(), tx.clone());
                gmp::go(async move {
                    if left.fetch_sub(1, Relaxed) == 1 {
                        let _ = tx.try_send(());
                    }
                });
                // Keep main's polls short: under valgrind a poll of all
                // 100,000 spawns runs past sysmon's 10 ms, sysmon takes the
                // P, and how many spawns then go the P-less way depends on
                // timing, which made the totals vary between runs.
                if i % SPAWN_SLICE == SPAWN_SLICE - 1 {
                    gmp::runtime::gosched().await;
                }
            }
            rx.recv().await.unwrap();
        }),
        "yield" => rt.block_on_goroutine(async {
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
        }),
        "pp" => rt.block_on_goroutine(async {
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
        }),
        other => {
            eprintln!("obs_cost: unknown workload {other:?}; use spawn, yield or pp");
            std::process::exit(2);
        }
    }
}
