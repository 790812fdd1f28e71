//! Atomics used by the lock-free pieces (run queue, G state word), switched
//! to loom's models under `--cfg loom` so the model tests exercise the very
//! code the scheduler runs.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize};

/// Spin-wait hint that lets loom schedule another thread.
#[inline]
pub(crate) fn spin() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}
