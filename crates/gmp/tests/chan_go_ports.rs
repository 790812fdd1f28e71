//! Go's channel test programs (go/test/chan/*.go), written anew for gmp's
//! channels and `select!`; runtime/chan_test.go's are in
//! `chan_go_runtime_ports.rs`. Sizes are Go's in release
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
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;

mod support;
use support::go_ports::{dead_sender, scaled, yield_a_lot};
use support::rt;

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

// ---- select6.go: waiter queues survive a select dequeue ---------------------------

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
