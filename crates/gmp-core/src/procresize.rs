//! GOMAXPROCS at run time: `set_gomaxprocs` (Go's `procresize`).
//!
//! Go resizes with the world stopped, so every P is idle or known. Here
//! goroutines keep running, and a P can be held by an M in the middle of
//! a poll of any length, so a decrease is carried out by whoever owns each
//! P beyond the new count, at their next scheduling point:
//!
//! - an idle P is taken off the idle list and retired at once;
//! - a P an M holds is retired by that M when it next looks for work
//!   (`find_runnable`), leaves a syscall, or releases it (`pidleput`);
//! - a P sysmon takes from a syscall or a long poll is retired by
//!   `handoffp`.
//!
//! Retiring (`retire_locked`, under the sched lock, by the P's owner)
//! moves the P's yielders and run queue to the global queue and marks it
//! `_Pdead`; then, with the lock released (a timer's lock is taken before
//! the sched lock when a timer fires), its timers move to a live P (Go's
//! `moveTimers`). A P retired on its way to the idle list keeps its timers;
//! they still fire, since the timer checks cover every P that exists. A retired P stays in
//! `allp`, empty; an increase revives it (or makes new Ps) and puts it on
//! the idle list, where Ms waiting for a P get it first. Until its M
//! notices, a retired P may run the rest of one poll: GOMAXPROCS is an
//! upper bound again from the next scheduling point of each M on.
//!
//! Every decision to retire or revive is taken under the sched lock
//! against the current GOMAXPROCS, so a P shrunk away and grown back
//! before its M noticed is simply kept.

use crate::p::{self, status_of};
use crate::sched::{MCtx, Sched};
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};

impl Sched {
    /// Current GOMAXPROCS.
    #[inline]
    pub(crate) fn gomaxprocs(&self) -> usize {
        self.gomaxprocs.load(Relaxed)
    }

    /// Go's `procresize`: make `n` Ps available (`n` >= 1, checked by the
    /// caller). Returns the previous GOMAXPROCS.
    pub(crate) fn procresize(&self, n: usize) -> usize {
        let mut l = self.lock.lock().unwrap();
        let old = self.gomaxprocs();
        if n > old {
            let fresh_from = self.allp.len();
            self.allp.grow(n);
            self.gomaxprocs.store(n, SeqCst);
            for i in old..n {
                // Fresh, or retired: ours to put on the idle list. A P
                // whose M has not retired it yet keeps its M.
                let st = status_of(self.allp[i].status.load(SeqCst));
                if i >= fresh_from || st == p::PDEAD {
                    self.allp[i].status.store(p::PIDLE, Release);
                    self.pidleput_locked(&mut l, i);
                }
            }
            drop(l);
            // The new Ps may have queued work to take.
            self.wakep();
        } else if n < old {
            self.gomaxprocs.store(n, SeqCst);
            let mut idle = Vec::new();
            l.pidle.retain(|&p| {
                let keep = p < n;
                if !keep {
                    idle.push(p);
                }
                keep
            });
            self.npidle.fetch_sub(idle.len(), SeqCst);
            for &p in &idle {
                self.retire_locked(p);
            }
            drop(l);
            for p in idle {
                self.move_timers_off(p);
            }
            if !self.globq.is_empty() {
                self.wakep();
            }
        }
        old
    }

    /// The M holding P `pi` found it beyond GOMAXPROCS: retire it and go
    /// on without a P. False when GOMAXPROCS grew back meanwhile.
    #[cold]
    pub(crate) fn retirep(&self, ctx: &MCtx, pi: usize) -> bool {
        let l = self.lock.lock().unwrap();
        if pi < self.gomaxprocs() {
            return false;
        }
        ctx.p.set(None);
        self.retire_locked(pi);
        drop(l);
        self.move_timers_off(pi);
        self.wakep();
        true
    }

    /// A retired P's timers go to a live one. Not under the sched lock.
    pub(crate) fn move_timers_off(&self, p: usize) {
        let timers = self.allp[p].timers.take_all();
        if !timers.is_empty() {
            self.move_timers(p % self.gomaxprocs(), timers);
        }
    }

    /// Empty P `p`'s queues into the global one and mark it `_Pdead`. The
    /// caller owns `p` (holds it, took it off the idle list, or won
    /// sysmon's status CAS) and holds the sched lock; it moves the timers
    /// (`move_timers_off`) once the lock is released, if it can.
    pub(crate) fn retire_locked(&self, p: usize) {
        // SAFETY: the caller owns P.
        let mut pp = unsafe { self.allp[p].assume_owned() };
        self.flush_yieldq(&mut pp);
        let gs = pp.runq().drain();
        if !gs.is_empty() {
            self.globq.put_raw_batch(gs);
        }
        pp.preempt.store(false, Relaxed);
        pp.status.store(p::PDEAD, Release);
    }
}
