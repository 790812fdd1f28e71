//! gmp-io: the netpoller and network types, re-exported as `gmp::net`.
//!
//! One `mio::Poll` per runtime, driven by the scheduler itself (Go's
//! `netpoll` integration, not a reactor thread): gmp-core calls it through
//! its `Netpoller` hook, which [`netpoller_factory`] implements and the
//! facade installs. Each registered socket has a pollDesc with reader and
//! writer wait slots; readiness wakes the parked goroutine, which the
//! scheduler injects into a run queue. Deadlines follow Go's `SetDeadline`,
//! `close` Go's `Close` from any goroutine.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

mod fd;
mod netpoll;
mod polldesc;
mod source;
mod stream;
mod sys;
mod tcp;
mod udp;
#[cfg(unix)]
mod unix;

pub use netpoll::{netpoller_factory, NetPoll};
pub use source::PollSource;
pub use tcp::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, TcpListener, TcpStream, WriteHalf};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{UnixListener, UnixStream};

/// The halves of a [`UnixStream`].
#[cfg(unix)]
pub mod unix_halves {
    pub use crate::unix::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
}
