//! loom models of the G state word (`src/gstate.rs`): a wake racing the end
//! of a poll, two wakes racing each other, completion racing the
//! JoinHandle's awaiter registration, and the JoinHandle going away while
//! the last reference is dropped.
//!
//! The output slot, the awaiter slot and the allocation itself are loom
//! `UnsafeCell`s, so besides the counts asserted below loom checks that
//! every access the state word is supposed to order is in fact ordered by
//! it (a missing Acquire/Release shows up as a causality violation).
//!
//! Run (CI does, with `LOOM_MAX_PREEMPTIONS=2`):
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p gmp-core --release --test loom_gstate`
#![cfg(loom)]

use gmp_core::loom_api::{refs, AfterPoll, State, CLOSED, COMPLETE, HANDLE, RUNNING, SCHEDULED};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Runs a model and reports how many interleavings it explored.
fn model<F: Fn() + Sync + Send + 'static>(name: &str, f: F) {
    let iters = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let i2 = iters.clone();
    loom::model(move || {
        i2.fetch_add(1, Relaxed);
        f()
    });
    eprintln!("{name}: {} interleavings", iters.load(Relaxed));
}

/// A G the way `g.rs` lays it out, reduced to what the state word guards:
/// the state, the JoinHandle's output slot and awaiter slot, and a word
/// standing for the allocation (written by whoever frees it, read by every
/// holder before it lets go, so loom checks the free is ordered after
/// every use).
struct G {
    state: State,
    out: UnsafeCell<Option<usize>>,
    awaiter: UnsafeCell<Option<usize>>,
    alloc: UnsafeCell<usize>,
    frees: AtomicUsize,
    output_drops: AtomicUsize,
}

impl G {
    fn new(handle: bool) -> Arc<G> {
        Arc::new(G {
            state: State::new(handle, false),
            out: UnsafeCell::new(None),
            awaiter: UnsafeCell::new(None),
            alloc: UnsafeCell::new(1),
            frees: AtomicUsize::new(0),
            output_drops: AtomicUsize::new(0),
        })
    }

    /// A holder touches the allocation (it still owns it).
    fn touch(&self) {
        self.alloc.with(|p| {
            // SAFETY: loom checks this read against the free's write.
            assert_eq!(unsafe { *p }, 1, "G used after it was freed")
        });
    }

    /// `dealloc`: must happen once, after every holder's last use.
    fn free(&self) {
        // SAFETY: loom checks this write against every holder's read.
        self.alloc.with_mut(|p| unsafe { *p = 0 });
        self.frees.fetch_add(1, Relaxed);
    }

    /// Drop a reference (`drop_ref`).
    fn drop_ref(&self) {
        self.touch();
        if self.state.ref_dec() {
            self.free();
        }
    }

    /// Read (take) the stored output: `read_output` or the drop of it.
    fn take_out(&self) -> usize {
        // SAFETY: the state word gave the caller the output; loom checks
        // this access against the poller's write.
        let v = self.out.with_mut(|p| unsafe { (*p).take() });
        self.output_drops.fetch_add(1, Relaxed);
        v.expect("output taken twice or never stored")
    }

    /// The poller's `JoinKind::complete`: store the output, publish it,
    /// then either drop it (no handle) or wake the handle's awaiter.
    /// Returns the awaiter it woke, if any.
    fn complete(&self, v: usize) -> Option<usize> {
        // SAFETY: RUNNING: nobody reads `out` before COMPLETE is published.
        self.out.with_mut(|p| unsafe { *p = Some(v) });
        let prev = self.state.transition_to_complete();
        if prev & (HANDLE | CLOSED) != HANDLE {
            self.take_out();
            None
        } else {
            self.wake_awaiter()
        }
    }

    /// `wake_awaiter`: take the registered waker under LOCKED.
    fn wake_awaiter(&self) -> Option<usize> {
        if self.state.lock_awaiter_for_take() {
            // SAFETY: LOCKED gives exclusive access to the slot.
            let w = self.awaiter.with_mut(|p| unsafe { (*p).take() });
            self.state.unlock_awaiter();
            w
        } else {
            None
        }
    }

    /// One `JoinHandle::poll`: the output, or None after registering
    /// waker `w`.
    fn join_poll(&self, w: usize) -> Option<usize> {
        loop {
            match self.state.take_output() {
                Ok(true) => return Some(self.take_out()),
                Err(()) => panic!("closed without completing"),
                Ok(false) => {}
            }
            if self.state.lock_awaiter_unless_done() {
                // SAFETY: LOCKED gives exclusive access to the slot.
                self.awaiter.with_mut(|p| unsafe { *p = Some(w) });
                self.state.unlock_awaiter_registered();
                return None;
            }
        }
    }

    /// `JoinHandle::drop`.
    fn drop_handle(&self) {
        self.touch();
        let (take, free) = self.state.drop_handle();
        if take {
            self.take_out();
        }
        if free {
            self.free();
        }
    }
}

/// A wake lands while the G is being polled (after `transition_to_running`),
/// racing the poller's `transition_to_idle`. Exactly one of "the poller
/// requeues" and "the waker enqueues" happens, never both, never neither,
/// and the reference count matches: a waker that enqueues added one.
#[test]
fn wake_by_ref_vs_poll_end() {
    model("wake_by_ref_vs_poll_end", || {
        let g = G::new(false);
        g.state.transition_to_running().unwrap();
        let g2 = g.clone();
        let waker = thread::spawn(move || g2.state.wake_by_ref());
        let after = g.state.transition_to_idle();
        let waker_enqueues = waker.join().unwrap();
        let requeue = after == AfterPoll::Requeue;
        assert!(
            requeue != waker_enqueues,
            "requeue={requeue} waker={waker_enqueues}"
        );
        let s = g.state.load();
        assert!(s & SCHEDULED != 0 && s & RUNNING == 0, "state {s:#x}");
        // Runnable + registry, plus the runnable the waker created.
        assert_eq!(refs(s), 2 + usize::from(waker_enqueues));
    });
}

/// A wake races a whole poll of a G that is already queued. The waker
/// publishes an event (as a channel would) and then wakes; the poll reads
/// the event between `transition_to_running` and `transition_to_idle`.
/// No lost wakeup: either the poll saw the event, or the G ends up
/// scheduled again (requeued by the poller or enqueued by the waker); and
/// never scheduled twice. (This model found the lost wakeup that
/// `State::publish_scheduled` fixes.)
fn wake_vs_whole_poll(name: &str, by_val: bool) {
    model(name, move || {
        let g = G::new(false);
        if by_val {
            g.state.ref_inc(); // the waker's own reference
        }
        let event = Arc::new(AtomicBool::new(false));
        let (g2, e2) = (g.clone(), event.clone());
        let waker = thread::spawn(move || {
            e2.store(true, Release);
            if by_val {
                let enq = g2.state.wake_by_val();
                if !enq {
                    assert!(!g2.state.ref_dec());
                }
                enq
            } else {
                g2.state.wake_by_ref()
            }
        });
        g.state.transition_to_running().unwrap();
        let saw = event.load(Acquire);
        let requeue = g.state.transition_to_idle() == AfterPoll::Requeue;
        let waker_enqueues = waker.join().unwrap();
        assert!(!(requeue && waker_enqueues), "scheduled twice");
        assert!(saw || requeue || waker_enqueues, "wakeup lost");
        if !requeue {
            assert!(!g.state.ref_dec(), "the parked runnable's reference");
        }
        let s = g.state.load();
        assert_eq!(s & SCHEDULED != 0, requeue || waker_enqueues);
        // Registry, plus a runnable if it is scheduled.
        assert_eq!(refs(s), 1 + usize::from(requeue || waker_enqueues));
    });
}

#[test]
fn wake_by_ref_vs_whole_poll_no_lost_wakeup() {
    wake_vs_whole_poll("wake_by_ref_vs_whole_poll_no_lost_wakeup", false);
}

#[test]
fn wake_by_val_vs_whole_poll_no_lost_wakeup() {
    wake_vs_whole_poll("wake_by_val_vs_whole_poll_no_lost_wakeup", true);
}

/// `wake` (by value) and `wake_by_ref` race on a parked G: it is enqueued
/// exactly once and no reference leaks or goes missing.
#[test]
fn wake_by_val_vs_wake_by_ref() {
    model("wake_by_val_vs_wake_by_ref", || {
        let g = G::new(false);
        // Two wakers (clones), then a poll that parks.
        g.state.ref_inc();
        g.state.ref_inc();
        g.state.transition_to_running().unwrap();
        assert_eq!(g.state.transition_to_idle(), AfterPoll::Park);
        assert!(!g.state.ref_dec(), "the runnable's reference");

        let g2 = g.clone();
        let by_ref = thread::spawn(move || {
            let enq = g2.state.wake_by_ref();
            // The by-ref waker is dropped afterwards.
            assert!(!g2.state.ref_dec());
            enq
        });
        let by_val = g.state.wake_by_val();
        if !by_val {
            // The waker's reference was not turned into the runnable's.
            assert!(!g.state.ref_dec());
        }
        let by_ref = by_ref.join().unwrap();
        assert!(by_val != by_ref, "by_val={by_val} by_ref={by_ref}");
        let s = g.state.load();
        assert!(s & SCHEDULED != 0);
        // The registry's and the one runnable's.
        assert_eq!(refs(s), 2, "state {s:#x}");
    });
}

/// Completion races the JoinHandle's first poll (awaiter registration):
/// the handle either gets the output on that poll, or it registered a
/// waker that completion took and woke; then its next poll gets the
/// output. The output is read exactly once, by the handle.
#[test]
fn complete_vs_join_poll() {
    model("complete_vs_join_poll", || {
        let g = G::new(true);
        g.state.transition_to_running().unwrap();
        let g2 = g.clone();
        let handle = thread::spawn(move || g2.join_poll(7));
        let woke = g.complete(42);
        let first = handle.join().unwrap();
        match first {
            Some(v) => {
                assert_eq!(v, 42);
                // A waker may have been taken only if one was registered.
                assert_eq!(woke, None, "woken after returning Ready");
            }
            None => {
                assert_eq!(woke, Some(7), "JoinHandle registered but never woken");
                assert_eq!(g.join_poll(7), Some(42), "woken but no output");
            }
        }
        assert_eq!(g.output_drops.load(Relaxed), 1);
    });
}

/// A handle that already registered an awaiter polls again (re-registers)
/// while the G completes: the re-registration is either seen by completion
/// or the poll sees completion; never both missed.
#[test]
fn complete_vs_join_repoll() {
    model("complete_vs_join_repoll", || {
        let g = G::new(true);
        g.state.transition_to_running().unwrap();
        assert_eq!(g.join_poll(1), None);
        let g2 = g.clone();
        let handle = thread::spawn(move || g2.join_poll(2));
        let woke = g.complete(42);
        match handle.join().unwrap() {
            Some(v) => assert_eq!(v, 42),
            None => {
                assert_eq!(woke, Some(2), "the second registration was lost");
                assert_eq!(g.join_poll(3), Some(42));
            }
        }
        assert_eq!(g.output_drops.load(Relaxed), 1);
    });
}

/// The JoinHandle is dropped while the last reference (the runnable's) is
/// dropped: the G is freed exactly once, after both are done with it.
#[test]
fn drop_handle_vs_last_ref() {
    model("drop_handle_vs_last_ref", || {
        let g = G::new(true);
        // The registry lets go first: one reference (the runnable) left.
        assert!(!g.state.ref_dec());
        let g2 = g.clone();
        let t = thread::spawn(move || g2.drop_ref());
        g.drop_handle();
        t.join().unwrap();
        assert_eq!(g.frees.load(Relaxed), 1);
    });
}

/// The whole end of a spawned G's life: the poller completes it, wakes the
/// awaiter and drops the runnable's reference, while the JoinHandle polls
/// once (`take_output`) and is dropped (`drop_handle`). The output is
/// dropped exactly once (by the handle's read, by the handle's drop, or by
/// the poller if the handle was already gone), and the G is freed exactly
/// once, after everyone's last use.
#[test]
fn complete_vs_take_output_and_drop_handle() {
    model("complete_vs_take_output_and_drop_handle", || {
        let g = G::new(true);
        assert!(!g.state.ref_dec(), "the registry's reference");
        g.state.transition_to_running().unwrap();
        let g2 = g.clone();
        let handle = thread::spawn(move || {
            let got = match g2.state.take_output() {
                Ok(true) => Some(g2.take_out()),
                Ok(false) => None,
                Err(()) => panic!("closed without completing"),
            };
            g2.drop_handle();
            got
        });
        g.complete(42);
        g.drop_ref();
        let got = handle.join().unwrap();
        assert!(got.is_none() || got == Some(42));
        assert_eq!(g.output_drops.load(Relaxed), 1, "output dropped");
        assert_eq!(g.frees.load(Relaxed), 1, "G freed");
        assert!(g.state.load() & (COMPLETE | CLOSED) == COMPLETE | CLOSED);
    });
}
