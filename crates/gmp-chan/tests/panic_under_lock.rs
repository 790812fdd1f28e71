//! A panic inside a channel's critical section (here: a waker whose
//! `clone` panics, cloned while a receive, or a select, parks under the
//! lock) must release the lock as it unwinds, so that the channel stays
//! usable.
#![cfg(not(loom))]

use gmp_chan::{bounded, TryRecvError};
use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

fn panicking_clone(_: *const ()) -> RawWaker {
    panic!("waker clone refused");
}
fn noop(_: *const ()) {}

static VTABLE: RawWakerVTable = RawWakerVTable::new(panicking_clone, noop, noop, noop);

fn panicking_waker() -> Waker {
    // SAFETY: the vtable's functions ignore the data pointer.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

/// Run `f` on a thread, failing if it does not finish in time: a channel
/// left locked would hang it.
fn with_watchdog(f: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a channel stayed locked after a panic under its lock");
}

#[test]
fn panic_in_select_under_sellock_unlocks() {
    with_watchdog(|| {
        let (tx1, rx1) = bounded::<u32>(1);
        let (tx2, rx2) = bounded::<u32>(0);
        let waker = panicking_waker();
        let parked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut cx = Context::from_waker(&waker);
            let fut = pin!(async {
                gmp_chan::select! {
                    recv(rx1) -> v => v.ok(),
                    recv(rx2) -> v => v.ok(),
                }
            });
            // Nothing ready: the select parks, cloning the waker while it
            // holds both channels' locks.
            let _ = fut.poll(&mut cx);
        }));
        assert!(parked.is_err(), "the waker's clone should have panicked");
        tx1.try_send(1).unwrap();
        assert_eq!(rx1.try_recv(), Ok(1));
        assert_eq!(tx2.try_send(2), Err(gmp_chan::TrySendError::Full(2)));
        assert!(tx2.close());
        assert_eq!(rx2.try_recv(), Err(TryRecvError::Closed));
    });
}

#[test]
fn panic_under_the_lock_unlocks() {
    with_watchdog(|| {
        let (tx, rx) = bounded::<u32>(1);
        let waker = panicking_waker();
        let parked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut cx = Context::from_waker(&waker);
            let fut = pin!(rx.recv());
            // Empty channel: the receive parks, cloning the waker under
            // the channel lock.
            let _ = fut.poll(&mut cx);
        }));
        assert!(parked.is_err(), "the waker's clone should have panicked");
        // Each of these takes the lock: a lock left held would hang here.
        tx.try_send(5).unwrap();
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.try_recv(), Ok(5));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(tx.close());
    });
}
