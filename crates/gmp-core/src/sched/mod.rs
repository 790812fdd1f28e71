//! The scheduler: Go's `schedule`/`findRunnable`/`execute` loop, `ready`,
//! `newproc`, `wakep`/`startm`/`stopm`/`handoffp`, the global run queue and
//! the idle P and M lists (runtime/proc.go).
//!
//! Every M runs `schedule` while it holds a P. `find_runnable` looks, in
//! Go's order, at: the global queue every 61st tick, the local queue
//! (runnext first), the global queue, the netpoller, and the other Ps'
//! queues (stealing, at most half the busy Ps' worth of spinning Ms).
//! Finding nothing, the M puts its P on the idle list, re-checks once more
//! if it was spinning, then either blocks in the netpoller (exactly one M
//! does) or sleeps on its note until `startm` hands it a P.
//!
//! Work that appears calls `wakep` (Go's `newproc` and `ready` do it every
//! time): if a P is idle and no M is spinning, one M is started spinning;
//! the spinning M that finds work wakes the next one (`resetspinning`).
//! This keeps at most one M searching per burst and lets an idle runtime
//! sleep with zero CPU.
//!
//! An M whose P was taken while it sat in a syscall or one long poll gets
//! a P back before its goroutine runs on (`wait_for_p`, Go's
//! `exitsyscall`): Ps that are released go to such Ms (`pwait`) before
//! the idle list, and an M at its 61st schedule tick hands its P over.
//! Main (goroutine 1) lives on the `block_on` thread, M0, which polls
//! nothing else (`lockedm.rs`); it takes its P the same way.
//!
//! This module holds `Sched` itself; the rest is split by concern:
//! `context` (the M's thread-local context), `proc` (schedule,
//! find_runnable, steal, execute), `spawn` (newproc, ready), `queues`
//! (global queue, yielders, injection), `idle` (idle Ps and Ms, wakep,
//! startm, handoffp, stopm, P waiters) and `shutdown` (teardown, the
//! exit sweep, deadlock and panic reports).

use crate::g::allgs::AllGs;
use crate::g::state::{AfterPoll, MAIN};
use crate::g::status::{GStatus, WaitReason};
use crate::g::{GPtr, Header, PollOutcome};
use crate::m::M;
use crate::netpoll::Netpoller;
use crate::p::{self, status_of, status_word, PLocked, POwner, P};
use crate::runq::{Local, RUNQ_SIZE};
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Coop budget: gmp yield points a goroutine may pass per time slice
/// before it yields its P (tokio's number; Go's slice is 10ms of CPU).
pub(crate) const BUDGET: u32 = 128;

/// Observability hooks on the hot paths (tracer checks, latency sampling,
/// spawn counters). The `without-observability` feature compiles them out,
/// only to measure what they cost when the runtime has them switched off.
pub(crate) const HOOKS: bool = cfg!(not(feature = "without-observability"));

/// How many goroutine ids a P takes from the global counter at once
/// (Go's `_GoidCacheBatch`).
const GOID_BATCH: u64 = 16;

/// What a panic in a goroutine started with `go` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnhandledPanic {
    /// Print Go's panic report and exit the process with code 2 (Go).
    #[default]
    ExitProcess,
    /// Drop the goroutine and carry on.
    Ignore,
    /// End the runtime as if main had returned, and re-raise the panic,
    /// with Go's report as its message, from `block_on`: the process goes
    /// on. `#[gmp::test]` uses it, so a goroutine's panic fails its test
    /// and no other.
    Propagate,
}

pub(crate) struct Config {
    pub(crate) unhandled_panic: UnhandledPanic,
    pub(crate) debug: crate::diag::schedtrace::DebugConfig,
    /// SIGQUIT exits the process after the dump (Go's behaviour).
    pub(crate) sigquit_exit: bool,
    /// A deadlock prints Go's report and exits with code 2 (`#[gmp::main]`)
    /// instead of making `block_on` panic.
    pub(crate) exit_on_deadlock: bool,
}

/// Aligned to 128 bytes so that in its `Arc` the reference counts sit
/// alone on their cache line: every goroutine holds a strong reference,
/// so the count is written on every spawn and every exit, by different Ms,
/// and must not drag the scheduler's hot fields along.
#[repr(align(128))]
pub(crate) struct Sched {
    /// GOMAXPROCS: Ps `0..gomaxprocs` are in use (`procresize.rs`).
    pub(crate) gomaxprocs: AtomicUsize,
    pub(crate) allp: crate::allp::AllP,
    /// Go's `sched.lock`: idle Ps, idle Ms, Ms waiting for a P.
    pub(crate) lock: Mutex<SchedLocked>,
    /// Go's `sched.runq`.
    pub(crate) globq: crate::globrunq::GlobRunq,
    pub(crate) npidle: AtomicUsize,
    pub(crate) nmspinning: AtomicUsize,
    pub(crate) nmidle: AtomicUsize,
    mnext: AtomicU64,
    /// Ms alive in their scheduler loop (M0 included).
    mlive: Mutex<usize>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    pub(crate) allgs: AllGs,
    goidgen: AtomicU64,
    pub(crate) shutdown: AtomicBool,
    pub(crate) m0: Arc<M>,
    pub(crate) main_g: Mutex<Option<GPtr>>,
    pub(crate) main_ptr: std::sync::atomic::AtomicPtr<Header>,
    /// Ms in `pwait` (read without the sched lock on the 61st tick).
    npwait: AtomicUsize,
    pub(crate) netpoll: Option<Arc<dyn Netpoller>>,
    /// Stands in for the netpoller when none is installed: the M that
    /// waits for the next timer sleeps on it.
    parker: crate::netpoll::ParkPoller,
    /// An M is blocked in `netpoll` (Go: `sched.lastpoll == 0`).
    netpoll_blocked: AtomicBool,
    /// When the blocked poller will wake by itself (ns; 0 = unknown).
    poll_until: AtomicU64,
    /// Last time anyone polled the network (ns), for sysmon.
    pub(crate) lastpoll: AtomicU64,
    pub(crate) start: Instant,
    /// `start` on the raw monotonic clock (`clock::now_anchored`), for the
    /// coarse clock's cheap "certainly not yet" answers.
    pub(crate) start_raw: u64,
    coarse_ms: AtomicU32,
    pub(crate) config: Config,
    pub(crate) sysmon: crate::sysmon::SysmonCtl,
    /// Whether other processes leave a core for every P (`cpuload.rs`).
    pub(crate) cpuload: crate::cpuload::CpuLoad,
    // metrics
    pub(crate) steals: AtomicU64,
    pub(crate) mparks: AtomicU64,
    pub(crate) netpoll_wakeups: AtomicU64,
    /// Ms inside `gmp::syscall` (Go's `sched.nmsys`-like count for checkdead).
    pub(crate) nmsys: AtomicUsize,
    /// Set by checkdead: the fatal error text `block_on` panics with.
    pub(crate) deadlock: Mutex<Option<String>>,
    deadlocked: AtomicBool,
    /// Goroutines created without a P (per-P counts live in each P).
    spawned_nop: AtomicU64,
    pub(crate) latency: crate::diag::metrics::LatencyHist,
    /// This runtime's process id in the execution trace.
    pub(crate) trace_id: u32,
}

pub(crate) struct SchedLocked {
    pub(crate) pidle: Vec<usize>,
    midle: Vec<Arc<M>>,
    /// Ms that need a P to go on with what they are doing: one whose
    /// syscall or long poll lost its P (Go's `exitsyscall`), or M0 with
    /// main runnable. A P that is released goes to the first of them
    /// before the idle list, so `pwait` is empty whenever `pidle` is not.
    pwait: std::collections::VecDeque<Arc<M>>,
}

mod context;
mod idle;
mod proc;
mod queues;
mod shutdown;
mod spawn;

pub(crate) use context::{expect_current, on_m, with_current, Enter, MCtx};
pub(crate) use proc::RunEnd;
pub(crate) use spawn::ready;

impl Sched {
    pub(crate) fn new(
        procs: usize,
        config: Config,
        netpoll: Option<Arc<dyn Netpoller>>,
    ) -> Arc<Sched> {
        let (start, start_raw) = crate::clock::now_anchored();
        let sched = Arc::new(Sched {
            gomaxprocs: AtomicUsize::new(procs),
            allp: crate::allp::AllP::new(procs),
            lock: Mutex::new(SchedLocked {
                pidle: (0..procs).rev().collect(),
                midle: Vec::new(),
                pwait: Default::default(),
            }),
            globq: Default::default(),
            npidle: AtomicUsize::new(procs),
            nmspinning: AtomicUsize::new(0),
            nmidle: AtomicUsize::new(0),
            mnext: AtomicU64::new(2),
            mlive: Mutex::new(0),
            threads: Mutex::new(Vec::new()),
            allgs: AllGs::new((4 * procs).max(16).next_power_of_two()),
            goidgen: AtomicU64::new(1),
            shutdown: AtomicBool::new(false),
            m0: Arc::new(M::new(1)),
            main_g: Mutex::new(None),
            main_ptr: std::sync::atomic::AtomicPtr::new(ptr::null_mut()),
            npwait: AtomicUsize::new(0),
            netpoll,
            parker: crate::netpoll::ParkPoller::default(),
            netpoll_blocked: AtomicBool::new(false),
            poll_until: AtomicU64::new(0),
            lastpoll: AtomicU64::new(0),
            start,
            start_raw,
            coarse_ms: AtomicU32::new(0),
            config,
            sysmon: crate::sysmon::SysmonCtl::default(),
            cpuload: crate::cpuload::CpuLoad::new(),
            steals: AtomicU64::new(0),
            mparks: AtomicU64::new(0),
            netpoll_wakeups: AtomicU64::new(0),
            spawned_nop: AtomicU64::new(0),
            nmsys: AtomicUsize::new(0),
            deadlock: Mutex::new(None),
            deadlocked: AtomicBool::new(false),
            latency: Default::default(),
            trace_id: crate::diag::trace::next_runtime_id(),
        });
        if HOOKS {
            crate::diag::trace::register(&sched);
        }
        sched
    }

    /// Coarse clock in ms since start, advanced by sysmon.
    #[inline]
    pub(crate) fn coarse_ms(&self) -> u32 {
        self.coarse_ms.load(Relaxed)
    }

    pub(crate) fn set_coarse_now(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.start).as_millis() as u32;
        self.coarse_ms.store(ms, Relaxed);
    }

    /// An `Arc<Sched>` for self (Ms and sysmon own one).
    pub(crate) fn arc(&self) -> Arc<Sched> {
        let p = self as *const Sched;
        // SAFETY: every Sched lives in an Arc (Sched::new returns one) and
        // `self` is borrowed from a live Arc, so the count is >= 1.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    pub(crate) fn netpoll_is_blocked(&self) -> bool {
        self.netpoll_blocked.load(SeqCst)
    }

    /// The netpoller, or the timer-only stand-in.
    #[inline]
    pub(crate) fn poller(&self) -> &dyn Netpoller {
        match &self.netpoll {
            Some(np) => &**np,
            None => &self.parker,
        }
    }

    /// Which P's heap gets a new timer: ours if we run on this runtime,
    /// else any.
    pub(crate) fn timer_p(&self) -> usize {
        with_current(|ctx| {
            if ptr::eq(&*ctx.sched, self) {
                ctx.p.get()
            } else {
                None
            }
        })
        .flatten()
        .unwrap_or_else(|| crate::rand::fastrandn(self.gomaxprocs() as u32) as usize)
    }

    /// Go's `wakeNetPoller`: a timer due at `when` was added. If an M is
    /// blocked in the poller past `when`, interrupt it; if none is, make
    /// sure some M is around to notice.
    pub(crate) fn wake_netpoller(&self, when: u64) {
        if !self.netpoll_break_before(when) {
            self.wakep();
        }
    }

    /// The half of `wake_netpoller` a timer armed on the arming M's own P
    /// needs: that M runs the P's timers when it next schedules, and if it
    /// goes idle it blocks in the poller until the earliest timer itself,
    /// or finds another M blocked there, which this interrupts when it
    /// would sleep past `when`. Go's `wakep` here, on every timer a
    /// request arms (an HTTP header timeout), woke an M that found nothing
    /// to do. False when no M is blocked in the poller.
    pub(crate) fn netpoll_break_before(&self, when: u64) -> bool {
        if !self.netpoll_blocked.load(SeqCst) {
            return false;
        }
        let until = self.poll_until.load(SeqCst);
        if until == 0 || when < until {
            self.poller().netpoll_break();
        }
        true
    }

    /// This M's P, locked against sysmon's retake, when the caller runs on
    /// an M of this runtime that still holds it.
    pub(crate) fn lock_timer_p(&self) -> Option<crate::p::PLocked<'_>> {
        with_current(|ctx| {
            if !ptr::eq(&*ctx.sched, self) {
                return None;
            }
            let p = &self.allp[ctx.p.get()?];
            p.try_own(ctx.m.id)
        })
        .flatten()
    }

    pub(crate) fn spawned_total(&self) -> u64 {
        self.allp
            .iter()
            .map(|p| p.spawned.load(Relaxed))
            .sum::<u64>()
            + self.spawned_nop.load(Relaxed)
    }

    pub(crate) fn global_runq_len(&self) -> usize {
        self.globq.len()
    }

    /// Sum of counters that move whenever anything is scheduled.
    pub(crate) fn activity_epoch(&self) -> u64 {
        self.allp
            .iter()
            .map(|p| {
                // readytick counts down: keep it apart from schedtick so
                // that the two cannot cancel out in the sum.
                (p.schedtick.load(Relaxed) as u64)
                    .wrapping_add((p.readytick.load(Relaxed) as u64) << 32)
                    .wrapping_add(p.spawned.load(Relaxed))
            })
            .fold(self.spawned_nop.load(Relaxed), u64::wrapping_add)
    }
}
