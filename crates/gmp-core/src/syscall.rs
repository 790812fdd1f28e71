//! `gmp::syscall`: Go's `entersyscall`/`exitsyscall` around a blocking
//! call made from a goroutine.
//!
//! Entering marks the P `_Psyscall`; sysmon hands such a P to another M
//! after one round (>= 20us), so the P's other goroutines keep running.
//! Leaving takes the P back if it is still ours (`exitsyscallfast`), else
//! any idle P; failing both, the M waits until a P is handed to it before
//! the goroutine runs on (`exitsyscall0`: Go parks the G on the global
//! queue; a stackless G is mid-poll on this M's stack, so the M waits in
//! its place). GOMAXPROCS therefore bounds the goroutine code running at
//! once, syscalls aside.

use crate::g::status::GStatus;
use crate::p;
use crate::sched::with_current;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// Run a blocking closure on this M without holding up the P's other
/// goroutines. Outside a goroutine it just calls `f`.
pub fn syscall<R>(f: impl FnOnce() -> R) -> R {
    // None: not in a goroutine. Some(entered): counted in nmsys; entered
    // says whether we hold a P in _Psyscall.
    let state = with_current(|ctx| {
        let g = ctx.curg_header()?;
        ctx.sched.nmsys.fetch_add(1, SeqCst);
        ctx.sched.sysmon.wake_for_syscall();
        ctx.in_syscall.set(true);
        let pi = ctx.p.get()?;
        let pp = &ctx.sched.allp[pi];
        let me = ctx.m.id;
        pp.syscalltick
            .store(pp.syscalltick.load(Relaxed).wrapping_add(1), Relaxed);
        if !pp.owner_step(me, p::PPOLLING, p::PSYSCALL) {
            // Taken by sysmon already (long poll): we are P-less.
            ctx.p.set(None);
            return Some(false);
        }
        g.set_status(GStatus::Syscall);
        Some(true)
    })
    .flatten();
    let in_goroutine =
        state.is_some() || with_current(|ctx| ctx.curg.get().is_some()) == Some(true);
    if !in_goroutine {
        return f();
    }
    struct Exit(bool);
    impl Drop for Exit {
        fn drop(&mut self) {
            with_current(|ctx| ctx.in_syscall.set(false));
            exitsyscall(self.0);
            with_current(|ctx| ctx.sched.nmsys.fetch_sub(1, SeqCst));
        }
    }
    let _exit = Exit(state == Some(true));
    f()
}

/// `entered`: the syscall started with a P in `_Psyscall` (else the P was
/// already gone, taken during a long poll).
fn exitsyscall(entered: bool) {
    with_current(|ctx| {
        let me = ctx.m.id;
        let sched = &ctx.sched;
        let kept = entered
            && ctx
                .p
                .get()
                .is_some_and(|pi| sched.allp[pi].owner_step(me, p::PSYSCALL, p::PPOLLING));
        // A P kept across a GOMAXPROCS decrease is given up here.
        let retired = kept
            && ctx
                .p
                .get()
                .is_some_and(|pi| pi >= sched.gomaxprocs() && sched.retirep(ctx, pi));
        if !kept || retired {
            // exitsyscallfast failed: any idle P, else wait for one. We
            // are mid-poll, so it becomes ours in POLLING state.
            ctx.p.set(None);
            let _ = sched.acquirep_polling(ctx);
        }
        if let Some(h) = ctx.curg_header() {
            h.set_status(GStatus::Running);
        }
    });
}
