//! What the ports of Go's channel tests (`chan_go_ports.rs`,
//! `chan_go_runtime_ports.rs`) share.

use gmp::chan::{bounded, Sender};

/// Go's sizes in release builds, a tenth of them in debug builds.
pub const fn scaled(n: usize) -> usize {
    if cfg!(debug_assertions) {
        n / 10
    } else {
        n
    }
}

/// Where Go sleeps to let other goroutines run first: on one P, yielding
/// runs the yielded-to goroutines before this one goes on.
pub async fn yield_a_lot() {
    for _ in 0..20 {
        gmp::runtime::gosched().await;
    }
}

/// A sender nobody receives from: never ready, like Go's nil channel in a
/// send case (gmp's `never()` is a receiver).
pub fn dead_sender<T>() -> Sender<T> {
    let (tx, rx) = bounded(0);
    std::mem::forget(rx);
    tx
}
