//! Go's channel test programs (go/test/chan/*.go and runtime/chan_test.go),
//! written anew for gmp's channels and `select!`. Sizes are Go's in release
//! builds and scaled down in debug builds. No timing assertions: where Go
//! sleeps to order goroutines, these tests yield (`gosched`) on one P, which
//! runs the yielded-to goroutines first.
//!
//! `perm.go` is compile-time only in Go (direction errors). Here the
//! directions are separate types: a `Sender` has no `recv` and a `Receiver`
//! no `send`, so e.g. `tx.recv()` does not compile; `directions_are_types`
//! below only checks the positive half (what compiles).

use gmp::chan::{bounded, never, Receiver, RecvError, Sender, TryRecvError, TrySendError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

mod support;
use support::rt;

const fn scaled(n: usize) -> usize {
    if cfg!(debug_assertions) {
        n / 10
    } else {
        n
    }
}

async fn yield_a_lot() {
    for _ in 0..20 {
        gmp::runtime::gosched().await;
    }
}

/// A sender nobody receives from: never ready, like Go's nil channel in a
/// send case (gmp's `never()` is a receiver).
fn dead_sender<T>() -> Sender<T> {
    let (tx, rx) = bounded(0);
    std::mem::forget(rx);
    tx
}

// ---- sieve1.go -------------------------------------------------------------

async fn generate(ch: Sender<u32>) {
    let mut i = 2;
    while ch.send(i).await.is_ok() {
        i += 1;
    }
}

async fn filter(inp: Receiver<u32>, out: Sender<u32>, prime: u32) {
    while let Ok(i) = inp.recv().await {
        if i % prime != 0 && out.send(i).await.is_err() {
            return;
        }
    }
}

#[test]
fn sieve() {
    rt(2).block_on(async {
        let (tx, mut rx) = bounded::<u32>(0);
        gmp::go(generate(tx));
        let mut primes = Vec::new();
        loop {
            let p = rx.recv().await.unwrap();
            if p >= 100 {
                break;
            }
            primes.push(p);
            let (tx1, rx1) = bounded(0);
            gmp::go(filter(rx, tx1, p));
            rx = rx1;
        }
        let want: Vec<u32> = (2..100).filter(|n| (2..*n).all(|d| n % d != 0)).collect();
        assert_eq!(primes, want);
    });
}

// ---- sieve2.go: buffered channels and a proxy select -----------------------

#[test]
fn sieve_buffered_proxy() {
    rt(2).block_on(async {
        let (tx, rx) = bounded::<u32>(10);
        gmp::go(generate(tx));
        // A proxy that forwards through a select over recv and send.
        let (ptx, prx) = bounded::<u32>(50);
        gmp::go(async move {
            let mut pending: Option<u32> = None;
            loop {
                if let Some(v) = pending.take() {
                    gmp::select! {
                        send(ptx, v) -> r => if r.is_err() { return },
                    }
                } else {
                    match rx.recv().await {
                        Ok(v) => pending = Some(v),
                        Err(_) => return,
                    }
                }
            }
        });
        let mut rx = prx;
        let mut primes = Vec::new();
        loop {
            let p = rx.recv().await.unwrap();
            if p >= 100 {
                break;
            }
            primes.push(p);
            let (tx1, rx1) = bounded(10);
            gmp::go(filter(rx, tx1, p));
            rx = rx1;
        }
        assert_eq!(primes.len(), 25);
        assert_eq!(primes.last(), Some(&97));
    });
}

// ---- fifo.go ---------------------------------------------------------------

#[test]
fn fifo_async_and_sync_chain() {
    rt(2).block_on(async {
        const N: u32 = 10;
        let (tx, rx) = bounded::<u32>(N as usize);
        for i in 0..N {
            tx.send(i).await.unwrap();
        }
        for i in 0..N {
            assert_eq!(rx.recv().await, Ok(i));
        }

        // Daisy chain: goroutine i waits for its turn, sends i, passes on.
        let (ch_tx, ch_rx) = bounded::<u32>(0);
        let (first_tx, mut inp) = bounded::<()>(0);
        let mut first = Some(first_tx);
        for i in 0..N {
            let (out_tx, out_rx) = bounded::<()>(0);
            let ch = ch_tx.clone();
            let my_in = inp;
            gmp::go(async move {
                my_in.recv().await.unwrap();
                ch.send(i).await.unwrap();
                out_tx.send(()).await.unwrap();
            });
            inp = out_rx;
        }
        first.take().unwrap().send(()).await.unwrap();
        for i in 0..N {
            assert_eq!(ch_rx.recv().await, Ok(i));
        }
        inp.recv().await.unwrap();
    });
}

// ---- nonblock.go -----------------------------------------------------------

async fn nonblock_for<T: Clone + PartialEq + std::fmt::Debug + Send + 'static>(v: T) {
    const MAX_TRIES: usize = 10_000;
    for cap in [0usize, 1] {
        let (tx, rx) = bounded::<T>(cap);
        // Nothing there: a non-blocking receive does not block.
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        // A blocked sender goroutine: a non-blocking receive eventually
        // gets its value.
        let (sync_tx, sync_rx) = bounded::<()>(0);
        {
            let tx = tx.clone();
            let v = v.clone();
            gmp::go(async move {
                tx.send(v).await.unwrap();
                sync_tx.send(()).await.unwrap();
            });
        }
        let mut got = None;
        for _ in 0..MAX_TRIES {
            match rx.try_recv() {
                Ok(x) => {
                    got = Some(x);
                    break;
                }
                Err(TryRecvError::Empty) => gmp::runtime::gosched().await,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, Some(v.clone()));
        sync_rx.recv().await.unwrap();

        // A blocked receiver goroutine: a non-blocking send eventually
        // succeeds (for cap 1 at once).
        let (sync_tx, sync_rx) = bounded::<()>(0);
        {
            let rx = rx.clone();
            let v = v.clone();
            gmp::go(async move {
                assert_eq!(rx.recv().await, Ok(v));
                sync_tx.send(()).await.unwrap();
            });
        }
        let mut sent = false;
        let mut val = v.clone();
        for _ in 0..MAX_TRIES {
            match tx.try_send(val) {
                Ok(()) => {
                    sent = true;
                    break;
                }
                Err(TrySendError::Full(x)) => {
                    val = x;
                    gmp::runtime::gosched().await;
                }
                Err(TrySendError::Closed(_)) => panic!("closed"),
            }
        }
        assert!(sent);
        sync_rx.recv().await.unwrap();
    }
}

#[test]
fn nonblock() {
    rt(2).block_on(async {
        nonblock_for(123i32).await;
        nonblock_for(123i64).await;
        nonblock_for(true).await;
        nonblock_for(String::from("hello")).await;
    });
}

// ---- perm.go (see module docs) ----------------------------------------------

#[test]
fn directions_are_types() {
    fn send_only<T>(_: &Sender<T>) {}
    fn recv_only<T>(_: &Receiver<T>) {}
    let (tx, rx) = bounded::<u8>(1);
    send_only(&tx);
    recv_only(&rx);
    recv_only(&never::<u8>());
}

// ---- select.go: every send value is evaluated; nil cases never fire -------

#[test]
fn select_evaluates_every_case() {
    rt(1).block_on(async {
        let counter = std::cell::Cell::new(0u32);
        let shift = std::cell::Cell::new(0u32);
        let get_value = || {
            counter.set(counter.get() + 1);
            1u32 << shift.get()
        };
        // Go's Send(a, b): nil a channel once it fired.
        async fn send_loop(
            a: Option<&Sender<u32>>,
            b: Option<&Sender<u32>>,
            get_value: &dyn Fn() -> u32,
            shift: &std::cell::Cell<u32>,
        ) -> i32 {
            let dead = dead_sender::<u32>();
            let (mut a, mut b) = (a.unwrap_or(&dead), b.unwrap_or(&dead));
            let mut i = 0;
            loop {
                gmp::select! {
                    send(a, get_value()) -> r => { r.unwrap(); i += 1; a = &dead; }
                    send(b, get_value()) -> r => { r.unwrap(); i += 1; b = &dead; }
                    default => break,
                }
                shift.set(shift.get() + 1);
            }
            i
        }
        let (atx, arx) = bounded::<u32>(1);
        let (btx, brx) = bounded::<u32>(1);
        assert_eq!(
            send_loop(Some(&atx), Some(&btx), &get_value, &shift).await,
            2
        );
        let (av, bv) = (arx.recv().await.unwrap(), brx.recv().await.unwrap());
        assert_eq!(av | bv, 3);
        assert_eq!(send_loop(Some(&atx), None, &get_value, &shift).await, 1);
        assert_eq!(counter.get(), 10);
    });
}

// ---- select3.go: the block matrix (a send on a closed channel fires, with Err) ----

#[test]
fn select3_matrix() {
    rt(1).block_on(async {
        let nil = never::<i32>();
        let (ctx, crx) = bounded::<i32>(0);
        ctx.close();
        let (ftx, _frx) = bounded::<i32>(1);
        ftx.try_send(1).unwrap();

        // nil channel recv with default: default fires; never the nil case.
        for _ in 0..1000 {
            let r = gmp::select! { recv(nil) -> _ => 1, default => 0 };
            assert_eq!(r, 0);
        }
        // closed channel recv never blocks.
        assert_eq!(crx.recv().await, Err(RecvError));
        let r = gmp::select! { recv(crx) -> v => v, default => Ok(9) };
        assert_eq!(r, Err(RecvError));
        // closed channel send is ready and fails with the value.
        let r = gmp::select! { send(ctx, 5) -> r => r.map_err(|e| e.0), default => Ok(()) };
        assert_eq!(r, Err(5));
        // full buffer: send blocks (default fires).
        let r = gmp::select! { send(ftx, 2) -> _ => 1, default => 0 };
        assert_eq!(r, 0);
        // empty unbuffered: recv blocks.
        let (_etx, erx) = bounded::<i32>(0);
        let r = gmp::select! { recv(erx) -> _ => 1, default => 0 };
        assert_eq!(r, 0);
        // select with only nil cases and default.
        let r = gmp::select! { recv(nil) -> _ => 1, recv(never::<u8>()) -> _ => 2, default => 0 };
        assert_eq!(r, 0);

        // Blocking forms never finish: run them in goroutines and check
        // they are still parked after everyone else has run.
        let finished = Arc::new(AtomicU32::new(0));
        {
            let f = finished.clone();
            gmp::go(async move {
                let _keep = &f;
                gmp::select! {};
            });
        }
        {
            let f = finished.clone();
            gmp::go(async move {
                let nil = never::<i32>();
                let _ = nil.recv().await;
                f.fetch_add(1, SeqCst);
            });
        }
        {
            let f = finished.clone();
            gmp::go(async move {
                let nil = never::<i32>();
                let dead = dead_sender::<i32>();
                gmp::select! {
                    recv(nil) -> _ => {},
                    send(dead, 1) -> _ => {},
                }
                f.fetch_add(1, SeqCst);
            });
        }
        yield_a_lot().await;
        assert_eq!(finished.load(SeqCst), 0);
        let reasons: Vec<String> = gmp::runtime::goroutines()
            .into_iter()
            .map(|g| format!("{:?}", g))
            .collect();
        let all = reasons.join("\n");
        assert!(
            all.contains("SelectNoCases") || all.contains("select (no cases)"),
            "{all}"
        );
    });
}

// ---- select6.go: waiter queues survive a select dequeue (golang/go#2075) -----

#[test]
fn select6_queue_survives_dequeue() {
    rt(1).block_on(async {
        let (c1tx, c1rx) = bounded::<bool>(0);
        let (c2tx, c2rx) = bounded::<bool>(0);
        let (c3tx, c3rx) = bounded::<bool>(0);
        {
            let c1rx = c1rx.clone();
            gmp::go(async move {
                let _ = c1rx.recv().await;
            });
        }
        {
            let (c1rx, c3tx) = (c1rx.clone(), c3tx.clone());
            gmp::go(async move {
                gmp::select! {
                    recv(c1rx) -> _ => panic!("dummy"),
                    recv(c2rx) -> _ => { c3tx.send(true).await.unwrap(); }
                }
                let _ = c1rx.recv().await;
            });
        }
        {
            let c2tx = c2tx.clone();
            gmp::go(async move {
                c2tx.send(true).await.unwrap();
            });
        }
        c3rx.recv().await.unwrap();
        c1tx.send(true).await.unwrap();
        c1tx.send(true).await.unwrap();
    });
}

// ---- doubleselect.go ---------------------------------------------------------

#[test]
fn doubleselect() {
    let n = scaled(100_000);
    rt(2).block_on(async move {
        let chans: Vec<(Sender<usize>, Receiver<usize>)> = (0..4).map(|_| bounded(0)).collect();
        let txs: Vec<Sender<usize>> = chans.iter().map(|c| c.0.clone()).collect();
        let (mux_tx, mux_rx) = bounded::<usize>(0);
        let (done_tx, done_rx) = bounded::<()>(0);
        let rxs: Vec<Receiver<usize>> = chans.into_iter().map(|c| c.1).collect();
        gmp::go(async move {
            for i in 0..n {
                gmp::select! {
                    send(txs[0], i) -> r => r.unwrap(),
                    send(txs[1], i) -> r => r.unwrap(),
                    send(txs[2], i) -> r => r.unwrap(),
                    send(txs[3], i) -> r => r.unwrap(),
                }
            }
            for t in &txs {
                t.close();
            }
        });
        for rx in rxs {
            let (out, done) = (mux_tx.clone(), done_tx.clone());
            gmp::go(async move {
                while let Ok(v) = rx.recv().await {
                    out.send(v).await.unwrap();
                }
                done.send(()).await.unwrap();
            });
        }
        gmp::go(async move {
            for _ in 0..4 {
                done_rx.recv().await.unwrap();
            }
            mux_tx.close();
        });
        let mut seen = HashSet::new();
        while let Ok(v) = mux_rx.recv().await {
            assert!(seen.insert(v), "got duplicate value {v}");
        }
        assert_eq!(seen.len(), n);
    });
}

// ---- zerosize.go -------------------------------------------------------------

#[test]
fn zerosize() {
    rt(1).block_on(async {
        let (tx, rx) = bounded::<()>(0);
        let (tx2, rx2) = bounded::<[u8; 0]>(3);
        gmp::go(async move {
            tx.send(()).await.unwrap();
        });
        rx.recv().await.unwrap();
        tx2.send([]).await.unwrap();
        assert_eq!(rx2.len(), 1);
        assert_eq!(rx2.recv().await, Ok([]));
    });
}

// ---- goroutines.go: a 10,000-goroutine chain ---------------------------------

#[test]
fn goroutine_chain_10000() {
    rt(2).block_on(async {
        const N: usize = 10_000;
        let (leftmost_tx, leftmost_rx) = bounded::<usize>(0);
        let mut left = leftmost_tx;
        for _ in 0..N {
            let (right_tx, right_rx) = bounded::<usize>(0);
            gmp::go(async move {
                let v = right_rx.recv().await.unwrap();
                left.send(v + 1).await.unwrap();
            });
            left = right_tx;
        }
        left.send(0).await.unwrap();
        assert_eq!(leftmost_rx.recv().await, Ok(N));
    });
}

// ---- closedchan.go -------------------------------------------------------------

#[test]
fn closedchan() {
    rt(2).block_on(async {
        for cap in [0usize, 2] {
            let (tx, rx) = bounded::<i32>(cap);
            if cap > 0 {
                tx.send(1).await.unwrap();
                tx.send(2).await.unwrap();
            }
            assert!(tx.close());
            assert!(!tx.close(), "double close reports false");
            if cap > 0 {
                assert_eq!(rx.recv().await, Ok(1));
                let r = gmp::select! { recv(rx) -> v => v, default => Ok(-1) };
                assert_eq!(r, Ok(2));
            }
            for _ in 0..3 {
                assert_eq!(rx.recv().await, Err(RecvError));
                assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
                let r = gmp::select! { recv(rx) -> v => v, default => Ok(-1) };
                assert_eq!(r, Err(RecvError));
                assert!(tx.send(7).await.is_err());
                assert!(matches!(tx.try_send(7), Err(TrySendError::Closed(7))));
                let r = gmp::select! { send(tx, 7) -> r => r.is_err(), default => false };
                assert!(r);
            }
            assert_eq!(rx.len(), 0);
            assert_eq!(rx.capacity(), cap);
        }
        // Close wakes every blocked receiver (of one channel) and every
        // blocked sender (of another); senders get their value back.
        let (tx, rx) = bounded::<i32>(0);
        let (stx, _srx) = bounded::<i32>(0);
        let woke = Arc::new(AtomicU32::new(0));
        let mut hs = Vec::new();
        for i in 0..100 {
            let (rx, stx, woke) = (rx.clone(), stx.clone(), woke.clone());
            hs.push(gmp::spawn(async move {
                if i % 2 == 0 {
                    assert_eq!(rx.recv().await, Err(RecvError));
                } else {
                    assert_eq!(stx.send(i).await.map_err(|e| e.0), Err(i));
                }
                woke.fetch_add(1, SeqCst);
            }));
        }
        yield_a_lot().await;
        assert_eq!(woke.load(SeqCst), 0);
        tx.close();
        stx.close();
        for h in hs {
            h.await.unwrap();
        }
        assert_eq!(woke.load(SeqCst), 100);
    });
}

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
