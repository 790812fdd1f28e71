//! The end of a program: `teardown` when main returns (without waiting
//! for Ms still inside a poll), the sweep each M makes as it leaves, the
//! deadlock report's hooks, and the unhandled-panic policy.

use super::*;

impl Sched {
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
    pub(super) fn sweep(&self) {
        for p in self.allp.iter() {
            // SAFETY: with `shutdown` set no M puts into a run queue any
            // more; concurrent sweeps only take, each with a head CAS.
            let mut q = unsafe { p.runq.local() };
            let gs: Vec<GPtr> = std::iter::from_fn(|| q.runqget().map(|(g, _)| g)).collect();
            drop(gs);
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
            self.flush_yieldq(&mut unsafe { self.allp[pi].assume_owned() });
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
        crate::diag::trace::finish_on_exit();
        std::process::exit(2);
    }

    /// A goroutine's panic ended this runtime (`UnhandledPanic::Propagate`)
    /// or a deadlock was declared: main must not be polled again, and M0
    /// and Ms waiting for a P stop waiting.
    pub(crate) fn is_failed(&self) -> bool {
        self.deadlocked.load(Acquire)
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
}
