//! Idle Ps and Ms: Go's `pidleget`/`pidleput`, `wakep`, `startm`,
//! `newm`, `handoffp` and `stopm`, and the Ms waiting for a P (`pwait`,
//! Go's `exitsyscall` slow path), served before the idle list.

use super::*;

impl Sched {
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
    pub(super) fn pwait_handoff_locked(&self, l: &mut SchedLocked, p: usize) -> bool {
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
            if self.shutdown.load(Acquire) || self.is_failed() {
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

    pub(super) fn newm(&self, p: usize, spinning: bool) {
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
        self.flush_yieldq(&mut unsafe { pp.assume_owned() });
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
    pub(super) fn stopm(&self, ctx: &MCtx) -> bool {
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
        match ctx.m.notesleep_timeout(crate::diag::checkdead::GRACE) {
            Some(w) => Some(w),
            None if self.checkdead(epoch) => None,
            None => Some(ctx.m.notesleep()),
        }
    }

    /// The 61st-tick check found Ms waiting for a P (a syscall that lost
    /// its P, or M0 with main runnable): like Go's `startlockedm`, give
    /// them this one and stop. The yielders go to the global queue first,
    /// so they do not wait behind the other M's poll.
    #[cold]
    pub(super) fn handoff_to_waiter(&self, ctx: &MCtx, p: &mut POwner<'_>) -> bool {
        let mut l = self.lock.lock().unwrap();
        if l.pwait.is_empty() {
            return false;
        }
        self.flush_yieldq(p);
        ctx.p.set(None);
        self.pidleput_locked(&mut l, p.id);
        true
    }
}

/// Thread body of every M but M0 (Go's `mstart`).
pub(super) fn mstart(sched: Arc<Sched>, m: Arc<M>, p: usize, spinning: bool) {
    let ctx = MCtx::new(Arc::clone(&sched), m);
    let _enter = Enter::new(&ctx);
    sched.acquirep(&ctx, p);
    ctx.spinning.set(spinning);
    sched.schedule(&ctx);
    sched.m_exit(&ctx);
}
