//! loom model of the P hand-over when a syscall ends (`syscall.rs`
//! `exitsyscall`, `sched/idle.rs` `wait_for_p`/`pidleput_locked`/`handoffp`,
//! `sysmon.rs` `retake`).
//!
//! The protocol, in miniature but step for step: the M in the syscall
//! holds P0 in `(m, SYSCALL)`. Leaving, it CASes the status back to
//! `(m, POLLING)`; sysmon may instead have CASed it to `IDLE` and be
//! handing P0 on: to an M waiting in `pwait` if there is one, else to the
//! idle list, both under the sched lock. An M whose CAS failed takes an
//! idle P under that lock or queues itself in `pwait` and sleeps on its
//! note until a P is handed to it. A third M releasing P1 at the same time
//! goes through the same `pidleput`.
//!
//! Checked: the M leaving the syscall always ends holding exactly one P
//! (never zero: that would be a lost hand-over, which loom reports as a
//! deadlock; never a P that is also on the idle list), and no P is lost
//! or held twice.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p gmp-core --release --test loom_handoff`
#![cfg(loom)]

use loom::sync::atomic::AtomicU64;
use loom::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use std::collections::VecDeque;

const IDLE: u64 = 0;
const SYSCALL: u64 = 2;
const POLLING: u64 = 5;
const M1: u64 = 1;

fn word(m: u64, st: u64) -> u64 {
    (m << 8) | st
}

/// An M's note: the P handed to it.
#[derive(Default)]
struct Note {
    p: Mutex<Option<usize>>,
    cv: Condvar,
}

impl Note {
    fn wakeup(&self, p: usize) {
        *self.p.lock().unwrap() = Some(p);
        self.cv.notify_one();
    }

    fn sleep(&self) -> usize {
        let mut g = self.p.lock().unwrap();
        loop {
            if let Some(p) = g.take() {
                return p;
            }
            g = self.cv.wait(g).unwrap();
        }
    }
}

#[derive(Default)]
struct Locked {
    pidle: Vec<usize>,
    pwait: VecDeque<Arc<Note>>,
}

struct Sched {
    status: [AtomicU64; 2],
    lock: Mutex<Locked>,
}

impl Sched {
    /// `pidleput_locked`: a waiting M first, else the idle list.
    fn pidleput(&self, l: &mut Locked, p: usize) {
        self.status[p].store(IDLE, Release);
        match l.pwait.pop_front() {
            Some(m) => m.wakeup(p),
            None => l.pidle.push(p),
        }
    }

    /// `wait_for_p`.
    fn wait_for_p(&self, me: &Arc<Note>) -> usize {
        let mut l = self.lock.lock().unwrap();
        if let Some(p) = l.pidle.pop() {
            return p;
        }
        l.pwait.push_back(me.clone());
        drop(l);
        me.sleep()
    }

    /// `exitsyscall`: the P this M holds afterwards.
    fn exitsyscall(&self, me: &Arc<Note>) -> usize {
        let kept = self.status[0]
            .compare_exchange(word(M1, SYSCALL), word(M1, POLLING), AcqRel, Relaxed)
            .is_ok();
        let p = if kept { 0 } else { self.wait_for_p(me) };
        self.status[p].store(word(M1, POLLING), Release);
        p
    }

    /// sysmon's `retake` of a syscall P, then `handoffp` with no work.
    fn retake(&self) {
        let w = self.status[0].load(Acquire);
        if w == word(M1, SYSCALL)
            && self.status[0]
                .compare_exchange(w, IDLE, AcqRel, Relaxed)
                .is_ok()
        {
            let mut l = self.lock.lock().unwrap();
            self.pidleput(&mut l, 0);
        }
    }
}

fn run(with_p1_released: bool) {
    loom::model(move || {
        let s = Arc::new(Sched {
            status: [
                AtomicU64::new(word(M1, SYSCALL)),
                AtomicU64::new(word(2, POLLING)),
            ],
            lock: Mutex::new(Locked::default()),
        });
        let me = Arc::new(Note::default());
        let (s2, s3) = (s.clone(), s.clone());
        let sysmon = thread::spawn(move || s2.retake());
        let other = thread::spawn(move || {
            if with_p1_released {
                // Another M runs out of work and releases P1.
                let mut l = s3.lock.lock().unwrap();
                s3.pidleput(&mut l, 1);
            }
        });
        let held = s.exitsyscall(&me);
        sysmon.join().unwrap();
        other.join().unwrap();
        let l = s.lock.lock().unwrap();
        assert!(l.pwait.is_empty(), "an M still waits for a P");
        assert!(!l.pidle.contains(&held), "P{held} both held and idle");
        assert_eq!(s.status[held].load(Acquire), word(M1, POLLING));
        // Conservation: P0 and (if released) P1 are each held or idle.
        let mut all = l.pidle.clone();
        all.push(held);
        if !with_p1_released {
            all.push(1);
        }
        all.sort();
        assert_eq!(all, vec![0, 1], "a P was lost or duplicated");
    });
}

/// One P: sysmon's retake races the syscall's return.
#[test]
fn exitsyscall_vs_retake() {
    run(false);
}

/// Two Ps: the returning M may also get the P another M releases.
#[test]
fn exitsyscall_vs_retake_and_pidleput() {
    run(true);
}
