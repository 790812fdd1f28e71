//! Go's runtime/chan_test.go, written anew for gmp's channels and
//! `select!` (the go/test/chan programs are in `chan_go_ports.rs`). Sizes
//! are Go's in release builds and scaled down in debug builds. No timing
//! assertions: where Go sleeps to order goroutines, these tests yield
//! (`gosched`) on one P, which runs the yielded-to goroutines first.

use gmp::chan::{bounded, never, Receiver, RecvError, Sender, TryRecvError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

mod support;
use support::go_ports::{dead_sender, scaled, yield_a_lot};
use support::rt;

// ---- runtime TestChan -------------------------------------------------------------

#[test]
fn test_chan() {
    let n = if cfg!(debug_assertions) { 20 } else { 200 };
    rt(4).block_on(async move {
        for cap in 0..n {
            // Receive from empty chan blocks.
            {
                let (tx, rx) = bounded::<i32>(cap);
                let recv = Arc::new(AtomicBool::new(false));
                for _ in 0..2 {
                    let (rx, recv) = (rx.clone(), recv.clone());
                    gmp::go(async move {
                        let _ = rx.recv().await;
                        recv.store(true, SeqCst);
                    });
                }
                yield_a_lot().await;
                assert!(!recv.load(SeqCst), "chan[{cap}]: receive from empty chan");
                let r = gmp::select! { recv(rx) -> _ => true, default => false };
                assert!(!r, "chan[{cap}]: receive from empty chan");
                tx.send(0).await.unwrap();
                tx.send(0).await.unwrap();
            }
            // Send to full chan blocks.
            {
                let (tx, rx) = bounded::<usize>(cap);
                for i in 0..cap {
                    tx.send(i).await.unwrap();
                }
                let sent = Arc::new(AtomicBool::new(false));
                {
                    let (tx, sent) = (tx.clone(), sent.clone());
                    gmp::go(async move {
                        tx.send(0).await.unwrap();
                        sent.store(true, SeqCst);
                    });
                }
                yield_a_lot().await;
                assert!(!sent.load(SeqCst), "chan[{cap}]: send to full chan");
                let r = gmp::select! { send(tx, 0) -> _ => true, default => false };
                assert!(!r, "chan[{cap}]: send to full chan");
                rx.recv().await.unwrap();
            }
            // Close drains then fails.
            {
                let (tx, rx) = bounded::<usize>(cap);
                for i in 0..cap {
                    tx.send(i).await.unwrap();
                }
                tx.close();
                for i in 0..cap {
                    assert_eq!(rx.recv().await, Ok(i));
                }
                assert_eq!(rx.recv().await, Err(RecvError));
                assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
            }
            // Close unblocks receive.
            {
                let (tx, rx) = bounded::<i32>(cap);
                let h = gmp::spawn(async move { rx.recv().await });
                yield_a_lot().await;
                tx.close();
                assert_eq!(h.await.unwrap(), Err(RecvError));
            }
            // FIFO 100.
            {
                let (tx, rx) = bounded::<usize>(cap);
                gmp::go(async move {
                    for i in 0..100 {
                        tx.send(i).await.unwrap();
                    }
                });
                for i in 0..100 {
                    assert_eq!(rx.recv().await, Ok(i), "chan[{cap}]");
                }
            }
            // 4 senders x 4 receivers x 1000: nothing lost.
            {
                const P: usize = 4;
                const L: usize = 1000;
                let (tx, rx) = bounded::<usize>(cap);
                for _ in 0..P {
                    let tx = tx.clone();
                    gmp::go(async move {
                        for i in 0..L {
                            tx.send(i).await.unwrap();
                        }
                    });
                }
                drop(tx);
                let (dtx, drx) = bounded::<Vec<usize>>(0);
                for _ in 0..P {
                    let (rx, dtx) = (rx.clone(), dtx.clone());
                    gmp::go(async move {
                        let mut recv = vec![0usize; L];
                        for _ in 0..L {
                            recv[rx.recv().await.unwrap()] += 1;
                        }
                        dtx.send(recv).await.unwrap();
                    });
                }
                let mut total = vec![0usize; L];
                for _ in 0..P {
                    for (t, r) in total.iter_mut().zip(drx.recv().await.unwrap()) {
                        *t += r;
                    }
                }
                assert!(
                    total.iter().all(|&c| c == P),
                    "chan[{cap}]: lost or duplicated"
                );
            }
            // len/cap.
            {
                let (tx, rx) = bounded::<usize>(cap);
                assert_eq!((rx.len(), rx.capacity()), (0, cap));
                for i in 0..cap {
                    tx.send(i).await.unwrap();
                }
                assert_eq!((tx.len(), tx.capacity()), (cap, cap));
            }
        }
    });
}

// ---- runtime TestSelfSelect ---------------------------------------------------------

#[test]
fn self_select() {
    rt(2).block_on(async {
        for cap in [0usize, 10] {
            let (tx, rx) = bounded::<u32>(cap);
            let mut hs = Vec::new();
            for p in 0..2u32 {
                let (tx, rx) = (tx.clone(), rx.clone());
                hs.push(gmp::spawn(async move {
                    for i in 0..1000 {
                        if p == 0 || i % 2 == 0 {
                            gmp::select! {
                                send(tx, p) -> r => r.unwrap(),
                                recv(rx) -> v => assert!(!(cap == 0 && v.unwrap() == p), "self receive"),
                            }
                        } else {
                            gmp::select! {
                                recv(rx) -> v => assert!(!(cap == 0 && v.unwrap() == p), "self receive"),
                                send(tx, p) -> r => r.unwrap(),
                            }
                        }
                    }
                }));
            }
            for h in hs {
                h.await.unwrap();
            }
        }
    });
}

// ---- runtime TestSelectStress ---------------------------------------------------------

#[test]
fn select_stress() {
    let n = scaled(100_000);
    rt(4).block_on(async move {
        let chans: Vec<(Sender<i32>, Receiver<i32>)> =
            vec![bounded(0), bounded(0), bounded(2), bounded(3)];
        let mut hs = Vec::new();
        for (tx, rx) in &chans {
            let tx = tx.clone();
            hs.push(gmp::spawn(async move {
                for _ in 0..n {
                    tx.send(0).await.unwrap();
                }
            }));
            let rx = rx.clone();
            hs.push(gmp::spawn(async move {
                for _ in 0..n {
                    rx.recv().await.unwrap();
                }
            }));
        }
        let txs: Vec<Sender<i32>> = chans.iter().map(|c| c.0.clone()).collect();
        hs.push(gmp::spawn(async move {
            let dead = dead_sender::<i32>();
            let mut c: Vec<&Sender<i32>> = txs.iter().collect();
            let mut cnt = [0usize; 4];
            for _ in 0..4 * n {
                let k = gmp::select! {
                    send(c[3], 0) -> r => { r.unwrap(); 3 }
                    send(c[2], 0) -> r => { r.unwrap(); 2 }
                    send(c[0], 0) -> r => { r.unwrap(); 0 }
                    send(c[1], 0) -> r => { r.unwrap(); 1 }
                };
                cnt[k] += 1;
                if cnt[k] == n {
                    c[k] = &dead;
                }
            }
        }));
        let rxs: Vec<Receiver<i32>> = chans.iter().map(|c| c.1.clone()).collect();
        hs.push(gmp::spawn(async move {
            let nil = never::<i32>();
            let mut c: Vec<&Receiver<i32>> = rxs.iter().collect();
            let mut cnt = [0usize; 4];
            for _ in 0..4 * n {
                let k = gmp::select! {
                    recv(c[0]) -> v => { v.unwrap(); 0 }
                    recv(c[1]) -> v => { v.unwrap(); 1 }
                    recv(c[2]) -> v => { v.unwrap(); 2 }
                    recv(c[3]) -> v => { v.unwrap(); 3 }
                };
                cnt[k] += 1;
                if cnt[k] == n {
                    c[k] = &nil;
                }
            }
        }));
        for h in hs {
            h.await.unwrap();
        }
    });
}

// ---- runtime TestSelectFairness -------------------------------------------------------

#[test]
fn select_fairness() {
    const TRIALS: usize = 10_000;
    rt(2).block_on(async {
        let (c1tx, c1) = bounded::<u8>(TRIALS + 1);
        let (c2tx, c2) = bounded::<u8>(TRIALS + 1);
        for _ in 0..TRIALS + 1 {
            c1tx.send(1).await.unwrap();
            c2tx.send(2).await.unwrap();
        }
        let (_c3tx, c3) = bounded::<u8>(0);
        let (_c4tx, c4) = bounded::<u8>(0);
        let (out_tx, out) = bounded::<u8>(0);
        let (done_tx, done) = bounded::<()>(0);
        let h = gmp::spawn(async move {
            loop {
                let b = gmp::select! {
                    recv(c3) -> b => b.unwrap(),
                    recv(c4) -> b => b.unwrap(),
                    recv(c1) -> b => b.unwrap(),
                    recv(c2) -> b => b.unwrap(),
                };
                gmp::select! {
                    send(out_tx, b) -> r => r.unwrap(),
                    recv(done) -> _ => return,
                }
            }
        });
        let (mut n1, mut n2) = (0usize, 0usize);
        for _ in 0..TRIALS {
            match out.recv().await.unwrap() {
                1 => n1 += 1,
                2 => n2 += 1,
                b => panic!("unexpected value {b}"),
            }
        }
        let r = n1 as f64 / TRIALS as f64;
        let e = (r - 0.5).abs();
        assert!(
            e <= 4.891676 / (2.0 * (TRIALS as f64).sqrt()),
            "unfair select: {n1}, {n2}"
        );
        done_tx.close();
        h.await.unwrap();
    });
}

// ---- runtime TestNonblockSelectRace (and Race2) ------------------------------------------

#[test]
fn nonblock_select_race() {
    let n = scaled(100_000);
    rt(4).block_on(async move {
        let (done_tx, done_rx) = bounded::<bool>(1);
        for _ in 0..n {
            let (c1tx, c1) = bounded::<i32>(1);
            let (c2tx, c2) = bounded::<i32>(1);
            c1tx.send(1).await.unwrap();
            let done_tx = done_tx.clone();
            let c1b = c1.clone();
            gmp::go(async move {
                let ok = gmp::select! {
                    recv(c1b) -> _ => true,
                    recv(c2) -> _ => true,
                    default => false,
                };
                done_tx.send(ok).await.unwrap();
            });
            c2tx.send(1).await.unwrap();
            gmp::select! {
                recv(c1) -> _ => {},
                default => {},
            }
            assert!(done_rx.recv().await.unwrap(), "no chan is ready");
        }
    });
}

#[test]
fn nonblock_select_race2() {
    let n = scaled(100_000);
    rt(4).block_on(async move {
        let (done_tx, done_rx) = bounded::<bool>(1);
        for _ in 0..n {
            let (c1tx, c1) = bounded::<i32>(1);
            let (c2tx, c2) = bounded::<i32>(0);
            c1tx.send(1).await.unwrap();
            let done_tx = done_tx.clone();
            let c1b = c1.clone();
            gmp::go(async move {
                let ok = gmp::select! {
                    recv(c1b) -> _ => true,
                    recv(c2) -> _ => true,
                    default => false,
                };
                done_tx.send(ok).await.unwrap();
            });
            c2tx.close();
            gmp::select! {
                recv(c1) -> _ => {},
                default => {},
            }
            assert!(done_rx.recv().await.unwrap(), "no chan is ready");
        }
    });
}

// ---- runtime TestMultiConsumer -------------------------------------------------------------

#[test]
fn multi_consumer() {
    const NWORK: usize = 23;
    let niter = scaled(271_828);
    rt(4).block_on(async move {
        let (qtx, qrx) = bounded::<usize>(NWORK * 3);
        let (rtx, rrx) = bounded::<usize>(NWORK * 3);
        let mut ws = Vec::new();
        for _ in 0..NWORK {
            let (qrx, rtx) = (qrx.clone(), rtx.clone());
            ws.push(gmp::spawn(async move {
                while let Ok(v) = qrx.recv().await {
                    // Go's version does a bit of work here.
                    rtx.send(v).await.unwrap();
                }
            }));
        }
        drop(rtx);
        let expect = Arc::new(AtomicU64::new(0));
        let e2 = expect.clone();
        gmp::go(async move {
            for i in 0..niter {
                let v = (i * 17) % 8191;
                e2.fetch_add(v as u64, SeqCst);
                qtx.send(v).await.unwrap();
            }
        });
        let (mut n, mut s) = (0usize, 0u64);
        while let Ok(v) = rrx.recv().await {
            n += 1;
            s += v as u64;
        }
        for w in ws {
            w.await.unwrap();
        }
        assert_eq!(n, niter);
        assert_eq!(s, expect.load(SeqCst));
    });
}

// ---- runtime TestSelectDuplicateChannel -------------------------------------------------------

#[test]
fn select_duplicate_channel() {
    rt(1).block_on(async {
        let (ctx, crx) = bounded::<i32>(0);
        let (dtx, drx) = bounded::<i32>(0);
        let (etx, erx) = bounded::<i32>(0);
        // A: select on c, c, d.
        {
            let crx = crx.clone();
            gmp::go(async move {
                gmp::select! {
                    recv(crx) -> _ => {},
                    recv(crx) -> _ => {},
                    recv(drx) -> _ => {},
                }
                etx.send(9).await.unwrap();
            });
        }
        yield_a_lot().await; // A is queued on c (twice) and d
                             // B: plain receive on c, queued behind A.
        let b = gmp::spawn(async move { crx.recv().await });
        yield_a_lot().await;
        dtx.send(7).await.unwrap(); // wakes A, which dequeues itself from c
        assert_eq!(erx.recv().await, Ok(9));
        ctx.send(8).await.unwrap(); // must reach B
        assert_eq!(b.await.unwrap(), Ok(8));
    });
}

// ---- runtime TestPseudoRandomSend ----------------------------------------------------------------

#[test]
fn pseudo_random_send() {
    rt(2).block_on(async {
        let n = 100;
        for cap in [0usize, 100] {
            let (tx, rx) = bounded::<u8>(cap);
            let h = gmp::spawn(async move {
                let mut l = Vec::new();
                for _ in 0..n {
                    l.push(rx.recv().await.unwrap());
                }
                l
            });
            for _ in 0..n {
                gmp::select! {
                    send(tx, 0) -> r => r.unwrap(),
                    send(tx, 1) -> r => r.unwrap(),
                }
            }
            let l = h.await.unwrap();
            let ones = l.iter().filter(|&&b| b == 1).count();
            assert!(
                ones > 10 && ones < 90,
                "want pseudorandom, got {ones} ones of {n}"
            );
        }
    });
}
