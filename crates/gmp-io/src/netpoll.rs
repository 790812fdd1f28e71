//! The netpoller: one `mio::Poll` per runtime, and Go's `pollDesc` per
//! registered source (runtime/netpoll.go).
//!
//! gmp-core calls [`NetPoll::netpoll`] from `find_runnable` (non-blocking,
//! between the global queue and stealing), from the one M that blocks until
//! the next timer, and from sysmon when nobody polled for 10ms. Readiness
//! wakes the goroutine parked in the pollDesc's reader or writer slot (Go's
//! `rg`/`wg`); the scheduler batches those wakes and injects them.
//!
//! A slot holds either nothing, a pending readiness (Go's `pdReady`, so an
//! edge that arrives before anyone waits is not lost), or the parked
//! goroutine's waker. Go packs this into an atomic word; we guard it with a
//! small mutex per slot, which the poller touches once per event.

use gmp_core::netpoll::Netpoller;
use mio::{Events, Interest, Poll, Registry, Token, Waker as MioWaker};
use slab::Slab;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll as TaskPoll, Waker};
use std::time::Duration;

const WAKER_TOKEN: Token = Token(usize::MAX);

/// One runtime's poller.
pub struct NetPoll {
    poll: Mutex<(Poll, Events)>,
    registry: Registry,
    waker: MioWaker,
    descs: Mutex<Slab<Arc<PollDesc>>>,
    /// Goroutines parked on I/O (Go's `netpollWaiters`).
    waiters: AtomicUsize,
}

impl std::fmt::Debug for NetPoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPoll")
            .field("waiters", &self.waiters.load(Relaxed))
            .finish()
    }
}

/// Which side of a pollDesc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
}

#[derive(Default)]
struct Slot {
    /// Go's pdReady: readiness seen with nobody waiting.
    ready: bool,
    /// The parked goroutine (Go's `rg`/`wg` holding a G).
    waker: Option<Waker>,
}

/// Go's `pollDesc`.
pub(crate) struct PollDesc {
    pub(crate) token: Token,
    rg: Mutex<Slot>,
    wg: Mutex<Slot>,
    closing: AtomicBool,
}

impl NetPoll {
    pub(crate) fn new() -> io::Result<NetPoll> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = MioWaker::new(poll.registry(), WAKER_TOKEN)?;
        Ok(NetPoll {
            poll: Mutex::new((poll, Events::with_capacity(256))),
            registry,
            waker,
            descs: Mutex::new(Slab::new()),
            waiters: AtomicUsize::new(0),
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

    /// Register `src` for reads and writes (edge-triggered).
    pub(crate) fn register(&self, src: &mut impl mio::event::Source) -> io::Result<Arc<PollDesc>> {
        let mut descs = self.descs.lock().unwrap();
        let entry = descs.vacant_entry();
        let token = Token(entry.key());
        let pd = Arc::new(PollDesc {
            token,
            rg: Mutex::new(Slot::default()),
            wg: Mutex::new(Slot::default()),
            closing: AtomicBool::new(false),
        });
        self.registry
            .register(src, token, Interest::READABLE | Interest::WRITABLE)?;
        entry.insert(pd.clone());
        Ok(pd)
    }

    /// Go's `poll_runtime_pollClose`: deregister, wake both waiters.
    pub(crate) fn deregister(&self, src: &mut impl mio::event::Source, pd: &PollDesc) {
        let _ = self.registry.deregister(src);
        pd.closing.store(true, SeqCst);
        self.unblock(pd, Mode::Read, false);
        self.unblock(pd, Mode::Write, false);
        self.descs.lock().unwrap().try_remove(pd.token.0);
    }

    /// Go's `netpollunblock`: mark ready (for I/O) and wake the waiter.
    fn unblock(&self, pd: &PollDesc, mode: Mode, io_ready: bool) -> bool {
        let slot = match mode {
            Mode::Read => &pd.rg,
            Mode::Write => &pd.wg,
        };
        let w = {
            let mut s = slot.lock().unwrap();
            if io_ready {
                s.ready = true;
            }
            s.waker.take()
        };
        match w {
            Some(w) => {
                self.waiters.fetch_sub(1, Relaxed);
                w.wake();
                true
            }
            None => false,
        }
    }

    /// Wake a parked waiter so it re-checks its deadline (no readiness).
    pub(crate) fn kick(&self, pd: &PollDesc, mode: Mode) {
        self.unblock(pd, mode, false);
    }

    /// Go's `netpollblock` as a poll: Ready once readiness was seen (and
    /// consume it), or the pollDesc is closing; else park.
    pub(crate) fn poll_ready(
        &self,
        pd: &PollDesc,
        mode: Mode,
        cx: &mut Context<'_>,
    ) -> TaskPoll<()> {
        let slot = match mode {
            Mode::Read => &pd.rg,
            Mode::Write => &pd.wg,
        };
        let mut s = slot.lock().unwrap();
        if s.ready || pd.closing.load(SeqCst) {
            s.ready = false;
            if s.waker.take().is_some() {
                self.waiters.fetch_sub(1, Relaxed);
            }
            return TaskPoll::Ready(());
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(_) => s.waker = Some(cx.waker().clone()),
            None => {
                s.waker = Some(cx.waker().clone());
                self.waiters.fetch_add(1, Relaxed);
            }
        }
        gmp_core::park::set_wait_reason(gmp_core::WaitReason::IoWait);
        TaskPoll::Pending
    }

    /// Drop a parked waker (the operation's future went away).
    pub(crate) fn forget(&self, pd: &PollDesc, mode: Mode) {
        let slot = match mode {
            Mode::Read => &pd.rg,
            Mode::Write => &pd.wg,
        };
        if slot.lock().unwrap().waker.take().is_some() {
            self.waiters.fetch_sub(1, Relaxed);
        }
    }
}

impl Netpoller for NetPoll {
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
        let (poll, events) = &mut *guard;
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("gmp: netpoll failed: {e}");
            }
            return 0;
        }
        let mut ready = Vec::new();
        {
            let descs = self.descs.lock().unwrap();
            for ev in events.iter() {
                if ev.token() == WAKER_TOKEN {
                    continue;
                }
                if let Some(pd) = descs.get(ev.token().0) {
                    let r = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                    let w = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                    ready.push((pd.clone(), r, w));
                }
            }
        }
        drop(guard);
        let mut woken = 0;
        for (pd, r, w) in ready {
            if r && self.unblock(&pd, Mode::Read, true) {
                woken += 1;
            }
            if w && self.unblock(&pd, Mode::Write, true) {
                woken += 1;
            }
        }
        woken
    }

    fn netpoll_break(&self) {
        let _ = self.waker.wake();
    }

    fn has_waiters(&self) -> bool {
        self.waiters.load(Relaxed) > 0
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The factory the facade installs in every runtime.
pub fn netpoller_factory() -> gmp_core::netpoll::NetpollerFactory {
    Arc::new(|| Ok(Arc::new(NetPoll::new()?) as Arc<dyn Netpoller>))
}

/// A registered source plus its pollDesc, deregistered on drop.
pub(crate) struct Registered<S: mio::event::Source> {
    pub(crate) src: S,
    pub(crate) pd: Arc<PollDesc>,
    pub(crate) np: Arc<dyn Netpoller>,
}

impl<S: mio::event::Source> Registered<S> {
    pub(crate) fn new(mut src: S, what: &str) -> io::Result<Self> {
        let np = NetPoll::current(what)?;
        let pd = np
            .as_any()
            .downcast_ref::<NetPoll>()
            .unwrap()
            .register(&mut src)?;
        Ok(Registered { src, pd, np })
    }

    pub(crate) fn poller(&self) -> &NetPoll {
        self.np.as_any().downcast_ref::<NetPoll>().unwrap()
    }

    /// Run `op` until it does not return WouldBlock, parking on `mode`
    /// readiness in between (Go's `fd.pd.waitRead` loop).
    pub(crate) fn poll_io<R>(
        &self,
        mode: Mode,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> TaskPoll<io::Result<R>> {
        if gmp_core::poll_proceed(cx).is_pending() {
            return TaskPoll::Pending;
        }
        loop {
            match op(&self.src) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.pd.closing.load(SeqCst) {
                        return TaskPoll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)));
                    }
                    match self.poller().poll_ready(&self.pd, mode, cx) {
                        TaskPoll::Ready(()) => continue,
                        TaskPoll::Pending => return TaskPoll::Pending,
                    }
                }
                r => return TaskPoll::Ready(r),
            }
        }
    }
}

impl<S: mio::event::Source> Drop for Registered<S> {
    fn drop(&mut self) {
        let np = self.np.clone();
        np.as_any()
            .downcast_ref::<NetPoll>()
            .unwrap()
            .deregister(&mut self.src, &self.pd);
    }
}
