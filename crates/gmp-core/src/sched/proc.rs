//! The scheduler loop: Go's `schedule`, `findRunnable` (with `stealWork`
//! and then the netpoller check) and `execute`, the time slice, and the
//! trace and latency hooks of a poll.

use super::*;

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

impl Sched {
    #[inline(always)]
    fn find_runnable(&self, ctx: &MCtx) -> Found {
        // When a spinning M that found nothing stops looking (see
        // `spin_before_park`).
        let mut spin_until: Option<Instant> = None;
        'top: loop {
            if self.shutdown.load(Acquire) {
                return Found::Shutdown;
            }
            let pi = ctx.p.get().expect("find_runnable without a P");
            if pi >= self.gomaxprocs() && self.retirep(ctx, pi) {
                return Found::Stop;
            }
            // SAFETY: outside a poll this M holds its P in RUNNING, which
            // sysmon never takes; the guard is not used once the P is
            // handed on (handoff, pidleput).
            let mut p = unsafe { self.allp[pi].assume_owned() };
            self.check_timers(&p);
            // Fairness: every 61st tick look at the global queue first, so
            // two goroutines that keep readying each other via runnext
            // cannot starve it.
            if p.schedtick.load(Relaxed).is_multiple_of(61) {
                if HOOKS && ctx.traced.get() != crate::diag::trace::on() {
                    return Found::Retrace;
                }
                if !self.globq.is_empty() {
                    self.flush_yieldq(&mut p);
                    if let Some(g) = self.globrunqget(&mut p, 1) {
                        return Found::G { g, inherit: false };
                    }
                }
                if self.npwait.load(Relaxed) != 0 && self.handoff_to_waiter(ctx, &mut p) {
                    return Found::Stop;
                }
                // With the global queue empty, its head would be this P's
                // oldest yielder: take that one and keep the others here
                // (see `yieldq_to_local`).
                if let Some(g) = p.owned().yieldq.pop_front() {
                    return Found::G { g, inherit: false };
                }
            }
            if let Some((g, inherit)) = p.runq().runqget() {
                if inherit && p.preempt.load(Relaxed) {
                    // A runnext chain has shared one time slice for 10ms
                    // (goroutines waking each other through any waker):
                    // end it as Go's preemption would, sending the next
                    // one to the global tail behind everything queued.
                    self.end_inherited_slice(&p, g);
                    if self.npwait.load(Relaxed) != 0 && self.handoff_to_waiter(ctx, &mut p) {
                        return Found::Stop;
                    }
                    continue 'top;
                }
                return Found::G { g, inherit };
            }
            // The local queue is done: an M waiting for a P (back from a
            // syscall, or M0 for main) goes before the global queue, as
            // Go's exitsyscall'd goroutine would be ahead of later arrivals.
            if self.npwait.load(Relaxed) != 0 && self.handoff_to_waiter(ctx, &mut p) {
                return Found::Stop;
            }
            if let Some(g) = self.yieldq_to_local(&mut p) {
                return Found::G { g, inherit: false };
            }
            self.flush_yieldq(&mut p);
            if !self.globq.is_empty() {
                if let Some(g) = self.globrunqget(&mut p, 0) {
                    return Found::G { g, inherit: false };
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
                if let Some(g) = self.steal_work(ctx, &mut p) {
                    return Found::G { g, inherit: false };
                }
            }
            // The network after stealing, where Go polls it before: under
            // load a poll nearly always finds something, so an M that polls
            // first keeps feeding itself while goroutines already runnable
            // on a P whose thread the kernel has preempted wait out that
            // thread's time slice (milliseconds of tail latency for an HTTP
            // server whose Ps share the cores with its clients). tokio's
            // workers likewise steal before they park on the I/O driver.
            if let Some(np) = &self.netpoll {
                if np.has_waiters() && !self.netpoll_blocked.load(Acquire) {
                    if let Some(g) = self.netpoll_inject(ctx, &**np, Some(Duration::ZERO)) {
                        return Found::G { g, inherit: false };
                    }
                }
            }
            if ctx.spinning.get()
                && !self.cpuload.scarce()
                && self.spin_before_park(&mut spin_until)
            {
                continue 'top;
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
            self.collect_timers_if_idle();
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
                    // A far timer (the coarse clock is sure) is waited
                    // for without a precise read: the poll may then end up
                    // to two ticks early, and the next one is precise.
                    let timeout = (next != crate::timer::NO_TIMER).then(|| {
                        let left = crate::clock::certainly_ahead(self.start_raw, next)
                            .unwrap_or_else(|| {
                                next.saturating_sub(self.nanotime_of(Instant::now()))
                            });
                        Duration::from_nanos(left)
                    });
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
                        // SAFETY: `acquirep` made this M the P's owner,
                        // in RUNNING.
                        self.inject_local(&mut unsafe { self.allp[np].assume_owned() }, it);
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

    /// A spinning M found nothing to run. Go's gives its P back and parks
    /// at once, and the next `ready` on a busy P pays a futex wake to start
    /// it again: for a producer handing work to a consumer on its own P
    /// (a ping-pong pair, a channel's senders and receivers) that is a
    /// wake every few hand-offs. Ours keeps looking for `SPIN_BEFORE_PARK`
    /// first, still holding its P, so `wakep` (which wants an idle P)
    /// costs the waker nothing meanwhile. It reads only the queues'
    /// lengths; any work seen sends it back through `find_runnable`'s
    /// steal. True: look again.
    #[cold]
    fn spin_before_park(&self, until: &mut Option<Instant>) -> bool {
        let end = *until.get_or_insert_with(|| Instant::now() + SPIN_BEFORE_PARK);
        loop {
            if self.shutdown.load(Relaxed) || self.npwait.load(Relaxed) != 0 {
                return false;
            }
            // Ours the only busy P (always so at GOMAXPROCS 1) and no M
            // blocked in the netpoller: no goroutine can make work for us
            // meanwhile and nobody watches the network, so the spin would
            // only delay our own blocking poll (network events wait for it).
            if self.gomaxprocs().saturating_sub(self.npidle.load(Relaxed)) <= 1
                && !self.netpoll_is_blocked()
            {
                return false;
            }
            // A runnable main with no idle P to take: M0, woken for it, is
            // on its way to wait for ours.
            if self.npidle.load(Relaxed) == 0 && self.main_ready() {
                return false;
            }
            // Rings only: a G alone in a busy P's runnext was offered to
            // us by the steal that just failed, and its owner is taking
            // its runnext chain itself. Polling gently keeps the owner's
            // queue line from bouncing between the cores.
            if !self.globq.is_empty()
                || self
                    .allp
                    .iter()
                    .take(self.gomaxprocs())
                    .any(|p| p.runq.ring_nonempty())
            {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            for _ in 0..256 {
                std::hint::spin_loop();
            }
        }
    }

    /// Go's `stealWork`: 4 passes over the other Ps in a random order;
    /// runnext only on the last.
    pub(super) fn steal_work(&self, ctx: &MCtx, me: &mut POwner<'_>) -> Option<GPtr> {
        // Every P that exists: a retired one whose M has not noticed yet
        // may still hold goroutines.
        let n = self.allp.len();
        if n == 1 {
            return None;
        }
        let pi = me.id;
        let mut q = me.runq();
        for pass in 0..4 {
            let last = pass == 3;
            if last {
                // Go runs other Ps' timers on the last pass.
                self.run_all_timers();
                if let Some((g, _)) = q.runqget() {
                    return Some(g);
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
                if let Some((g, k)) = q.runqsteal(&victim.runq, last, running) {
                    self.steals.fetch_add(k as u64, Relaxed);
                    if HOOKS && crate::diag::trace::on() {
                        let ts = self.trace_now();
                        self.trace(ctx, ts, crate::diag::trace::Kind::Steal { n: k, from: vi });
                    }
                    return Some(g);
                }
            }
        }
        None
    }

    /// The time slice a runnext chain inherited is over: `g` goes to the
    /// global queue (Go's `gopreempt_m`) and the next pick starts a fresh
    /// slice, so the 61st-tick check and the local ring get their turn.
    #[cold]
    pub(super) fn end_inherited_slice(&self, p: &P, g: GPtr) {
        p.preempt.store(false, Relaxed);
        p.schedtick
            .store(p.schedtick.load(Relaxed).wrapping_add(1), Relaxed);
        g.header().set_status(GStatus::Runnable);
        self.globrunqput(g);
    }

    pub(super) fn netpoll_collect(
        &self,
        ctx: &MCtx,
        np: &dyn Netpoller,
        t: Option<Duration>,
    ) -> Vec<GPtr> {
        *ctx.batch.borrow_mut() = Some(Vec::new());
        np.netpoll(t);
        // sysmon only asks whether this is 10 ms old: the coarse clock
        // (a tick behind at most) does, without a precise read per poll.
        let now = crate::clock::coarse_nanotime(self.start_raw)
            .unwrap_or_else(|| self.nanotime_of(Instant::now()));
        self.lastpoll.store(now.max(1), Relaxed);
        let woken = ctx.batch.borrow_mut().take().unwrap_or_default();
        if !woken.is_empty() {
            self.netpoll_wakeups.fetch_add(woken.len() as u64, Relaxed);
        }
        woken
    }

    pub(super) fn netpoll_inject(
        &self,
        ctx: &MCtx,
        np: &dyn Netpoller,
        t: Option<Duration>,
    ) -> Option<GPtr> {
        let woken = self.netpoll_collect(ctx, np, t);
        let mut it = woken.into_iter();
        let first = it.next()?;
        let p = ctx.curp().expect("netpoll_inject with a P");
        // SAFETY: called from `find_runnable`, whose M holds P in RUNNING.
        self.inject_local(&mut unsafe { p.assume_owned() }, it);
        Some(first)
    }

    /// The M's scheduler loop, until the runtime shuts down.
    ///
    /// The loop is monomorphised on tracing, so the untraced loop carries
    /// no trace test and no trace state across polls; `find_runnable`
    /// notices at its 61st-tick check that tracing started or stopped and
    /// the loop switches versions.
    pub(crate) fn schedule(&self, ctx: &MCtx) {
        loop {
            let traced = HOOKS && crate::diag::trace::on();
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
    pub(super) fn schedule_g<const TRACED: bool>(&self, ctx: &MCtx) -> bool {
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
    /// looking if Ps are idle, unless other processes leave too few cores
    /// for our Ps (`cpuload.rs`): the next spinner would only take a core
    /// from a thread with work.
    #[inline]
    pub(super) fn resetspinning(&self, ctx: &MCtx) {
        if ctx.spinning.get() {
            ctx.spinning.set(false);
            self.nmspinning.fetch_sub(1, SeqCst);
            if !self.cpuload.scarce() {
                self.wakep();
            }
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
    pub(super) fn execute_g<const TRACED: bool>(&self, ctx: &MCtx, g: GPtr, inherit: bool) {
        let p = ctx.curp().expect("execute without a P");
        self.begin_slice(ctx, p, inherit);
        let h = g.header();
        let Ok(was) = h.state.transition_to_running() else {
            return;
        };
        h.set_status(GStatus::Running);
        if HOOKS && was & crate::g::state::SAMPLED != 0 {
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
        let end = match out {
            // The G left allgs inside its final poll.
            PollOutcome::Done => RunEnd::Done,
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
                    RunEnd::Yield
                } else {
                    RunEnd::Park
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
        self.trace(ctx, ts, crate::diag::trace::Kind::Ready { goid });
    }

    #[cold]
    pub(super) fn record_latency(&self, h: &Header) {
        let since = h.since.load(Relaxed);
        self.latency.record(self.micros().wrapping_sub(since));
    }

    /// Record a run slice (cold: only with GMP_TRACE).
    #[cold]
    pub(crate) fn trace_run(&self, ctx: &MCtx, pid: usize, goid: u64, t0: u64, end: RunEnd) {
        let dur_us = self.trace_now() - t0;
        let saved = ctx.p.replace(Some(pid));
        let reason = ctx.wait_reason.get();
        self.trace(
            ctx,
            t0,
            crate::diag::trace::Kind::Run {
                goid,
                dur_us,
                end,
                reason,
            },
        );
        ctx.p.set(saved);
    }
}

/// How long a spinning M that found nothing keeps looking before it parks
/// (`spin_before_park`): a few hand-off round trips' worth of futex wakes
/// saved against a core kept busy briefly.
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(20);

/// How a poll ended, for the trace (the wait reason of a park is the M
/// context's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunEnd {
    Done,
    Yield,
    Park,
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
