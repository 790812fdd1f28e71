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

use crate::allgs::AllGs;
use crate::g::{GPtr, Header, PollOutcome};
use crate::gstate::{AfterPoll, MAIN};
use crate::m::M;
use crate::netpoll::Netpoller;
use crate::p::{self, status_of, status_word, P};
use crate::runq::RUNQ_SIZE;
use crate::status::{GStatus, WaitReason};
use crate::UnhandledPanic;
use std::cell::{Cell, RefCell};
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

pub(crate) struct Config {
    pub(crate) unhandled_panic: UnhandledPanic,
    pub(crate) debug: crate::schedtrace::DebugConfig,
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
    coarse_ms: AtomicU32,
    pub(crate) config: Config,
    pub(crate) sysmon: crate::sysmon::SysmonCtl,
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
    pub(crate) latency: crate::metrics::LatencyHist,
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

/// What `find_runnable` found.
enum Found {
    /// Run this G; `inherit` when it takes over the current time slice
    /// (it came from `runnext`).
    G {
        g: GPtr,
        inherit: bool,
    },
    /// The M has no P now and must stop (`stopm`).
    Stop,
    /// Tracing was switched on or off: change scheduler loops.
    Retrace,
    Shutdown,
}

/// The M-local context (Go's `getg().m`), installed in a thread-local
/// while a thread acts as an M of some runtime.
pub(crate) struct MCtx {
    pub(crate) sched: Arc<Sched>,
    pub(crate) m: Arc<M>,
    pub(crate) p: Cell<Option<usize>>,
    pub(crate) curg: Cell<Option<NonNull<Header>>>,
    pub(crate) budget: Cell<u32>,
    /// The current G asked to go to the global queue's tail (gosched,
    /// preemption) rather than the local tail.
    pub(crate) yield_global: Cell<bool>,
    /// The current G yielded through its own waker without the wake CAS.
    pub(crate) self_yield: Cell<bool>,
    pub(crate) wait_reason: Cell<WaitReason>,
    /// The park about to happen can be completed by a plain thread.
    pub(crate) wait_external: Cell<bool>,
    pub(crate) spinning: Cell<bool>,
    /// Inside `gmp::syscall`'s closure: a spawn or wake from there never
    /// waits for a P.
    pub(crate) in_syscall: Cell<bool>,
    rng: Cell<u64>,
    /// While polling the netpoller: woken Gs are collected, then injected.
    batch: RefCell<Option<Vec<GPtr>>>,
    pub(crate) trace_buf: Arc<crate::trace::MBuf>,
    /// The version of the scheduler loop running: traced or not.
    pub(crate) traced: Cell<bool>,
}

thread_local! {
    static CURRENT: Cell<*const MCtx> = const { Cell::new(ptr::null()) };
}

/// Run `f` with the current M context, if this thread is an M.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&MCtx) -> R) -> Option<R> {
    CURRENT.with(|c| {
        let p = c.get();
        if p.is_null() {
            None
        } else {
            // SAFETY: the pointer is installed by `enter` for the lifetime
            // of a stack frame that outlives every use on this thread.
            Some(f(unsafe { &*p }))
        }
    })
}

/// Like `with_current`, panicking with a clear message outside a runtime.
#[track_caller]
pub(crate) fn expect_current<R>(what: &str, f: impl FnOnce(&MCtx) -> R) -> R {
    match with_current(f) {
        Some(r) => r,
        None => panic!(
            "{what} called outside a gmp runtime: call it from a goroutine, inside \
             Runtime::block_on or a #[gmp::main] / #[gmp::test] function"
        ),
    }
}

/// Installs `ctx` as this thread's M context until the guard drops.
pub(crate) struct Enter {
    prev: *const MCtx,
}

impl Enter {
    pub(crate) fn new(ctx: &MCtx) -> Enter {
        let prev = CURRENT.with(|c| c.replace(ctx as *const MCtx));
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

pub(crate) fn on_m() -> bool {
    CURRENT.with(|c| !c.get().is_null())
}

impl MCtx {
    pub(crate) fn new(sched: Arc<Sched>, m: Arc<M>) -> MCtx {
        let seed = (m.id.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            ^ (sched.start.elapsed().as_nanos() as u64)
            | 1;
        MCtx {
            sched,
            m,
            p: Cell::new(None),
            curg: Cell::new(None),
            budget: Cell::new(BUDGET),
            yield_global: Cell::new(false),
            self_yield: Cell::new(false),
            wait_reason: Cell::new(WaitReason::None),
            wait_external: Cell::new(false),
            spinning: Cell::new(false),
            in_syscall: Cell::new(false),
            rng: Cell::new(seed),
            batch: RefCell::new(None),
            trace_buf: crate::trace::MBuf::new(),
            traced: Cell::new(false),
        }
    }

    #[inline]
    pub(crate) fn fastrand(&self) -> u64 {
        // xorshift64*
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Current goroutine id (0 when not in a goroutine).
    pub(crate) fn goid(&self) -> u64 {
        match self.curg.get() {
            // SAFETY: curg is the G being polled on this M; alive.
            Some(g) => unsafe { g.as_ref().goid },
            None => 0,
        }
    }

    pub(crate) fn curp(&self) -> Option<&P> {
        self.p.get().map(|i| &self.sched.allp[i])
    }
}

/// Go's `ready`/`goready`: make `g` runnable. From a goroutine of the same
/// runtime it goes to this P's `runnext` (the woken G runs next and
/// inherits the time slice); from anywhere else to the global queue.
pub(crate) fn ready(g: GPtr) {
    let h = g.header();
    if h.state.load() & MAIN != 0 {
        // `g` (holding a strong Sched reference) outlives the call.
        let s = h.sched();
        if HOOKS && crate::trace::on() {
            with_current(|ctx| s.trace_ready(ctx, 1));
        }
        s.ready_main();
        drop(g);
        return;
    }
    h.set_status(GStatus::Runnable);
    let sched: *const Sched = h.sched();
    // SAFETY: `g` holds a strong reference to its Sched while we use it.
    let s = unsafe { &*sched };
    if s.shutdown.load(Relaxed) {
        return;
    }
    let mut slot = Some(g);
    with_current(|ctx| {
        if ptr::eq(&*ctx.sched, sched) {
            slot = s.ready_local(ctx, slot.take().expect("G"));
        }
    });
    let Some(g) = slot else { return };
    // Keep the Sched alive past the hand-off: once `g` is queued, another
    // M may run and free it, releasing its reference.
    let s = s.arc();
    s.globrunqput(g);
    s.wakep();
}

impl Sched {
    pub(crate) fn new(
        procs: usize,
        config: Config,
        netpoll: Option<Arc<dyn Netpoller>>,
    ) -> Arc<Sched> {
        Arc::new(Sched {
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
            start: Instant::now(),
            coarse_ms: AtomicU32::new(0),
            config,
            sysmon: crate::sysmon::SysmonCtl::default(),
            steals: AtomicU64::new(0),
            mparks: AtomicU64::new(0),
            netpoll_wakeups: AtomicU64::new(0),
            spawned_nop: AtomicU64::new(0),
            nmsys: AtomicUsize::new(0),
            deadlock: Mutex::new(None),
            deadlocked: AtomicBool::new(false),
            latency: Default::default(),
            trace_id: crate::trace::next_runtime_id(),
        })
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

    // ---- goroutine creation (newproc) ----

    fn alloc_goid_locked(&self, p: &P) -> u64 {
        // SAFETY: the caller holds the P (RUNNING or LOCKED).
        let own = unsafe { p.owned() };
        if own.goid_next == own.goid_end {
            let end = self.goidgen.fetch_add(GOID_BATCH, Relaxed) + GOID_BATCH;
            own.goid_next = end - GOID_BATCH + 1;
            own.goid_end = end + 1;
        }
        let id = own.goid_next;
        own.goid_next += 1;
        id
    }

    /// Go's `newproc`: allocate a G for `make(header)`, register it, and put
    /// it in this P's `runnext`.
    pub(crate) fn newproc(
        self: &Arc<Sched>,
        ctx: &MCtx,
        make: impl FnOnce(u64, crate::ancestry::Spawner) -> NonNull<Header>,
    ) -> NonNull<Header> {
        let spawner = ctx.spawner();
        let parent = spawner.goid;
        let locked = self.lock_curp(ctx);
        let goid = match locked {
            Some((p, _)) => self.alloc_goid_locked(p),
            None => self.goidgen.fetch_add(1, Relaxed) + 1,
        };
        let ptr = make(goid, spawner);
        // Shard by goroutine id: the G usually exits on another P or M
        // than the one that made it, so per-P shards would still contend.
        let shard = goid as usize;
        // The registry's reference.
        // SAFETY: freshly allocated, not shared yet; the G was created with
        // two references (runnable + registry).
        unsafe { self.allgs.insert(shard, GPtr::from_raw(ptr)) };
        // SAFETY: this is the runnable's reference.
        let g = unsafe { GPtr::from_raw(ptr) };
        if self.shutdown.load(Acquire) {
            // Spawned by a drop during teardown: never runs; teardown's
            // registry sweep closes it.
            if let Some((p, restore)) = locked {
                p.unlock(restore);
            }
            return ptr;
        }
        if HOOKS && crate::trace::on() {
            let ts = self.trace_now();
            self.trace(
                ctx,
                ts,
                crate::trace::Kind::Spawn {
                    parent,
                    child: goid,
                },
            );
        }
        match locked {
            Some((p, restore)) => {
                if HOOKS {
                    p.spawned.store(p.spawned.load(Relaxed) + 1, Relaxed);
                    self.sample_ready(None, p, g.header());
                }
                self.runqput_next(p, restore, g);
            }
            None => {
                self.spawned_nop.fetch_add(1, Relaxed);
                self.globrunqput(g);
                self.wakep();
            }
        }
        ptr
    }

    /// The current P, locked for an owner-side put from inside a poll.
    #[inline]
    fn lock_curp(&self, ctx: &MCtx) -> Option<(&P, u64)> {
        if let Some(p) = ctx.p.get().map(|i| &self.allp[i]) {
            if let Some(restore) = p.lock(ctx.m.id) {
                return Some((p, restore));
            }
        }
        self.lock_curp_slow(ctx)
    }

    /// The poll has no P: sysmon took it (a long poll, or a syscall that
    /// has returned). GOMAXPROCS bounds the goroutine code running at
    /// once, so like Go's `exitsyscall` this M waits for a P before it
    /// spawns or wakes anything, instead of running on beside the M that
    /// took the P. Inside `gmp::syscall` itself (or at shutdown) the
    /// caller falls back to the global queue.
    #[cold]
    fn lock_curp_slow(&self, ctx: &MCtx) -> Option<(&P, u64)> {
        if ctx.in_syscall.get() || ctx.curg.get().is_none() || self.shutdown.load(Acquire) {
            return None;
        }
        ctx.p.set(None);
        let p = self.acquirep_polling(ctx)?;
        let restore = p.lock(ctx.m.id)?;
        Some((p, restore))
    }

    /// `ready` on an M of this runtime. Returns the G back when it must go
    /// to the global queue instead.
    fn ready_local(&self, ctx: &MCtx, g: GPtr) -> Option<GPtr> {
        if let Some(b) = ctx.batch.borrow_mut().as_mut() {
            if HOOKS && crate::trace::on() {
                self.trace_ready(ctx, g.header().goid);
            }
            b.push(g);
            return None;
        }
        let Some((p, restore)) = self.lock_curp(ctx) else {
            return Some(g);
        };
        if HOOKS {
            self.sample_ready(Some(ctx), p, g.header());
        }
        self.runqput_next(p, restore, g);
        None
    }

    /// `runqput(p, g, next=true)` from a locked P, then unlock and `wakep`,
    /// as Go's `newproc` and `ready` do: if a P is idle and no M spins, one
    /// M starts spinning, and if the current G keeps running instead of
    /// parking it steals `runnext` after its ~3us grace. The `nmspinning`
    /// check keeps this to one M per burst (design.md, "wakep").
    #[inline]
    fn runqput_next(&self, p: &P, restore: u64, g: GPtr) {
        let over = p.runq.put(g.into_raw().as_ptr(), true);
        p.unlock(restore);
        if let Some(batch) = over {
            self.globrunqput_batch(batch);
        }
        self.wakep();
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
        .unwrap_or_else(|| crate::rt::fastrandn(self.gomaxprocs() as u32) as usize)
    }

    /// Go's `wakeNetPoller`: a timer due at `when` was added. If an M is
    /// blocked in the poller past `when`, interrupt it; if none is, make
    /// sure some M is around to notice.
    pub(crate) fn wake_netpoller(&self, when: u64) {
        if self.netpoll_blocked.load(SeqCst) {
            let until = self.poll_until.load(SeqCst);
            if until == 0 || when < until {
                self.poller().netpoll_break();
            }
        } else {
            self.wakep();
        }
    }

    // ---- the global run queue ----

    pub(crate) fn globrunqput(&self, g: GPtr) {
        self.globq.put(g);
    }

    fn globrunqput_batch(&self, batch: Vec<*mut Header>) {
        self.globq.put_raw_batch(batch);
    }

    /// Go's `globrunqget`: take a fair share of the global queue into P's
    /// local queue and return one G. The caller holds P.
    fn globrunqget(&self, p: &P, max: usize) -> Option<GPtr> {
        let size = self.globq.len();
        if size == 0 {
            return None;
        }
        let mut n = size.min(size / self.gomaxprocs() + 1);
        if max > 0 {
            n = n.min(max);
        }
        n = n.min(RUNQ_SIZE as usize / 2);
        let mut spill = Vec::new();
        // An empty local queue takes 128 without spilling; stay correct.
        let g = self
            .globq
            .pop_batch(n, |g| runqput_or_spill(p, g, &mut spill))?;
        self.globrunqput_spill(spill);
        Some(g)
    }

    /// The overflow of `runqput_or_spill`, to the global tail.
    fn globrunqput_spill(&self, spill: Vec<*mut Header>) {
        if !spill.is_empty() {
            self.globq.put_raw_batch(spill);
        }
    }

    pub(crate) fn spawned_total(&self) -> u64 {
        self.allp
            .iter()
            .map(|p| p.spawned.load(Relaxed))
            .sum::<u64>()
            + self.spawned_nop.load(Relaxed)
    }

    /// Every 256th ready on a P stamps the G for the latency histogram
    /// (every ready while tracing). A countdown, so that the common case is
    /// a decrement, a store and a branch on the flags it set. The caller
    /// holds P. `ready` is the M context of a `ready` (traced), None for a
    /// spawn (which has its own trace event).
    #[inline]
    fn sample_ready(&self, ready: Option<&MCtx>, p: &P, h: &Header) {
        let t = p.readytick.load(Relaxed).wrapping_sub(1);
        p.readytick.store(t, Relaxed);
        if t == 0 {
            self.ready_hook(ready, p, h);
        }
    }

    #[cold]
    fn ready_hook(&self, ready: Option<&MCtx>, p: &P, h: &Header) {
        let tracing = crate::trace::on();
        let every = if tracing {
            1
        } else {
            crate::metrics::SAMPLE_EVERY
        };
        p.readytick.store(every, Relaxed);
        h.since.store(self.micros(), Relaxed);
        h.state.mark_sampled();
        if let (true, Some(ctx)) = (tracing, ready) {
            self.trace_ready(ctx, h.goid);
        }
    }

    pub(crate) fn global_runq_len(&self) -> usize {
        self.globq.len()
    }

    // ---- idle Ps and Ms ----

    pub(crate) fn pidleget_locked(&self, l: &mut SchedLocked) -> Option<usize> {
        let p = l.pidle.pop()?;
        self.npidle.fetch_sub(1, SeqCst);
        self.sysmon.wake_if_sleeping();
        Some(p)
    }

    /// Go's `pidleput`, except that an M waiting for a P (`pwait`) gets
    /// it first.
    pub(crate) fn pidleput_locked(&self, l: &mut SchedLocked, p: usize) {
        if p >= self.gomaxprocs() {
            // GOMAXPROCS shrank while this P was in use. Its timers stay
            // (the lock is held) and fire from there.
            self.retire_locked(p);
            return;
        }
        self.allp[p].status.store(p::PIDLE, Release);
        if self.pwait_handoff_locked(l, p) {
            return;
        }
        l.pidle.push(p);
        self.npidle.fetch_add(1, SeqCst);
    }

    /// Hand P `p` to the first M in `pwait`, if any.
    fn pwait_handoff_locked(&self, l: &mut SchedLocked, p: usize) -> bool {
        match l.pwait.pop_front() {
            Some(m) => {
                self.npwait.fetch_sub(1, SeqCst);
                m.notewakeup(Some(p), false);
                true
            }
            None => false,
        }
    }

    /// Go's `exitsyscall` slow path, for an M that must not go on without
    /// a P: an idle one if there is one, else wait in `pwait` until a P is
    /// released (`pidleput`) or handed over at another M's 61st schedule
    /// tick. None when the runtime shuts down meanwhile.
    pub(crate) fn wait_for_p(&self, ctx: &MCtx) -> Option<usize> {
        let mut l = self.lock.lock().unwrap();
        if let Some(p) = self.pidleget_locked(&mut l) {
            return Some(p);
        }
        if self.shutdown.load(Acquire) {
            return None;
        }
        l.pwait.push_back(ctx.m.clone());
        self.npwait.fetch_add(1, SeqCst);
        drop(l);
        loop {
            // A wake without a P is either teardown (which empties `pwait`)
            // or a stale main wake-up meant for M0's other sleep.
            if let (Some(p), _) = ctx.m.notesleep() {
                return Some(p);
            }
            if self.shutdown.load(Acquire) || self.is_deadlocked() {
                return None;
            }
        }
    }

    /// `wait_for_p` for an M in the middle of a poll: the P it gets is
    /// held as if the poll had started on it (retakeable, `(me, POLLING)`).
    pub(crate) fn acquirep_polling(&self, ctx: &MCtx) -> Option<&P> {
        let pi = self.wait_for_p(ctx)?;
        let pp = &self.allp[pi];
        ctx.p.set(Some(pi));
        pp.begin_poll(ctx.m.id);
        Some(pp)
    }

    pub(crate) fn acquirep(&self, ctx: &MCtx, p: usize) {
        debug_assert!(ctx.p.get().is_none());
        self.allp[p]
            .status
            .store(status_word(ctx.m.id, p::PRUNNING), Release);
        ctx.p.set(Some(p));
    }

    /// Go's `wakep`: start a spinning M if there is an idle P and nobody
    /// is spinning already.
    #[inline]
    pub(crate) fn wakep(&self) {
        if self.npidle.load(SeqCst) == 0 {
            return;
        }
        if self.nmspinning.load(SeqCst) != 0
            || self
                .nmspinning
                .compare_exchange(0, 1, SeqCst, Relaxed)
                .is_err()
        {
            return;
        }
        self.startm(None, true);
    }

    /// Go's `startm`: run P `p` (or any idle P) on an idle or new M.
    pub(crate) fn startm(&self, p: Option<usize>, spinning: bool) {
        let mut l = self.lock.lock().unwrap();
        let p = match p {
            Some(p) => p,
            None => match self.pidleget_locked(&mut l) {
                Some(p) => p,
                None => {
                    drop(l);
                    if spinning {
                        self.nmspinning.fetch_sub(1, SeqCst);
                    }
                    return;
                }
            },
        };
        let m = l.midle.pop();
        if let Some(m) = &m {
            self.nmidle.fetch_sub(1, Relaxed);
            m.parked.store(false, Relaxed);
        }
        drop(l);
        match m {
            Some(m) => m.notewakeup(Some(p), spinning),
            None => self.newm(p, spinning),
        }
    }

    fn newm(&self, p: usize, spinning: bool) {
        let id = self.mnext.fetch_add(1, Relaxed);
        let m = Arc::new(M::new(id));
        // Ms hold an Arc<Sched>; reconstruct one from a G-free path.
        let sched = self.arc();
        *self.mlive.lock().unwrap() += 1;
        let res = thread::Builder::new()
            .name(format!("gmp-m{id}"))
            .spawn(move || mstart(sched, m, p, spinning));
        match res {
            Ok(h) => self.threads.lock().unwrap().push(h),
            Err(e) => {
                eprintln!("gmp: failed to create OS thread for M{id}: {e}");
                *self.mlive.lock().unwrap() -= 1;
                if spinning {
                    self.nmspinning.fetch_sub(1, SeqCst);
                }
                let mut l = self.lock.lock().unwrap();
                self.pidleput_locked(&mut l, p);
            }
        }
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

    /// Go's `handoffp`: P `p` lost its M (syscall, long poll). Start an M
    /// for it if there is work, else put it on the idle list.
    pub(crate) fn handoffp(&self, p: usize) {
        if p >= self.gomaxprocs() {
            let l = self.lock.lock().unwrap();
            if p >= self.gomaxprocs() {
                self.retire_locked(p);
                drop(l);
                self.move_timers_off(p);
                self.wakep();
                return;
            }
        }
        let pp = &self.allp[p];
        // SAFETY: sysmon took P from its M (status CAS), so it is ours
        // until handed on; the yielded goroutines must not wait for
        // whichever M gets the P next.
        unsafe { self.flush_yieldq(pp) };
        if !pp.runq.is_empty() || !self.globq.is_empty() {
            self.startm(Some(p), false);
            return;
        }
        if self.npwait.load(SeqCst) != 0 {
            // An M back from a syscall (or M0, for main) needs it.
            let mut l = self.lock.lock().unwrap();
            if self.pwait_handoff_locked(&mut l, p) {
                return;
            }
        }
        if self.nmspinning.load(SeqCst) + self.npidle.load(SeqCst) == 0
            && self
                .nmspinning
                .compare_exchange(0, 1, SeqCst, Relaxed)
                .is_ok()
        {
            self.startm(Some(p), true);
            return;
        }
        // The last running P must leave an M to watch the network (Go:
        // "nobody is polling network, need to wakeup another M").
        if let Some(np) = &self.netpoll {
            if np.has_waiters()
                && !self.netpoll_blocked.load(SeqCst)
                && self.npidle.load(SeqCst) + 1 >= self.gomaxprocs()
            {
                self.startm(Some(p), false);
                return;
            }
        }
        let when = pp.timers.timer0.load(Acquire);
        let mut l = self.lock.lock().unwrap();
        if !self.globq.is_empty() {
            drop(l);
            self.startm(Some(p), false);
            return;
        }
        self.pidleput_locked(&mut l, p);
        drop(l);
        // Its timers still need an M to run them (Go's `wakeNetPoller`).
        if when != crate::timer::NO_TIMER {
            self.wake_netpoller(when);
        }
    }

    /// Go's `stopm`: park this M until it is handed a P. False on shutdown.
    fn stopm(&self, ctx: &MCtx) -> bool {
        debug_assert!(ctx.p.get().is_none());
        loop {
            let mut l = self.lock.lock().unwrap();
            if self.shutdown.load(Acquire) || self.deadlocked.load(Acquire) {
                return false;
            }
            l.midle.push(ctx.m.clone());
            self.nmidle.fetch_add(1, Relaxed);
            let watch = self.leaves_runtime_idle();
            drop(l);
            self.mparks.fetch_add(1, Relaxed);
            let Some((nextp, spinning)) = self.notesleep_watching(ctx, watch) else {
                return false;
            };
            if let Some(p) = nextp {
                self.acquirep(ctx, p);
                ctx.spinning.set(spinning);
                return true;
            }
        }
    }

    /// Whether an M about to sleep leaves the whole runtime idle, with no
    /// poller and no syscall under way: that M watches for a deadlock.
    pub(crate) fn leaves_runtime_idle(&self) -> bool {
        self.npidle.load(SeqCst) == self.gomaxprocs()
            && !self.netpoll_blocked.load(SeqCst)
            && self.nmsys.load(SeqCst) == 0
    }

    /// Sleep on the M's note; when `watch`, run `checkdead` after the
    /// grace period. None when a deadlock was declared.
    pub(crate) fn notesleep_watching(
        &self,
        ctx: &MCtx,
        watch: bool,
    ) -> Option<(Option<usize>, bool)> {
        if !watch {
            return Some(ctx.m.notesleep());
        }
        let epoch = self.activity_epoch();
        match ctx.m.notesleep_timeout(crate::checkdead::GRACE) {
            Some(w) => Some(w),
            None if self.checkdead(epoch) => None,
            None => Some(ctx.m.notesleep()),
        }
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

    /// checkdead's view under the sched lock: idle Ps, empty queues, no
    /// poller, no syscall, main not runnable.
    pub(crate) fn quiescent_locked(&self) -> Option<MutexGuard<'_, impl Sized>> {
        let l = self.lock.lock().unwrap();
        let quiet = !self.shutdown.load(SeqCst)
            && self.npidle.load(SeqCst) == self.gomaxprocs()
            && !self.netpoll_blocked.load(SeqCst)
            && self.nmsys.load(SeqCst) == 0
            && self.globq.is_empty()
            && self.allp.iter().all(|p| p.runq.is_empty())
            && !self.main_ready()
            && l.pwait.is_empty();
        quiet.then_some(l)
    }

    /// Record the deadlock and send M0 back to `block_on`.
    pub(crate) fn declare_deadlock(&self, text: String) {
        *self.deadlock.lock().unwrap() = Some(text);
        self.deadlocked.store(true, SeqCst);
        // M0 (block_on's thread) sleeps on its own note, never in `midle`.
        self.m0.notewakeup(None, false);
    }

    pub(crate) fn is_deadlocked(&self) -> bool {
        self.deadlocked.load(Acquire)
    }

    // ---- find_runnable ----

    #[inline(always)]
    fn find_runnable(&self, ctx: &MCtx) -> Found {
        'top: loop {
            if self.shutdown.load(Acquire) {
                return Found::Shutdown;
            }
            let pi = ctx.p.get().expect("find_runnable without a P");
            if pi >= self.gomaxprocs() && self.retirep(ctx, pi) {
                return Found::Stop;
            }
            let p = &self.allp[pi];
            self.check_timers(p);
            // Fairness: every 61st tick look at the global queue first, so
            // two goroutines that keep readying each other via runnext
            // cannot starve it.
            if p.schedtick.load(Relaxed).is_multiple_of(61) {
                if HOOKS && ctx.traced.get() != crate::trace::on() {
                    return Found::Retrace;
                }
                if !self.globq.is_empty() {
                    // SAFETY: this M holds P in RUNNING.
                    unsafe { self.flush_yieldq(p) };
                    if let Some(g) = self.globrunqget(p, 1) {
                        return Found::G { g, inherit: false };
                    }
                }
                if self.npwait.load(Relaxed) != 0 && self.handoff_to_waiter(ctx, p) {
                    return Found::Stop;
                }
                // With the global queue empty, its head would be this P's
                // oldest yielder: take that one and keep the others here
                // (see `yieldq_to_local`).
                // SAFETY: this M holds P in RUNNING.
                if let Some(g) = unsafe { p.owned() }.yieldq.pop_front() {
                    return Found::G { g, inherit: false };
                }
            }
            if let Some((g, inherit)) = p.runq.get() {
                // SAFETY: run queues own one reference per entry.
                let g = unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) };
                if inherit && p.preempt.load(Relaxed) {
                    // A runnext chain has shared one time slice for 10ms
                    // (goroutines waking each other through any waker):
                    // end it as Go's preemption would, sending the next
                    // one to the global tail behind everything queued.
                    self.end_inherited_slice(p, g);
                    if self.npwait.load(Relaxed) != 0 && self.handoff_to_waiter(ctx, p) {
                        return Found::Stop;
                    }
                    continue 'top;
                }
                return Found::G { g, inherit };
            }
            // The local queue is done: an M waiting for a P (back from a
            // syscall, or M0 for main) goes before the global queue, as
            // Go's exitsyscall'd goroutine would be ahead of later arrivals.
            if self.npwait.load(Relaxed) != 0 && self.handoff_to_waiter(ctx, p) {
                return Found::Stop;
            }
            // SAFETY: this M holds P in RUNNING.
            if let Some(g) = unsafe { self.yieldq_to_local(p) } {
                return Found::G { g, inherit: false };
            }
            // SAFETY: this M holds P in RUNNING.
            unsafe { self.flush_yieldq(p) };
            if !self.globq.is_empty() {
                if let Some(g) = self.globrunqget(p, 0) {
                    return Found::G { g, inherit: false };
                }
            }
            if let Some(np) = &self.netpoll {
                if np.has_waiters() && !self.netpoll_blocked.load(Acquire) {
                    if let Some(g) = self.netpoll_inject(ctx, &**np, Some(Duration::ZERO)) {
                        return Found::G { g, inherit: false };
                    }
                }
            }
            // Steal, but keep spinning Ms under half the busy Ps.
            let npidle = self.npidle.load(SeqCst);
            let busy = self.gomaxprocs().saturating_sub(npidle);
            if ctx.spinning.get() || 2 * self.nmspinning.load(SeqCst) < busy {
                if !ctx.spinning.get() {
                    ctx.spinning.set(true);
                    self.nmspinning.fetch_add(1, SeqCst);
                }
                if let Some(g) = self.steal_work(ctx, pi) {
                    return Found::G { g, inherit: false };
                }
            }
            // Nothing: give up the P.
            let mut l = self.lock.lock().unwrap();
            if self.shutdown.load(Acquire) {
                return Found::Shutdown;
            }
            ctx.p.set(None);
            self.pidleput_locked(&mut l, pi);
            drop(l);
            let was_spinning = ctx.spinning.replace(false);
            if was_spinning {
                self.nmspinning.fetch_sub(1, SeqCst);
            }
            // A G may have been queued after we looked but before our P
            // showed as idle (so its `wakep` found no idle P), or, if we
            // were spinning, before we stopped counting as spinning (so
            // `wakep` relied on us): look once more.
            if !self.globq.is_empty()
                || (was_spinning && self.allp.iter().any(|pp| !pp.runq.is_empty()))
            {
                let mut l = self.lock.lock().unwrap();
                if let Some(np) = self.pidleget_locked(&mut l) {
                    drop(l);
                    self.acquirep(ctx, np);
                    if was_spinning {
                        ctx.spinning.set(true);
                        self.nmspinning.fetch_add(1, SeqCst);
                    }
                    continue 'top;
                }
            }
            // Block in the netpoller until the next timer: exactly one M
            // does; the others sleep on their notes.
            let np = self.poller();
            if (np.has_waiters() || self.earliest_timer() != crate::timer::NO_TIMER)
                && self
                    .netpoll_blocked
                    .compare_exchange(false, true, SeqCst, Relaxed)
                    .is_ok()
            {
                self.poll_until.store(0, SeqCst);
                let next = self.earliest_timer();
                let mut woken = Vec::new();
                if !self.shutdown.load(SeqCst) {
                    let now = self.nanotime_of(Instant::now());
                    let timeout = (next != crate::timer::NO_TIMER)
                        .then(|| Duration::from_nanos(next.saturating_sub(now)));
                    if timeout != Some(Duration::ZERO) {
                        self.poll_until.store(next, SeqCst);
                        woken = self.netpoll_collect(ctx, np, timeout);
                    }
                }
                self.netpoll_blocked.store(false, SeqCst);
                // Timers of every P, idle ones included, are ours to run.
                *ctx.batch.borrow_mut() = Some(woken);
                self.run_all_timers();
                let woken = ctx.batch.borrow_mut().take().unwrap_or_default();
                if !woken.is_empty() {
                    let mut l = self.lock.lock().unwrap();
                    if let Some(np) = self.pidleget_locked(&mut l) {
                        drop(l);
                        self.acquirep(ctx, np);
                        let mut it = woken.into_iter();
                        let first = it.next();
                        self.inject_local(&self.allp[np], it);
                        if let Some(g) = first {
                            return Found::G { g, inherit: false };
                        }
                    } else {
                        drop(l);
                        self.inject_global(woken);
                    }
                }
                // Look again (new work, the next timer).
                let mut l = self.lock.lock().unwrap();
                if let Some(np) = self.pidleget_locked(&mut l) {
                    drop(l);
                    self.acquirep(ctx, np);
                    continue 'top;
                }
            }
            return Found::Stop;
        }
    }

    /// The 61st-tick check found Ms waiting for a P (a syscall that lost
    /// its P, or M0 with main runnable): like Go's `startlockedm`, give
    /// them this one and stop. The yielders go to the global queue first,
    /// so they do not wait behind the other M's poll.
    #[cold]
    fn handoff_to_waiter(&self, ctx: &MCtx, p: &P) -> bool {
        let mut l = self.lock.lock().unwrap();
        if l.pwait.is_empty() {
            return false;
        }
        // SAFETY: this M holds P in RUNNING.
        unsafe { self.flush_yieldq(p) };
        ctx.p.set(None);
        self.pidleput_locked(&mut l, p.id);
        true
    }

    /// Go's `stealWork`: 4 passes over the other Ps in a random order;
    /// runnext only on the last.
    fn steal_work(&self, ctx: &MCtx, pi: usize) -> Option<GPtr> {
        // Every P that exists: a retired one whose M has not noticed yet
        // may still hold goroutines.
        let n = self.allp.len();
        if n == 1 {
            return None;
        }
        let me = &self.allp[pi];
        for pass in 0..4 {
            let last = pass == 3;
            if last {
                // Go runs other Ps' timers on the last pass.
                self.run_all_timers();
                if let Some((g, _)) = me.runq.get() {
                    // SAFETY: run queues own one reference per entry.
                    return Some(unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) });
                }
            }
            let r = ctx.fastrand() as usize;
            let step = coprime_step(n, r >> 16);
            let mut pos = r % n;
            for _ in 0..n {
                if self.shutdown.load(Relaxed) {
                    return None;
                }
                let vi = pos;
                pos = (pos + step) % n;
                if vi == pi {
                    continue;
                }
                let victim = &self.allp[vi];
                let st = status_of(victim.status.load(Relaxed));
                if st == p::PIDLE || st == p::PDEAD {
                    continue;
                }
                let running = st == p::PPOLLING || st == p::PLOCKED;
                if let Some((g, k)) = me.runq.steal(&victim.runq, last, running) {
                    self.steals.fetch_add(k as u64, Relaxed);
                    if HOOKS && crate::trace::on() {
                        let ts = self.trace_now();
                        self.trace(ctx, ts, crate::trace::Kind::Steal { n: k, from: vi });
                    }
                    // SAFETY: run queues own one reference per entry.
                    return Some(unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) });
                }
            }
        }
        None
    }

    /// The time slice a runnext chain inherited is over: `g` goes to the
    /// global queue (Go's `gopreempt_m`) and the next pick starts a fresh
    /// slice, so the 61st-tick check and the local ring get their turn.
    #[cold]
    fn end_inherited_slice(&self, p: &P, g: GPtr) {
        p.preempt.store(false, Relaxed);
        p.schedtick
            .store(p.schedtick.load(Relaxed).wrapping_add(1), Relaxed);
        g.header().set_status(GStatus::Runnable);
        self.globrunqput(g);
    }

    // ---- netpoll integration ----

    fn netpoll_collect(&self, ctx: &MCtx, np: &dyn Netpoller, t: Option<Duration>) -> Vec<GPtr> {
        *ctx.batch.borrow_mut() = Some(Vec::new());
        np.netpoll(t);
        self.lastpoll
            .store(self.nanotime_of(Instant::now()).max(1), Relaxed);
        let woken = ctx.batch.borrow_mut().take().unwrap_or_default();
        if !woken.is_empty() {
            self.netpoll_wakeups.fetch_add(woken.len() as u64, Relaxed);
        }
        woken
    }

    fn netpoll_inject(&self, ctx: &MCtx, np: &dyn Netpoller, t: Option<Duration>) -> Option<GPtr> {
        let woken = self.netpoll_collect(ctx, np, t);
        let mut it = woken.into_iter();
        let first = it.next()?;
        let p = ctx.curp().expect("netpoll_inject with a P");
        self.inject_local(p, it);
        Some(first)
    }

    /// Go's `injectglist` with a P: onto the local queue, waking helpers.
    fn inject_local(&self, p: &P, gs: impl Iterator<Item = GPtr>) {
        let mut any = false;
        for g in gs {
            any = true;
            if let Some(b) = p.runq.put(g.into_raw().as_ptr(), false) {
                self.globrunqput_batch(b);
            }
        }
        if any {
            self.wakep();
        }
    }

    /// Go's `injectglist` without a P: onto the global queue.
    pub(crate) fn inject_global(&self, gs: Vec<GPtr>) {
        if gs.is_empty() {
            return;
        }
        let n = gs.len();
        self.globq.put_batch(gs);
        for _ in 0..n.min(self.gomaxprocs()) {
            if self.npidle.load(SeqCst) == 0 {
                break;
            }
            self.startm(None, false);
        }
    }

    // ---- schedule / execute ----

    /// The M's scheduler loop, until the runtime shuts down.
    ///
    /// The loop is monomorphised on tracing, so the untraced loop carries
    /// no trace test and no trace state across polls; `find_runnable`
    /// notices at its 61st-tick check that tracing started or stopped and
    /// the loop switches versions.
    pub(crate) fn schedule(&self, ctx: &MCtx) {
        loop {
            let traced = HOOKS && crate::trace::on();
            ctx.traced.set(traced);
            let retrace = if traced {
                self.schedule_g::<true>(ctx)
            } else {
                self.schedule_g::<false>(ctx)
            };
            if !retrace {
                return;
            }
        }
    }

    /// Returns true when tracing was switched on or off (run again).
    fn schedule_g<const TRACED: bool>(&self, ctx: &MCtx) -> bool {
        loop {
            if ctx.p.get().is_none() {
                let got = {
                    let mut l = self.lock.lock().unwrap();
                    self.pidleget_locked(&mut l)
                };
                match got {
                    Some(p) => self.acquirep(ctx, p),
                    None => {
                        if !self.stopm(ctx) {
                            return false;
                        }
                    }
                }
            }
            match self.find_runnable(ctx) {
                Found::Shutdown => return false,
                Found::Stop => {
                    if ctx.spinning.replace(false) {
                        self.nmspinning.fetch_sub(1, SeqCst);
                    }
                    if !self.stopm(ctx) {
                        return false;
                    }
                }
                Found::Retrace => return true,
                Found::G { g, inherit } => {
                    self.resetspinning(ctx);
                    self.execute_g::<TRACED>(ctx, g, inherit);
                }
            }
        }
    }

    /// Go's `resetspinning`: a spinning M found work; wake another to keep
    /// looking if Ps are idle.
    #[inline]
    fn resetspinning(&self, ctx: &MCtx) {
        if ctx.spinning.get() {
            ctx.spinning.set(false);
            self.nmspinning.fetch_sub(1, SeqCst);
            self.wakep();
        }
    }

    pub(crate) fn begin_slice(&self, ctx: &MCtx, p: &P, inherit: bool) {
        if !inherit {
            p.schedtick
                .store(p.schedtick.load(Relaxed).wrapping_add(1), Relaxed);
            ctx.budget.set(BUDGET);
            if p.preempt.load(Relaxed) {
                p.preempt.store(false, Relaxed);
            }
        }
        ctx.yield_global.set(false);
        ctx.self_yield.set(false);
        ctx.wait_reason.set(WaitReason::None);
        ctx.wait_external.set(false);
    }

    /// Leave a poll: keep the P if sysmon did not take it.
    pub(crate) fn end_poll(&self, ctx: &MCtx) {
        ctx.curg.set(None);
        if let Some(pi) = ctx.p.get() {
            if !self.allp[pi].end_poll(ctx.m.id) {
                ctx.p.set(None);
            }
        }
    }

    /// Go's `execute` plus the poll.
    #[inline(always)]
    fn execute_g<const TRACED: bool>(&self, ctx: &MCtx, g: GPtr, inherit: bool) {
        let p = ctx.curp().expect("execute without a P");
        self.begin_slice(ctx, p, inherit);
        let h = g.header();
        let Ok(was) = h.state.transition_to_running() else {
            return;
        };
        h.set_status(GStatus::Running);
        if HOOKS && was & crate::gstate::SAMPLED != 0 {
            self.record_latency(h);
        }
        ctx.curg.set(Some(g.as_ptr()));
        let (t0, goid) = if TRACED {
            (self.trace_now(), h.goid)
        } else {
            (0, 0)
        };
        p.begin_poll(ctx.m.id);
        let out = g.poll();
        self.end_poll(ctx);
        // 0: done, 1: yielded, 2: parked.
        let end = match out {
            // The G left allgs inside its final poll.
            PollOutcome::Done => 0,
            PollOutcome::Pending => {
                let after = if ctx.self_yield.get() {
                    g.yield_after_poll()
                } else {
                    g.park_after_poll(
                        ctx.wait_reason.get(),
                        ctx.wait_external.get(),
                        self.coarse_ms(),
                    )
                };
                if after == AfterPoll::Requeue {
                    self.requeue(ctx, g);
                    1
                } else {
                    2
                }
            }
        };
        if TRACED {
            self.trace_run(ctx, p.id, goid, t0, end);
        }
    }

    #[cold]
    pub(crate) fn trace_ready(&self, ctx: &MCtx, goid: u64) {
        let ts = self.trace_now();
        self.trace(ctx, ts, crate::trace::Kind::Ready { goid });
    }

    #[cold]
    fn record_latency(&self, h: &Header) {
        let since = h.since.load(Relaxed);
        self.latency.record(self.micros().wrapping_sub(since));
    }

    /// Record a run slice (cold: only with GMP_TRACE).
    #[cold]
    pub(crate) fn trace_run(&self, ctx: &MCtx, pid: usize, goid: u64, t0: u64, end: u8) {
        let end = match end {
            0 => "done",
            1 => "yield",
            _ => crate::trace::park_label(ctx.wait_reason.get()),
        };
        let dur_us = self.trace_now() - t0;
        let saved = ctx.p.replace(Some(pid));
        self.trace(ctx, t0, crate::trace::Kind::Run { goid, dur_us, end });
        ctx.p.set(saved);
    }

    /// A G woke itself during its poll (yield, gosched, budget, preempt).
    /// Always inlined: it is the yield path, and an out-of-line call here
    /// costs more than everything else the hook-free schedule loop does.
    #[inline(always)]
    fn requeue(&self, ctx: &MCtx, g: GPtr) {
        if self.shutdown.load(Relaxed) {
            return;
        }
        match ctx.curp() {
            Some(p) if !ctx.yield_global.get() => {
                if let Some(b) = p.runq.put(g.into_raw().as_ptr(), false) {
                    self.globrunqput_batch(b);
                }
            }
            Some(p) => self.yieldput(p, g),
            None => {
                self.globrunqput(g);
                self.wakep();
            }
        }
    }

    /// Go's `goschedImpl`: the G goes to the global queue's tail. When
    /// every P is busy nobody else could take it before this P next looks
    /// at the global queue, so it waits in the P's `yieldq` and
    /// `flush_yieldq` appends the whole batch, in order, right before that
    /// look (the 61st-tick check, or when the local queue runs dry; both
    /// come before the local queue would be refilled from the global one).
    /// Pushing every yield at once made the two Ms of yield_many at
    /// procs = 2 alternate on the global queue's tail and head cache
    /// lines, and run slower than one M.
    #[inline]
    fn yieldput(&self, p: &P, g: GPtr) {
        if self.npidle.load(Relaxed) != 0 {
            // An idle P's M may be looking for work: publish now.
            self.globrunqput(g);
            return;
        }
        // SAFETY: `requeue` runs after the poll, with this M holding P
        // in RUNNING.
        unsafe { p.owned() }.yieldq.push_back(g);
    }

    /// Move the P's yielded goroutines to the global tail, in order.
    ///
    /// # Safety
    /// The caller owns P (its M holds it in RUNNING, or sysmon took it).
    #[inline]
    pub(crate) unsafe fn flush_yieldq(&self, p: &P) {
        // SAFETY: caller contract.
        let own = unsafe { p.owned() };
        if !own.yieldq.is_empty() {
            self.globq.put_batch(own.yieldq.drain(..));
        }
    }

    /// The local queue is empty and so is the global one: appending the
    /// yielded goroutines to the global tail and taking them back out
    /// (`globrunqget`) would hand them back to this P in the same order,
    /// except that Go's grab takes only a share and leaves the rest for
    /// other Ps. Those are busy (no P was idle when they yielded), and an
    /// idle one would steal from our ring anyway; keeping the goroutines
    /// here keeps their cache lines on this core (every one of them moving
    /// between the Ms at every round was most of yield_many's cost at
    /// procs = 2).
    ///
    /// # Safety
    /// This M holds P in RUNNING.
    unsafe fn yieldq_to_local(&self, p: &P) -> Option<GPtr> {
        // SAFETY: caller contract.
        let own = unsafe { p.owned() };
        if own.yieldq.is_empty() || !self.globq.is_empty() {
            return None;
        }
        let mut gs = own.yieldq.drain(..);
        let first = gs.next()?;
        let mut spill = Vec::new();
        gs.for_each(|g| runqput_or_spill(p, g, &mut spill));
        self.globrunqput_spill(spill);
        Some(first)
    }

    // ---- runtime start / teardown ----

    /// The program ends (main returned, or a deadlock): nothing is polled
    /// again. Idle Ms and Ms waiting for a P are sent home; an M still
    /// inside a poll (a syscall, a long poll) is not waited for: it
    /// finishes that poll on its own thread, sees `shutdown`, and sweeps
    /// up after itself (`m_exit`), so the goroutine it polled is dropped
    /// there. What nobody runs any more is dropped here.
    pub(crate) fn teardown(&self) {
        self.shutdown.store(true, SeqCst);
        let idle: Vec<Arc<M>> = {
            let mut l = self.lock.lock().unwrap();
            self.nmidle.store(0, Relaxed);
            self.npwait.store(0, SeqCst);
            let waiting = std::mem::take(&mut l.pwait);
            l.midle.drain(..).chain(waiting).collect()
        };
        for m in idle {
            m.notewakeup(None, false);
        }
        self.poller().netpoll_break();
        self.sysmon.stop();
        self.sysmon.join();
        // Ms are not joined: a detached thread ends when its poll does.
        drop(std::mem::take(&mut *self.threads.lock().unwrap()));
        self.sweep();
        // Timer entries hold the runtime alive; later arms are refused.
        self.close_timers();
        self.main_ptr.store(ptr::null_mut(), Release);
        drop(self.main_g.lock().unwrap().take());
    }

    /// Drop what no one will run: the global queue, the local queues, and
    /// the futures of unfinished goroutines (a G being polled right now is
    /// only marked; its M drops the future when the poll returns). Runs at
    /// teardown and again as each M leaves, for what a poll in flight
    /// spawned or queued meanwhile. Every step is safe against other
    /// sweeps and against Ms finishing their polls.
    fn sweep(&self) {
        for p in self.allp.iter() {
            for g in p.runq.drain() {
                // SAFETY: run queue entries own one reference.
                drop(unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) });
            }
        }
        while self.globq.pop().is_some() {}
        // Drops may wake or spawn others; with `shutdown` set that runs
        // nothing, and the loop takes what they registered.
        loop {
            let gs = self.allgs.take_all();
            if gs.is_empty() {
                break;
            }
            for g in gs {
                g.close();
            }
        }
    }

    pub(crate) fn m_enter(&self) {
        *self.mlive.lock().unwrap() += 1;
    }

    /// An M leaves its loop for good: give back its P, its spinning
    /// count and its trace events; after shutdown, sweep.
    pub(crate) fn m_exit(&self, ctx: &MCtx) {
        if let Some(pi) = ctx.p.take() {
            // SAFETY: this M holds P.
            unsafe { self.flush_yieldq(&self.allp[pi]) };
            let mut l = self.lock.lock().unwrap();
            self.pidleput_locked(&mut l, pi);
        }
        if ctx.spinning.replace(false) {
            self.nmspinning.fetch_sub(1, SeqCst);
        }
        self.trace_flush(ctx);
        if self.shutdown.load(SeqCst) {
            self.sweep();
        }
        *self.mlive.lock().unwrap() -= 1;
    }

    pub(crate) fn mcount(&self) -> usize {
        *self.mlive.lock().unwrap()
    }

    /// The unhandled-panic policy for `go` goroutines (Go: exit 2).
    pub(crate) fn unhandled_panic(&self, h: &Header, payload: Box<dyn std::any::Any + Send>) {
        if self.config.unhandled_panic == UnhandledPanic::Ignore {
            return;
        }
        let msg = payload
            .downcast_ref::<&'static str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".into());
        let site = h.created_at;
        let report = format!(
            "panic: {msg}\n\ngoroutine {} [running]:\ncreated by goroutine {} at {}:{}",
            h.goid,
            h.parent,
            site.file(),
            site.line(),
        );
        if self.config.unhandled_panic == UnhandledPanic::Propagate {
            // The first panic ends the runtime: M0 stops polling main and
            // `block_on` raises the report (through the deadlock slot).
            self.deadlock.lock().unwrap().get_or_insert(report);
            self.deadlocked.store(true, SeqCst);
            self.m0.notewakeup(None, false);
            return;
        }
        eprintln!("{report}");
        crate::trace::finish_on_exit();
        std::process::exit(2);
    }

    /// A goroutine's panic ends this runtime (`UnhandledPanic::Propagate`)
    /// or a deadlock was declared: main must not be polled again.
    pub(crate) fn is_failed(&self) -> bool {
        self.deadlocked.load(Relaxed)
    }
}

/// Append `g` to P's ring (the caller owns P); when the ring is full,
/// `runqputslow`'s batch goes to `spill` for the caller to hand to the
/// global queue once (possibly after releasing another lock).
#[inline]
fn runqput_or_spill(p: &P, g: GPtr, spill: &mut Vec<*mut Header>) {
    if let Some(b) = p.runq.put(g.into_raw().as_ptr(), false) {
        spill.extend(b);
    }
}

/// Thread body of every M but M0 (Go's `mstart`).
fn mstart(sched: Arc<Sched>, m: Arc<M>, p: usize, spinning: bool) {
    let ctx = MCtx::new(Arc::clone(&sched), m);
    let _enter = Enter::new(&ctx);
    sched.acquirep(&ctx, p);
    ctx.spinning.set(spinning);
    sched.schedule(&ctx);
    sched.m_exit(&ctx);
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A step coprime with `n` picked from `r`, so that `pos += step` visits
/// every P once in a random order (Go's `randomOrder`).
#[inline]
fn coprime_step(n: usize, r: usize) -> usize {
    let mut step = 1 + r % n;
    while gcd(step, n) != 1 {
        step = step % n + 1;
    }
    step
}
