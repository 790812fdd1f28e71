//! Go's nil channel in `select!`: `Option<&Receiver<T>>` and
//! `Option<&Sender<T>>` operands, `None` being a case that is never ready.

use gmp::chan::{bounded, never, Receiver, SendError, Sender};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

fn rt(procs: usize) -> gmp::Runtime {
    gmp::Runtime::builder().procs(procs).build().unwrap()
}

/// A lost wake-up fails the test instead of hanging the run.
async fn watchdog<F: std::future::Future>(f: F) -> F::Output {
    gmp::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("watchdog: the select loop never finished")
}

/// Go's merge idiom: receive from two channels until both are closed,
/// setting each to nil as it closes, so the loop stops selecting on it.
/// Every item arrives exactly once, each producer's in its order.
#[test]
fn merge_two_channels_switching_cases_off() {
    const N: u64 = 20_000;
    for procs in [1, 2] {
        rt(procs).block_on(watchdog(async {
            let (atx, arx) = bounded::<u64>(0);
            let (btx, brx) = bounded::<u64>(7);
            gmp::go(async move {
                for i in 0..N {
                    atx.send(i).await.unwrap();
                }
            });
            gmp::go(async move {
                for i in 0..N {
                    btx.send(N + i).await.unwrap();
                }
            });
            let (mut a, mut b): (Option<&Receiver<u64>>, Option<&Receiver<u64>>) =
                (Some(&arx), Some(&brx));
            let mut seen = vec![0u8; 2 * N as usize];
            let (mut last_a, mut last_b) = (None, None);
            let mut loops = 0u64;
            while a.is_some() || b.is_some() {
                loops += 1;
                gmp::select! {
                    recv(a) -> v => match v {
                        Ok(v) => {
                            assert!(v < N && !matches!(last_a, Some(l) if v <= l), "a out of order: {v}");
                            last_a = Some(v);
                            seen[v as usize] += 1;
                        }
                        Err(_) => a = None,
                    },
                    recv(b) -> v => match v {
                        Ok(v) => {
                            assert!(v >= N && !matches!(last_b, Some(l) if v <= l), "b out of order: {v}");
                            last_b = Some(v);
                            seen[v as usize] += 1;
                        }
                        Err(_) => b = None,
                    },
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "an item was lost or duplicated");
            // Each closed channel was observed once, then switched off.
            assert_eq!(loops, 2 * N + 2);
        }));
    }
}

/// Fan-out with a nil send case: while there is nothing to send, the send
/// case is off (`None`); values move from `input` to `out` exactly once.
#[test]
fn nil_send_case_switched_on_and_off() {
    rt(2).block_on(watchdog(async {
        const N: u64 = 5_000;
        let (itx, irx) = bounded::<u64>(0);
        let (otx, orx) = bounded::<u64>(0);
        gmp::go(async move {
            for i in 0..N {
                itx.send(i).await.unwrap();
            }
        });
        let sink = gmp::spawn(async move {
            let mut got = Vec::new();
            while let Ok(v) = orx.recv().await {
                got.push(v);
            }
            got
        });
        let mut pending: std::collections::VecDeque<u64> = Default::default();
        let mut input = Some(&irx);
        while input.is_some() || !pending.is_empty() {
            let out: Option<&Sender<u64>> = if pending.is_empty() { None } else { Some(&otx) };
            let next = pending.front().copied().unwrap_or(u64::MAX);
            gmp::select! {
                recv(input) -> v => match v {
                    Ok(v) => pending.push_back(v),
                    Err(_) => input = None,
                },
                send(out, next) -> r => {
                    r.unwrap();
                    assert_eq!(pending.pop_front(), Some(next));
                },
            }
        }
        drop(otx);
        assert_eq!(sink.await.unwrap(), (0..N).collect::<Vec<_>>());
    }));
}

/// Counts drops, to show where a nil send case's value goes.
struct Tracked(Arc<AtomicUsize>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A `None` send case never fires; its value is not sent anywhere and is
/// dropped with the select, once.
#[test]
fn nil_send_value_dropped_with_the_select() {
    rt(1).block_on(async {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = bounded::<Tracked>(4);
        let nil: Option<&Sender<Tracked>> = None;
        let r = gmp::select! {
            send(nil, Tracked(drops.clone())) -> _ => "sent",
            default => "default",
        };
        assert_eq!(r, "default");
        assert_eq!(drops.load(SeqCst), 1);
        assert!(rx.try_recv().is_err());

        // Beside a ready case, the nil one is never chosen.
        for _ in 0..100 {
            let r = gmp::select! {
                send(nil, Tracked(drops.clone())) -> _ => "nil",
                send(tx, Tracked(drops.clone())) -> r => { r.map_err(|SendError(_)| ()).unwrap(); "tx" },
            };
            assert_eq!(r, "tx");
            drop(rx.try_recv().unwrap());
        }
        assert_eq!(drops.load(SeqCst), 201);
    });
}

/// `None`, `never()` and all-nil selects: nothing is ever ready.
#[test]
fn nil_receive_cases_never_fire() {
    rt(1).block_on(async {
        let (tx, rx) = bounded::<u8>(1);
        tx.send(1).await.unwrap();
        let nil: Option<&Receiver<u8>> = None;
        let nv = never::<u8>();
        for _ in 0..100 {
            let r = gmp::select! {
                recv(nil) -> _ => 0,
                recv(nv) -> _ => 1,
                default => 2,
            };
            assert_eq!(r, 2);
        }
        // An owned `Option<Receiver>` works too, and `Some` fires.
        let some = Some(rx);
        let r = gmp::select! {
            recv(nil) -> _ => 0,
            recv(some) -> v => v.unwrap(),
        };
        assert_eq!(r, 1);
        // All cases nil, with a timer beside them: only the timer fires.
        let r = gmp::select! {
            recv(nil) -> _ => "nil",
            recv(gmp::time::after(Duration::from_millis(20))) -> _ => "timer",
        };
        assert_eq!(r, "timer");
    });
}
