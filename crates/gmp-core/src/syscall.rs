//! `gmp::syscall`: Go's `entersyscall`/`exitsyscall` around a blocking
//! call made from a goroutine.
//!
//! Entering marks the P `_Psyscall`; sysmon hands such a P to another M
//! after one round (>= 20us), so the P's other goroutines keep running.
//! Leaving takes the P back if it is still ours (`exitsyscallfast`), else
//! any idle P; failing both, the goroutine finishes its poll without a P
//! and the M stops afterwards (`exitsyscall0`).

use crate::p::{self, status_word};
use crate::sched::with_current;
use crate::status::GStatus;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, Release, SeqCst};

/// Run a blocking closure on this M without holding up the P's other
/// goroutines. Outside a goroutine it just calls `f`.
pub fn syscall<R>(f: impl FnOnce() -> R) -> R {
    // None: not in a goroutine. Some(entered): counted in nmsys; entered
    // says whether we hold a P in _Psyscall.
    let state = with_current(|ctx| {
        let g = ctx.curg.get()?;
        ctx.sched.nmsys.fetch_add(1, SeqCst);
        let pi = ctx.p.get()?;
        let pp = &ctx.sched.allp[pi];
        let me = ctx.m.id;
        pp.syscalltick
            .store(pp.syscalltick.load(Relaxed).wrapping_add(1), Relaxed);
        if pp
            .status
            .compare_exchange(
                status_word(me, p::PPOLLING),
                status_word(me, p::PSYSCALL),
                AcqRel,
                Relaxed,
            )
            .is_err()
        {
            // Taken by sysmon already (long poll): we are P-less.
            ctx.p.set(None);
            return Some(false);
        }
        // SAFETY: curg is the G being polled on this M.
        unsafe { g.as_ref().set_status(GStatus::Syscall) };
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
            if self.0 {
                exitsyscall();
            }
            with_current(|ctx| ctx.sched.nmsys.fetch_sub(1, SeqCst));
        }
    }
    let _exit = Exit(state == Some(true));
    f()
}

fn exitsyscall() {
    with_current(|ctx| {
        let me = ctx.m.id;
        let Some(pi) = ctx.p.get() else { return };
        let sched = &ctx.sched;
        let pp = &sched.allp[pi];
        if pp
            .status
            .compare_exchange(
                status_word(me, p::PSYSCALL),
                status_word(me, p::PPOLLING),
                AcqRel,
                Relaxed,
            )
            .is_err()
        {
            ctx.p.set(None);
            // exitsyscallfast: any idle P will do; we are mid-poll, so it
            // becomes ours in POLLING state.
            if let Some(np) = sched.pidleget_for_syscall() {
                let npp = &sched.allp[np];
                npp.polltick
                    .store(npp.polltick.load(Relaxed).wrapping_add(1), Relaxed);
                npp.status.store(status_word(me, p::PPOLLING), Release);
                ctx.p.set(Some(np));
            }
        }
        if let Some(g) = ctx.curg.get() {
            // SAFETY: curg is the G being polled on this M.
            unsafe { g.as_ref().set_status(GStatus::Running) };
        }
    });
}
