//! `Wakes`: the goroutines a locked channel operation made ready, woken
//! once the lock is released (Go's `goready` after `unlock`).

use std::task::Waker;

/// Wakers collected under a channel lock. Almost every operation wakes at
/// most one party, kept inline; settling a channel's ring
/// (`hchan/settle.rs`) can complete several queued sudogs at once.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Wakes {
    one: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakes {
    #[inline]
    pub(crate) fn new() -> Wakes {
        Wakes {
            one: None,
            more: Vec::new(),
        }
    }

    /// Add a completed sudog's waker (`Dequeued::finish`'s).
    #[inline]
    pub(crate) fn add(&mut self, w: Option<Waker>) {
        if let Some(w) = w {
            if self.one.is_none() {
                self.one = Some(w);
            } else {
                self.more.push(w);
            }
        }
    }

    /// Wake them all (after the lock is released). Dropping a `Wakes`
    /// does the same, so that no path (an operation that collected a
    /// waker while settling a ring and then did not complete) loses one;
    /// callers still wake explicitly where the lock is dropped, to keep
    /// the order visible.
    #[inline]
    pub(crate) fn wake(self) {
        drop(self);
    }
}

impl Drop for Wakes {
    #[inline]
    fn drop(&mut self) {
        if let Some(w) = self.one.take() {
            w.wake();
        }
        if !self.more.is_empty() {
            wake_more(&mut self.more);
        }
    }
}

#[cold]
#[inline(never)]
fn wake_more(ws: &mut Vec<Waker>) {
    for w in ws.drain(..) {
        w.wake();
    }
}
