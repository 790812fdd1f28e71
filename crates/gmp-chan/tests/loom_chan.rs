//! loom models of the channel core: unbuffered hand-off, close racing with
//! send and recv, and select committing exactly one of two cases fired
//! concurrently, the `Sink` flush path, nil select cases, a channel's
//! first use from off the runtime re-waking a parked goroutine, and the
//! lock-free ring of buffered channels (`ring_*`: lock-free sends and
//! receives racing a party that parks, close, a cancelled receive and a
//! select). Loom
//! threads are off the runtime unless they `pretend_goroutine`, so every
//! model also runs a channel's first outside use (`Chan::become_foreign`,
//! a lock and a walk of the wait queues) racing the others. Run with:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p gmp-chan --release --test loom_chan`
#![cfg(loom)]

use gmp_chan::{bounded, RecvError, SendError};
use loom::future::block_on;
use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use std::future::Future;
use std::sync::atomic::Ordering::SeqCst;

#[test]
fn unbuffered_handoff() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(0);
        let t = thread::spawn(move || block_on(tx.send(7)));
        assert_eq!(block_on(rx.recv()), Ok(7));
        assert_eq!(t.join().unwrap(), Ok(()));
    });
}

#[test]
fn buffered_full_sender_refills_tail() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let t = thread::spawn(move || {
            block_on(tx.send(1)).unwrap();
            block_on(tx.send(2)).unwrap();
        });
        assert_eq!(block_on(rx.recv()), Ok(1));
        assert_eq!(block_on(rx.recv()), Ok(2));
        t.join().unwrap();
        assert_eq!(block_on(rx.recv()), Err(RecvError));
    });
}

/// Unbuffered send, receive and close all racing: a send succeeds exactly
/// when the receiver got its value; otherwise both fail.
#[test]
fn close_races_send_and_recv() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(0);
        let tx2 = tx.clone();
        let sender = thread::spawn(move || block_on(tx.send(5)));
        let closer = thread::spawn(move || tx2.close());
        let r = block_on(rx.recv());
        let s = sender.join().unwrap();
        assert!(closer.join().unwrap());
        match (s, r) {
            (Ok(()), Ok(5)) => {}
            (Err(SendError(5)), Err(RecvError)) => {}
            other => panic!("inconsistent outcome {other:?}"),
        }
    });
}

/// Receive-side cancellation racing a sender: the value is never lost.
#[test]
fn cancelled_recv_passes_value_on() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let rx2 = rx.clone();
        let t = thread::spawn(move || block_on(tx.send(3)).unwrap());
        {
            // Poll once (may queue), then drop.
            let mut f = Box::pin(rx2.recv());
            let w = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&w);
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                assert_eq!(v, Ok(3));
                t.join().unwrap();
                return;
            }
        }
        t.join().unwrap();
        assert_eq!(rx.try_recv(), Ok(3));
    });
}

/// A select parked on two unbuffered channels while two senders fire at
/// once: exactly one case commits; the other value stays with its sender
/// and is received afterwards.
#[test]
fn select_exactly_once() {
    loom::model(|| {
        let (tx1, rx1) = bounded::<u32>(0);
        let (tx2, rx2) = bounded::<u32>(0);
        let done1 = Arc::new(AtomicBool::new(false));
        let done2 = Arc::new(AtomicBool::new(false));
        let (d1, d2) = (done1.clone(), done2.clone());
        let a = thread::spawn(move || {
            let r = block_on(tx1.send(1));
            d1.store(true, SeqCst);
            r
        });
        let b = thread::spawn(move || {
            let r = block_on(tx2.send(2));
            d2.store(true, SeqCst);
            r
        });
        let first = block_on(async {
            gmp_chan::select! {
                recv(rx1) -> v => (1, v.unwrap()),
                recv(rx2) -> v => (2, v.unwrap()),
            }
        });
        // The case that did not fire took nothing: its sender is still
        // blocked (an unbuffered send completes only on a real receive).
        if first.0 == 1 {
            assert!(!done2.load(SeqCst), "losing case took a value");
        } else {
            assert!(!done1.load(SeqCst), "losing case took a value");
        }
        let second = if first.0 == 1 {
            block_on(rx2.recv()).unwrap()
        } else {
            block_on(rx1.recv()).unwrap()
        };
        assert_eq!(first.0, first.1);
        assert_eq!(first.1 + second, 3);
        assert_eq!(a.join().unwrap(), Ok(()));
        assert_eq!(b.join().unwrap(), Ok(()));
    });
}

/// Two selects, each with a send and a recv case on one unbuffered channel:
/// they pair with each other, never with themselves.
#[test]
fn self_select_pairs_across() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(0);
        let (tx2, rx2) = (tx.clone(), rx.clone());
        let t = thread::spawn(move || {
            block_on(async {
                gmp_chan::select! {
                    send(tx2, 10) -> r => { r.unwrap(); None }
                    recv(rx2) -> v => Some(v.unwrap()),
                }
            })
        });
        let mine = block_on(async {
            gmp_chan::select! {
                send(tx, 20) -> r => { r.unwrap(); None }
                recv(rx) -> v => Some(v.unwrap()),
            }
        });
        let theirs = t.join().unwrap();
        match (mine, theirs) {
            (Some(10), None) | (None, Some(20)) => {}
            other => panic!("select paired with itself or lost a value: {other:?}"),
        }
    });
}

/// The select fast path (a lock-free readiness hint, then one channel's
/// lock) racing a sender on one channel and a closer on the other: exactly
/// one case commits, and a select that fired on the closed channel took
/// nothing from the sender, whose value is received afterwards.
#[test]
fn select_fast_path_races_send_and_close() {
    loom::model(|| {
        let (tx1, rx1) = bounded::<u32>(0);
        let (tx2, rx2) = bounded::<u32>(0);
        let done1 = Arc::new(AtomicBool::new(false));
        let d1 = done1.clone();
        let a = thread::spawn(move || {
            let r = block_on(tx1.send(1));
            d1.store(true, SeqCst);
            r
        });
        let b = thread::spawn(move || tx2.close());
        let first = block_on(async {
            gmp_chan::select! {
                recv(rx1) -> v => (1, v),
                recv(rx2) -> v => (2, v),
            }
        });
        match first {
            (1, Ok(1)) => {}
            (2, Err(RecvError)) => {
                assert!(!done1.load(SeqCst), "closed case also took the value");
                assert_eq!(block_on(rx1.recv()), Ok(1));
            }
            other => panic!("bad select outcome {other:?}"),
        }
        assert_eq!(a.join().unwrap(), Ok(()));
        assert!(b.join().unwrap());
    });
}

/// `select!` with `default` on a buffered channel that a sender fills
/// concurrently: either the value is received or `default` runs and the
/// value is still in the channel; never lost, never taken twice.
#[test]
fn select_default_fast_path_buffered() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let t = thread::spawn(move || block_on(tx.send(9)));
        let got = block_on(async {
            gmp_chan::select! {
                recv(rx) -> v => Some(v.unwrap()),
                default => None,
            }
        });
        assert_eq!(t.join().unwrap(), Ok(()));
        match got {
            Some(v) => {
                assert_eq!(v, 9);
                assert_eq!(rx.len(), 0);
            }
            None => assert_eq!(rx.try_recv(), Ok(9)),
        }
    });
}

/// A send case with `default` racing a receiver on an unbuffered channel
/// (the `send_ready` hint follows the receiver's queueing): the receiver
/// gets exactly the value of the send that committed.
#[test]
fn select_send_fast_path_races_receiver() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(0);
        let t = thread::spawn(move || block_on(rx.recv()));
        let sent = block_on(async {
            gmp_chan::select! {
                send(tx, 5) -> r => { r.unwrap(); true }
                default => false,
            }
        });
        if !sent {
            block_on(tx.send(6)).unwrap();
        }
        assert_eq!(t.join().unwrap(), Ok(if sent { 5 } else { 6 }));
    });
}

/// Two receivers race for one buffered value, one of them a `select!` with
/// `default`: its fast path can see a hint that another receiver makes
/// stale before it takes the lock, and must then fall back to the full
/// pass. Exactly one of them gets the value.
#[test]
fn select_fast_path_stale_hint_falls_back() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(1);
        let rx2 = rx.clone();
        block_on(tx.send(4)).unwrap();
        let t = thread::spawn(move || block_on(rx2.recv()));
        let mine = block_on(async {
            gmp_chan::select! {
                recv(rx) -> v => Some(v.unwrap()),
                default => None,
            }
        });
        tx.close();
        let theirs = t.join().unwrap();
        match (mine, theirs) {
            (Some(4), Err(RecvError)) | (None, Ok(4)) => {}
            other => panic!("value lost or duplicated: {other:?}"),
        }
    });
}

/// The `Sink` path: a value held by the sink (unbuffered, no receiver yet)
/// is flushed through a parked sudog while a receive and a close race it:
/// it is received exactly when the flush succeeds, else it comes back.
#[test]
fn sink_flush_races_recv_and_close() {
    use futures::SinkExt;
    loom::model(|| {
        let (mut tx, rx) = bounded::<u32>(0);
        // Dropping the last sender would close the channel too.
        let keep = tx.clone();
        let rx2 = rx.clone();
        let sender = thread::spawn(move || block_on(SinkExt::send(&mut tx, 4)));
        let closer = thread::spawn(move || rx2.close());
        let r = block_on(rx.recv());
        let s = sender.join().unwrap();
        assert!(closer.join().unwrap());
        match (s, r) {
            (Ok(()), Ok(4)) => {}
            (Err(SendError(4)), Err(RecvError)) => {}
            other => panic!("inconsistent outcome {other:?}"),
        }
        drop(keep);
    });
}

/// A nil (`None`) case beside a live one while a sender fires: only the
/// live case commits, and the nil send case's value is never moved.
#[test]
fn select_nil_cases_never_commit() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(0);
        let t = thread::spawn(move || block_on(tx.send(8)));
        let nil_rx: Option<&gmp_chan::Receiver<u32>> = None;
        let nil_tx: Option<&gmp_chan::Sender<u32>> = None;
        let got = block_on(async {
            gmp_chan::select! {
                recv(nil_rx) -> _ => 0,
                send(nil_tx, 9) -> _ => 1,
                recv(rx) -> v => v.unwrap(),
            }
        });
        assert_eq!(got, 8);
        assert_eq!(t.join().unwrap(), Ok(()));
    });
}

/// A goroutine parks on a channel no plain thread has used; then a plain
/// thread's first use (`Chan::become_foreign`: under the lock, wake every
/// queued sudog so it parks again marked as waiting on the outside) races
/// the park, and then a send: the spurious wake neither loses the value
/// nor leaves the goroutine parked.
#[test]
fn first_outside_use_rewakes_a_parked_goroutine() {
    loom::model(|| {
        let (tx, rx) = bounded::<u32>(0);
        let rx2 = rx.clone();
        let g = thread::spawn(move || {
            gmp_chan::__private::pretend_goroutine();
            block_on(rx.recv())
        });
        // This (plain) thread: the first outside use, then a send.
        assert_eq!(rx2.try_recv(), Err(gmp_chan::TryRecvError::Empty));
        assert_eq!(block_on(tx.send(5)), Ok(()));
        assert_eq!(g.join().unwrap(), Ok(5));
    });
}

// ---- the lock-free ring (capacity 2..) ----

/// A channel of capacity 2 (a ring) whose slots are already allocated (the
/// first buffered value allocates them, under the lock), so that the
/// models below run the lock-free paths.
fn warm_ring() -> (gmp_chan::Sender<u32>, gmp_chan::Receiver<u32>) {
    let (tx, rx) = bounded::<u32>(2);
    tx.try_send(0).unwrap();
    assert_eq!(rx.try_recv(), Ok(0));
    (tx, rx)
}

/// A receiver parks on an empty ring while a lock-free send lands: the
/// send either sees the receiver's flag and hands the value over under the
/// lock, or the receiver's second look after raising its flag finds it.
#[test]
fn ring_recv_parks_while_send_lands() {
    loom::model(|| {
        let (tx, rx) = warm_ring();
        let t = thread::spawn(move || block_on(rx.recv()));
        assert_eq!(block_on(tx.send(1)), Ok(()));
        assert_eq!(t.join().unwrap(), Ok(1));
    });
}

/// A sender parks on a full ring while a lock-free receive frees a slot:
/// the send completes with no further receive (the receive saw the
/// sender's flag, or the sender's second look saw the free slot), and its
/// value is behind the buffered ones.
#[test]
fn ring_send_parks_while_recv_frees() {
    loom::model(|| {
        let (tx, rx) = warm_ring();
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        let t = thread::spawn(move || block_on(tx.send(3)));
        assert_eq!(block_on(rx.recv()), Ok(1));
        assert_eq!(t.join().unwrap(), Ok(()));
        assert_eq!(block_on(rx.recv()), Ok(2));
        assert_eq!(block_on(rx.recv()), Ok(3));
    });
}

/// Two senders racing for the last free slot and a receiver: every value
/// arrives once, each sender's in its order, and the channel closes when
/// both senders are gone, after the buffer drained.
#[test]
fn ring_two_senders_then_close() {
    loom::model(|| {
        let (tx, rx) = warm_ring();
        tx.try_send(1).unwrap();
        let tx2 = tx.clone();
        let a = thread::spawn(move || block_on(tx.send(2)));
        let b = thread::spawn(move || block_on(tx2.send(3)));
        let mut got = Vec::new();
        while let Ok(v) = block_on(rx.recv()) {
            got.push(v);
        }
        assert_eq!(a.join().unwrap(), Ok(()));
        assert_eq!(b.join().unwrap(), Ok(()));
        assert_eq!(got[0], 1);
        got.sort();
        assert_eq!(got, [1, 2, 3]);
    });
}

/// A close racing a lock-free send and a receiver parked on the empty
/// ring: a send that succeeded is received, one that failed got its value
/// back, and the receiver wakes either way.
#[test]
fn ring_close_races_send_and_parked_recv() {
    loom::model(|| {
        let (tx, rx) = warm_ring();
        let tx2 = tx.clone();
        let r = thread::spawn(move || block_on(rx.recv()));
        let c = thread::spawn(move || tx2.close());
        let s = block_on(tx.send(5));
        assert!(c.join().unwrap());
        match (s, r.join().unwrap()) {
            (Ok(()), Ok(5)) => {}
            (Err(SendError(5)), Err(RecvError)) => {}
            other => panic!("inconsistent outcome {other:?}"),
        }
    });
}

/// A queued receive is cancelled while a lock-free send hands it a value
/// (through the lock, since the receiver's flag is up): the value goes
/// back ahead of the ring, and a later send does not overtake it.
#[test]
fn ring_cancelled_recv_keeps_order() {
    loom::model(|| {
        let (tx, rx) = warm_ring();
        let rx2 = rx.clone();
        let t = thread::spawn(move || {
            block_on(tx.send(1)).unwrap();
            block_on(tx.send(2)).unwrap();
        });
        {
            let mut f = Box::pin(rx2.recv());
            let w = futures::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&w);
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                assert_eq!(v, Ok(1));
                t.join().unwrap();
                assert_eq!(rx.try_recv(), Ok(2));
                return;
            }
        }
        t.join().unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
    });
}

/// A select (a ring's receive beside a nil case) parks on the empty ring
/// while a lock-free send lands: the select fires with the value. One
/// channel only: a second one's lock order would follow heap addresses,
/// which vary between the model's runs.
#[test]
fn ring_select_parks_while_send_lands() {
    loom::model(|| {
        let (tx, rx) = warm_ring();
        let t = thread::spawn(move || block_on(tx.send(7)));
        let nil: Option<&gmp_chan::Receiver<u32>> = None;
        let got = block_on(async {
            gmp_chan::select! {
                recv(rx) -> v => v.unwrap(),
                recv(nil) -> _ => 0,
            }
        });
        assert_eq!(got, 7);
        assert_eq!(t.join().unwrap(), Ok(()));
    });
}
