//! The netpoller: one `mio::Poll` per runtime, and Go's `pollDesc` per
//! registered source (runtime/netpoll.go, internal/poll/fd_poll_runtime.go).
//!
//! gmp-core calls [`NetPoll::netpoll`] from `find_runnable` (non-blocking,
//! between the global queue and stealing), from the one M that blocks until
//! the next timer, and from sysmon when nobody polled for 10ms. Readiness
//! wakes the goroutine parked in the pollDesc's reader or writer slot (Go's
//! `rg`/`wg`); the scheduler batches those wakes and injects them.
//!
//! The pollDesc itself is in `polldesc.rs`, the operation loop around it
//! (Go's `poll.FD`) in `fd.rs`.

use crate::polldesc::{Mode, PollDesc};
use gmp_core::netpoll::Netpoller;
use mio::{Events, Interest, Poll, Registry, Token, Waker as MioWaker};
use slab::Slab;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// mio token of the `netpoll_break` waker (never a slab token: those keep
/// bit 63 clear).
const WAKER_TOKEN: Token = Token(usize::MAX);

/// One runtime's poller.
pub struct NetPoll {
    /// The poll itself, its event buffer and a scratch list, used by one M
    /// at a time.
    poll: Mutex<PollState>,
    /// A clone of the poll's registry: registration does not need the poll
    /// lock (an M may be blocked in `poll` holding it).
    registry: Registry,
    descs: Mutex<Slab<Arc<PollDesc>>>,
    /// Generation mixed into tokens so an event for a closed source whose
    /// slab slot was reused is recognised as stale (Go's `fdseq`).
    fdseq: AtomicUsize,
    /// The waiter count and the break waker, shared with every pollDesc.
    shared: Arc<Shared>,
}

/// What a pollDesc needs of its poller.
pub(crate) struct Shared {
    /// Goroutines parked on I/O (Go's `netpollWaiters`).
    waiters: AtomicUsize,
    /// Breaks a blocking `poll` (Go's `netpollBreak`).
    waker: MioWaker,
}

impl Shared {
    /// A goroutine parked on I/O.
    pub(crate) fn parked(&self) {
        self.waiters.fetch_add(1, SeqCst);
    }

    /// `n` parked goroutines were woken by `netpoll` itself (the polling
    /// M is awake: nothing to break).
    pub(crate) fn woken(&self, n: usize) {
        self.waiters.fetch_sub(n, SeqCst);
    }

    /// `n` parked goroutines left their slots other than through an I/O
    /// event (a deadline, a close, a cancelled operation). If none is left,
    /// break the poll: an M may be blocked in `netpoll` with no timeout only
    /// because there were waiters, and must re-decide (go idle, so the
    /// scheduler can run checkdead) now that there are none.
    pub(crate) fn unparked(&self, n: usize) {
        if n > 0 && self.waiters.fetch_sub(n, SeqCst) == n {
            let _ = self.waker.wake();
        }
    }
}

struct PollState {
    poll: Poll,
    events: Events,
    /// The pollDescs this poll found ready, gathered under the descs lock
    /// and woken after it is released.
    ready: Vec<PdReady>,
}

/// One pollDesc's part of a poll (Go's `netpollready` mode bits).
struct PdReady {
    pd: Arc<PollDesc>,
    read: Edge,
    write: Edge,
}

/// What the poller said about one direction of a pollDesc.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// Nothing for this direction.
    None,
    /// Ready: wake its waiters.
    Ready,
    /// Closed (end of file, hang-up or error): ready, and sticky in the
    /// pollDesc (`mark_closed`).
    Closed,
}

impl Edge {
    fn of(ready: bool, closed: bool) -> Edge {
        match (ready, closed) {
            (_, true) => Edge::Closed,
            (true, false) => Edge::Ready,
            (false, false) => Edge::None,
        }
    }
}

impl std::fmt::Debug for NetPoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPoll")
            .field("waiters", &self.shared.waiters.load(Relaxed))
            .finish()
    }
}

impl NetPoll {
    pub(crate) fn new() -> io::Result<NetPoll> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = MioWaker::new(poll.registry(), WAKER_TOKEN)?;
        Ok(NetPoll {
            poll: Mutex::new(PollState {
                poll,
                events: Events::with_capacity(256),
                ready: Vec::new(),
            }),
            registry,
            descs: Mutex::new(Slab::new()),
            fdseq: AtomicUsize::new(0),
            shared: Arc::new(Shared {
                waiters: AtomicUsize::new(0),
                waker,
            }),
        })
    }

    /// The poller of the runtime the caller runs on.
    pub(crate) fn current(what: &str) -> io::Result<Arc<dyn Netpoller>> {
        let np = gmp_core::netpoll::current_netpoller().ok_or_else(|| {
            io::Error::other(format!(
                "{what} called outside a gmp runtime (or one without a netpoller): \
                 use it from a goroutine inside gmp::Runtime::block_on or #[gmp::main]"
            ))
        })?;
        if np.as_any().downcast_ref::<NetPoll>().is_none() {
            return Err(io::Error::other(format!(
                "{what}: the runtime's netpoller is not gmp-io's"
            )));
        }
        Ok(np)
    }

    /// The slab key and generation packed into a token. The generation
    /// keeps bit 63 clear, so no token equals `WAKER_TOKEN`.
    pub(crate) fn token_for(&self, key: usize) -> Token {
        #[cfg(target_pointer_width = "64")]
        {
            let gen = self.fdseq.fetch_add(1, Relaxed) & 0x7fff_ffff;
            Token(key | (gen << 32))
        }
        #[cfg(not(target_pointer_width = "64"))]
        {
            Token(key)
        }
    }

    pub(crate) fn key_of(token: Token) -> usize {
        #[cfg(target_pointer_width = "64")]
        {
            token.0 & 0xffff_ffff
        }
        #[cfg(not(target_pointer_width = "64"))]
        {
            token.0
        }
    }

    /// Go's `poll_runtime_pollOpen`: register `src` for reads and writes,
    /// edge-triggered.
    pub(crate) fn register(&self, src: &mut impl mio::event::Source) -> io::Result<Arc<PollDesc>> {
        let mut descs = self.descs.lock().unwrap();
        let entry = descs.vacant_entry();
        let token = self.token_for(entry.key());
        let pd = PollDesc::new(token, self.shared.clone());
        self.registry
            .register(src, token, Interest::READABLE | Interest::WRITABLE)?;
        entry.insert(pd.clone());
        Ok(pd)
    }

    /// Go's `poll_runtime_pollClose` (with the unblock of `pollUnblock`):
    /// deregister, stop the deadline timers, wake both waiters. Nothing if
    /// the source was closed already (`Registered::close`).
    pub(crate) fn deregister(&self, src: &mut impl mio::event::Source, pd: &PollDesc) {
        if pd.evict() {
            let _ = self.registry.deregister(src);
            self.forget_desc(pd);
        }
    }

    /// Drop the pollDesc from the table: later events for its token are
    /// stale.
    pub(crate) fn forget_desc(&self, pd: &PollDesc) {
        self.descs
            .lock()
            .unwrap()
            .try_remove(Self::key_of(pd.token()));
    }
}

impl Netpoller for NetPoll {
    /// Go's `netpoll` + `netpollready`.
    fn netpoll(&self, timeout: Option<Duration>) -> usize {
        // One poller at a time; a non-blocking poll while another M blocks
        // has nothing to add.
        let mut guard = match timeout {
            Some(t) if t.is_zero() => match self.poll.try_lock() {
                Ok(g) => g,
                Err(_) => return 0,
            },
            _ => self.poll.lock().unwrap(),
        };
        let st = &mut *guard;
        if let Err(e) = st.poll.poll(&mut st.events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("gmp: netpoll failed: {e}");
            }
            return 0;
        }
        if st.events.is_empty() {
            return 0;
        }
        {
            let descs = self.descs.lock().unwrap();
            for ev in st.events.iter() {
                if ev.token() == WAKER_TOKEN {
                    continue;
                }
                match descs.get(Self::key_of(ev.token())) {
                    Some(pd) if pd.token() == ev.token() => {
                        st.ready.push(PdReady {
                            pd: pd.clone(),
                            read: Edge::of(ev.is_readable(), ev.is_read_closed() || ev.is_error()),
                            write: Edge::of(
                                ev.is_writable(),
                                ev.is_write_closed() || ev.is_error(),
                            ),
                        });
                    }
                    // Closed, or its slot reused: a stale event.
                    _ => {}
                }
            }
        }
        let mut woken = 0;
        for PdReady { pd, read, write } in st.ready.drain(..) {
            // Before the edge is counted: whoever sees the new count sees
            // the flag.
            pd.mark_closed(read == Edge::Closed, write == Edge::Closed);
            if read != Edge::None {
                woken += pd.netpollunblock(Mode::Read, true);
            }
            if write != Edge::None {
                woken += pd.netpollunblock(Mode::Write, true);
            }
        }
        woken
    }

    /// Go's `netpollBreak`.
    fn netpoll_break(&self) {
        let _ = self.shared.waker.wake();
    }

    fn has_waiters(&self) -> bool {
        self.shared.waiters.load(SeqCst) > 0
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The factory the facade installs in every runtime.
pub fn netpoller_factory() -> gmp_core::netpoll::NetpollerFactory {
    Arc::new(|| Ok(Arc::new(NetPoll::new()?) as Arc<dyn Netpoller>))
}
