//! Go's `checkdead`: "fatal error: all goroutines are asleep - deadlock!"
//!
//! The M whose park leaves every P idle, with no M in the netpoller and
//! none in `gmp::syscall`, sleeps for a short grace period and then checks:
//! run queues empty, main not runnable, no timer that anyone could observe
//! (an abandoned `after` is not one), no I/O waiter, and
//! every goroutine parked on a gmp primitive (a channel, a WaitGroup, a
//! JoinHandle, `select {}`) that no plain thread can complete. If nothing
//! was scheduled meanwhile, the program is dead: print Go's message and the
//! goroutine dump, and make `block_on` panic with that text.
//!
//! Where we differ from Go: Go checks at once, because nothing outside the
//! runtime can wake a goroutine. A Rust program has plain threads; a
//! goroutine parked on a foreign future (no wait reason) or on a channel a
//! plain thread has used is never counted as dead, and the grace period
//! lets a plain thread that is about to make its first send do so.

use crate::diag::dump::format_dump;
use crate::g::state::{RUNNING, SCHEDULED};
use crate::g::status::{GStatus, EXTERNAL, REASON_MASK};
use crate::sched::Sched;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// How long the runtime must stay asleep before it is declared dead.
pub(crate) const GRACE: Duration = Duration::from_secs(1);

/// Go's text.
pub const DEADLOCK_MSG: &str = "fatal error: all goroutines are asleep - deadlock!";

impl Sched {
    /// True when a deadlock was found and declared.
    pub(crate) fn checkdead(&self, epoch: u64) -> bool {
        if self.activity_epoch() != epoch {
            return false;
        }
        let Some(l) = self.quiescent_locked() else {
            return false;
        };
        if self.timers_observed() || self.poller().has_waiters() {
            return false;
        }
        let mut dead = true;
        self.allgs.for_each(|h| {
            let s = h.state.load();
            let reason = h.wait_reason.load(Relaxed);
            if s & (SCHEDULED | RUNNING) != 0
                || h.status() != GStatus::Waiting
                || reason & REASON_MASK == 0
                || reason & EXTERNAL != 0
            {
                dead = false;
            }
        });
        drop(l);
        if !dead || self.activity_epoch() != epoch {
            return false;
        }
        let text = format!("{DEADLOCK_MSG}\n\n{}", format_dump(&self.goroutines()));
        if self.config.exit_on_deadlock {
            // A Go program (`#[gmp::main]`): report and exit like Go.
            eprint!("{text}");
            crate::diag::trace::finish_on_exit();
            std::process::exit(2);
        }
        // `block_on`'s caller gets the report as its panic message.
        self.declare_deadlock(text);
        true
    }
}
