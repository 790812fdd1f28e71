//! What gmp's blocking primitives (channels, timers, I/O, sync) tell the
//! scheduler about a goroutine that is about to park: Go's `gopark` wait
//! reason. The park itself is returning `Pending` with the waker stored;
//! `goready` is `Waker::wake`, which puts the G in the waker's `runnext`.

use crate::g::status::WaitReason;
use crate::sched::{on_m, with_current};

/// Record why the current goroutine is about to return `Pending`. Shown by
/// the goroutine dump; a no-op outside a goroutine.
#[inline]
pub fn set_wait_reason(reason: WaitReason) {
    with_current(|ctx| ctx.wait_reason.set(reason));
}

/// Like [`set_wait_reason`], for a wait that a plain (non-goroutine)
/// thread may complete, e.g. a channel a plain thread has used: the
/// deadlock detector never counts such a goroutine as dead.
#[inline]
pub fn set_wait_reason_external(reason: WaitReason) {
    with_current(|ctx| {
        ctx.wait_reason.set(reason);
        ctx.wait_external.set(true);
    });
}

/// True when the calling code runs on an M of a gmp runtime (inside a
/// goroutine, `block_on`'s main future, or a `gmp::syscall` closure).
#[inline]
pub fn in_runtime() -> bool {
    on_m()
}

#[cold]
#[track_caller]
pub(crate) fn not_in_runtime(what: &str) -> ! {
    panic!(
        "{what} called outside a gmp runtime: use it from a goroutine, inside \
         Runtime::block_on or a #[gmp::main] / #[gmp::test] function"
    );
}
