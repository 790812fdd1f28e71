//! Scheduler stress: many goroutines mixing spawn, wakes across Ms, yields,
//! sleeps and syscalls at procs 1..4; every goroutine must finish exactly
//! once and every value arrive.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::rt;

#[test]
fn mixed_workload_completes() {
    let n: u64 = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    for procs in [1, 2, 3, 4] {
        let total = Arc::new(AtomicU64::new(0));
        let t = total.clone();
        rt(procs).block_on(async move {
            let mut hs = Vec::new();
            for i in 0..n {
                let t = t.clone();
                hs.push(gmp::spawn(async move {
                    match i % 5 {
                        0 => {
                            // Wake a partner goroutine through a oneshot.
                            let (tx, rx) = futures::channel::oneshot::channel::<u64>();
                            gmp::go(async move {
                                let _ = tx.send(i);
                            });
                            t.fetch_add(rx.await.unwrap(), SeqCst);
                        }
                        1 => {
                            for _ in 0..3 {
                                gmp::runtime::gosched().await;
                            }
                            t.fetch_add(i, SeqCst);
                        }
                        2 => {
                            gmp::time::sleep(Duration::from_micros(i % 200)).await;
                            t.fetch_add(i, SeqCst);
                        }
                        3 => {
                            let v = gmp::syscall(|| i);
                            t.fetch_add(v, SeqCst);
                        }
                        _ => {
                            let h = gmp::spawn(async move { i });
                            t.fetch_add(h.await.unwrap(), SeqCst);
                        }
                    }
                }));
            }
            for h in hs {
                h.await.unwrap();
            }
        });
        assert_eq!(total.load(SeqCst), (0..n).sum::<u64>(), "procs={procs}");
    }
}

/// Wakes from plain threads race with the scheduler parking its Ms.
#[test]
fn foreign_wakes_are_never_lost() {
    for procs in [1, 2, 4] {
        let got = rt(procs).block_on(async {
            let mut hs = Vec::new();
            for i in 0..200u64 {
                let (tx, rx) = futures::channel::oneshot::channel::<u64>();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_micros(i * 37 % 1000));
                    let _ = tx.send(i);
                });
                hs.push(gmp::spawn(async move { rx.await.unwrap() }));
            }
            let mut s = 0;
            for h in hs {
                s += h.await.unwrap();
            }
            s
        });
        assert_eq!(got, (0..200u64).sum::<u64>());
    }
}
