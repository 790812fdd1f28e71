//! A timer (Go's `runtime.timer`): its state, what it does when it fires,
//! arming and disarming, and the public `Timer` handle the facade's
//! `after`, `Timer`, `after_func` and `Ticker`, context deadlines and
//! socket deadlines are built on. `Sleep` is in `sleep.rs`; the per-P heaps
//! that hold armed timers are in `timers.rs`.
//!
//! Deadlines are nanoseconds since the runtime started, saturating at
//! `MAX_WHEN` (Go's `maxWhen`): a timer that far out never fires, and a
//! duration too long for `Instant` means "never", not a panic or a wrap.
//!
//! Re-arming a timer for a later deadline while its heap entry is still
//! queued leaves that entry where it is (Go's `timerModifiedLater`): when
//! it surfaces, `fire` sees the deadline moved and queues it again for the
//! new one. A server that pushes a request's 30 s timeout back on every
//! request (a header timeout, a connection's read deadline) so pays no
//! heap operation and leaves no stale entry per request. Stopping keeps the
//! entry too (dead until re-armed), so a stop followed by such a re-arm
//! costs nothing either.
//!
//! A timer's state lock is held while it fires, so `stop` is ordered
//! entirely before or after a firing (Go 1.23: no stale value after
//! `Stop` returns). A *collectable* timer also says whether anyone can
//! still observe it (a channel timer whose receivers are all gone cannot
//! be), so the heap's sweep can drop it unfired (Go 1.23's collectable
//! timers).

use crate::sched::{expect_current, Sched};
pub(crate) use crate::timers::{PTimers, TimerEntry, MAX_WHEN, NO_TIMER};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

pub use crate::sleep::{sleep, sleep_until, Sleep};

/// `now + d`, or `None` ("never") when that is past what `Instant` holds.
pub fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// What a timer does when it fires (the channel send of the facade's
/// timers, `after_func`'s spawn, a context's cancel, a socket deadline).
pub trait TimerFn: Send + Sync + 'static {
    /// Called with the timer's lock held, so that a `stop` is ordered
    /// wholly before or after it: it must not stop or start its own timer.
    fn fire(&self, now: Instant);

    /// False once nobody can observe a firing any more (a channel timer
    /// whose receivers are all gone): the timer may then leave its heap
    /// unfired (Go 1.23's collectable timers). Must not block.
    fn observed(&self) -> bool {
        true
    }
}

/// A closure as a `TimerFn` that is always observed.
struct FnTimer<F>(F);

impl<F: Fn(Instant) + Send + Sync + 'static> TimerFn for FnTimer<F> {
    fn fire(&self, now: Instant) {
        (self.0)(now)
    }
}

/// A `Sleep`'s timer: firing wakes the goroutine whose waker is stored.
pub(crate) struct WakeOnly;

impl TimerFn for WakeOnly {
    fn fire(&self, _: Instant) {}
}

/// A timer and its action in one allocation (`A` is unsized in the heap
/// entries and handles).
pub(crate) struct TimerInner<A: ?Sized + TimerFn = dyn TimerFn> {
    pub(crate) sched: Arc<Sched>,
    state: Mutex<TState>,
    action: A,
}

#[derive(Default)]
pub(crate) struct TState {
    pub(crate) armed: bool,
    pub(crate) fired: bool,
    pub(crate) seq: u64,
    when: u64,
    period: u64,
    /// The P whose heap holds the live entry.
    pub(crate) p: usize,
    /// The `when` of the entry with this `seq` while it is in a heap
    /// (armed, or stopped since): re-arming for that or later reuses it.
    pub(crate) queued: Option<u64>,
    pub(crate) waker: Option<Waker>,
}

impl TimerInner {
    pub(crate) fn new_wake(sched: Arc<Sched>) -> Arc<TimerInner> {
        Arc::new(TimerInner {
            sched,
            state: Mutex::new(TState::default()),
            action: WakeOnly,
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, TState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fire if entry `seq` (just taken off its heap) is still the live one
    /// and its deadline has come; queue it again if the deadline moved
    /// later meanwhile. The state lock is held while the action runs, so
    /// `stop` is ordered entirely before or after a firing (Go 1.23: no
    /// stale value after `Stop` returns).
    pub(crate) fn fire(self: &Arc<Self>, sched: &Sched, seq: u64, now: u64) -> Fire {
        let mut st = self.state();
        if st.seq != seq {
            return Fire::Stale;
        }
        st.queued = None;
        if !st.armed {
            return Fire::Stale;
        }
        if now < st.when {
            // Re-armed later while queued: on to the new deadline, on the
            // firing M's P (the old one may have been retired).
            st.p = sched.timer_p();
            let e = TimerEntry {
                when: st.when,
                seq,
                t: Arc::clone(self),
            };
            if sched.allp[st.p].timers.push(e) {
                st.queued = Some(st.when);
            } else {
                st.armed = false;
            }
            return Fire::Moved;
        }
        st.fired = true;
        if let Some(missed) = (now - st.when).checked_div(st.period) {
            // Periodic: skip the ticks a slow reader missed (Go: when +=
            // period * (1 + (now - when) / period)).
            let step = st.period.saturating_mul(missed.saturating_add(1));
            st.when = st.when.saturating_add(step).min(MAX_WHEN);
            st.seq += 1;
            // The firing M's P, not necessarily the old one: that P may
            // have been retired meanwhile.
            st.p = sched.timer_p();
            let e = TimerEntry {
                when: st.when,
                seq: st.seq,
                t: Arc::clone(self),
            };
            if sched.allp[st.p].timers.push(e) {
                st.queued = Some(st.when);
            }
        } else {
            st.armed = false;
        }
        match st.waker.take() {
            Some(w) => {
                drop(st);
                w.wake();
            }
            None => self.action.fire(sched.start + Duration::from_nanos(now)),
        }
        Fire::Fired
    }

    /// Entry `seq` may leave the heap: stale, or its timer unobservable
    /// (then it is disarmed for good). Never blocks.
    pub(crate) fn collectable(&self, seq: u64) -> bool {
        let Ok(mut st) = self.state.try_lock() else {
            return false;
        };
        if st.seq != seq {
            return true;
        }
        if st.armed && self.action.observed() {
            return false;
        }
        // Stopped, or nobody can observe it: disarmed for good.
        st.armed = false;
        st.queued = None;
        true
    }

    /// Entry `seq` is live and its firing can still be observed (checkdead:
    /// only such a timer can wake anyone). A timer whose lock is busy counts
    /// as observed. Never blocks.
    pub(crate) fn observed_entry(&self, seq: u64) -> bool {
        let Ok(st) = self.state.try_lock() else {
            return true;
        };
        st.armed && st.seq == seq && self.action.observed()
    }

    pub(crate) fn arm(self: &Arc<Self>, st: &mut TState, when: u64, period: u64) {
        let when = when.min(MAX_WHEN);
        let period = period.min(MAX_WHEN);
        if let Some(at) = st.queued {
            let timers = &self.sched.allp[st.p].timers;
            if at <= when && !timers.is_closed() {
                // Its entry is queued and due no later: keep it (see the
                // module doc). Nobody needs waking: whoever waits for the
                // heap waits for that entry or an earlier one.
                if !st.armed {
                    timers.unnote_stale();
                }
                st.when = when;
                st.period = period;
                st.armed = true;
                st.fired = false;
                return;
            }
            if st.armed {
                timers.note_stale();
            }
        }
        st.seq += 1;
        st.when = when;
        st.period = period;
        st.armed = true;
        st.fired = false;
        // On the arming M's own P, held across the push so that sysmon
        // cannot retake the P in between: its M runs the P's timers when it
        // next schedules, and `handoffp` sees the timer if the P is taken
        // later. Anywhere else some other M must be told.
        let own = self.sched.lock_timer_p();
        let p = match &own {
            Some(owner) => owner.id,
            None => self.sched.timer_p(),
        };
        st.p = p;
        let timers = &self.sched.allp[p].timers;
        let heaped = timers.push(TimerEntry {
            when: st.when,
            seq: st.seq,
            t: Arc::clone(self),
        });
        let own = own.is_some();
        if !heaped {
            // The runtime has ended: this timer never fires.
            st.armed = false;
            st.queued = None;
            return;
        }
        st.queued = Some(st.when);
        timers.maybe_sweep();
        if st.when < MAX_WHEN {
            if own {
                self.sched.netpoll_break_before(st.when);
            } else {
                self.sched.wake_netpoller(st.when);
            }
        }
    }

    /// Stop. The queued entry stays (dead, counted stale) so that a
    /// re-arm for a later deadline can revive it.
    pub(crate) fn disarm(&self, st: &mut TState) -> bool {
        if !st.armed {
            return false;
        }
        st.armed = false;
        if st.queued.is_some() {
            self.sched.allp[st.p].timers.note_stale();
        }
        true
    }
}

/// What became of a heap entry handed to `TimerInner::fire`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fire {
    /// The timer fired.
    Fired,
    /// The entry was dead: stopped, or replaced by a later arming.
    Stale,
    /// The deadline had moved later: queued again for it.
    Moved,
}

impl std::fmt::Debug for TimerInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timer")
    }
}

/// A timer that calls a function when it fires: the building block of the
/// facade's channel timers, `after_func`, `Ticker`, context deadlines and
/// socket deadlines. Dropping the handle does not stop it.
pub struct Timer {
    inner: Arc<TimerInner>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").finish_non_exhaustive()
    }
}

impl Timer {
    /// A stopped timer of the current runtime that calls `f` when it
    /// fires. Panics outside a runtime.
    #[track_caller]
    pub fn new(f: impl Fn(Instant) + Send + Sync + 'static) -> Timer {
        Timer::with(FnTimer(f))
    }

    /// A stopped timer of the current runtime running `action` when it
    /// fires; a collectable one if `action` says when it is no longer
    /// observed. Panics outside a runtime.
    #[track_caller]
    pub fn with(action: impl TimerFn) -> Timer {
        let sched = expect_current("gmp::time timer creation", |ctx| ctx.sched.clone());
        let inner: Arc<TimerInner> = Arc::new(TimerInner {
            sched,
            state: Mutex::new(TState::default()),
            action,
        });
        Timer { inner }
    }

    /// Whether anyone can still observe this timer (its action's
    /// `observed`).
    pub fn is_observed(&self) -> bool {
        self.inner.action.observed()
    }

    /// Arm: fire at `when`, then every `period` if given (Go's `Reset`).
    pub fn start(&self, when: Instant, period: Option<Duration>) {
        self.start_at(Some(when), period);
    }

    /// Arm: fire after `d` (never, if `now + d` is past what `Instant`
    /// holds), then every `period` if given.
    pub fn start_after(&self, d: Duration, period: Option<Duration>) {
        self.start_at(deadline_after(d), period);
    }

    fn start_at(&self, when: Option<Instant>, period: Option<Duration>) {
        let t = &self.inner;
        let mut st = t.state();
        let when = t.sched.when_of(when);
        let period = period.map_or(0, |p| (p.as_nanos().min(MAX_WHEN as u128) as u64).max(1));
        t.arm(&mut st, when, period);
    }

    /// Disarm; true if it was armed. Once this returns the function is not
    /// running and will not run until the timer is started again.
    pub fn stop(&self) -> bool {
        let mut st = self.inner.state();
        self.inner.disarm(&mut st)
    }

    /// Disarm, then run `f` while holding the timer's lock, so that no
    /// firing overlaps it (a channel timer drains its channel this way).
    pub fn stop_and<R>(&self, f: impl FnOnce() -> R) -> (bool, R) {
        let mut st = self.inner.state();
        let was = self.inner.disarm(&mut st);
        (was, f())
    }

    /// Whether the timer is armed (started and not yet fired or stopped).
    pub fn is_armed(&self) -> bool {
        self.inner.state().armed
    }
}
