//! gmp-core: Go's G-P-M scheduler for stackless futures.
//!
//! # The design in prose
//!
//! A **G** (goroutine) is one heap allocation holding a 64-byte header and
//! the future (`g/`). The header carries the scheduling state word
//! (`g/state.rs`: run flags plus reference count, decided by single CASes),
//! the goroutine id, its parent, its creation site, and the Go-visible
//! status and wait reason that the goroutine dump prints. A G's `Waker` is
//! the G itself: waking it is Go's `goready`.
//!
//! A **P** (`p.rs`) is a logical processor: a 256-slot lock-free ring plus
//! a `runnext` slot (`runq.rs`), and the counters sysmon watches. There are
//! exactly GOMAXPROCS Ps; a goroutine runs only on an M that holds a P.
//!
//! An **M** (`m.rs`) is an OS thread. Ms are created on demand, sleep on a
//! note when there is nothing to do, and are reused. The thread that calls
//! `Runtime::block_on` is M0 and alone polls main (goroutine 1), which may
//! be `!Send`.
//!
//! The **scheduler** (`sched/`) is Go's: `newproc` and `ready` put the G
//! in the current P's `runnext` (the displaced one goes to the ring's
//! tail), so a producer and its consumer stay on one P and the woken G
//! inherits the time slice; `find_runnable` checks the global queue every
//! 61st tick, then local, global, the netpoller, then steals half of a
//! random victim's queue over four passes, taking `runnext` only on the
//! last and only after giving its owner ~3us; at most half the busy Ps'
//! worth of Ms spin; idle Ms park and `wakep` restarts one when work
//! appears, so an idle runtime burns no CPU.
//!
//! **sysmon** (`sysmon.rs`) retakes Ps from Ms stuck in `gmp::syscall`
//! (`syscall.rs`) or in one poll longer than 10ms, and flags time slices
//! longer than 10ms for preemption. Because a stackless goroutine cannot be
//! interrupted, preemption is cooperative (`coop.rs`): gmp's own awaits
//! spend a budget and honour the flag.
//!
//! The netpoller is a hook (`netpoll.rs`) implemented by gmp-io; this
//! crate does not depend on mio.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

// The netpoller, signals, SIGQUIT's self-pipe and the sockets are Unix's;
// Linux is tested, other Unixes compile. Say so rather than fail somewhere
// inside.
#[cfg(not(unix))]
compile_error!("gmp supports Unix only (Linux is tested; other Unixes compile)");

#[cfg(not(loom))]
mod allp;
#[cfg(not(loom))]
mod clock;
#[cfg(not(loom))]
mod coop;
#[cfg(not(loom))]
mod cpuload;
#[cfg(not(loom))]
mod diag;
mod g;
#[cfg(not(loom))]
mod globrunq;
#[cfg(not(loom))]
mod lockedm;
#[cfg(not(loom))]
mod m;
#[cfg(not(loom))]
pub mod netpoll;
#[cfg(not(loom))]
mod p;
#[cfg(not(loom))]
pub mod park;
#[cfg(not(loom))]
mod procresize;
#[cfg(not(loom))]
mod rand;
#[cfg(not(loom))]
#[doc(hidden)]
pub mod rawlock;
pub(crate) mod runq;
#[cfg(not(loom))]
mod runtime;
#[cfg(not(loom))]
mod sched;
#[cfg(not(loom))]
#[doc(hidden)]
pub use diag::sigquit;
#[cfg(not(loom))]
mod sleep;
pub(crate) mod sync;
#[cfg(not(loom))]
mod syscall;
#[cfg(not(loom))]
mod sysmon;
#[cfg(not(loom))]
pub mod timer;
#[cfg(not(loom))]
mod timers;
#[cfg(not(loom))]
pub use diag::trace;

#[cfg(loom)]
pub mod loom_api;

#[cfg(not(loom))]
pub use coop::{poll_proceed, poll_proceed_in_runtime, poll_proceed_on_m};
#[cfg(not(loom))]
pub use diag::checkdead::DEADLOCK_MSG;
#[cfg(not(loom))]
pub use diag::schedtrace::{parse_debug, DebugConfig, DEBUG_ENV};
#[cfg(not(loom))]
pub use g::join::{JoinError, JoinHandle};
#[cfg(not(loom))]
pub use g::status::{GStatus, WaitReason};
#[cfg(not(loom))]
pub use runtime::{go, parse_maxprocs, spawn, UnhandledPanic, MAXPROCS_ENV};
/// The runtime without a netpoller: the `gmp` facade wraps it with one
/// and is what programs use (`gmp::Runtime`); network types fail on this
/// one.
#[cfg(not(loom))]
#[doc(hidden)]
pub use runtime::{Builder, Runtime};
#[cfg(not(loom))]
pub use syscall::syscall;
#[cfg(not(loom))]
pub use trace::{parse_trace, TRACE_ENV};

/// Go's `runtime` package: goroutine and scheduler queries.
#[cfg(not(loom))]
pub mod rt {
    pub use crate::coop::{gosched, Gosched};
    pub use crate::diag::dump::{dump, goroutines, GoroutineInfo};
    pub use crate::diag::metrics::{metrics, Histogram, Metrics};
    pub use crate::diag::profile::goroutine_profile;
    use crate::sched::expect_current;

    /// The current goroutine's id (main is 1). Panics outside a goroutine.
    #[track_caller]
    pub fn goid() -> u64 {
        expect_current("gmp::runtime::goid", |ctx| ctx.goid())
    }

    /// Number of goroutines that exist now, main included.
    #[track_caller]
    pub fn num_goroutine() -> usize {
        expect_current("gmp::runtime::num_goroutine", |ctx| ctx.sched.allgs.len())
    }

    /// GOMAXPROCS of the current runtime.
    #[track_caller]
    pub fn gomaxprocs() -> usize {
        expect_current("gmp::runtime::gomaxprocs", |ctx| ctx.sched.gomaxprocs())
    }

    /// Go's `runtime.GOMAXPROCS(n)`: set how many goroutines may run in
    /// parallel from now on and return the previous value; `0` only reads
    /// it. Goroutines keep running meanwhile: none is lost or run twice,
    /// and a P given up takes its queued goroutines and timers to the
    /// others. Panics outside a runtime, or for `n` above 65536 (the
    /// limit `GMP_MAXPROCS` has too).
    #[track_caller]
    pub fn set_gomaxprocs(n: usize) -> usize {
        assert!(
            n <= MAX_GOMAXPROCS,
            "gmp::runtime::set_gomaxprocs({n}): GOMAXPROCS must be at most {MAX_GOMAXPROCS}"
        );
        expect_current("gmp::runtime::set_gomaxprocs", |ctx| match n {
            0 => ctx.sched.gomaxprocs(),
            n => ctx.sched.procresize(n),
        })
    }

    pub use crate::allp::MAX_GOMAXPROCS;

    /// A fast per-M pseudo-random number in `0..n` (Go's `fastrandn`), for
    /// select's poll order and similar. Works off-runtime too.
    pub use crate::rand::fastrandn;

    /// Bytes of per-goroutine overhead: the G header (the future itself
    /// comes on top).
    pub const G_HEADER_SIZE: usize = std::mem::size_of::<crate::g::Header>();
}
