//! Channel basics through the facade: hand-off, buffering, close, try ops,
//! blocking forms from plain threads, Stream, never, select syntax.

use futures::StreamExt;
use gmp::chan::{bounded, never, RecvError, SendError, TryRecvError, TrySendError};

mod support;
use support::rt;

#[test]
fn unbuffered_handoff() {
    rt(2).block_on(async {
        let (tx, rx) = bounded::<u64>(0);
        let h = gmp::spawn(async move {
            let mut s = 0;
            while let Ok(v) = rx.recv().await {
                s += v;
            }
            s
        });
        for i in 0..1000 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        assert_eq!(h.await.unwrap(), (0..1000).sum::<u64>());
    });
}

#[test]
fn buffered_fifo_len_cap_close_drain() {
    rt(1).block_on(async {
        let (tx, rx) = bounded::<i32>(3);
        assert_eq!(tx.capacity(), 3);
        for i in 0..3 {
            tx.send(i).await.unwrap();
        }
        assert_eq!(rx.len(), 3);
        assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
        assert!(tx.close());
        assert!(!rx.close());
        assert!(rx.is_closed() && tx.is_closed());
        assert_eq!(tx.send(5).await, Err(SendError(5)));
        assert!(matches!(tx.try_send(6), Err(TrySendError::Closed(6))));
        for i in 0..3 {
            assert_eq!(rx.recv().await, Ok(i));
        }
        assert_eq!(rx.recv().await, Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

#[test]
fn blocking_forms_from_threads() {
    let (tx, rx) = bounded::<u32>(0);
    let t = std::thread::spawn(move || {
        for i in 0..100 {
            tx.send_blocking(i).unwrap();
        }
    });
    let mut got = Vec::new();
    while let Ok(v) = rx.recv_blocking() {
        got.push(v);
    }
    t.join().unwrap();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn try_ops_off_runtime() {
    let (tx, rx) = bounded::<u8>(1);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.try_send(1).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
}

#[test]
#[should_panic(expected = "recv().await")]
fn recv_blocking_in_goroutine_panics() {
    rt(1).block_on(async {
        let (_tx, rx) = bounded::<u8>(1);
        let _ = rx.recv_blocking();
    });
}

/// `.await` works off the runtime too (more in `chan_foreign.rs`).
#[test]
fn recv_await_off_runtime_works() {
    let (tx, rx) = bounded::<u8>(1);
    futures::executor::block_on(tx.send(3)).unwrap();
    assert_eq!(futures::executor::block_on(rx.recv()), Ok(3));
}

#[test]
fn stream_and_clone() {
    rt(2).block_on(async {
        let (tx, rx) = bounded::<u32>(4);
        let tx2 = tx.clone();
        gmp::go(async move {
            for i in 0..50 {
                tx.send(i).await.unwrap();
            }
        });
        gmp::go(async move {
            for i in 50..100 {
                tx2.send(i).await.unwrap();
            }
        });
        let mut v: Vec<u32> = rx.clone().collect().await;
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn select_basics() {
    rt(2).block_on(async {
        let (tx, rx) = bounded::<i32>(1);
        let (tx2, rx2) = bounded::<&'static str>(1);
        let nil = never::<i32>();
        tx.send(1).await.unwrap();
        let r = gmp::select! {
            recv(rx) -> v => v.unwrap() * 10,
            recv(nil) -> _ => unreachable!(),
            recv(&rx2) -> s => { s.unwrap().len() as i32 }
        };
        assert_eq!(r, 10);
        let r = gmp::select! {
            recv(rx) -> _ => 1,
            default => 2,
        };
        assert_eq!(r, 2);
        let r = gmp::select! {
            send(tx2, "hey") -> res => { res.unwrap(); 3 }
            recv(rx) -> _v => 4,
        };
        assert_eq!(r, 3);
        let r = gmp::select! { default => 7 };
        assert_eq!(r, 7);
        // break/continue in arm bodies act on the enclosing loop.
        let mut n = 0;
        loop {
            tx.try_send(n).ok();
            gmp::select! {
                recv(rx) -> v => {
                    n = v.unwrap() + 1;
                    if n == 5 { break; }
                    continue;
                }
            }
        }
        assert_eq!(n, 5);
        // Parked select woken by another goroutine.
        let (tx3, rx3) = bounded::<u8>(0);
        gmp::go(async move {
            gmp::runtime::gosched().await;
            tx3.send(42).await.unwrap();
        });
        let got = gmp::select! {
            recv(rx3) -> v => v,
            recv(never::<u8>()) -> v => v,
        };
        assert_eq!(got, Ok(42));
        // Send on closed fires with the value.
        tx2.close();
        let r = gmp::select! { send(tx2, "x") -> r => r };
        assert_eq!(r, Err(SendError("x")));
    });
}

/// A send or receive future dropped before its first poll does nothing:
/// the value is dropped with it, nothing reaches the channel, nothing is
/// taken from it (its sudog was never written; see `hchan::Waiter`).
#[test]
fn unpolled_futures_do_nothing_when_dropped() {
    struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    rt(1).block_on(async {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = bounded::<Counted>(1);
        drop(tx.send(Counted(drops.clone())));
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(tx.len(), 0);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        tx.send(Counted(drops.clone())).await.ok().unwrap();
        drop(rx.recv());
        assert_eq!(rx.len(), 1, "an unpolled recv took the value");
        drop(rx.recv().await.unwrap());
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 2);
    });
}
