//! A panic inside the channel's critical section (here: a waker whose
//! `clone` panics, cloned while the receive parks under the lock) must
//! release the lock as it unwinds, so that the channel stays usable.
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

#[test]
fn panic_under_the_lock_unlocks() {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (tx, rx) = bounded::<u32>(1);
        // SAFETY: the vtable's functions ignore the data pointer.
        let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
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
        done_tx.send(()).unwrap();
    });
    // Watchdog: a channel left locked would hang the thread above.
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the channel stayed locked after a panic under its lock");
}
