//! Making goroutines runnable: Go's `newproc` (a new G into the current
//! P's `runnext`) and `ready` (a woken G the same way), each followed by
//! `wakep`; an M whose P was taken waits for one first (`lock_curp_slow`).

use super::*;

/// Go's `ready`/`goready`: make `g` runnable. From a goroutine of the same
/// runtime it goes to this P's `runnext` (the woken G runs next and
/// inherits the time slice); from anywhere else to the global queue.
pub(crate) fn ready(g: GPtr) {
    let h = g.header();
    if h.state.load() & MAIN != 0 {
        // `g` (holding a strong Sched reference) outlives the call.
        let s = h.sched();
        if HOOKS && crate::diag::trace::on() {
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
    pub(super) fn alloc_goid_locked(&self, p: &mut POwner<'_>) -> u64 {
        let own = p.owned();
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
    ///
    /// With the observability hooks compiled in, a spawn on a P pays for
    /// them with an increment (the metrics' spawn count), a compare of the
    /// new id with the P's `spawn_mark` and the spawner's chain word (see
    /// `ancestry.rs`); the trace event and the latency sample share the
    /// one cold branch behind the compare (`spawn_hook`).
    pub(crate) fn newproc(
        self: &Arc<Sched>,
        ctx: &MCtx,
        make: impl FnOnce(u64, crate::g::ancestry::Spawner) -> crate::g::NewG,
    ) -> NonNull<Header> {
        let mut locked = self.lock_curp(ctx);
        let goid = match &mut locked {
            Some(p) => self.alloc_goid_locked(p),
            None => self.goidgen.fetch_add(1, Relaxed) + 1,
        };
        // Shard by goroutine id: the G usually exits on another P or M
        // than the one that made it, so per-P shards would still contend.
        let g = self.allgs.insert(goid as usize, make(goid, ctx.spawner()));
        let ptr = g.as_ptr();
        if self.shutdown.load(Acquire) {
            // Spawned by a drop during teardown: never runs; teardown's
            // registry sweep closes it.
            return ptr;
        }
        match locked {
            Some(p) => {
                if HOOKS {
                    p.spawned.store(p.spawned.load(Relaxed) + 1, Relaxed);
                    if goid >= p.spawn_mark.load(Relaxed) {
                        self.spawn_hook(&p, g.header());
                    }
                }
                self.runqput_next(p, g);
            }
            None => {
                if HOOKS && crate::diag::trace::on() {
                    self.trace_spawn(g.header());
                }
                self.spawned_nop.fetch_add(1, Relaxed);
                self.globrunqput(g);
                self.wakep();
            }
        }
        ptr
    }

    /// A spawn on `p` reached the P's `spawn_mark`: stamp the new G for the
    /// latency histogram and, while tracing, record the spawn. Not tracing,
    /// the next mark is `SAMPLE_EVERY` goroutine ids on (at most that many
    /// spawns on this P; fewer while other Ps take ids too); tracing, it is
    /// 0, so that every spawn comes here.
    ///
    /// `trace::start` sets every P's mark to 0 after turning tracing on;
    /// this store and that one cannot lose each other's value: both are
    /// SeqCst, and after storing a non-zero mark the hook reads the flag
    /// again, so either it sees tracing on and stores 0 itself, or its
    /// store precedes `start`'s.
    #[cold]
    #[inline(never)]
    fn spawn_hook(&self, p: &P, h: &Header) {
        h.since.store(self.micros(), Relaxed);
        h.state.mark_sampled();
        if !crate::diag::trace::on() {
            let next = h.goid + crate::diag::metrics::SAMPLE_EVERY as u64;
            p.spawn_mark.store(next, SeqCst);
            if !crate::diag::trace::on_ordered() {
                return;
            }
        }
        p.spawn_mark.store(0, SeqCst);
        self.trace_spawn(h);
    }

    /// The M context is looked up again rather than passed, so that the
    /// spawn path need not keep it in a register past `make`.
    #[cold]
    fn trace_spawn(&self, h: &Header) {
        let ts = self.trace_now();
        with_current(|ctx| {
            let (parent, child) = (h.parent, h.goid);
            self.trace(ctx, ts, crate::diag::trace::Kind::Spawn { parent, child });
        });
    }

    /// Tracing started: make every P's next spawn take the spawn hook.
    pub(crate) fn trace_started(&self) {
        for p in self.allp.iter() {
            p.spawn_mark.store(0, SeqCst);
        }
    }

    /// The current P, locked for an owner-side put from inside a poll.
    #[inline]
    pub(super) fn lock_curp(&self, ctx: &MCtx) -> Option<PLocked<'_>> {
        if let Some(p) = ctx.p.get().map(|i| &self.allp[i]) {
            if let Some(owner) = p.try_own(ctx.m.id) {
                return Some(owner);
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
    pub(super) fn lock_curp_slow(&self, ctx: &MCtx) -> Option<PLocked<'_>> {
        if ctx.in_syscall.get() || ctx.curg.get().is_none() || self.shutdown.load(Acquire) {
            return None;
        }
        ctx.p.set(None);
        self.acquirep_polling(ctx)?.try_own(ctx.m.id)
    }

    /// `ready` on an M of this runtime. Returns the G back when it must go
    /// to the global queue instead.
    pub(super) fn ready_local(&self, ctx: &MCtx, g: GPtr) -> Option<GPtr> {
        if let Some(b) = ctx.batch.borrow_mut().as_mut() {
            if HOOKS && crate::diag::trace::on() {
                self.trace_ready(ctx, g.header().goid);
            }
            b.push(g);
            return None;
        }
        let Some(p) = self.lock_curp(ctx) else {
            return Some(g);
        };
        if HOOKS {
            self.sample_ready(ctx, &p, g.header());
        }
        self.runqput_next(p, g);
        None
    }

    /// `runqput(p, g, next=true)` from a locked P, then unlock and `wakep`,
    /// as Go's `newproc` and `ready` do: if a P is idle and no M spins, one
    /// M starts spinning, and if the current G keeps running instead of
    /// parking it steals `runnext` after its ~3us grace. The `nmspinning`
    /// check keeps this to one M per burst (design.md, "wakep").
    #[inline]
    pub(super) fn runqput_next(&self, mut p: PLocked<'_>, g: GPtr) {
        let over = p.runq().put(g.into_raw().as_ptr(), true);
        drop(p);
        if let Some(batch) = over {
            self.globrunqput_batch(batch);
        }
        self.wakep();
    }

    /// Every 256th ready on a P stamps the G for the latency histogram
    /// (every ready while tracing). A countdown, so that the common case is
    /// a decrement, a store and a branch on the flags it set. The caller
    /// holds P. Spawns have their own mark (`spawn_hook`).
    #[inline]
    pub(super) fn sample_ready(&self, ctx: &MCtx, p: &P, h: &Header) {
        let t = p.readytick.load(Relaxed).wrapping_sub(1);
        p.readytick.store(t, Relaxed);
        if t == 0 {
            self.ready_hook(ctx, p, h);
        }
    }

    #[cold]
    pub(super) fn ready_hook(&self, ctx: &MCtx, p: &P, h: &Header) {
        let tracing = crate::diag::trace::on();
        let every = if tracing {
            1
        } else {
            crate::diag::metrics::SAMPLE_EVERY
        };
        p.readytick.store(every, Relaxed);
        h.since.store(self.micros(), Relaxed);
        h.state.mark_sampled();
        if tracing {
            self.trace_ready(ctx, h.goid);
        }
    }
}
