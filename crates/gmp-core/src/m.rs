//! M: an OS thread that runs goroutines while it holds a P. Idle Ms sleep
//! on their note (Go's `m.park`) until `startm` hands them a P.

use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex};

pub(crate) struct M {
    /// Unique within the runtime, never 0 (0 marks "no owner" in P status).
    pub(crate) id: u64,
    note: Mutex<Note>,
    cv: Condvar,
    /// M0 sleeps waiting for main to be runnable (`ready_main` wakes it).
    pub(crate) parked: AtomicBool,
}

#[derive(Default)]
struct Note {
    woken: bool,
    nextp: Option<usize>,
    spinning: bool,
}

impl M {
    pub(crate) fn new(id: u64) -> M {
        M {
            id,
            note: Mutex::new(Note::default()),
            cv: Condvar::new(),
            parked: AtomicBool::new(false),
        }
    }

    /// Go's `notewakeup(&m.park)` with `m.nextp` set.
    pub(crate) fn notewakeup(&self, nextp: Option<usize>, spinning: bool) {
        let mut n = self.note.lock().unwrap();
        debug_assert!(
            !(n.woken && n.nextp.is_some() && nextp.is_some()),
            "M woken twice with a P"
        );
        n.woken = true;
        if nextp.is_some() {
            n.nextp = nextp;
            n.spinning = spinning;
        }
        drop(n);
        self.cv.notify_one();
    }

    /// `notetsleep`: like `notesleep`, but gives up after `d` (None).
    pub(crate) fn notesleep_timeout(
        &self,
        d: std::time::Duration,
    ) -> Option<(Option<usize>, bool)> {
        let mut n = self.note.lock().unwrap();
        let deadline = std::time::Instant::now() + d;
        while !n.woken {
            let now = std::time::Instant::now();
            if now >= deadline {
                return None;
            }
            n = self.cv.wait_timeout(n, deadline - now).unwrap().0;
        }
        n.woken = false;
        let out = (n.nextp.take(), n.spinning);
        n.spinning = false;
        Some(out)
    }

    /// Go's `notesleep(&m.park)`: returns the P handed over, if any.
    pub(crate) fn notesleep(&self) -> (Option<usize>, bool) {
        let mut n = self.note.lock().unwrap();
        while !n.woken {
            n = self.cv.wait(n).unwrap();
        }
        n.woken = false;
        let out = (n.nextp.take(), n.spinning);
        n.spinning = false;
        out
    }
}
