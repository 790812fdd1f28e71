//! [`PollSource`]: any mio source on the runtime's netpoller, for gmp's
//! own integrations beyond sockets (the facade's signal delivery). The
//! same pollDesc as a socket: edge counter, parked goroutines, close.

use crate::fd::Registered;
use crate::polldesc::Mode;
use std::io;

/// A mio source registered with the current runtime's netpoller (tokio's
/// `AsyncFd`, Go's `pollDesc` for a non-socket descriptor).
pub struct PollSource<S: mio::event::Source> {
    reg: Registered<S>,
}

impl<S: mio::event::Source> std::fmt::Debug for PollSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PollSource")
    }
}

impl<S: mio::event::Source> PollSource<S> {
    /// Register `src` for readiness (reads and writes, edge-triggered).
    /// Must be called on a gmp runtime; `what` names the caller in the
    /// error otherwise.
    pub fn new(src: S, what: &str) -> io::Result<PollSource<S>> {
        Ok(PollSource {
            reg: Registered::new(src, what)?,
        })
    }

    pub fn get_ref(&self) -> &S {
        &self.reg.src
    }

    /// Run `op` until it does not return `WouldBlock`, parking on read
    /// readiness in between. `op` must drain what made the source ready
    /// before it says `WouldBlock` (the poller is edge-triggered).
    pub async fn read_io<R>(&self, op: impl FnMut(&S) -> io::Result<R> + Unpin) -> io::Result<R> {
        self.reg.io(Mode::Read, op).await
    }
}
