//! `Wakes`: the goroutines a locked channel operation made ready, woken
//! once the lock is released (Go's `goready` after `unlock`).

use std::task::Waker;

/// Wakers collected under a channel lock. Almost every operation wakes at
/// most one party, kept inline; settling a channel's ring
/// (`hchan/settle.rs`) can complete several queued sudogs at once.
/// Two words and a null pointer, so that making one and waking it on
/// the plain send and receive paths stays a few instructions.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Wakes {
    one: Option<Waker>,
    more: Option<Box<More>>,
}

/// The wakers after the first (boxed, so that an empty `Wakes` holds a
/// null pointer rather than a vector's three words).
#[derive(Debug, Default)]
struct More(Vec<Waker>);

impl Wakes {
    #[inline]
    pub(crate) fn new() -> Wakes {
        Wakes {
            one: None,
            more: None,
        }
    }

    /// Add a completed sudog's waker (`Dequeued::finish`'s).
    #[inline]
    pub(crate) fn add(&mut self, w: Option<Waker>) {
        if let Some(w) = w {
            if self.one.is_none() {
                self.one = Some(w);
            } else {
                self.more.get_or_insert_with(Box::default).0.push(w);
            }
        }
    }

    /// Wake them all (after the lock is released). Dropping a `Wakes`
    /// does the same, so that no path (an operation that collected a
    /// waker while settling a ring and then did not complete) loses one;
    /// callers still wake explicitly where the lock is dropped, to keep
    /// the order visible.
    #[inline(always)]
    pub(crate) fn wake(mut self) {
        self.wake_now();
        // Nothing is left to wake or free: skip the drop glue.
        std::mem::forget(self);
    }

    /// Wake what was collected so far, leaving `self` empty.
    #[inline(always)]
    pub(crate) fn wake_now(&mut self) {
        if let Some(w) = self.one.take() {
            w.wake();
        }
        if let Some(more) = self.more.take() {
            wake_more(*more);
        }
    }
}

impl Drop for Wakes {
    #[inline(always)]
    fn drop(&mut self) {
        self.wake_now();
    }
}

/// The rare extra wakers.
#[cold]
#[inline(never)]
fn wake_more(ws: More) {
    for w in ws.0 {
        w.wake();
    }
}
