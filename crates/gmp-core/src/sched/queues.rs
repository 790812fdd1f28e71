//! Moving goroutines between queues: the global run queue (Go's
//! `globrunqput`/`globrunqget`), a P's yielders (`yieldq`, see
//! docs/design.md), requeueing after a poll, and injecting what the
//! netpoller readied (`injectglist`).

use super::*;

impl Sched {
    pub(crate) fn globrunqput(&self, g: GPtr) {
        self.globq.put(g);
    }

    pub(super) fn globrunqput_batch(&self, batch: Vec<*mut Header>) {
        self.globq.put_raw_batch(batch);
    }

    /// Go's `globrunqget`: take a fair share of the global queue into P's
    /// local queue and return one G.
    pub(super) fn globrunqget(&self, p: &mut POwner<'_>, max: usize) -> Option<GPtr> {
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
        let mut q = p.runq();
        let g = self
            .globq
            .pop_batch(n, |g| runqput_or_spill(&mut q, g, &mut spill))?;
        self.globrunqput_spill(spill);
        Some(g)
    }

    /// The overflow of `runqput_or_spill`, to the global tail.
    pub(super) fn globrunqput_spill(&self, spill: Vec<*mut Header>) {
        if !spill.is_empty() {
            self.globq.put_raw_batch(spill);
        }
    }

    /// A G woke itself during its poll (yield, gosched, budget, preempt).
    /// Always inlined: it is the yield path, and an out-of-line call here
    /// costs more than everything else the hook-free schedule loop does.
    #[inline(always)]
    pub(super) fn requeue(&self, ctx: &MCtx, g: GPtr) {
        if self.shutdown.load(Relaxed) {
            return;
        }
        match ctx.curp() {
            Some(p) => {
                // SAFETY: `requeue` runs after the poll, with this M holding
                // P in RUNNING (`end_poll` cleared `ctx.p` otherwise).
                let mut p = unsafe { p.assume_owned() };
                if !ctx.yield_global.get() {
                    if let Some(b) = p.runq().put(g.into_raw().as_ptr(), false) {
                        self.globrunqput_batch(b);
                    }
                } else {
                    self.yieldput(&mut p, g);
                }
            }
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
    pub(super) fn yieldput(&self, p: &mut POwner<'_>, g: GPtr) {
        if self.npidle.load(Relaxed) != 0 {
            // An idle P's M may be looking for work: publish now.
            self.globrunqput(g);
            return;
        }
        p.owned().yieldq.push_back(g);
    }

    /// Move the P's yielded goroutines to the global tail, in order.
    #[inline]
    pub(crate) fn flush_yieldq(&self, p: &mut POwner<'_>) {
        let own = p.owned();
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
    pub(super) fn yieldq_to_local(&self, p: &mut POwner<'_>) -> Option<GPtr> {
        let (mut q, own) = p.runq_and_owned();
        if own.yieldq.is_empty() || !self.globq.is_empty() {
            return None;
        }
        let mut gs = own.yieldq.drain(..);
        let first = gs.next()?;
        let mut spill = Vec::new();
        gs.for_each(|g| runqput_or_spill(&mut q, g, &mut spill));
        self.globrunqput_spill(spill);
        Some(first)
    }

    /// Go's `injectglist` with a P: one G per idle P goes to the global
    /// queue with an M started for each (so a burst the netpoller readied
    /// spreads over the idle Ps at once instead of queueing behind this
    /// P's current G), the rest onto the local queue, waking a helper.
    /// While other processes leave too few cores for our Ps
    /// (`cpuload.rs`), the whole burst stays on this P and no M is woken:
    /// the cores those Ms would need are taken.
    pub(super) fn inject_local(&self, p: &mut POwner<'_>, gs: impl Iterator<Item = GPtr>) {
        let mut gs = gs.peekable();
        if gs.peek().is_none() {
            return;
        }
        let spread = !self.cpuload.scarce();
        let idle = if spread { self.npidle.load(SeqCst) } else { 0 };
        if idle > 0 {
            let glob: Vec<GPtr> = gs.by_ref().take(idle).collect();
            let n = glob.len();
            self.globq.put_batch(glob);
            for _ in 0..n {
                self.startm(None, false);
            }
        }
        let mut any = false;
        let mut q = p.runq();
        for g in gs {
            any = true;
            if let Some(b) = q.put(g.into_raw().as_ptr(), false) {
                self.globrunqput_batch(b);
            }
        }
        if any && spread {
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
}

/// Append `g` to P's ring; when the ring is full, `runqputslow`'s batch
/// goes to `spill` for the caller to hand to the global queue once
/// (possibly after releasing another lock).
#[inline]
pub(super) fn runqput_or_spill(q: &mut Local<'_, Header>, g: GPtr, spill: &mut Vec<*mut Header>) {
    if let Some(b) = q.put(g.into_raw().as_ptr(), false) {
        spill.extend(b);
    }
}
