//! The locked side of a channel with a lock-free `Ring` (`hchan/ring.rs`):
//! `chansend` and `chanrecv` under the lock, and `settle`, which puts
//! Go's hchan invariants back after lock-free operations ran past the
//! queues: a receiver is only queued while nothing is buffered, a sender
//! only while the buffer is full, and both queues are served in order.

use super::ring::{Ring, RECV_WAITING, SEND_WAITING};
use super::{Locked, SendTry};
use crate::error::RecvError;
use crate::sudog::Status;
use crate::wakes::Wakes;

impl<T> Locked<'_, T> {
    /// Queued receivers take what is buffered (given-back values first,
    /// then the ring), in queue order; then queued senders move their
    /// values into free slots, in queue order; until neither can. The
    /// flags are then set to what the queues hold.
    ///
    /// Called by whoever may have broken the invariants: a lock-free op
    /// that found the other side's flag up, and a party that just queued
    /// (its flag went up after the op it may have missed).
    pub(crate) fn settle(&mut self, r: &Ring<T>, wakes: &mut Wakes) {
        loop {
            let mut moved = false;
            while !self.st().recvq.is_empty() {
                // SAFETY: the lock is held (`self`); no other stash
                // reference is alive.
                let stashed = unsafe { r.stash() }.pop_front();
                let Some(v) = stashed.or_else(|| r.pop_locked()) else {
                    break;
                };
                match self.st().recvq.dequeue() {
                    Some(mut sg) => {
                        *sg.elem() = Some(v);
                        wakes.add(sg.finish(Status::Ok));
                        moved = true;
                    }
                    None => {
                        // Only selects already won elsewhere were queued:
                        // the value goes back to the front.
                        // SAFETY: as above.
                        unsafe { r.stash() }.push_front(v);
                        break;
                    }
                }
            }
            // `SEND_WAITING` keeps lock-free senders out while any
            // sender is queued, so a free slot seen here stays free.
            while !self.st().sendq.is_empty() && r.has_room() {
                let Some(mut sg) = self.st().sendq.dequeue() else {
                    break;
                };
                let v = sg.elem().take().expect("send sudog without value");
                if r.push_locked(v).is_err() {
                    unreachable!("gmp-chan: ring full after has_room");
                }
                wakes.add(sg.finish(Status::Ok));
                moved = true;
            }
            if !moved {
                break;
            }
        }
        self.update_flags(r);
    }

    /// Set the ring's flags to what the queues and the stash hold.
    pub(crate) fn update_flags(&mut self, r: &Ring<T>) {
        // SAFETY: the lock is held (`self`).
        let stashed = !unsafe { r.stash() }.is_empty();
        let recv = stashed || !self.st().recvq.is_empty();
        let send = !self.st().sendq.is_empty();
        r.set_flag(RECV_WAITING, recv);
        r.set_flag(SEND_WAITING, send);
    }

    /// `Locked::send` for a channel with a ring: Go's `chansend` once the
    /// lock-free try has failed: closed, else to the first queued
    /// receiver, else behind queued senders, else into the ring.
    pub(crate) fn send_ring(&mut self, r: &Ring<T>, v: T, wakes: &mut Wakes) -> SendTry<T> {
        if self.closed() {
            return SendTry::Closed(v);
        }
        self.settle(r, wakes);
        // After `settle`, a queued receiver means nothing is buffered.
        if let Some(mut sg) = self.st().recvq.dequeue() {
            *sg.elem() = Some(v);
            wakes.add(sg.finish(Status::Ok));
            self.update_flags(r);
            return SendTry::Sent(None);
        }
        if !self.st().sendq.is_empty() {
            return SendTry::Full(v);
        }
        match r.push_locked(v) {
            Ok(()) => SendTry::Sent(None),
            Err(v) => SendTry::Full(v),
        }
    }

    /// `Locked::recv` for a channel with a ring: given-back values, then
    /// the ring (a queued sender then moves into the freed slot), else
    /// closed, else `None` (it would block).
    pub(crate) fn recv_ring(
        &mut self,
        r: &Ring<T>,
        wakes: &mut Wakes,
    ) -> Option<Result<T, RecvError>> {
        self.settle(r, wakes);
        // After `settle`, a queued receiver means nothing is buffered:
        // this one queues behind it.
        if self.st().recvq.is_empty() {
            // SAFETY: the lock is held (`self`).
            if let Some(v) = unsafe { r.stash() }.pop_front() {
                self.update_flags(r);
                return Some(Ok(v));
            }
            if let Some(v) = r.pop_locked() {
                if !self.st().sendq.is_empty() {
                    self.settle(r, wakes);
                }
                return Some(Ok(v));
            }
        }
        if self.closed() {
            return Some(Err(RecvError));
        }
        None
    }
}
