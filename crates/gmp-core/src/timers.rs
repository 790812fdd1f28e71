//! The per-P timer heaps (Go 1.23's `timers`; go1.19's `p.timers`,
//! `addtimer`, `checkTimers`, `runtimer`, `moveTimers`).
//!
//! A timer lives in the heap of the P that armed it. The scheduler runs a
//! P's expired timers at the top of `find_runnable` (a lock-free check of
//! `timer0`, the earliest deadline, costs nothing when no timer is due),
//! other Ps' timers on the last stealing pass, and every P's after the one
//! M that blocks in the netpoller wakes up; that M blocks for exactly as
//! long as the earliest timer allows. Arming a timer earlier than the
//! poller's wake-up breaks the poll (Go's `wakeNetPoller`).
//!
//! Stopping is lazy: the heap entry stays and is discarded when it
//! surfaces (its timer is disarmed, or re-armed under a new sequence
//! number), unless a re-arm for a later deadline revives it first
//! (`timer.rs`). An entry whose deadline was moved later surfaces early
//! and is queued again for the new one. A heap is swept
//! (Go 1.23's zombie cleaning) when stale entries are many, and whenever it
//! has doubled since the last sweep; the sweep also drops collectable
//! timers nobody can observe any more, so a loop that abandons one `after`
//! per iteration holds a bounded heap. When every timer left is one nobody
//! can observe, they are all dropped before an M would block in the
//! netpoller for them, and `checkdead` does not count them: they cannot
//! keep a deadlocked program from being reported.
//!
//! Runtime teardown closes every heap (`close_timers`): the entries, which
//! hold the runtime alive through their timers, are dropped, and later
//! arms are refused.

use crate::sched::Sched;
use crate::timer::{Fire, TimerInner};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// No timer: `timer0` of an empty heap.
pub(crate) const NO_TIMER: u64 = u64::MAX;

/// Go's `maxWhen`: the `when` of a timer that never fires.
pub(crate) const MAX_WHEN: u64 = i64::MAX as u64;

/// A heap is swept once it holds this many entries, or twice as many as
/// the last sweep left, whichever is larger.
const SWEEP_MIN: usize = 1024;

/// Stale entries that justify a sweep on their own (if they are at least
/// half of the heap).
const STALE_MIN: usize = 64;

struct Heap {
    entries: BinaryHeap<Reverse<TimerEntry>>,
}

/// One P's timers.
pub(crate) struct PTimers {
    heap: Mutex<Heap>,
    /// Earliest `when` in the heap (ns since the runtime started), or
    /// NO_TIMER. Read without the lock on every schedule.
    pub(crate) timer0: AtomicU64,
    /// Entries whose timer was stopped or re-armed (lazy deletion).
    stale: AtomicUsize,
    /// Heap length, mirrored for the lock-free sweep check.
    len: AtomicUsize,
    /// Sweep when `len` reaches this.
    sweep_at: AtomicUsize,
    /// Set by runtime teardown, under the heap lock: nothing is heaped
    /// afterwards. Read under the lock where that matters (`push`), and
    /// without it by `arm`'s revival of a queued entry.
    closed: AtomicBool,
}

/// One heap entry: a timer's arming, live while `seq` matches the timer's
/// and the timer is armed; its `when` may be earlier than the timer's own
/// (moved later since, see `TimerInner::fire`).
/// What `PTimers::take_all` hands out for `Sched::move_timers`.
pub(crate) struct TimerEntry {
    pub(crate) when: u64,
    pub(crate) seq: u64,
    pub(crate) t: Arc<TimerInner>,
}

impl PartialEq for TimerEntry {
    fn eq(&self, o: &Self) -> bool {
        (self.when, self.seq) == (o.when, o.seq)
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for TimerEntry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.when, self.seq).cmp(&(o.when, o.seq))
    }
}

impl Default for PTimers {
    fn default() -> Self {
        PTimers {
            heap: Mutex::new(Heap {
                entries: BinaryHeap::new(),
            }),
            timer0: AtomicU64::new(NO_TIMER),
            stale: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            sweep_at: AtomicUsize::new(SWEEP_MIN),
            closed: AtomicBool::new(false),
        }
    }
}

impl PTimers {
    fn lock(&self) -> MutexGuard<'_, Heap> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_timer0(&self, h: &Heap) {
        self.timer0.store(
            h.entries.peek().map_or(NO_TIMER, |Reverse(e)| e.when),
            SeqCst,
        );
        self.len.store(h.entries.len(), Relaxed);
    }

    /// Heap `e`. False (and `e` dropped) once the heap is closed; the
    /// caller holds another reference to the timer, so that drop never
    /// frees it under the lock.
    pub(crate) fn push(&self, e: TimerEntry) -> bool {
        let mut h = self.lock();
        if self.is_closed() {
            return false;
        }
        let when = e.when;
        h.entries.push(Reverse(e));
        self.len.store(h.entries.len(), Relaxed);
        if when < self.timer0.load(Relaxed) {
            self.timer0.store(when, SeqCst);
        }
        true
    }

    /// Live (non-stale) timers, approximately.
    pub(crate) fn live(&self) -> usize {
        let n = self.lock().entries.len();
        n.saturating_sub(self.stale.load(Relaxed))
    }

    /// Go's `runtimer` loop: fire every timer due at `now`.
    pub(crate) fn run(&self, sched: &Sched, now: u64) {
        loop {
            let e = {
                let mut h = self.lock();
                match h.entries.peek() {
                    Some(Reverse(e)) if e.when <= now => {
                        let Reverse(e) = h.entries.pop().unwrap();
                        self.set_timer0(&h);
                        e
                    }
                    _ => return,
                }
            };
            if e.t.fire(sched, e.seq, now) == Fire::Stale {
                self.unnote_stale();
            }
        }
    }

    /// Whether any entry's timer can still be observed: stale entries and
    /// collectable timers nobody can observe do not count.
    fn any_observed(&self) -> bool {
        let h = self.lock();
        h.entries.iter().any(|Reverse(e)| e.t.observed_entry(e.seq))
    }

    /// Count an entry made stale by a stop or re-arm.
    pub(crate) fn note_stale(&self) {
        self.stale.fetch_add(1, Relaxed);
    }

    /// A stale entry left the heap, or a stopped timer's entry was revived.
    pub(crate) fn unnote_stale(&self) {
        let _ = self
            .stale
            .fetch_update(Relaxed, Relaxed, |s| Some(s.saturating_sub(1)));
    }

    /// Whether runtime teardown closed this heap.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Sweep if stale entries are many and at least half the heap, or the
    /// heap has doubled since the last sweep. Cheap when neither holds.
    pub(crate) fn maybe_sweep(&self) {
        let stale = self.stale.load(Relaxed);
        let len = self.len.load(Relaxed);
        if (stale >= STALE_MIN && stale * 2 >= len) || len >= self.sweep_at.load(Relaxed) {
            self.sweep();
        }
    }

    /// Drop every entry that is stale or whose timer nobody can observe.
    /// A timer's state is only `try_lock`ed, so this may run with any
    /// timer lock held (a busy timer's entry is kept until the next sweep).
    fn sweep(&self) {
        let mut h = self.lock();
        if self.is_closed() {
            return;
        }
        self.stale.store(0, Relaxed);
        // In place, keeping the heap's buffer (rebuilding it each sweep made
        // the allocator consolidate on every cycle). `collectable` never
        // blocks, so this is safe under the heap lock; the removed timers
        // are kept alive in `gone` so that their last drop (which may drop
        // a channel and wake goroutines) happens after the lock.
        let mut gone = Vec::new();
        h.entries.retain(|Reverse(e)| {
            let collect = e.t.collectable(e.seq);
            if collect {
                gone.push(Arc::clone(&e.t));
            }
            !collect
        });
        self.set_timer0(&h);
        self.sweep_at
            .store((h.entries.len() * 2).max(SWEEP_MIN), Relaxed);
        drop(h);
        drop(gone);
    }

    /// Remove and return every entry (stale ones included), for the caller
    /// to re-home with `Sched::move_timers` (a P that `set_gomaxprocs`
    /// retires; Go's `moveTimers` from `(*p).destroy`). Call it once no M
    /// can arm timers on this P any more.
    #[cfg_attr(not(test), allow(dead_code))] // for set_gomaxprocs
    pub(crate) fn take_all(&self) -> Vec<TimerEntry> {
        let mut h = self.lock();
        let all = std::mem::take(&mut h.entries).into_vec();
        self.stale.store(0, Relaxed);
        self.set_timer0(&h);
        all.into_iter().map(|Reverse(e)| e).collect()
    }

    /// Runtime teardown: drop every entry and refuse later ones, so no
    /// timer keeps the runtime (and its netpoller) alive.
    fn close(&self) {
        let all = {
            let mut h = self.lock();
            self.closed.store(true, Relaxed);
            let all = std::mem::take(&mut h.entries);
            self.set_timer0(&h);
            all
        };
        drop(all);
    }
}

impl Sched {
    /// Nanoseconds since the runtime started, saturating at 0 and at
    /// `MAX_WHEN`.
    #[inline]
    pub(crate) fn nanotime_of(&self, t: Instant) -> u64 {
        let ns = t.saturating_duration_since(self.start).as_nanos();
        ns.min(MAX_WHEN as u128) as u64
    }

    /// `nanotime_of`, with `None` ("never") as `MAX_WHEN`.
    pub(crate) fn when_of(&self, t: Option<Instant>) -> u64 {
        t.map_or(MAX_WHEN, |t| self.nanotime_of(t))
    }

    /// The earliest timer over all Ps.
    pub(crate) fn earliest_timer(&self) -> u64 {
        self.allp
            .iter()
            .map(|p| p.timers.timer0.load(SeqCst))
            .min()
            .unwrap_or(NO_TIMER)
    }

    /// Run this P's due timers if any (Go's `checkTimers`). Cheap when none
    /// is due: one relaxed load, and a coarse clock read (`clock.rs`)
    /// while the earliest is more than a couple of ticks away.
    #[inline]
    pub(crate) fn check_timers(&self, p: &crate::p::P) {
        let t0 = p.timers.timer0.load(Relaxed);
        if t0 == NO_TIMER {
            return;
        }
        p.timers.maybe_sweep();
        // Most looks find the earliest timer far off (a server's 30 s
        // header timeouts): the coarse clock says so without the precise
        // read.
        if crate::clock::certainly_ahead(self.start_raw, t0).is_some() {
            return;
        }
        let now = self.nanotime_of(Instant::now());
        if now >= t0 {
            p.timers.run(self, now);
        }
    }

    /// Run every P's due timers (the M coming out of a blocking netpoll,
    /// the last stealing pass).
    pub(crate) fn run_all_timers(&self) {
        let t0 = self.earliest_timer();
        if t0 == NO_TIMER || crate::clock::certainly_ahead(self.start_raw, t0).is_some() {
            return;
        }
        let now = self.nanotime_of(Instant::now());
        if now < t0 {
            return;
        }
        for p in self.allp.iter() {
            if p.timers.timer0.load(Relaxed) <= now {
                p.timers.run(self, now);
            }
        }
    }

    /// Whether some timer can still fire for someone: a sleep, an
    /// `after_func`, a channel timer whose channel is still held. A timer
    /// nobody can observe (an `after` whose receiver was dropped) wakes no
    /// one, so it keeps neither `checkdead` from reporting nor an M in the
    /// poller (Go 1.23 does not heap unreferenced timers at all).
    pub(crate) fn timers_observed(&self) -> bool {
        self.allp.iter().any(|p| p.timers.any_observed())
    }

    /// The runtime is going idle (an M found no work, or main parked, and
    /// every P is idle) with no I/O waiter, only timers: if none of them
    /// can be observed, drop them all, so that the deadlock watch runs
    /// instead of an M sleeping in the netpoller until a deadline that
    /// would wake nobody. An M already sleeping there (for a timer that was
    /// observed when it went in) is woken to look again, and goes idle
    /// last, watching. The scan stops at the first observed timer, so a
    /// heap of sleeps costs one look.
    pub(crate) fn collect_timers_if_idle(&self) {
        if self.npidle.load(SeqCst) != self.gomaxprocs()
            || self.poller().has_waiters()
            || self.earliest_timer() == NO_TIMER
            || self.timers_observed()
        {
            return;
        }
        for p in self.allp.iter() {
            p.timers.sweep();
        }
        if self.netpoll_is_blocked() {
            self.poller().netpoll_break();
        }
    }

    /// Live timers over all Ps (metrics).
    pub(crate) fn timers_pending(&self) -> usize {
        self.allp.iter().map(|p| p.timers.live()).sum()
    }

    /// Go's `moveTimers`: heap on P `to` the live ones among `timers`
    /// (taken with `PTimers::take_all` from a P being retired); stale
    /// entries are dropped.
    #[cfg_attr(not(test), allow(dead_code))] // for set_gomaxprocs
    pub(crate) fn move_timers(&self, to: usize, timers: Vec<TimerEntry>) {
        let mut earliest = NO_TIMER;
        for e in timers {
            let t = Arc::clone(&e.t);
            let mut st = t.state();
            if st.seq != e.seq {
                continue;
            }
            if !st.armed {
                st.queued = None;
                continue;
            }
            st.p = to;
            earliest = earliest.min(e.when);
            if !self.allp[to].timers.push(e) {
                st.armed = false;
                st.queued = None;
            }
        }
        if earliest < MAX_WHEN {
            self.wake_netpoller(earliest);
        }
    }

    /// Runtime teardown: empty and close every P's heap. Called once no M
    /// runs and the goroutines are dropped.
    pub(crate) fn close_timers(&self) {
        for p in self.allp.iter() {
            p.timers.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sched::expect_current;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// `set_gomaxprocs`' path for a retired P's timers: every armed timer
    /// taken from its heap and moved to another P still fires.
    #[test]
    fn timers_moved_to_another_p_still_fire() {
        let rt = crate::Builder::new().procs(2).build().unwrap();
        rt.block_on(async {
            let done = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..50u64)
                .map(|i| {
                    let done = done.clone();
                    crate::spawn(async move {
                        crate::timer::sleep(Duration::from_millis(30 + i % 7)).await;
                        done.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            let sched = expect_current("test", |ctx| ctx.sched.clone());
            let deadline = Instant::now() + Duration::from_secs(5);
            while sched.timers_pending() < 50 {
                assert!(Instant::now() < deadline, "the sleeps never armed");
                crate::timer::sleep(Duration::from_millis(1)).await;
            }
            let mut all = sched.allp[0].timers.take_all();
            all.extend(sched.allp[1].timers.take_all());
            assert!(all.len() >= 50);
            sched.move_timers(1, all);
            assert_eq!(sched.allp[0].timers.live(), 0);
            for h in hs {
                h.await.unwrap();
            }
            assert_eq!(done.load(SeqCst), 50);
        });
    }
}
