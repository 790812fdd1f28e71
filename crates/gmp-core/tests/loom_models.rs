//! loom models of gmp-core's lock-free structures: the P run queue (put,
//! get, steal, runnext, overflow) and the G state word (wake vs poll,
//! completion vs JoinHandle, last reference vs handle drop).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p gmp-core --release --test loom_models`
#![cfg(loom)]

use gmp_core::loom_api::*;
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::sync::Arc;
use loom::thread;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering::SeqCst;

fn item(v: usize) -> *mut usize {
    Box::into_raw(Box::new(v))
}

fn take(p: *mut usize) -> usize {
    // SAFETY: every pointer in these models came from `item` and is taken
    // exactly once (that is what the models check).
    *unsafe { Box::from_raw(p) }
}

struct Q(RunQ<usize>);
// SAFETY: the queue only moves raw pointers to boxed usizes around.
unsafe impl Send for Q {}
// SAFETY: as above.
unsafe impl Sync for Q {}

/// Owner puts and gets while a thief steals: every item is taken exactly
/// once (by the owner, the thief, or left in a queue).
#[test]
fn runq_put_get_vs_steal() {
    loom::model(|| {
        let victim = Arc::new(Q(RunQ::new()));
        let thief_q = Arc::new(Q(RunQ::new()));
        let (v2, t2) = (victim.clone(), thief_q.clone());
        let thief = thread::spawn(move || {
            let mut got = Vec::new();
            if let Some((g, n)) = t2.0.steal(&v2.0, false, false) {
                got.push(take(g));
                for _ in 1..n {
                    let (g, _) = t2.0.get().expect("stolen batch in the thief's queue");
                    got.push(take(g));
                }
            }
            got
        });
        for i in 0..3 {
            assert!(victim.0.put(item(i), false).is_none());
        }
        let mut all = Vec::new();
        if let Some((g, _)) = victim.0.get() {
            all.push(take(g));
        }
        all.extend(thief.join().unwrap());
        while let Some((g, _)) = victim.0.get() {
            all.push(take(g));
        }
        let set: BTreeSet<usize> = all.iter().copied().collect();
        assert_eq!(all.len(), 3, "duplicated: {all:?}");
        assert_eq!(set, (0..3).collect());
    });
}

/// `runnext` put by the owner races a last-pass thief taking it.
#[test]
fn runq_runnext_vs_thief() {
    loom::model(|| {
        let victim = Arc::new(Q(RunQ::new()));
        let thief_q = Arc::new(Q(RunQ::new()));
        let (v2, t2) = (victim.clone(), thief_q.clone());
        let thief = thread::spawn(move || {
            t2.0.steal(&v2.0, true, false).map(|(g, n)| {
                assert_eq!(n, 1);
                take(g)
            })
        });
        assert!(victim.0.put(item(7), true).is_none());
        let owner = victim.0.get().map(|(g, inherit)| {
            assert!(inherit, "runnext comes back with inheritTime");
            take(g)
        });
        let stolen = thief.join().unwrap();
        assert_eq!(
            owner.is_some() as u8 + stolen.is_some() as u8,
            1,
            "owner {owner:?} thief {stolen:?}"
        );
    });
}

/// The owner overflows its ring (RUNQ_SIZE is 4 under loom) while a thief
/// steals: the spilled batch, the stolen Gs and what is left are all the
/// items, each once.
#[test]
fn runq_overflow_vs_steal() {
    loom::model(|| {
        let victim = Arc::new(Q(RunQ::new()));
        let thief_q = Arc::new(Q(RunQ::new()));
        let (v2, t2) = (victim.clone(), thief_q.clone());
        let thief = thread::spawn(move || {
            let mut got = Vec::new();
            if let Some((g, n)) = t2.0.steal(&v2.0, false, false) {
                got.push(take(g));
                for _ in 1..n {
                    got.push(take(t2.0.get().unwrap().0));
                }
            }
            got
        });
        let mut all = Vec::new();
        for i in 0..(RUNQ_SIZE as usize + 1) {
            if let Some(batch) = victim.0.put(item(i), false) {
                all.extend(batch.into_iter().map(take));
            }
        }
        all.extend(thief.join().unwrap());
        while let Some((g, _)) = victim.0.get() {
            all.push(take(g));
        }
        let set: BTreeSet<usize> = all.iter().copied().collect();
        assert_eq!(all.len(), RUNQ_SIZE as usize + 1, "{all:?}");
        assert_eq!(set, (0..RUNQ_SIZE as usize + 1).collect());
    });
}

/// A wake racing the end of a poll: the G is never scheduled twice, and a
/// wake that lands after the poll started is never lost.
#[test]
fn gstate_wake_vs_poll_end() {
    loom::model(|| {
        let s = Arc::new(State::new(false, false));
        s.transition_to_running().unwrap();
        let woke_after_start = Arc::new(AtomicBool::new(false));
        let (s2, w2) = (s.clone(), woke_after_start.clone());
        let waker = thread::spawn(move || {
            let sched = s2.wake_by_ref();
            w2.store(true, SeqCst);
            sched
        });
        let after = s.transition_to_idle();
        let waker_scheduled = waker.join().unwrap();
        let requeued = after == AfterPoll::Requeue;
        assert!(!(requeued && waker_scheduled), "scheduled twice");
        assert!(requeued || waker_scheduled, "wake during the poll lost");
        let st = s.load();
        assert_eq!(st & SCHEDULED != 0, true);
        // A wake that schedules takes a reference for the runnable.
        assert_eq!(refs(st), 2 + waker_scheduled as usize);
    });
}

/// Two concurrent wakes on an idle G schedule it exactly once.
#[test]
fn gstate_two_wakes_schedule_once() {
    loom::model(|| {
        let s = Arc::new(State::new(false, false));
        s.transition_to_running().unwrap();
        assert_eq!(s.transition_to_idle(), AfterPoll::Park);
        let s2 = s.clone();
        let t = thread::spawn(move || s2.wake_by_ref());
        let a = s.wake_by_val();
        let b = t.join().unwrap();
        assert_eq!(a as u8 + b as u8, 1);
    });
}

/// Completion racing JoinHandle registration: either the handle sees the
/// G complete, or the completing side finds and takes its waker.
#[test]
fn gstate_complete_vs_awaiter() {
    loom::model(|| {
        let s = Arc::new(State::new(true, false));
        let registered = Arc::new(AtomicUsize::new(0));
        s.transition_to_running().unwrap();
        let (s2, r2) = (s.clone(), registered.clone());
        let handle = thread::spawn(move || {
            if s2.lock_awaiter_unless_done() {
                r2.store(1, SeqCst);
                s2.unlock_awaiter_registered();
                false
            } else {
                true
            }
        });
        s.transition_to_complete();
        let took = if s.lock_awaiter_for_take() {
            let r = registered.load(SeqCst) == 1;
            s.unlock_awaiter();
            r
        } else {
            false
        };
        let saw_done = handle.join().unwrap();
        assert!(saw_done || took, "JoinHandle waker lost");
    });
}

/// The last reference and the JoinHandle going away concurrently free
/// the G exactly once.
#[test]
fn gstate_last_ref_vs_handle_drop() {
    loom::model(|| {
        let s = Arc::new(State::new(true, false));
        // Drop the registry's reference first: one runnable ref remains.
        assert!(!s.ref_dec());
        let s2 = s.clone();
        let t = thread::spawn(move || s2.ref_dec());
        let (_, free_handle) = s.drop_handle();
        let free_ref = t.join().unwrap();
        assert_eq!(free_handle as u8 + free_ref as u8, 1);
    });
}
