//! `futures::Sink` for `Sender`: lets gmp channels be the target of
//! `StreamExt::forward`, `SinkExt::send` and other `futures` plumbing.
//!
//! A channel has no way to reserve a slot ahead of the send, so the sink
//! holds at most one value: `start_send` tries the send at once and, if the
//! channel is full (or, unbuffered, no receiver is waiting), keeps the value
//! in the `Sender`; `poll_ready` and `poll_flush` then drive it as a
//! blocking send, parked on the channel's `sendq` with its own sudog, so it
//! keeps its FIFO place among the other senders. The value is delivered
//! when `poll_flush` returns `Ready(Ok)`; on a closed channel it comes back
//! in the `SendError`. `poll_close` flushes and then closes the channel, as
//! `futures::channel::mpsc` does.

use crate::ends::{proceed, Sender};
use crate::error::{SendError, TrySendError};
use crate::hchan::Chan;
use crate::sudog::Waiter;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The value a `Sink` accepted but could not hand over yet, and the sudog
/// it parks with.
pub(crate) struct SinkSend<T> {
    waiter: Waiter<T>,
    /// Not yet handed to the channel (`poll_send` takes it when it queues
    /// the sudog, which then holds it).
    value: Option<T>,
}

impl<T> SinkSend<T> {
    fn pending(&self) -> bool {
        self.value.is_some() || self.waiter.queued()
    }

    /// Drive the held value toward the channel; `Ready(Ok)` once there is
    /// none left.
    fn poll_deliver(
        self: Pin<&mut Self>,
        chan: &Chan<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        // SAFETY: the waiter is only ever used pinned (re-pinned below);
        // `value` is plain data.
        let this = unsafe { self.get_unchecked_mut() };
        if !this.pending() {
            return Poll::Ready(Ok(()));
        }
        if proceed(chan, cx).is_pending() {
            return Poll::Pending;
        }
        // SAFETY: the waiter lives inside this pinned box.
        let w = unsafe { Pin::new_unchecked(&mut this.waiter) };
        chan.poll_send(cx, w, &mut this.value).map_err(SendError)
    }

    /// Withdraw a value still held (the `Sender` is going away).
    pub(crate) fn cancel(self: Pin<&mut Self>, chan: &Chan<T>) {
        // SAFETY: as in `poll_deliver`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: the waiter lives inside this pinned box.
        chan.cancel(
            unsafe { Pin::new_unchecked(&mut this.waiter) },
            crate::hchan::Queue::Send,
        );
    }
}

impl<T> Sender<T> {
    fn poll_sink(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        match self.sink.as_mut() {
            Some(s) => s.as_mut().poll_deliver(&self.chan, cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl<T> futures::Sink<T> for Sender<T> {
    type Error = SendError<T>;

    /// Ready once no earlier value is held. A closed channel is reported
    /// by `start_send`, which has a value to return.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_sink(cx)
    }

    /// Send now if the channel can take the value, else hold it for
    /// `poll_flush`. `Err` (with the value) if the channel is closed.
    ///
    /// # Panics
    /// If a value is still held: `poll_ready` must return `Ready(Ok)`
    /// first, as the `Sink` contract requires.
    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if this.sink.as_ref().is_some_and(|s| s.pending()) {
            panic!("Sender::start_send called before poll_ready returned Ready(Ok(()))");
        }
        match this.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(v)) => Err(SendError(v)),
            Err(TrySendError::Full(v)) => {
                let s = this.sink.get_or_insert_with(|| {
                    Box::pin(SinkSend {
                        waiter: Waiter::new(),
                        value: None,
                    })
                });
                // SAFETY: `value` is not structurally pinned.
                unsafe { s.as_mut().get_unchecked_mut() }.value = Some(v);
                Ok(())
            }
        }
    }

    /// Ready once the held value (if any) is in the channel: taken by a
    /// receiver (unbuffered) or buffered.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_sink(cx)
    }

    /// Flush, then close the channel (Go's `close`), for every sender.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        match this.poll_sink(cx) {
            Poll::Ready(Ok(())) => {
                this.close();
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}
