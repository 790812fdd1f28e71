//! The public channel handles, `Sender` and `Receiver`, and the futures of
//! a blocking send and receive (each embedding its sudog, so a blocking op
//! allocates nothing). Also the `try_` and `_blocking` forms and `Stream`.

use crate::error::{RecvError, SendError, TryRecvError, TrySendError};
use crate::hchan::{Chan, Queue, SendTry, MAX_SENDERS};
use crate::sink::SinkSend;
use crate::sudog::Waiter;
use crate::sync::{block_on, in_runtime, poll_proceed_on_m, set_wait_reason, Arc, Wait};
use crate::wakes::Wakes;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::task::{Context, Poll};

/// Go's `make(chan T, cap)`: `cap == 0` is an unbuffered (rendezvous)
/// channel. The buffer is allocated as values arrive, never more than
/// `cap` slots.
///
/// # Panics
/// With Go's message, "makechan: size out of range", when `cap` values of
/// `T` could not fit in memory (their size overflows, or passes Go's
/// `maxAlloc`, 2^48 bytes on 64-bit targets).
#[track_caller]
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let c = Arc::new(Chan::new(cap));
    (
        Sender {
            chan: c.clone(),
            sink: None,
        },
        Receiver {
            chan: Some(c),
            stream: None,
        },
    )
}

/// A channel that dropping the senders never closes: Go's timer channels
/// (`time.After`, `Ticker.C`), which stay open after the timer is gone. A
/// phantom sender count keeps `close()` from ever running on drop.
#[doc(hidden)]
#[track_caller]
pub fn bounded_never_closed<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = bounded(cap);
    tx.chan.senders.fetch_add(1, Relaxed);
    (tx, rx)
}

/// Go's nil channel: a receiver that is never ready. Receiving parks
/// forever; as a `select!` case it switches that case off.
pub fn never<T>() -> Receiver<T> {
    Receiver {
        chan: None,
        stream: None,
    }
}

/// The sending end. Clone it for more senders; dropping the last one closes
/// the channel. It is also a `futures::Sink` (see `sink.rs`).
pub struct Sender<T> {
    pub(crate) chan: Arc<Chan<T>>,
    /// The `Sink` side's one accepted but not yet delivered value, with
    /// the sudog it parks with (boxed: a `Sender` is `Unpin`; allocated on
    /// the first `start_send` that finds the channel full).
    pub(crate) sink: Option<Pin<Box<SinkSend<T>>>>,
}

/// The receiving end. Clone it for more receivers (MPMC).
pub struct Receiver<T> {
    /// `None` is the nil channel (`never`).
    pub(crate) chan: Option<Arc<Chan<T>>>,
    /// The sudog `Stream::poll_next` parks with (a `Receiver` is `Unpin`,
    /// so it is boxed; allocated on first use and reused).
    stream: Option<Pin<Box<Waiter<T>>>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        if self.chan.senders.fetch_add(1, Relaxed) >= MAX_SENDERS {
            self.chan.senders.fetch_sub(1, Relaxed);
            panic!("gmp::chan: more than {MAX_SENDERS} live Senders of one channel");
        }
        Sender {
            chan: self.chan.clone(),
            sink: None,
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // An undelivered `Sink` value is withdrawn first (dropped with it,
        // as an unflushed `Sink` item may be), before the close below.
        if let Some(s) = self.sink.as_mut() {
            s.as_mut().cancel(&self.chan);
        }
        if self.chan.senders.fetch_sub(1, AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            chan: self.chan.clone(),
            stream: None,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let (Some(c), Some(w)) = (&self.chan, self.stream.as_mut()) {
            c.cancel(w.as_mut(), Queue::Recv);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("cap", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.chan.is_none() {
            return f.write_str("Receiver(nil)");
        }
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("cap", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> Sender<T> {
    /// Send `v`, parking until a receiver takes it (unbuffered) or there is
    /// buffer space. `Err(SendError(v))` if the channel is or gets closed.
    /// Also off the runtime (another executor's task, a plain thread's
    /// `block_on`), where it parks through that task's waker.
    pub fn send(&self, v: T) -> SendFuture<'_, T> {
        SendFuture {
            chan: &self.chan,
            value: Some(v),
            waiter: Waiter::new(),
        }
    }

    /// Go's `select { case c <- v: default: }`.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.chan.note_use();
        let Err(v) = self.chan.send_fast(v) else {
            return Ok(());
        };
        let mut wakes = Wakes::new();
        let r = self.chan.lock().send(v, &mut wakes);
        match r {
            SendTry::Sent(w) => {
                wakes.add(w);
                wakes.wake();
                Ok(())
            }
            SendTry::Closed(v) => Err(TrySendError::Closed(v)),
            SendTry::Full(v) => Err(TrySendError::Full(v)),
        }
    }

    /// `send` for plain OS threads: blocks the thread. Panics inside a gmp
    /// runtime, where it would block an M (use `tx.send(v).await`).
    #[track_caller]
    pub fn send_blocking(&self, v: T) -> Result<(), SendError<T>> {
        if in_runtime() {
            panic!(
                "Sender::send_blocking called on a gmp runtime thread; inside a goroutine use \
                 `tx.send(v).await`"
            );
        }
        block_on(self.send(v))
    }

    /// Close the channel; true if this call closed it.
    pub fn close(&self) -> bool {
        self.chan.note_use();
        self.chan.close()
    }

    /// Values buffered now (Go's `len(c)`).
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer size given to `bounded` (Go's `cap(c)`).
    pub fn capacity(&self) -> usize {
        self.chan.cap()
    }

    /// True once the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// True if both handles are ends of one channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    /// True while some `Receiver` of this channel exists. A Go channel
    /// cannot tell; gmp needs it where Go's runtime holds the only sender
    /// (`gmp::signal::notify` gives the signal its default action back
    /// once nobody can receive). Exact when no handle of the channel is
    /// being cloned or dropped at the same moment, which holds for a
    /// sender nobody else has a copy of.
    pub fn has_receivers(&self) -> bool {
        // Only `Sender`s and `Receiver`s hold the `Arc`.
        Arc::strong_count(&self.chan) > self.chan.senders.load(Acquire) as usize
    }
}

impl<T> Receiver<T> {
    /// Receive the next value, parking until there is one.
    /// `Err(RecvError)` once the channel is closed and drained.
    /// Also off the runtime, as [`Sender::send`].
    pub fn recv(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            chan: self.chan.as_deref(),
            waiter: Waiter::new(),
        }
    }

    /// Go's `select { case v, ok := <-c: default: }`.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let Some(c) = self.chan.as_deref() else {
            return Err(TryRecvError::Empty);
        };
        c.note_use();
        if let Some(v) = c.recv_fast() {
            return Ok(v);
        }
        let mut wakes = Wakes::new();
        let r = c.lock().recv(&mut wakes);
        wakes.wake();
        match r {
            Some(Ok(v)) => Ok(v),
            Some(Err(RecvError)) => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// `recv` for plain OS threads: blocks the thread. Panics inside a gmp
    /// runtime, where it would block an M (use `rx.recv().await`).
    #[track_caller]
    pub fn recv_blocking(&self) -> Result<T, RecvError> {
        if in_runtime() {
            panic!(
                "Receiver::recv_blocking called on a gmp runtime thread; inside a goroutine use \
                 `rx.recv().await`"
            );
        }
        block_on(self.recv())
    }

    /// Close the channel; true if this call closed it (false for `never`).
    pub fn close(&self) -> bool {
        self.chan.as_deref().is_some_and(|c| {
            c.note_use();
            c.close()
        })
    }

    /// Values buffered now (Go's `len(c)`).
    pub fn len(&self) -> usize {
        self.chan.as_deref().map_or(0, |c| c.len())
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer size given to `bounded` (Go's `cap(c)`).
    pub fn capacity(&self) -> usize {
        self.chan.as_deref().map_or(0, |c| c.cap())
    }

    /// True once the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.chan.as_deref().is_some_and(|c| c.is_closed())
    }

    /// True for `never()` (Go's nil channel).
    pub fn is_never(&self) -> bool {
        self.chan.is_none()
    }
}

/// Future of [`Sender::send`]. Dropping it before it completes withdraws
/// the send (the value is dropped with it, never half-sent).
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a, T> {
    chan: &'a Chan<T>,
    value: Option<T>,
    waiter: Waiter<T>,
}

/// Future of [`Receiver::recv`]. Dropping it before it completes withdraws
/// the receive; a value already handed to it goes to the next receiver.
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a, T> {
    chan: Option<&'a Chan<T>>,
    waiter: Waiter<T>,
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("queued", &self.waiter.queued())
            .finish()
    }
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture")
            .field("queued", &self.waiter.queued())
            .finish()
    }
}

/// The budget step every channel `.await` takes first. Off the runtime
/// (another executor's task, a plain thread's `block_on`) there is no
/// budget; the channel is marked as used from outside instead, and the op
/// parks through that task's own waker like any other.
/// Always inlined: it runs on every operation, and out of line its call
/// costs more than its body (see docs/benchmarks.md).
#[inline(always)]
pub(crate) fn proceed<T>(chan: &Chan<T>, cx: &mut Context<'_>) -> Poll<()> {
    match poll_proceed_on_m(cx) {
        Some(p) => p,
        None => {
            chan.note_foreign();
            Poll::Ready(())
        }
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    /// Always inlined into the `.await` (with `poll_send` and
    /// `Locked::send`): a call here and two below would add their
    /// prologues, epilogues and outcomes passed through memory to every
    /// buffered send (measured in docs/benchmarks.md).
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `waiter` is only ever used pinned (re-pinned below); the
        // other fields are plain data we may move.
        let this = unsafe { self.get_unchecked_mut() };
        if proceed(this.chan, cx).is_pending() {
            return Poll::Pending;
        }
        // SAFETY: the waiter lives inside this pinned future.
        let w = unsafe { Pin::new_unchecked(&mut this.waiter) };
        this.chan
            .poll_send(cx, w, &mut this.value)
            .map_err(SendError)
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        // SAFETY: drop of a (possibly) pinned future: the waiter has not
        // moved since it was pinned.
        let w = unsafe { Pin::new_unchecked(&mut self.waiter) };
        self.chan.cancel(w, Queue::Send);
    }
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: as in `SendFuture::poll`.
        let this = unsafe { self.get_unchecked_mut() };
        let Some(c) = this.chan else {
            // Go's nil channel: park forever.
            set_wait_reason(Wait::ChanReceiveNil);
            return Poll::Pending;
        };
        if proceed(c, cx).is_pending() {
            return Poll::Pending;
        }
        // SAFETY: the waiter lives inside this pinned future.
        let w = unsafe { Pin::new_unchecked(&mut this.waiter) };
        c.poll_recv(cx, w)
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(c) = self.chan {
            // SAFETY: as in `SendFuture::drop`.
            let w = unsafe { Pin::new_unchecked(&mut self.waiter) };
            c.cancel(w, Queue::Recv);
        }
    }
}

impl<T> futures::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let Some(c) = this.chan.as_deref() else {
            set_wait_reason(Wait::ChanReceiveNil);
            return Poll::Pending;
        };
        if proceed(c, cx).is_pending() {
            return Poll::Pending;
        }
        let w = this.stream.get_or_insert_with(|| Box::pin(Waiter::new()));
        c.poll_recv(cx, w.as_mut()).map(Result::ok)
    }
}
