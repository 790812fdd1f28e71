//! Go's waitq: the channel's intrusive FIFO of sudogs (`WaitQ`), and
//! `Dequeued`, the handle through which a waker completes the sudog it
//! took off a queue. Both live only inside the channel's locked state.

use super::{SelectDone, Status, Sudog, SudogInner, Waiter};
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, Release};
use std::task::Waker;

/// The guarded fields of a linked sudog, reached from its queue.
///
/// # Safety
/// `sg` is linked on a queue whose channel lock the caller holds (linked
/// sudogs are alive and written), or was just dequeued from one; no other
/// reference to its fields is alive.
#[inline(always)]
unsafe fn fields<'a, T>(sg: *const Sudog<T>) -> &'a mut SudogInner<T> {
    // SAFETY: the caller's contract.
    unsafe { (*(*sg).inner.get()).assume_init_mut() }
}

/// Go's waitq: FIFO of sudogs, intrusive. It lives in the channel's locked
/// state, so a `&mut WaitQ` is itself the proof that the lock is held.
/// Circular (the head's `prev` is the tail) so that the queue is one
/// pointer: both queues' heads then fit in the channel's first cache line
/// next to the lock and the buffer (see `Chan`).
pub(crate) struct WaitQ<T> {
    head: *const Sudog<T>,
}

impl<T> WaitQ<T> {
    pub(crate) const fn new() -> WaitQ<T> {
        WaitQ { head: ptr::null() }
    }

    /// Go's `enqueue`: append the owner's sudog (prepared with
    /// `Waiter::prepare`) at the tail.
    ///
    /// # Safety
    /// `w` was prepared and is not queued; it is pinned and stays alive
    /// until it is unlinked again (by `dequeue` or `remove`): its owner
    /// removes it before it goes away.
    pub(crate) unsafe fn enqueue(&mut self, w: &mut Waiter<T>) {
        debug_assert!(w.init && !w.queued);
        w.queued = true;
        let sg = w.as_ptr();
        // SAFETY: `sg` is written and ours (not linked); the queue's
        // sudogs are linked, and we hold the lock (`&mut self`). One field
        // reference at a time: the head and the tail may be one sudog.
        unsafe {
            if self.head.is_null() {
                let i = fields(sg);
                i.next = sg;
                i.prev = sg;
                self.head = sg;
            } else {
                let head = self.head;
                let tail = fields(head).prev;
                let i = fields(sg);
                i.prev = tail;
                i.next = head;
                fields(tail).next = sg;
                fields(head).prev = sg;
            }
        }
    }

    /// The owner takes its sudog out of the queue if it is still linked;
    /// if it was still `Waiting` it is then the owner's again (`queued()`
    /// turns false). If a waker completed it first, it stays `queued()`
    /// for `Waiter::take_back`.
    ///
    /// # Safety
    /// If `w` is linked, it is linked on this queue.
    pub(crate) unsafe fn remove(&mut self, w: &mut Waiter<T>) {
        if !w.queued {
            return;
        }
        // SAFETY: queued implies written; linked on this queue (caller),
        // whose lock `&mut self` proves held.
        unsafe { self.unlink(w.as_ptr()) };
        if w.status.load(Relaxed) == Status::Waiting as u8 {
            w.queued = false;
        }
    }

    /// Unlink `sg` if it is linked.
    ///
    /// # Safety
    /// `sg` is written and, if linked, linked on this queue.
    unsafe fn unlink(&mut self, sg: *const Sudog<T>) {
        // SAFETY: the caller's contract; linked neighbours are alive.
        unsafe {
            let i = fields(sg);
            if i.next.is_null() {
                return;
            }
            let (prev, next) = (i.prev, i.next);
            i.next = ptr::null();
            i.prev = ptr::null();
            if ptr::eq(next, sg) {
                // The only one.
                self.head = ptr::null();
            } else {
                fields(prev).next = next;
                fields(next).prev = prev;
                if ptr::eq(self.head, sg) {
                    self.head = next;
                }
            }
        }
    }

    /// Go's `dequeue`: pop the first sudog that may be completed. A select
    /// sudog is skipped (and stays unlinked) when its select was already won
    /// by another case: the `selectDone` CAS.
    #[inline]
    pub(crate) fn dequeue(&mut self) -> Option<Dequeued<'_, T>> {
        loop {
            let sg = self.head;
            if sg.is_null() {
                return None;
            }
            // SAFETY: the head is linked here and we hold the lock; a
            // select sudog's `sel` outlives its linked sudogs.
            let won = unsafe {
                self.unlink(sg);
                let sel = fields(sg).sel;
                sel.is_null()
                    || (*sel)
                        .done
                        .compare_exchange(false, true, AcqRel, Relaxed)
                        .is_ok()
            };
            if won {
                return Some(Dequeued {
                    sg,
                    _lock: PhantomData,
                });
            }
        }
    }

    /// Visit the waker of every queued sudog, head to tail.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Waker)) {
        let head = self.head;
        let mut sg = head;
        while !sg.is_null() {
            // SAFETY: linked sudogs are alive, and we hold the lock (the
            // queue is only reachable through it); a select sudog's `sel`
            // outlives it.
            unsafe {
                let i = fields(sg);
                let w = match &i.waker {
                    Some(w) => Some(w),
                    None if !i.sel.is_null() => (*i.sel).waker(),
                    None => None,
                };
                if let Some(w) = w {
                    f(w);
                }
                sg = i.next;
            }
            if ptr::eq(sg, head) {
                break;
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }
}

/// A sudog just taken off a wait queue, under the lock (the borrow of the
/// queue): the one party that may complete it, once, with `finish`.
#[must_use = "a dequeued sudog must be finished, or its owner waits forever"]
pub(crate) struct Dequeued<'q, T> {
    sg: *const Sudog<T>,
    _lock: PhantomData<&'q mut WaitQ<T>>,
}

impl<T> Dequeued<'_, T> {
    /// The value slot: a sender's value to take, or a receiver's slot to
    /// fill.
    #[inline]
    pub(crate) fn elem(&mut self) -> &mut Option<T> {
        // SAFETY: dequeued under the lock and not finished: only we reach
        // its fields now.
        unsafe { &mut fields(self.sg).elem }
    }

    /// Publish the outcome and hand back the waker (to be woken after the
    /// channel lock is released: Go's `goready` outside the lock).
    #[inline]
    pub(crate) fn finish(self, status: Status) -> Option<Waker> {
        let sg = self.sg;
        // SAFETY: as in `elem`. The `status`/`fired` store is the last
        // access: after it the owner may free the sudog (or the select).
        unsafe {
            let i = fields(sg);
            let sel = i.sel;
            // A select sudog uses the select's shared waker unless it has
            // its own (the select was polled again with another waker).
            let mut waker = i.waker.take();
            if waker.is_none() && !sel.is_null() {
                waker = shared_waker(sel);
            }
            // Written by `prepare` before a select queued this sudog.
            let case = if sel.is_null() {
                0
            } else {
                (*(*sg).case.get()).assume_init()
            };
            (*sg).status.store(status as u8, Release);
            if !sel.is_null() {
                (*sel).fired.store(case as usize + 1, Release);
            }
            waker
        }
    }
}

/// A select sudog's waker: the select's shared one (out of line: the
/// plain send/recv path never needs it).
///
/// # Safety
/// As `SelectDone::waker`; `sel` is alive.
#[cold]
#[inline(never)]
unsafe fn shared_waker(sel: *const SelectDone) -> Option<Waker> {
    // SAFETY: caller contract.
    unsafe { (*sel).waker().cloned() }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sudog::Park;

    /// The circular waitq: FIFO order, removal from the middle, the head
    /// and the only element.
    #[test]
    fn waitq_fifo_and_remove() {
        let mut sgs: Vec<Box<Sudog<u32>>> = (0..4)
            .map(|_| {
                let mut s = Box::new(Sudog::new());
                s.prepare(Park {
                    elem: None,
                    sel: None,
                    waker: None,
                });
                s
            })
            .collect();
        let p = |sgs: &[Box<Sudog<u32>>], i: usize| &*sgs[i] as *const Sudog<u32>;
        let pop = |q: &mut WaitQ<u32>| q.dequeue().map(|d| d.sg);
        let mut q = WaitQ::new();
        // SAFETY: the boxed sudogs outlive the queue and are not moved.
        unsafe {
            for s in sgs.iter_mut() {
                q.enqueue(s);
            }
            q.remove(&mut sgs[2]);
            q.remove(&mut sgs[0]);
            assert!(!sgs[2].queued() && !sgs[0].queued());
            assert_eq!(pop(&mut q), Some(p(&sgs, 1)));
            q.enqueue(&mut sgs[0]);
            assert_eq!(pop(&mut q), Some(p(&sgs, 3)));
            q.remove(&mut sgs[0]);
            assert!(q.is_empty());
            assert_eq!(pop(&mut q), None);
            q.enqueue(&mut sgs[2]);
            assert_eq!(pop(&mut q), Some(p(&sgs, 2)));
            assert!(q.is_empty());
        }
    }
}
