//! Timers: a heap per P (Go's `p.timers`, `addtimer`, `checkTimers`,
//! `runtimer`), `Sleep`, and the `Timer` the facade's `after` and `Ticker`
//! are built on.
//!
//! A timer lives in the heap of the P that armed it. The scheduler runs a
//! P's expired timers at the top of `find_runnable` (a lock-free check of
//! `timer0`, the earliest deadline, costs nothing when no timer is due),
//! other Ps' timers on the last stealing pass, and every P's after the one
//! M that blocks in the netpoller wakes up; that M blocks for exactly as
//! long as the earliest timer allows. Arming a timer earlier than the
//! poller's wake-up breaks the poll (Go's `wakeNetPoller`).
//!
//! Stopping is lazy, as in Go 1.19: the heap entry stays and is discarded
//! when it surfaces (its sequence number no longer matches); heaps with
//! many such entries are compacted.

use crate::sched::{expect_current, Sched};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// No timer: `timer0` of an empty heap.
pub(crate) const NO_TIMER: u64 = u64::MAX;

/// One P's timers.
pub(crate) struct PTimers {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    /// Earliest `when` in the heap (ns since the runtime started), or
    /// NO_TIMER. Read without the lock on every schedule.
    pub(crate) timer0: AtomicU64,
    /// Entries whose timer was stopped or re-armed (lazy deletion).
    stale: AtomicUsize,
}

struct Entry {
    when: u64,
    seq: u64,
    t: Arc<TimerInner>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.when, self.seq) == (o.when, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.when, self.seq).cmp(&(o.when, o.seq))
    }
}

impl Default for PTimers {
    fn default() -> Self {
        PTimers {
            heap: Mutex::new(BinaryHeap::new()),
            timer0: AtomicU64::new(NO_TIMER),
            stale: AtomicUsize::new(0),
        }
    }
}

impl PTimers {
    fn push(&self, e: Entry) {
        let mut h = self.heap.lock().unwrap();
        let when = e.when;
        h.push(Reverse(e));
        if when < self.timer0.load(Relaxed) {
            self.timer0.store(when, SeqCst);
        }
    }

    /// Move every entry to `to` (a retired P's timers go to a live P).
    /// Entries keep naming this P as their home; `fire` re-homes a
    /// periodic timer when it re-arms, and a stop only miscounts a stale
    /// entry. Returns the earliest deadline moved, or `NO_TIMER`.
    pub(crate) fn move_to(&self, to: &PTimers) -> u64 {
        let entries = {
            let mut h = self.heap.lock().unwrap();
            self.timer0.store(NO_TIMER, SeqCst);
            std::mem::take(&mut *h)
        };
        let when = entries.peek().map_or(NO_TIMER, |Reverse(e)| e.when);
        if when != NO_TIMER {
            let mut h = to.heap.lock().unwrap();
            h.extend(entries);
            if when < to.timer0.load(Relaxed) {
                to.timer0.store(when, SeqCst);
            }
        }
        when
    }

    /// Live (non-stale) timers, approximately.
    pub(crate) fn live(&self) -> usize {
        let n = self.heap.lock().unwrap().len();
        n.saturating_sub(self.stale.load(Relaxed))
    }

    /// Go's `runtimer` loop: fire every timer due at `now`.
    pub(crate) fn run(&self, sched: &Sched, now: u64) {
        loop {
            let e = {
                let mut h = self.heap.lock().unwrap();
                match h.peek() {
                    Some(Reverse(e)) if e.when <= now => {
                        let Reverse(e) = h.pop().unwrap();
                        self.timer0
                            .store(h.peek().map_or(NO_TIMER, |Reverse(e)| e.when), SeqCst);
                        e
                    }
                    _ => return,
                }
            };
            if !e.t.fire(sched, e.seq, now) {
                let _ = self
                    .stale
                    .fetch_update(Relaxed, Relaxed, |s| Some(s.saturating_sub(1)));
            }
        }
    }

    /// Count an entry made stale by a stop or re-arm. Called under the
    /// timer's own lock, so compaction happens later, in `maybe_compact`.
    fn note_stale(&self) {
        self.stale.fetch_add(1, Relaxed);
    }

    /// Drop stale entries once they are many and outnumber live ones. Must
    /// be called with no timer lock held (it takes each entry's lock).
    pub(crate) fn maybe_compact(&self) {
        let stale = self.stale.load(Relaxed);
        if stale < 64 {
            return;
        }
        let entries = {
            let mut h = self.heap.lock().unwrap();
            if stale * 2 < h.len() {
                return;
            }
            self.stale.store(0, Relaxed);
            std::mem::take(&mut *h).into_vec()
        };
        let live: Vec<_> = entries
            .into_iter()
            .filter(|Reverse(e)| {
                let st = e.t.state.lock().unwrap();
                st.armed && st.seq == e.seq
            })
            .collect();
        let mut h = self.heap.lock().unwrap();
        h.extend(live);
        self.timer0
            .store(h.peek().map_or(NO_TIMER, |Reverse(e)| e.when), SeqCst);
    }
}

/// What a timer does when it fires.
enum Action {
    /// Wake the goroutine that sleeps on it.
    Wake,
    /// Call a function (the facade's `after`/`Ticker` send on a channel).
    Func(Box<dyn Fn(Instant) + Send + Sync>),
}

struct TimerInner {
    sched: Arc<Sched>,
    state: Mutex<TState>,
    action: Action,
}

#[derive(Default)]
struct TState {
    armed: bool,
    fired: bool,
    seq: u64,
    when: u64,
    period: u64,
    /// The P whose heap holds the live entry.
    p: usize,
    waker: Option<Waker>,
}

impl TimerInner {
    /// Fire if entry `seq` is still the live one. False for a stale entry.
    /// The state lock is held while the action runs, so `stop` is ordered
    /// entirely before or after a firing (Go 1.23: no stale tick after
    /// `Stop` returns).
    fn fire(self: &Arc<Self>, sched: &Sched, seq: u64, now: u64) -> bool {
        let mut st = self.state.lock().unwrap();
        if !st.armed || st.seq != seq {
            return false;
        }
        st.fired = true;
        if let Some(missed) = (now - st.when).checked_div(st.period) {
            // Periodic: skip the ticks a slow reader missed (Go: when +=
            // period * (1 + (now - when) / period)).
            st.when += st.period * (1 + missed);
            st.seq += 1;
            if st.p >= sched.gomaxprocs() {
                // Its P was retired (GOMAXPROCS shrank).
                st.p = sched.timer_p();
            }
            let e = Entry {
                when: st.when,
                seq: st.seq,
                t: Arc::clone(self),
            };
            sched.allp[st.p].timers.push(e);
        } else {
            st.armed = false;
        }
        match &self.action {
            Action::Wake => {
                if let Some(w) = st.waker.take() {
                    drop(st);
                    w.wake();
                }
            }
            Action::Func(f) => f(sched.start + Duration::from_nanos(now)),
        }
        true
    }

    fn arm(self: &Arc<Self>, st: &mut TState, when: u64, period: u64) {
        if st.armed {
            self.sched.allp[st.p].timers.note_stale();
        }
        st.seq += 1;
        st.when = when;
        st.period = period;
        st.armed = true;
        st.fired = false;
        let p = self.sched.timer_p();
        st.p = p;
        self.sched.allp[p].timers.push(Entry {
            when,
            seq: st.seq,
            t: Arc::clone(self),
        });
        self.sched.wake_netpoller(when);
    }

    fn disarm(&self, st: &mut TState) -> bool {
        if !st.armed {
            return false;
        }
        st.armed = false;
        st.seq += 1;
        self.sched.allp[st.p].timers.note_stale();
        true
    }
}

impl Sched {
    /// Nanoseconds since the runtime started, saturating at 0.
    #[inline]
    pub(crate) fn nanotime_of(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
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
    /// is due: one relaxed load.
    #[inline]
    pub(crate) fn check_timers(&self, p: &crate::p::P) {
        let t0 = p.timers.timer0.load(Relaxed);
        if t0 == NO_TIMER {
            return;
        }
        p.timers.maybe_compact();
        let now = self.nanotime_of(Instant::now());
        if now >= t0 {
            p.timers.run(self, now);
        }
    }

    /// Run every P's due timers (the M coming out of a blocking netpoll,
    /// the last stealing pass).
    pub(crate) fn run_all_timers(&self) {
        let t0 = self.earliest_timer();
        if t0 == NO_TIMER {
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

    /// Live timers over all Ps (deadlock detection, metrics).
    pub(crate) fn timers_pending(&self) -> usize {
        self.allp.iter().map(|p| p.timers.live()).sum()
    }
}

/// Go's `time.Sleep`: resolves at or after its deadline, never before.
#[derive(Debug)]
#[must_use = "sleep does nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    timer: Option<Arc<TimerInner>>,
}

impl std::fmt::Debug for TimerInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timer")
    }
}

/// Sleep for `d` (`time.Sleep`); `sleep(Duration::ZERO)` is ready at once.
pub fn sleep(d: Duration) -> Sleep {
    sleep_until(Instant::now() + d)
}

/// Sleep until `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

impl Sleep {
    /// When this sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Move the deadline (re-arming the timer if it was armed).
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if let Some(t) = &self.timer {
            let mut st = t.state.lock().unwrap();
            if st.armed || st.fired {
                let when = t.sched.nanotime_of(deadline);
                t.arm(&mut st, when, 0);
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        if crate::coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let deadline = self.deadline;
        match &self.timer {
            None => {
                let sched = expect_current("gmp::time::sleep(..).await", |ctx| ctx.sched.clone());
                let t = Arc::new(TimerInner {
                    sched,
                    state: Mutex::new(TState::default()),
                    action: Action::Wake,
                });
                {
                    let mut st = t.state.lock().unwrap();
                    st.waker = Some(cx.waker().clone());
                    let when = t.sched.nanotime_of(deadline);
                    t.arm(&mut st, when, 0);
                }
                self.timer = Some(t);
            }
            Some(t) => {
                let mut st = t.state.lock().unwrap();
                if !st.armed {
                    // Fired (early wake-ups cannot happen: the heap fires at
                    // or after `when`, but the clock check above decides).
                    let when = t.sched.nanotime_of(deadline);
                    t.arm(&mut st, when, 0);
                }
                match &st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => st.waker = Some(cx.waker().clone()),
                }
            }
        }
        crate::park::set_wait_reason(crate::WaitReason::Sleep);
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(t) = &self.timer {
            let mut st = t.state.lock().unwrap();
            t.disarm(&mut st);
            st.waker = None;
        }
    }
}

/// A timer that calls a function when it fires: the building block of the
/// facade's `after` and `Ticker`. Dropping the handle does not stop it.
pub struct Timer {
    inner: Arc<TimerInner>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").finish_non_exhaustive()
    }
}

impl Timer {
    /// A stopped timer of the current runtime. Panics outside a runtime.
    #[track_caller]
    pub fn new(f: impl Fn(Instant) + Send + Sync + 'static) -> Timer {
        let sched = expect_current("gmp::time timer creation", |ctx| ctx.sched.clone());
        Timer {
            inner: Arc::new(TimerInner {
                sched,
                state: Mutex::new(TState::default()),
                action: Action::Func(Box::new(f)),
            }),
        }
    }

    /// Arm: fire at `when`, then every `period` if given (Go's `Reset`).
    pub fn start(&self, when: Instant, period: Option<Duration>) {
        let t = &self.inner;
        let mut st = t.state.lock().unwrap();
        let when = t.sched.nanotime_of(when);
        let period = period.map_or(0, |p| (p.as_nanos() as u64).max(1));
        t.arm(&mut st, when, period);
    }

    /// Disarm; true if it was armed. Once this returns the function is not
    /// running and will not run until the timer is started again.
    pub fn stop(&self) -> bool {
        let mut st = self.inner.state.lock().unwrap();
        self.inner.disarm(&mut st)
    }

    /// Run `f` while holding the timer's lock, so that no firing overlaps
    /// it (a Ticker drains its channel this way after stopping).
    pub fn stop_and(&self, f: impl FnOnce()) -> bool {
        let mut st = self.inner.state.lock().unwrap();
        let was = self.inner.disarm(&mut st);
        f();
        was
    }
}
