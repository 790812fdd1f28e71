//! The scheduler: Go's `schedule`/`findRunnable`/`execute` loop, `ready`,
//! `newproc`, `wakep`/`startm`/`stopm`/`handoffp`, the global run queue and
//! the idle P and M lists (runtime/proc.go).
//!
//! Every M runs `schedule` while it holds a P. `find_runnable` looks, in
//! Go's order, at: main (M0 only), the global queue every 61st tick, the
//! local queue (runnext first), the global queue, the netpoller, and the
//! other Ps' queues (stealing, at most half the busy Ps' worth of spinning
//! Ms). Finding nothing, the M puts its P on the idle list, re-checks once
//! more if it was spinning, then either blocks in the netpoller (exactly
//! one M does) or sleeps on its note until `startm` hands it a P.
//!
//! Work that appears calls `wakep`: if a P is idle and no M is spinning,
//! one M is started spinning; the spinning M that finds work wakes the next
//! one (`resetspinning`). This keeps at most one M searching per burst and
//! lets an idle runtime sleep with zero CPU.
//!
//! Main (goroutine 1) is not Send and lives on the `block_on` thread, M0.
//! It behaves like a G locked to M0 (Go's `lockedg`): its wake sets a flag
//! and, when M0 sleeps, wakes M0; an M0 with no P asks for one
//! (`main_wants_p`), and the next P released, or the next M to reach a
//! 61st tick, hands its P to M0.

use crate::allgs::AllGs;
use crate::g::{self, GPtr, Header, PollOutcome};
use crate::gstate::{AfterPoll, MAIN, SCHEDULED};
use crate::m::M;
use crate::netpoll::Netpoller;
use crate::p::{self, status_of, status_word, P};
use crate::runq::RUNQ_SIZE;
use crate::status::{GStatus, WaitReason};
use crate::UnhandledPanic;
use std::cell::{Cell, RefCell};
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Coop budget: gmp yield points a goroutine may pass per time slice
/// before it yields its P (tokio's number; Go's slice is 10ms of CPU).
pub(crate) const BUDGET: u32 = 128;

/// Observability hooks on the hot paths (tracer checks, latency sampling,
/// spawn counters). The `without-observability` feature compiles them out,
/// only to measure what they cost when the runtime has them switched off.
const HOOKS: bool = cfg!(not(feature = "without-observability"));

/// Global-queue length per P beyond which a P-less spawner waits; see
/// `throttle_pless_spawner`.
const PLESS_SPAWN_LIMIT: usize = 256;
/// The longest a P-less spawner waits at a time (the Ps may all be stuck
/// in long polls of their own).
const PLESS_WAIT: Duration = Duration::from_millis(10);

/// How many goroutine ids a P takes from the global counter at once
/// (Go's `_GoidCacheBatch`).
const GOID_BATCH: u64 = 16;

pub(crate) struct Config {
    pub(crate) unhandled_panic: UnhandledPanic,
    pub(crate) debug: crate::schedtrace::DebugConfig,
    /// SIGQUIT exits the process after the dump (Go's behaviour).
    pub(crate) sigquit_exit: bool,
    /// GMP_TRACE output file.
    pub(crate) trace: Option<std::path::PathBuf>,
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
    pub(crate) procs: usize,
    pub(crate) allp: Box<[P]>,
    /// Go's `sched.lock`: global run queue, idle Ps, idle Ms.
    lock: Mutex<SchedLocked>,
    /// Go's `sched.runq`.
    pub(crate) globq: crate::globrunq::GlobRunq,
    pub(crate) npidle: AtomicUsize,
    pub(crate) nmspinning: AtomicUsize,
    pub(crate) nmidle: AtomicUsize,
    mnext: AtomicU64,
    /// Ms alive in their scheduler loop (M0 included).
    mlive: Mutex<usize>,
    mlive_cv: Condvar,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    pub(crate) allgs: AllGs,
    goidgen: AtomicU64,
    pub(crate) shutdown: AtomicBool,
    pub(crate) m0: Arc<M>,
    main_g: Mutex<Option<GPtr>>,
    main_ptr: std::sync::atomic::AtomicPtr<Header>,
    main_wants_p: AtomicBool,
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
    coprimes: Vec<usize>,
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
    /// GMP_TRACE, when on.
    pub(crate) tracer: Option<crate::trace::Tracer>,
}

struct SchedLocked {
    pidle: Vec<usize>,
    midle: Vec<Arc<M>>,
}

/// What `find_runnable` found.
enum Found {
    G(GPtr, bool),
    Main,
    /// The M has no P now and must stop (`stopm`).
    Stop,
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
    rng: Cell<u64>,
    /// While polling the netpoller: woken Gs are collected, then injected.
    batch: RefCell<Option<Vec<GPtr>>>,
    main_yielded: Cell<bool>,
    pub(crate) trace_buf: RefCell<Vec<crate::trace::Event>>,
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
            rng: Cell::new(seed),
            batch: RefCell::new(None),
            main_yielded: Cell::new(false),
            trace_buf: RefCell::new(Vec::new()),
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
        h.sched().ready_main();
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
        let tracer = config.trace.clone().map(crate::trace::Tracer::new);
        let coprimes = (1..=procs).filter(|&c| gcd(c, procs) == 1).collect();
        Arc::new(Sched {
            procs,
            allp: (0..procs).map(P::new).collect(),
            lock: Mutex::new(SchedLocked {
                pidle: (0..procs).rev().collect(),
                midle: Vec::new(),
            }),
            globq: Default::default(),
            npidle: AtomicUsize::new(procs),
            nmspinning: AtomicUsize::new(0),
            nmidle: AtomicUsize::new(0),
            mnext: AtomicU64::new(2),
            mlive: Mutex::new(0),
            mlive_cv: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            allgs: AllGs::new((4 * procs).max(16).next_power_of_two()),
            goidgen: AtomicU64::new(1),
            shutdown: AtomicBool::new(false),
            m0: Arc::new(M::new(1, true)),
            main_g: Mutex::new(None),
            main_ptr: std::sync::atomic::AtomicPtr::new(ptr::null_mut()),
            main_wants_p: AtomicBool::new(false),
            netpoll,
            parker: crate::netpoll::ParkPoller::default(),
            netpoll_blocked: AtomicBool::new(false),
            poll_until: AtomicU64::new(0),
            lastpoll: AtomicU64::new(0),
            start: Instant::now(),
            coarse_ms: AtomicU32::new(0),
            config,
            coprimes,
            sysmon: crate::sysmon::SysmonCtl::default(),
            steals: AtomicU64::new(0),
            mparks: AtomicU64::new(0),
            netpoll_wakeups: AtomicU64::new(0),
            spawned_nop: AtomicU64::new(0),
            nmsys: AtomicUsize::new(0),
            deadlock: Mutex::new(None),
            deadlocked: AtomicBool::new(false),
            latency: Default::default(),
            tracer,
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
        make: impl FnOnce(u64, u64) -> NonNull<Header>,
    ) -> NonNull<Header> {
        let parent = ctx.goid();
        let locked = ctx.curp().and_then(|p| p.lock(ctx.m.id).map(|r| (p, r)));
        let goid = match locked {
            Some((p, _)) => self.alloc_goid_locked(p),
            None => self.goidgen.fetch_add(1, Relaxed) + 1,
        };
        let ptr = make(goid, parent);
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
        if HOOKS && self.tracer.is_some() {
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
                if self.globq.len() > PLESS_SPAWN_LIMIT * self.procs {
                    self.throttle_pless_spawner();
                }
            }
        }
        ptr
    }

    /// A goroutine whose P sysmon took mid-poll keeps running on its M
    /// without one (a stackless G cannot be preempted). Go's preempted
    /// goroutine would wait at the global tail while the Ps run what it
    /// spawned; ours could keep spawning on its own thread faster than the
    /// Ps run them, and everything readied meanwhile (a timer's goroutine
    /// spilled from a full local ring, say) would queue behind thousands of
    /// fresh goroutines. So once the global queue is long, the P-less
    /// spawner waits (this M holds no P, so no one else waits with it)
    /// until the Ps have drained half of it, for at most `PLESS_WAIT`.
    #[cold]
    fn throttle_pless_spawner(&self) {
        let low = PLESS_SPAWN_LIMIT * self.procs / 2;
        let start = Instant::now();
        while self.globq.len() > low && !self.shutdown.load(Relaxed) && start.elapsed() < PLESS_WAIT
        {
            thread::sleep(Duration::from_micros(20));
        }
    }

    /// `ready` on an M of this runtime. Returns the G back when it must go
    /// to the global queue instead.
    fn ready_local(&self, ctx: &MCtx, g: GPtr) -> Option<GPtr> {
        if let Some(b) = ctx.batch.borrow_mut().as_mut() {
            b.push(g);
            return None;
        }
        let p = ctx.curp()?;
        let Some(restore) = p.lock(ctx.m.id) else {
            return Some(g);
        };
        if HOOKS {
            self.sample_ready(Some(ctx), p, g.header());
        }
        self.runqput_next(p, restore, g);
        None
    }

    /// `runqput(p, g, next=true)` from a locked P, then unlock and `wakep`.
    /// Only work another M could take right away is worth waking one for:
    /// a G alone in runnext runs here as soon as the current G parks (see
    /// design.md, "wakep only for stealable work").
    fn runqput_next(&self, p: &P, restore: u64, g: GPtr) {
        let over = p.runq.put(g.into_raw().as_ptr(), true);
        let stealable = over.is_some() || p.runq.ring_nonempty();
        p.unlock(restore);
        if let Some(batch) = over {
            self.globrunqput_batch(batch);
        }
        if stealable {
            self.wakep();
        }
    }

    // ---- main (goroutine 1, locked to M0) ----

    pub(crate) fn set_main(&self, g: GPtr) {
        self.main_ptr.store(g.as_ptr().as_ptr(), Release);
        *self.main_g.lock().unwrap() = Some(g);
    }

    fn main_ready(&self) -> bool {
        let p = self.main_ptr.load(Acquire);
        // SAFETY: main_ptr is set while block_on's GPtr keeps main alive.
        !p.is_null() && unsafe { (*p).state.load() } & SCHEDULED != 0
    }

    fn ready_main(&self) {
        // Pairs with the fence in `stopm`: either M0 sees main ready before
        // it sleeps, or we see it parked.
        fence(SeqCst);
        if self.m0.parked.load(Relaxed) {
            let mut l = self.lock.lock().unwrap();
            if let Some(i) = l.midle.iter().position(|m| m.is_m0) {
                let m0 = l.midle.swap_remove(i);
                self.nmidle.fetch_sub(1, Relaxed);
                m0.parked.store(false, Relaxed);
                drop(l);
                m0.notewakeup(None, false);
                return;
            }
        }
        if self.netpoll_blocked.load(SeqCst) {
            self.poller().netpoll_break();
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
        .unwrap_or_else(|| crate::rt::fastrandn(self.procs as u32) as usize)
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
        let mut n = size.min(size / self.procs + 1);
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
        let tracing = self.tracer.is_some();
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

    fn pidleget_locked(&self, l: &mut SchedLocked) -> Option<usize> {
        let p = l.pidle.pop()?;
        self.npidle.fetch_sub(1, SeqCst);
        self.sysmon.wake_if_sleeping();
        Some(p)
    }

    /// Go's `pidleput`, except that a P released while M0 waits for one to
    /// run main goes straight to M0.
    fn pidleput_locked(&self, l: &mut SchedLocked, p: usize) {
        self.allp[p].status.store(p::PIDLE, Release);
        if self.main_wants_p.swap(false, AcqRel) {
            self.m0.notewakeup(Some(p), false);
            return;
        }
        l.pidle.push(p);
        self.npidle.fetch_add(1, SeqCst);
    }

    pub(crate) fn pidleget_for_syscall(&self) -> Option<usize> {
        let mut l = self.lock.lock().unwrap();
        self.pidleget_locked(&mut l)
    }

    fn acquirep(&self, ctx: &MCtx, p: usize) {
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
        if self.main_wants_p.swap(false, AcqRel) {
            drop(l);
            self.m0.notewakeup(Some(p), spinning);
            return;
        }
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
        let m = Arc::new(M::new(id, false));
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
        let pp = &self.allp[p];
        // SAFETY: sysmon took P from its M (status CAS), so it is ours
        // until handed on; the yielded goroutines must not wait for
        // whichever M gets the P next.
        unsafe { self.flush_yieldq(pp) };
        if !pp.runq.is_empty() || !self.globq.is_empty() {
            self.startm(Some(p), false);
            return;
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
        if self.main_wants_p.load(Acquire) {
            self.startm(Some(p), false);
            return;
        }
        let mut l = self.lock.lock().unwrap();
        if !self.globq.is_empty() {
            drop(l);
            self.startm(Some(p), false);
            return;
        }
        self.pidleput_locked(&mut l, p);
    }

    /// Go's `stopm`: park this M until it is handed a P. False on shutdown.
    fn stopm(&self, ctx: &MCtx) -> bool {
        debug_assert!(ctx.p.get().is_none());
        loop {
            let mut l = self.lock.lock().unwrap();
            if self.shutdown.load(Acquire) || self.deadlocked.load(Acquire) {
                return false;
            }
            if ctx.m.is_m0 {
                ctx.m.parked.store(true, Relaxed);
                fence(SeqCst);
                if self.main_ready() {
                    ctx.m.parked.store(false, Relaxed);
                    if let Some(p) = self.pidleget_locked(&mut l) {
                        drop(l);
                        self.acquirep(ctx, p);
                        return true;
                    }
                    self.main_wants_p.store(true, Release);
                } else {
                    l.midle.push(ctx.m.clone());
                    self.nmidle.fetch_add(1, Relaxed);
                }
            } else {
                l.midle.push(ctx.m.clone());
                self.nmidle.fetch_add(1, Relaxed);
            }
            // The M that leaves the whole runtime idle, with no poller and
            // no syscall under way, watches for a deadlock.
            let watch = self.npidle.load(SeqCst) == self.procs
                && !self.netpoll_blocked.load(SeqCst)
                && self.nmsys.load(SeqCst) == 0;
            drop(l);
            self.mparks.fetch_add(1, Relaxed);
            let woken = if watch {
                let epoch = self.activity_epoch();
                match ctx.m.notesleep_timeout(crate::checkdead::GRACE) {
                    Some(w) => w,
                    None => {
                        if self.checkdead(epoch) {
                            return false;
                        }
                        ctx.m.notesleep()
                    }
                }
            } else {
                ctx.m.notesleep()
            };
            let (nextp, spinning) = woken;
            if let Some(p) = nextp {
                self.acquirep(ctx, p);
                ctx.spinning.set(spinning);
                return true;
            }
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
            && self.npidle.load(SeqCst) == self.procs
            && !self.netpoll_blocked.load(SeqCst)
            && self.nmsys.load(SeqCst) == 0
            && self.globq.is_empty()
            && self.allp.iter().all(|p| p.runq.is_empty())
            && !self.main_ready();
        quiet.then_some(l)
    }

    /// Record the deadlock and send M0 back to `block_on`.
    pub(crate) fn declare_deadlock(&self, text: String) {
        *self.deadlock.lock().unwrap() = Some(text);
        self.deadlocked.store(true, SeqCst);
        let m0 = {
            let mut l = self.lock.lock().unwrap();
            let i = l.midle.iter().position(|m| m.is_m0);
            i.map(|i| {
                self.nmidle.fetch_sub(1, Relaxed);
                l.midle.swap_remove(i)
            })
        };
        if let Some(m0) = m0 {
            m0.parked.store(false, Relaxed);
            m0.notewakeup(None, false);
        }
    }

    // ---- find_runnable ----

    #[inline(always)]
    fn find_runnable(&self, ctx: &MCtx) -> Found {
        'top: loop {
            if self.shutdown.load(Acquire) {
                return Found::Shutdown;
            }
            let pi = ctx.p.get().expect("find_runnable without a P");
            let p = &self.allp[pi];
            let is_m0 = ctx.m.is_m0;
            self.check_timers(p);
            if is_m0 && !ctx.main_yielded.get() && self.main_ready() {
                return Found::Main;
            }
            // Fairness: every 61st tick look at the global queue first, so
            // two goroutines that keep readying each other via runnext
            // cannot starve it.
            if p.schedtick.load(Relaxed).is_multiple_of(61) {
                if !self.globq.is_empty() {
                    // SAFETY: this M holds P in RUNNING.
                    unsafe { self.flush_yieldq(p) };
                    if let Some(g) = self.globrunqget(p, 1) {
                        return Found::G(g, false);
                    }
                }
                if is_m0 && self.main_ready() {
                    return Found::Main;
                }
                if !is_m0 && self.main_wants_p.load(Acquire) {
                    // Go's startlockedm: M0 needs a P to run main.
                    let l = self.lock.lock().unwrap();
                    if self.main_wants_p.swap(false, AcqRel) {
                        ctx.p.set(None);
                        p.status.store(p::PIDLE, Release);
                        drop(l);
                        self.m0.notewakeup(Some(pi), false);
                        return Found::Stop;
                    }
                    drop(l);
                }
                // With the global queue empty, its head would be this P's
                // oldest yielder: take that one and keep the others here
                // (see `yieldq_to_local`).
                // SAFETY: this M holds P in RUNNING.
                if let Some(g) = unsafe { p.owned() }.yieldq.pop_front() {
                    return Found::G(g, false);
                }
            }
            if let Some((g, inherit)) = p.runq.get() {
                // SAFETY: run queues own one reference per entry.
                return Found::G(
                    unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) },
                    inherit,
                );
            }
            // A yielding main (goroutine 1, which only M0 runs) takes its
            // turn before this P's yielders go round again.
            if is_m0 && self.main_ready() {
                return Found::Main;
            }
            // SAFETY: this M holds P in RUNNING.
            if let Some(g) = unsafe { self.yieldq_to_local(p) } {
                return Found::G(g, false);
            }
            // SAFETY: this M holds P in RUNNING.
            unsafe { self.flush_yieldq(p) };
            if !self.globq.is_empty() {
                if let Some(g) = self.globrunqget(p, 0) {
                    return Found::G(g, false);
                }
            }
            if is_m0 && self.main_ready() {
                return Found::Main;
            }
            if let Some(np) = &self.netpoll {
                if np.has_waiters() && !self.netpoll_blocked.load(Acquire) {
                    if let Some(g) = self.netpoll_inject(ctx, &**np, Some(Duration::ZERO)) {
                        return Found::G(g, false);
                    }
                }
            }
            // Steal, but keep spinning Ms under half the busy Ps.
            let npidle = self.npidle.load(SeqCst);
            if ctx.spinning.get() || 2 * self.nmspinning.load(SeqCst) < self.procs - npidle {
                if !ctx.spinning.get() {
                    ctx.spinning.set(true);
                    self.nmspinning.fetch_add(1, SeqCst);
                }
                if let Some(g) = self.steal_work(ctx, pi) {
                    return Found::G(g, false);
                }
            }
            // Nothing: give up the P.
            let mut l = self.lock.lock().unwrap();
            if self.shutdown.load(Acquire) {
                return Found::Shutdown;
            }
            if is_m0 && self.main_ready() {
                return Found::Main;
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
                if !(self.shutdown.load(SeqCst) || is_m0 && self.main_ready()) {
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
                            return Found::G(g, false);
                        }
                    } else {
                        drop(l);
                        self.inject_global(woken);
                    }
                }
                // Look again (main, new work, the next timer).
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

    /// Go's `stealWork`: 4 passes over the other Ps in a random order;
    /// runnext only on the last.
    fn steal_work(&self, ctx: &MCtx, pi: usize) -> Option<GPtr> {
        let n = self.procs;
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
            let step = self.coprimes[(r >> 16) % self.coprimes.len()];
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
                if st == p::PIDLE {
                    continue;
                }
                let running = st == p::PPOLLING || st == p::PLOCKED;
                if let Some((g, k)) = me.runq.steal(&victim.runq, last, running) {
                    self.steals.fetch_add(k as u64, Relaxed);
                    if HOOKS && self.tracer.is_some() {
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
        for _ in 0..n.min(self.procs) {
            if self.npidle.load(SeqCst) == 0 {
                break;
            }
            self.startm(None, false);
        }
    }

    // ---- schedule / execute ----

    /// The M's scheduler loop. `main` polls the main future (M0 only) and
    /// returns true when it completed; the loop then returns.
    ///
    /// Whether the runtime traces is fixed when it is built, so the loop
    /// is monomorphised on it once here: the untraced loop carries no
    /// trace test, and no trace state across polls.
    pub(crate) fn schedule(&self, ctx: &MCtx, main: &mut dyn FnMut(&MCtx) -> bool) {
        if HOOKS && self.tracer.is_some() {
            self.schedule_g::<true>(ctx, main);
        } else {
            self.schedule_g::<false>(ctx, main);
        }
    }

    fn schedule_g<const TRACED: bool>(&self, ctx: &MCtx, main: &mut dyn FnMut(&MCtx) -> bool) {
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
                            return;
                        }
                    }
                }
            }
            match self.find_runnable(ctx) {
                Found::Shutdown => return,
                Found::Stop => {
                    if !self.stopm(ctx) {
                        return;
                    }
                }
                Found::Main => {
                    self.resetspinning(ctx);
                    if self.poll_main_g::<TRACED>(ctx, main) {
                        return;
                    }
                }
                Found::G(g, inherit) => {
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

    fn begin_slice(&self, ctx: &MCtx, p: &P, inherit: bool) {
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
    fn end_poll(&self, ctx: &MCtx) {
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
            PollOutcome::Done => {
                self.allgs.remove(h);
                0
            }
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
    fn trace_ready(&self, ctx: &MCtx, goid: u64) {
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
    fn trace_run(&self, ctx: &MCtx, pid: usize, goid: u64, t0: u64, end: u8) {
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
    unsafe fn flush_yieldq(&self, p: &P) {
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

    /// `execute` for goroutine 1, on M0.
    #[inline(always)]
    fn poll_main_g<const TRACED: bool>(
        &self,
        ctx: &MCtx,
        main: &mut dyn FnMut(&MCtx) -> bool,
    ) -> bool {
        let mg = self.main_g.lock().unwrap().as_ref().map(|g| g.clone_ref());
        let Some(mg) = mg else { return true };
        let p = ctx.curp().expect("poll_main without a P");
        self.begin_slice(ctx, p, false);
        ctx.main_yielded.set(false);
        if mg.header().state.transition_to_running().is_err() {
            return true;
        }
        mg.header().set_status(GStatus::Running);
        ctx.curg.set(Some(mg.as_ptr()));
        let t0 = if TRACED { self.trace_now() } else { 0 };
        let pid = p.id;
        p.begin_poll(ctx.m.id);
        let done = main(ctx);
        self.end_poll(ctx);
        if TRACED {
            let end = match (done, ctx.self_yield.get()) {
                (true, _) => 0,
                (false, true) => 1,
                (false, false) => 2,
            };
            self.trace_run(ctx, pid, 1, t0, end);
        }
        if done {
            mg.header().state.transition_to_complete();
            mg.header().set_status(GStatus::Dead);
            return true;
        }
        let after = if ctx.self_yield.get() {
            mg.yield_after_poll()
        } else {
            mg.park_after_poll(
                ctx.wait_reason.get(),
                ctx.wait_external.get(),
                self.coarse_ms(),
            )
        };
        if after == AfterPoll::Requeue {
            // Main yielded: let queued goroutines run before polling it
            // again (Go puts a yielding main on the global queue).
            ctx.main_yielded.set(true);
        }
        false
    }

    // ---- runtime start / teardown ----

    /// Wait for every M but the caller to leave its loop, then drop every
    /// goroutine that never finished. Nothing is polled after this starts.
    pub(crate) fn teardown(&self) {
        self.shutdown.store(true, SeqCst);
        let idle: Vec<Arc<M>> = {
            let mut l = self.lock.lock().unwrap();
            self.nmidle.store(0, Relaxed);
            l.midle.drain(..).collect()
        };
        for m in idle {
            m.notewakeup(None, false);
        }
        self.poller().netpoll_break();
        self.sysmon.stop();
        {
            let mut n = self.mlive.lock().unwrap();
            while *n > 1 {
                // Ms that were mid-transition when we emptied the idle list
                // see `shutdown` under the sched lock; wake any stragglers.
                let (g, _) = self
                    .mlive_cv
                    .wait_timeout(n, Duration::from_millis(5))
                    .unwrap();
                n = g;
                if *n > 1 {
                    let more: Vec<Arc<M>> = self.lock.lock().unwrap().midle.drain(..).collect();
                    for m in more {
                        m.notewakeup(None, false);
                    }
                    self.poller().netpoll_break();
                }
            }
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap());
        for t in threads {
            let _ = t.join();
        }
        self.sysmon.join();
        // No M runs now: empty the queues (dropping runnable references).
        for p in self.allp.iter() {
            // SAFETY: no M runs, so no one else touches any P.
            unsafe { p.owned() }.yieldq.clear();
            for g in p.runq.drain() {
                // SAFETY: run queue entries own one reference.
                drop(unsafe { GPtr::from_raw(NonNull::new_unchecked(g)) });
            }
        }
        while self.globq.pop().is_some() {}
        // Drop the futures of unfinished goroutines. Their drops may wake
        // or spawn others; with `shutdown` set that runs nothing.
        loop {
            let gs = self.allgs.take_all();
            if gs.is_empty() {
                break;
            }
            for g in gs {
                g.close();
            }
        }
        // Timer entries hold the runtime alive; later arms are refused.
        self.close_timers();
        self.main_ptr.store(ptr::null_mut(), Release);
        drop(self.main_g.lock().unwrap().take());
    }

    pub(crate) fn m_enter(&self) {
        *self.mlive.lock().unwrap() += 1;
    }

    fn m_exit(&self) {
        let mut n = self.mlive.lock().unwrap();
        *n -= 1;
        drop(n);
        self.mlive_cv.notify_all();
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
            // The first panic ends the runtime: main is woken to stop, and
            // `block_on` raises the report (through the deadlock slot).
            self.deadlock.lock().unwrap().get_or_insert(report);
            self.deadlocked.store(true, SeqCst);
            if let Some(main) = NonNull::new(self.main_ptr.load(Acquire)) {
                // SAFETY: main_ptr is set while block_on's GPtr keeps main
                // alive, and teardown (which clears it) waits for this M.
                g::borrowed_waker(main).wake_by_ref();
            }
            return;
        }
        eprintln!("{report}");
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
    sched.schedule(&ctx, &mut |_| unreachable!("only M0 polls main"));
    if let Some(pi) = ctx.p.take() {
        let mut l = sched.lock.lock().unwrap();
        sched.pidleput_locked(&mut l, pi);
    }
    if ctx.spinning.get() {
        sched.nmspinning.fetch_sub(1, SeqCst);
    }
    sched.trace_flush(&ctx);
    sched.m_exit();
}

/// Run `main` as goroutine 1 on the calling thread (M0) until it returns.
pub(crate) fn run_main(sched: &Arc<Sched>, main: &mut dyn FnMut(&MCtx) -> bool) {
    let ctx = MCtx::new(Arc::clone(sched), Arc::clone(&sched.m0));
    let _enter = Enter::new(&ctx);
    sched.m_enter();
    {
        let mut l = sched.lock.lock().unwrap();
        let p = sched.pidleget_locked(&mut l).expect("a P for M0");
        drop(l);
        sched.acquirep(&ctx, p);
    }
    sched.schedule(&ctx, main);
    if let Some(pi) = ctx.p.take() {
        let mut l = sched.lock.lock().unwrap();
        l.pidle.push(pi);
        sched.allp[pi].status.store(p::PIDLE, Release);
        sched.npidle.fetch_add(1, SeqCst);
    }
    if ctx.spinning.get() {
        sched.nmspinning.fetch_sub(1, SeqCst);
    }
    sched.trace_flush(&ctx);
    sched.teardown();
    if let Some(t) = &sched.tracer {
        if let Err(e) = t.write(sched.procs) {
            eprintln!("gmp: cannot write the execution trace: {e}");
        }
    }
    sched.m_exit();
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Create the main goroutine's G: a header whose wakes signal M0.
pub(crate) fn new_main_g(sched: &Arc<Sched>, site: &'static std::panic::Location<'static>) -> GPtr {
    let header = Header::new(
        sched,
        g::go_vtable::<std::future::Pending<()>>(),
        1,
        0,
        site,
        false,
        true,
    );
    let ptr = g::new_go(header, std::future::pending::<()>());
    // SAFETY: fresh G with two references: registry + ours.
    unsafe { sched.allgs.insert(0, GPtr::from_raw(ptr)) };
    // SAFETY: the second reference.
    unsafe { GPtr::from_raw(ptr) }
}
