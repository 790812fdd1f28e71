//! Go's `fastrand`: a cheap per-thread pseudo-random generator
//! (xorshift64*), for the steal order, select's poll order and timer
//! placement. Not for anything that needs unpredictability.

use std::cell::Cell;

/// One step of xorshift64* on `state` (never 0).
#[inline]
pub(crate) fn next(state: &Cell<u64>) -> u64 {
    let mut x = state.get();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state.set(x);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// A non-zero seed that differs between threads and runs.
pub(crate) fn seed(salt: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    (t ^ salt ^ (&local as *const u8 as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

/// Go's `fastrandn`: a number in `0..n`, from the current M's generator or,
/// off-runtime, this thread's.
#[inline]
pub fn fastrandn(n: u32) -> u32 {
    let r = crate::sched::with_current(|ctx| ctx.fastrand()).unwrap_or_else(|| {
        thread_local! { static S: Cell<u64> = Cell::new(seed(0)) }
        S.with(next)
    });
    // Lemire's multiply-shift range reduction.
    (((r >> 32) * n as u64) >> 32) as u32
}
