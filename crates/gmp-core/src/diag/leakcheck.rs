//! `GMP_DEBUG=leakcheck=1`: when main returns, the goroutines still
//! blocked on a channel, a select, a lock or a WaitGroup are leaks (no one
//! will ever wake them: the program is ending). They are printed to stderr
//! as Go's goroutine dump under `gmp: N goroutines leaked`; the exit code
//! is not changed.
//!
//! Where we differ from Go: Go 1.26 finds leaks with the garbage
//! collector (a goroutine blocked on a primitive nothing reachable can
//! signal). Rust has no collector to ask, and at the end of main the
//! answer is the same for everything still blocked on such a primitive.
//! Goroutines sleeping, waiting for I/O, in a syscall, or parked on a
//! foreign future are not counted: they may be waiting on the world.

use crate::diag::dump::format_dump;
use crate::g::state::{RUNNING, SCHEDULED};
use crate::g::status::{GStatus, WaitReason};
use crate::sched::Sched;

/// Waits that only another goroutine can end.
fn blocks_on_primitive(r: WaitReason) -> bool {
    use WaitReason::*;
    matches!(
        r,
        ChanReceive
            | ChanSend
            | ChanReceiveNilChan
            | ChanSendNilChan
            | Select
            | SelectNoCases
            | SyncWaitGroupWait
            | SyncMutexLock
            | SyncRWMutexRLock
            | SyncRWMutexLock
            | SyncCondWait
            | Semacquire
    )
}

/// The leak report for `sched` (None when nothing leaked).
pub(crate) fn report(sched: &Sched) -> Option<String> {
    let mut leaked = std::collections::HashSet::new();
    sched.allgs.for_each(|h| {
        let parked = h.state.load() & (SCHEDULED | RUNNING) == 0;
        if h.goid != 1
            && parked
            && h.status() == GStatus::Waiting
            && blocks_on_primitive(h.wait_reason())
        {
            leaked.insert(h.goid);
        }
    });
    if leaked.is_empty() {
        return None;
    }
    let gs: Vec<_> = sched
        .goroutines()
        .into_iter()
        .filter(|g| leaked.contains(&g.id))
        .collect();
    Some(format!(
        "gmp: {} goroutines leaked\n\n{}",
        gs.len(),
        format_dump(&gs)
    ))
}

/// Called as main returns: print the report if `leakcheck=1`.
pub(crate) fn on_main_return(sched: &Sched) {
    if sched.config.debug.leakcheck {
        if let Some(text) = report(sched) {
            eprint!("{text}");
        }
    }
}
