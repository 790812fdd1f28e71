//! gmp-chan: Go's channels and `select` for gmp goroutines.
//!
//! # Design
//!
//! **hchan** (`hchan.rs`) is one unaligned `Arc` allocation: a small
//! spin-then-sleep lock (`sync::RawLock`, Go's runtime `lock`), taken
//! through a guard (`ChanGuard` in `hchan/locked.rs`, which unlocks when
//! dropped, also on a panic, and derefs to `Locked`, the only way to the
//! locked state and home of the locked halves of send and receive), and
//! under it a ring buffer (a `VecDeque` that grows toward `cap` as values
//! arrive), the `closed` flag and the two wait queues `recvq`/`sendq`,
//! the fields an operation writes first and contiguous. `bounded` checks
//! the capacity as Go's `makechan` does ("makechan: size out of range").
//! `is_closed` reads the atomic flag without the lock; `len` takes the
//! lock (Go reads `qcount` without it, but a mirror would be one more
//! store on every operation).
//!
//! **The lock-free ring** (`hchan/ring.rs`, its locked side
//! `hchan/settle.rs`): a channel of capacity 2 up to 64 KiB of slots keeps
//! its buffer in a bounded ring instead, where a send or receive that
//! meets no queued party claims a slot with one compare-and-swap and
//! never takes the lock. Flags in the ring's position words send an
//! operation to the locked path while a sudog is queued or the channel is
//! closed, so queued parties keep their order; a goroutine that parks
//! raises its flag and looks at the ring again, and a lock-free op that
//! finds the flag settles the queues under the lock, so no wake-up is
//! lost (the `ring_*` loom models). Wakers collected under the lock are a
//! `Wakes` (`wakes.rs`).
//!
//! A **sudog** (`sudog.rs`) is one waiting goroutine (or task) on one
//! channel: its `Waker`, a slot for the value (the value to send, or the
//! slot a sender fills), the links of the intrusive, circular
//! doubly-linked `waitq` (`sudog/waitq.rs`), and, for a select, a pointer to the select's
//! shared `selectDone`. The sudog lives inside the pinned `send`/`recv`
//! future (or select case), so a blocking op allocates nothing. A waker
//! completes a sudog under the channel lock (`Dequeued::finish`) and
//! publishes the outcome with one Release store of `status`
//! (`Status::Ok`, or `Status::Closed` for Go's `success == false`) as its
//! last touch; the owner reads it with Acquire and may then free the
//! sudog. Wakers are woken after the lock is released; gmp-core's
//! waker is Go's `goready` (the woken G goes to the waking P's `runnext`),
//! another executor's waker is just woken.
//!
//! **chansend**: closed → the value comes back; a waiting receiver → the
//! value is copied straight into its sudog (no buffer hop, for buffered
//! channels too); buffer space → enqueue; else park on `sendq`.
//! **chanrecv**: buffer head (and, when the buffer was full, the first
//! blocked sender's value moves to the tail: chan.go `recv`); else straight
//! from a blocked sender; else closed → `RecvError`; else park on `recvq`.
//! **closechan** completes every queued sudog with `Status::Closed`
//! (senders keep their value to return it) and wakes them all. Queues are
//! FIFO.
//!
//! **Cancellation**: dropping a queued future takes the lock and unlinks its
//! sudog; if a sender already handed it a value, the value is given to the
//! next waiting receiver or pushed back at the head of the buffer, so it is
//! neither lost nor reordered (the buffer may then hold one more value than
//! `cap` for a moment; `len()` never reports more than `cap`).
//!
//! **Off the runtime**: `.await`, `select!`, `Stream` and `Sink` work in
//! any executor's task or a plain thread's `block_on`; such a use marks
//! the channel `foreign`, so goroutines parked on it are not counted by
//! the deadlock detector (see `Chan::become_foreign`).
//!
//! **Sink** (`sink.rs`): `Sender` is a `futures::Sink` holding at most one
//! value that the channel could not take yet.
//!
//! **selectgo** (`select.rs`): see that module. Its lock-all and
//! unlock-all (Go's `sellock`/`selunlock`, over channels of different
//! element types) are the one place with raw lock calls, inside the
//! `SelLock` guard. `Option` operands are
//! Go's nil channels: `None` is a case that is never ready. Cases are pinned locals of
//! the enclosing async fn, driven through `Pin<&mut dyn SelectCase>`;
//! random poll order; a fast path that commits the first case whose
//! channel's lock-free readiness hint is set under that one channel's
//! lock; otherwise Go's algorithm: address lock order, pass 1 commit,
//! `default`, pass 2 enqueue on every channel, and a `selectDone` CAS that
//! a waker must win before completing any sudog of the select, so exactly
//! one case commits.
//!
//! **Preemption**: every poll of a channel op first calls gmp-core's
//! `poll_proceed_on_m`, so a goroutine whose channels are always ready still
//! yields its P when its budget or time slice runs out.
//!
//! **loom**: `sync.rs` swaps the atomics, the lock and the scheduler hooks
//! for loom's under `--cfg loom`; `tests/loom_chan.rs` runs this very code
//! with loom threads and `loom::future::block_on`.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

mod block;
mod case;
mod ends;
mod error;
mod hchan;
mod select;
mod select_macro;
mod sink;
mod sudog;
mod sync;
mod wakes;

pub use case::{RecvOperand, SendOperand};
pub use ends::{bounded, never, Receiver, RecvFuture, SendFuture, Sender};
pub use error::{RecvError, SendError, TryRecvError, TrySendError};

/// Macro support; not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::case::{RecvCase, SendCase};
    pub use crate::ends::bounded_never_closed;

    /// How many `Sender`s and `Receiver`s refer to `tx`'s channel. The
    /// runtime's channel timers ask it to drop a timer once its own sender
    /// is the only handle left (Go 1.23 collects an unreferenced timer).
    pub fn handle_count<T>(tx: &crate::Sender<T>) -> usize {
        crate::sync::Arc::strong_count(&tx.chan)
    }
    pub use crate::select::{erase, select_no_cases, Select, SelectCase};
    /// loom models only: a loom thread that acts as a goroutine.
    #[cfg(loom)]
    pub use crate::sync::pretend_goroutine;
    pub use crate::wakes::Wakes;
}
