//! Main (goroutine 1) and M0, the thread that called `block_on` (Go's
//! main goroutine and, for a `!Send` main, `lockOSThread`'s
//! `startlockedm`/`stoplockedm`).
//!
//! Main runs within a millisecond of becoming runnable whenever a P is
//! idle, whatever the other goroutines are doing. Two shapes give that:
//!
//! - **A `Send` main** (`#[gmp::main]`, `#[gmp::test]`) is an ordinary
//!   goroutine 1 that any M may poll, exactly like Go's main. M0 runs no
//!   goroutine at all: it sleeps until main's `JoinHandle` resolves (or
//!   the runtime deadlocks), see [`run_main_goroutine`].
//! - **`block_on`'s future** need not be `Send`, so only M0 may poll it.
//!   M0 then polls main and nothing else ([`run_main`]): had it run other
//!   goroutines too, one of them could hold it inside a syscall or a long
//!   CPU loop while main, runnable, had nowhere else to run. M0 sleeps on
//!   its note while main waits; main's wake-up wakes it; it takes an idle
//!   P (or waits for one in `pwait`, like an M leaving a syscall), polls
//!   main, and hands the P back (`handoffp` starts an M for whatever main
//!   made runnable). The price is a thread hand-off each time main parks
//!   and wakes, which Go pays for locked goroutines too.
//!
//! Either way, when main returns the program ends: `teardown` runs on M0
//! and `block_on` returns without waiting for Ms still inside a poll.

use crate::g::join::JoinHandle;
use crate::g::state::SCHEDULED;
use crate::g::status::GStatus;
use crate::g::{self, GPtr, Header};
use crate::p;
use crate::sched::{Enter, MCtx, RunEnd, Sched, HOOKS};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::fence;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

impl Sched {
    pub(crate) fn set_main(&self, g: GPtr) {
        self.main_ptr.store(g.as_ptr().as_ptr(), Release);
        *self.main_g.lock().unwrap() = Some(g);
    }

    /// A locked main (on M0) is runnable.
    pub(crate) fn main_ready(&self) -> bool {
        let p = self.main_ptr.load(Acquire);
        // SAFETY: main_ptr is set while the GPtr in `main_g` keeps main
        // alive, and cleared before that reference is dropped.
        !p.is_null() && unsafe { (*p).state.load() } & SCHEDULED != 0
    }

    /// `ready` for a locked main: wake M0 if it sleeps.
    pub(crate) fn ready_main(&self) {
        // Pairs with the fence in `m0_wait_main`: either M0 sees main
        // runnable before it sleeps, or we see it parked.
        fence(SeqCst);
        if self.m0.parked.load(Relaxed) {
            self.m0.notewakeup(None, false);
        }
    }

    /// Sleep until main is runnable. False when the runtime ends first
    /// (a deadlock, whose watch M0 keeps like any M that idles the
    /// runtime).
    fn m0_wait_main(&self, ctx: &MCtx) -> bool {
        loop {
            if self.shutdown.load(Acquire) || self.is_failed() {
                return false;
            }
            ctx.m.parked.store(true, Relaxed);
            fence(SeqCst);
            if self.main_ready() {
                ctx.m.parked.store(false, Relaxed);
                return true;
            }
            self.collect_timers_if_idle();
            let watch = self.leaves_runtime_idle();
            let woken = self.notesleep_watching(ctx, watch);
            ctx.m.parked.store(false, Relaxed);
            if woken.is_none() {
                return false;
            }
        }
    }

    /// Go's `execute` for main, on M0 holding a P. True when main is done.
    fn poll_main(&self, ctx: &MCtx, main: &mut dyn FnMut(&MCtx) -> bool) -> bool {
        let mg = self.main_g.lock().unwrap().as_ref().map(|g| g.clone_ref());
        let Some(mg) = mg else { return true };
        let p = ctx.curp().expect("poll_main without a P");
        self.begin_slice(ctx, p, false);
        let h = mg.header();
        if h.state.transition_to_running().is_err() {
            return true;
        }
        h.set_status(GStatus::Running);
        ctx.curg.set(Some(mg.as_ptr()));
        let traced = HOOKS && crate::diag::trace::on();
        let t0 = if traced { self.trace_now() } else { 0 };
        let pid = p.id;
        p.begin_poll(ctx.m.id);
        let done = main(ctx);
        self.end_poll(ctx);
        if traced {
            let end = match (done, ctx.self_yield.get()) {
                (true, _) => RunEnd::Done,
                (false, true) => RunEnd::Yield,
                (false, false) => RunEnd::Park,
            };
            self.trace_run(ctx, pid, 1, t0, end);
        }
        if done {
            h.state.transition_to_complete();
            h.set_status(GStatus::Dead);
            return true;
        }
        // A yield leaves main SCHEDULED; `releasep_main` sees it.
        if ctx.self_yield.get() {
            mg.yield_after_poll();
        } else {
            mg.park_after_poll(
                ctx.wait_reason.get(),
                ctx.wait_external.get(),
                self.coarse_ms(),
            );
        }
        false
    }

    /// After a poll of main: keep the P only if main can run again at
    /// once and nothing else waits for it (Go would pick main from the
    /// queues next anyway); otherwise hand it on as a P whose M left for
    /// a syscall.
    fn releasep_main(&self, ctx: &MCtx) {
        let Some(pi) = ctx.p.get() else { return };
        let pp = &self.allp[pi];
        if self.main_ready() && pp.runq.is_empty() && self.globq.is_empty() {
            return;
        }
        let yielded_to_others = self.main_ready();
        ctx.p.set(None);
        pp.status.store(p::PIDLE, Release);
        self.handoffp(pi);
        if yielded_to_others {
            // Main yielded with goroutines queued behind it. Go would run
            // them on this thread first; they now need another thread,
            // so let the OS run it before main goes round again.
            std::thread::yield_now();
        }
    }
}

/// Run `main` (any future, `Send` or not) as goroutine 1, polled on this
/// thread (M0) and nowhere else, until it returns; then end the program.
pub(crate) fn run_main(sched: &Arc<Sched>, main: &mut dyn FnMut(&MCtx) -> bool) {
    let ctx = MCtx::new(Arc::clone(sched), Arc::clone(&sched.m0));
    let _enter = Enter::new(&ctx);
    sched.m_enter();
    loop {
        if ctx.p.get().is_none() {
            if !sched.m0_wait_main(&ctx) {
                break;
            }
            let Some(p) = sched.wait_for_p(&ctx) else {
                break;
            };
            sched.acquirep(&ctx, p);
        }
        if sched.poll_main(&ctx, main) {
            break;
        }
        sched.releasep_main(&ctx);
    }
    // Before teardown: after it, what this runtime's Ms record is dropped.
    sched.trace_flush(&ctx);
    sched.teardown();
    sched.m_exit(&ctx);
}

/// Wakes M0 from its note (main's `JoinHandle` resolved).
struct M0Waker(Arc<crate::m::M>);

impl Wake for M0Waker {
    fn wake(self: Arc<Self>) {
        self.0.notewakeup(None, false);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.notewakeup(None, false);
    }
}

/// Run a `Send` main already queued as goroutine 1: M0 only waits for its
/// handle. None when the runtime deadlocked first.
pub(crate) fn run_main_goroutine<T>(
    sched: &Arc<Sched>,
    mut handle: JoinHandle<T>,
) -> Option<Result<T, crate::JoinError>> {
    let waker = Waker::from(Arc::new(M0Waker(Arc::clone(&sched.m0))));
    let mut cx = Context::from_waker(&waker);
    let out = loop {
        if let Poll::Ready(r) = Pin::new(&mut handle).poll(&mut cx) {
            if r.is_ok() {
                crate::diag::leakcheck::on_main_return(sched);
            }
            if crate::diag::trace::on() {
                sched.let_main_poll_finish();
            }
            break Some(r);
        }
        if sched.is_failed() {
            break None;
        }
        sched.m0.notesleep();
    };
    sched.teardown();
    out
}

impl Sched {
    /// Main's handle resolved while the M that polled it is still
    /// finishing that poll, and it records main's last run slice only
    /// then. With tracing on, give it (and the other Ms) a moment to reach
    /// an idle P, at most a few milliseconds, so the trace the program
    /// ends with shows main's end.
    fn let_main_poll_finish(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(20);
        while self.npidle.load(Acquire) < self.gomaxprocs() && std::time::Instant::now() < deadline
        {
            std::thread::yield_now();
        }
    }
}

/// Create a locked main's G: a header whose wakes signal M0 (`MAIN`).
pub(crate) fn new_main_g(sched: &Arc<Sched>, site: &'static std::panic::Location<'static>) -> GPtr {
    let header = Header::new(
        sched,
        g::go_vtable::<std::future::Pending<()>>(),
        1,
        crate::g::ancestry::Spawner::NONE,
        site,
        false,
        true,
    );
    sched
        .allgs
        .insert(0, g::new_go(header, std::future::pending::<()>()))
}

/// Create a `Send` main as goroutine 1, queued to run on any M.
pub(crate) fn spawn_main_goroutine<F>(
    sched: &Arc<Sched>,
    fut: F,
    site: &'static std::panic::Location<'static>,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let g = g::pre_spawn(fut).finish(Header::new(
        sched,
        g::spawn_vtable::<F>(),
        1,
        crate::g::ancestry::Spawner::NONE,
        site,
        true,
        false,
    ));
    let ptr = g.as_ptr();
    sched.globrunqput(sched.allgs.insert(0, g));
    sched.startm(None, false);
    // SAFETY: a spawn G of output F::Output, created with HANDLE set.
    unsafe { JoinHandle::new(ptr) }
}
