//! Channel stress: MPMC over cap 0/1/1024, a storm of selects mixing send
//! and recv cases over 16 channels, select fairness, cancellation.

use futures::FutureExt;
use gmp::chan::{bounded, Receiver, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod support;
use support::rt;

/// Full size in release builds, scaled down in debug builds.
const fn scaled(n: u64) -> u64 {
    if cfg!(debug_assertions) {
        n / 20
    } else {
        n
    }
}

fn mpmc(cap: usize, procs: usize) {
    const P: u64 = 8;
    const C: u64 = 8;
    let total = scaled(1_000_000);
    let per = total / P;
    rt(procs).block_on(async move {
        let (tx, rx) = bounded::<u64>(cap);
        let mut ps = Vec::new();
        for p in 0..P {
            let tx = tx.clone();
            ps.push(gmp::spawn(async move {
                for i in 0..per {
                    tx.send(p * per + i).await.unwrap();
                }
            }));
        }
        drop(tx);
        let mut cs = Vec::new();
        for _ in 0..C {
            let rx = rx.clone();
            cs.push(gmp::spawn(async move {
                let (mut n, mut s) = (0u64, 0u64);
                while let Ok(v) = rx.recv().await {
                    n += 1;
                    s += v;
                }
                (n, s)
            }));
        }
        for p in ps {
            p.await.unwrap();
        }
        let (mut n, mut s) = (0, 0);
        for c in cs {
            let (a, b) = c.await.unwrap();
            n += a;
            s += b;
        }
        let all = per * P;
        assert_eq!(n, all);
        assert_eq!(s, all * (all - 1) / 2);
    });
}

#[test]
fn mpmc_8x8_cap0() {
    mpmc(0, 4);
}

#[test]
fn mpmc_8x8_cap1() {
    mpmc(1, 4);
}

#[test]
fn mpmc_8x8_cap1024() {
    mpmc(1024, 4);
}

#[test]
fn mpmc_8x8_cap0_one_p() {
    mpmc(0, 1);
}

/// 16 channels; goroutines each run selects with two send cases and two
/// recv cases on random channels. Every value sent is received exactly once.
#[test]
fn select_storm() {
    const CH: usize = 16;
    const W: u64 = 16;
    let per = scaled(20_000);
    rt(4).block_on(async move {
        let chans: Vec<(Sender<u64>, Receiver<u64>)> =
            (0..CH).map(|i| bounded(i % 3)).collect();
        let chans = Arc::new(chans);
        let sent_sum = Arc::new(AtomicU64::new(0));
        let recv_sum = Arc::new(AtomicU64::new(0));
        let sent_n = Arc::new(AtomicU64::new(0));
        let recv_n = Arc::new(AtomicU64::new(0));
        let (quit_tx, quit_rx) = bounded::<()>(0);
        let (fin_tx, fin_rx) = bounded::<()>(W as usize);
        let mut hs = Vec::new();
        for w in 0..W {
            let chans = chans.clone();
            let quit = quit_rx.clone();
            let fin = fin_tx.clone();
            let (ss, rs, sn, rn) = (sent_sum.clone(), recv_sum.clone(), sent_n.clone(), recv_n.clone());
            hs.push(gmp::spawn(async move {
                let mut next = w * 1_000_000_000;
                let mut k = w as usize;
                let mut done = 0u64;
                // Keep serving the others after our own quota, until quit.
                loop {
                    if done == per {
                        fin.send(()).await.unwrap();
                    }
                    k = k.wrapping_mul(1103515245).wrapping_add(12345);
                    let a = (k >> 4) % CH;
                    let b = (k >> 9) % CH;
                    let c = (k >> 14) % CH;
                    let d = (k >> 19) % CH;
                    let (v1, v2) = (next, next + 1);
                    gmp::select! {
                        send(chans[a].0, v1) -> r => { r.unwrap(); ss.fetch_add(v1, Ordering::Relaxed); sn.fetch_add(1, Ordering::Relaxed); next += 2; }
                        send(chans[b].0, v2) -> r => { r.unwrap(); ss.fetch_add(v2, Ordering::Relaxed); sn.fetch_add(1, Ordering::Relaxed); next += 2; }
                        recv(chans[c].1) -> v => { rs.fetch_add(v.unwrap(), Ordering::Relaxed); rn.fetch_add(1, Ordering::Relaxed); }
                        recv(chans[d].1) -> v => { rs.fetch_add(v.unwrap(), Ordering::Relaxed); rn.fetch_add(1, Ordering::Relaxed); }
                        recv(quit) -> _ => break,
                    }
                    done += 1;
                }
            }));
        }
        for _ in 0..W {
            fin_rx.recv().await.unwrap();
        }
        quit_tx.close();
        for h in hs {
            h.await.unwrap();
        }
        // Drain what is left buffered.
        for (_, rx) in chans.iter() {
            while let Ok(v) = rx.try_recv() {
                recv_sum.fetch_add(v, Ordering::Relaxed);
                recv_n.fetch_add(1, Ordering::Relaxed);
            }
        }
        assert_eq!(sent_n.load(Ordering::Relaxed), recv_n.load(Ordering::Relaxed));
        assert_eq!(sent_sum.load(Ordering::Relaxed), recv_sum.load(Ordering::Relaxed));
    });
}

#[test]
fn select_fairness_two_ready() {
    rt(1).block_on(async {
        let (tx1, rx1) = bounded::<u8>(1);
        let (tx2, rx2) = bounded::<u8>(1);
        let (mut a, mut b) = (0u32, 0u32);
        for _ in 0..100_000 {
            tx1.try_send(1).ok();
            tx2.try_send(2).ok();
            gmp::select! {
                recv(rx1) -> _ => a += 1,
                recv(rx2) -> _ => b += 1,
            }
        }
        let p = a as f64 / 100_000.0;
        assert!((0.45..=0.55).contains(&p), "case 1 won {p}");
        assert_eq!(a + b, 100_000);
    });
}

/// Poll a recv once so it queues, then drop it: its sudog must be gone and
/// the next value must go to the next receiver.
#[test]
fn cancel_queued_recv() {
    rt(2).block_on(async {
        let (tx, rx) = bounded::<u32>(0);
        {
            let mut f = Box::pin(rx.recv());
            assert!(futures::poll!(f.as_mut()).is_pending());
        }
        // No receiver is queued any more: an unbuffered try_send fails.
        assert!(tx.try_send(1).is_err());
        let rx2 = rx.clone();
        let h = gmp::spawn(async move { rx2.recv().await });
        tx.send(7).await.unwrap();
        assert_eq!(h.await.unwrap(), Ok(7));
    });
}

/// A value handed to a queued receiver whose future is then dropped before
/// it runs is passed to the next receiver (not lost, not duplicated).
#[test]
fn cancel_recv_after_handoff_passes_value_on() {
    rt(1).block_on(async {
        let (tx, rx) = bounded::<u32>(0);
        let mut f = Box::pin(rx.recv());
        assert!(futures::poll!(f.as_mut()).is_pending());
        // The sender finds the queued receiver and completes at once.
        tx.try_send(5).unwrap();
        drop(f);
        // The value went back to the channel, to the next receiver.
        assert_eq!(rx.try_recv(), Ok(5));
        assert!(rx.try_recv().is_err());

        // Same with another receiver already waiting behind it.
        let mut f1 = Box::pin(rx.recv());
        let mut f2 = Box::pin(rx.recv());
        assert!(futures::poll!(f1.as_mut()).is_pending());
        assert!(futures::poll!(f2.as_mut()).is_pending());
        tx.try_send(6).unwrap();
        drop(f1);
        assert_eq!(f2.await, Ok(6));

        // Buffered: the returned value goes back in front of later values.
        let (tx, rx) = bounded::<u32>(2);
        let mut f = Box::pin(rx.recv());
        assert!(futures::poll!(f.as_mut()).is_pending());
        tx.try_send(1).unwrap(); // handed to f directly
        tx.try_send(2).unwrap(); // buffered
        drop(f);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
    });
}

#[test]
fn cancel_queued_send() {
    rt(1).block_on(async {
        let (tx, rx) = bounded::<u32>(0);
        {
            let mut f = Box::pin(tx.send(1));
            assert!(futures::poll!(f.as_mut()).is_pending());
        }
        assert!(rx.try_recv().is_err());
        let mut f = Box::pin(tx.send(2));
        assert!(futures::poll!(f.as_mut()).is_pending());
        assert_eq!(rx.try_recv(), Ok(2));
        // The send completed; dropping it now changes nothing.
        assert!(futures::poll!(f.as_mut()).is_ready());
    });
}

/// Receivers and senders racing a yield-based "cancel" (futures'
/// `select_biased!`), over many rounds. A cancelled receive never loses a
/// value: every value a sender saw complete is received exactly once. A
/// send dropped after a receiver already took its value had in fact
/// completed (Go semantics: the hand-off is the send), so the checks are:
/// no value received twice, every confirmed send received, nothing
/// received that was not attempted.
#[test]
fn cancel_storm_no_loss_no_dup() {
    let n = scaled(200_000);
    rt(4).block_on(async move {
        let (tx, rx) = bounded::<u64>(0);
        let mut hs = Vec::new();
        for _ in 0..4 {
            let rx = rx.clone();
            hs.push(gmp::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let r = {
                        let recv = rx.recv().fuse();
                        let cancel = gmp::runtime::gosched().fuse();
                        futures::pin_mut!(recv, cancel);
                        futures::select_biased! {
                            r = recv => Some(r),
                            _ = cancel => None,
                        }
                    };
                    match r {
                        Some(Ok(v)) => got.push(v),
                        Some(Err(_)) => break,
                        None => {}
                    }
                }
                got
            }));
        }
        let per = n / 4;
        let senders: Vec<_> = (0..4u64)
            .map(|p| {
                let tx = tx.clone();
                gmp::spawn(async move {
                    let mut confirmed = Vec::new();
                    for i in 0..per {
                        let v = p * per + i;
                        let s = tx.send(v).fuse();
                        let c = gmp::runtime::gosched().fuse();
                        futures::pin_mut!(s, c);
                        futures::select_biased! {
                            r = s => { r.unwrap(); confirmed.push(v); },
                            _ = c => {},
                        }
                    }
                    confirmed
                })
            })
            .collect();
        drop(tx);
        let mut confirmed = Vec::new();
        for s in senders {
            confirmed.extend(s.await.unwrap());
        }
        let mut seen = vec![false; (per * 4) as usize];
        for h in hs {
            for v in h.await.unwrap() {
                assert!(v < per * 4, "received a value never sent");
                assert!(!seen[v as usize], "value {v} received twice");
                seen[v as usize] = true;
            }
        }
        for v in confirmed {
            assert!(seen[v as usize], "confirmed send {v} lost");
        }
    });
}

/// Receive-side cancellation only: every value is received exactly once
/// although receives are cancelled all the time.
#[test]
fn cancel_recv_storm_exact() {
    let n = scaled(200_000);
    rt(4).block_on(async move {
        let (tx, rx) = bounded::<u64>(0);
        let sum = Arc::new(AtomicU64::new(0));
        let cnt = Arc::new(AtomicU64::new(0));
        let mut hs = Vec::new();
        for _ in 0..4 {
            let rx = rx.clone();
            let (sum, cnt) = (sum.clone(), cnt.clone());
            hs.push(gmp::spawn(async move {
                loop {
                    let r = {
                        let recv = rx.recv().fuse();
                        let cancel = gmp::runtime::gosched().fuse();
                        futures::pin_mut!(recv, cancel);
                        futures::select_biased! {
                            r = recv => Some(r),
                            _ = cancel => None,
                        }
                    };
                    match r {
                        Some(Ok(v)) => {
                            sum.fetch_add(v, Ordering::Relaxed);
                            cnt.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Err(_)) => break,
                        None => {}
                    }
                }
            }));
        }
        let per = n / 4;
        let senders: Vec<_> = (0..4u64)
            .map(|p| {
                let tx = tx.clone();
                gmp::spawn(async move {
                    for i in 0..per {
                        tx.send(p * per + i + 1).await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for s in senders {
            s.await.unwrap();
        }
        for h in hs {
            h.await.unwrap();
        }
        let total = per * 4;
        assert_eq!(cnt.load(Ordering::Relaxed), total);
        assert_eq!(sum.load(Ordering::Relaxed), total * (total + 1) / 2);
    });
}

/// A select parked on two channels, dropped after one of its cases won but
/// before it ran: a received value is passed on.
#[test]
fn cancel_select_after_win() {
    rt(1).block_on(async {
        let (tx1, rx1) = bounded::<u32>(0);
        let (_tx2, rx2) = bounded::<u32>(0);
        {
            let fut = async {
                gmp::select! {
                    recv(rx1) -> v => v,
                    recv(rx2) -> v => v,
                }
            };
            let mut fut = Box::pin(fut);
            assert!(futures::poll!(fut.as_mut()).is_pending());
            tx1.try_send(9).unwrap();
            // dropped here without being polled again
        }
        assert_eq!(rx1.try_recv(), Ok(9));
        assert!(rx2.try_recv().is_err());
    });
}
