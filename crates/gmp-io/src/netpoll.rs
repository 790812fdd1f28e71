//! The netpoller: one `mio::Poll` per runtime, and Go's `pollDesc` per
//! registered source (runtime/netpoll.go, internal/poll/fd_poll_runtime.go).
//!
//! gmp-core calls [`NetPoll::netpoll`] from `find_runnable` (non-blocking,
//! between the global queue and stealing), from the one M that blocks until
//! the next timer, and from sysmon when nobody polled for 10ms. Readiness
//! wakes the goroutine parked in the pollDesc's reader or writer slot (Go's
//! `rg`/`wg`); the scheduler batches those wakes and injects them.
//!
//! ## The wait slots (Go's `rg`/`wg`)
//!
//! Go packs a slot into one word: `pdReady` (an edge arrived with nobody
//! waiting), `pdWait` (about to park), a parked G, or nothing. Here a slot
//! is an event counter plus the parked wakers:
//!
//! * `events` counts readiness edges for this mode (Go's `pdReady`, as a
//!   count). An operation snapshots it *before* its syscall; if the syscall
//!   says WouldBlock, [`PollDesc::netpollblock`] parks only when no edge
//!   arrived since the snapshot, otherwise the operation retries. So an edge
//!   that arrives before the wait is never lost (mio is edge-triggered:
//!   nothing would report it again), and an edge consumed by an earlier
//!   successful syscall costs no extra retry (Go's `pollReset` clears
//!   `pdReady` before each operation for the same reason).
//! * the parked waker is Go's G in `rg`/`wg`. Go has only one waiter per
//!   mode because `fd.readLock` serializes readers; Rust lets two goroutines
//!   share a `&TcpStream` or a `UdpSocket`, so a second concurrent waiter is
//!   queued behind the first instead of replacing it (replacing would lose
//!   the first goroutine's wake-up). Readiness wakes them all; each retries.
//!
//! A waker leaves its slot when readiness, a deadline or close wakes it,
//! when its operation completes, or when an operation future made by
//! [`Registered::io`] is dropped mid-wait. `AsyncRead::poll_read` has no
//! such future: a read cancelled while parked (a `select` or `timeout`
//! around `read`) leaves its waker until the next event or close, which
//! then wakes that goroutine spuriously. Whenever the last waiter leaves
//! other than through `netpoll`, the poll is broken (`Shared::unparked`) so
//! an M blocked there without a timeout re-decides.
//!
//! ## Deadlines (Go's `rd`/`wd`, `rt`/`wt`, `rseq`/`wseq`)
//!
//! Each direction has a deadline and a runtime timer owned by the pollDesc.
//! When it fires, the deadline is marked expired (Go's `rd = -1`) and the
//! waiter is unblocked without readiness; the woken operation sees the
//! error in `netpollcheckerr`. A deadline already in the past expires at
//! once. Go tags each timer with `rseq` to discard a stale firing; gmp's
//! `Timer` already drops superseded arms (its own sequence number), setters
//! are serialized so arms happen in deadline order, and the firing checks
//! that the current deadline really has passed.

use gmp_core::netpoll::Netpoller;
use gmp_core::timer::Timer;
use mio::{Events, Interest, Poll, Registry, Token, Waker as MioWaker};
use slab::Slab;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll as TaskPoll, Waker};
use std::time::{Duration, Instant};

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
struct Shared {
    /// Goroutines parked on I/O (Go's `netpollWaiters`).
    waiters: AtomicUsize,
    /// Breaks a blocking `poll` (Go's `netpollBreak`).
    waker: MioWaker,
}

impl Shared {
    /// `n` parked goroutines left their slots other than through an I/O
    /// event (a deadline, a close, a cancelled operation). If none is left,
    /// break the poll: an M may be blocked in `netpoll` with no timeout only
    /// because there were waiters, and must re-decide (go idle, so the
    /// scheduler can run checkdead) now that there are none.
    fn unparked(&self, n: usize) {
        if n > 0 && self.waiters.fetch_sub(n, SeqCst) == n {
            let _ = self.waker.wake();
        }
    }
}

struct PollState {
    poll: Poll,
    events: Events,
    /// (pollDesc, readable, writable, read closed, write closed).
    ready: Vec<(Arc<PollDesc>, bool, bool, bool, bool)>,
}

impl std::fmt::Debug for NetPoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPoll")
            .field("waiters", &self.shared.waiters.load(Relaxed))
            .finish()
    }
}

/// Which side of a pollDesc (Go's `'r'`/`'w'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
}

/// Goroutines parked in one slot: Go's single G, plus the rare extra
/// concurrent waiters Go's fdMutex would have queued.
#[derive(Default)]
struct Parked {
    g: Option<Waker>,
    more: Vec<Waker>,
}

/// Go's `rg` or `wg`.
struct WaitSlot {
    /// Readiness edges seen for this mode; changed only under `parked`'s
    /// lock so that `netpollblock`'s check-and-park is atomic with it.
    events: AtomicU64,
    /// The readiness memory of stream sockets: the `events` snapshot of
    /// the last operation that found the socket drained (a short read or
    /// write, or `WouldBlock`). While `events` still equals it, no edge has
    /// arrived since, so the next operation parks without a syscall that
    /// could only say `WouldBlock`. `NOT_DRAINED` when unknown.
    drained: AtomicU64,
    /// The poller reported this direction closed (EOF, hang-up or error).
    /// Sticky: the poller reports it once, and a short read can leave the
    /// end of file unread behind its data, so a closed direction always
    /// gets its syscall (tokio keeps its `READ_CLOSED` bit for the same
    /// reason).
    closed: AtomicBool,
    /// Number of wakers in `parked` (checked without the lock).
    nparked: AtomicUsize,
    parked: Mutex<Parked>,
}

/// `WaitSlot::drained` when no operation has found the socket drained.
const NOT_DRAINED: u64 = u64::MAX;

impl Default for WaitSlot {
    fn default() -> WaitSlot {
        WaitSlot {
            events: AtomicU64::new(0),
            drained: AtomicU64::new(NOT_DRAINED),
            closed: AtomicBool::new(false),
            nparked: AtomicUsize::new(0),
            parked: Mutex::new(Parked::default()),
        }
    }
}

/// One direction's deadline (Go's `rd` + `rt`).
struct Deadline {
    /// Serializes setters, so the timer is armed in deadline order.
    set: Mutex<()>,
    at: Mutex<Option<Instant>>,
    /// Go's `rd < 0`: the deadline has passed; operations fail with
    /// `TimedOut` until it is moved or cleared.
    expired: AtomicBool,
    timer: Timer,
}

/// Go's `pollDesc`.
pub(crate) struct PollDesc {
    token: Token,
    closing: AtomicBool,
    rg: WaitSlot,
    wg: WaitSlot,
    rd: Deadline,
    wd: Deadline,
    /// The poller's `netpollWaiters` and break waker.
    shared: Arc<Shared>,
}

/// Why an operation may not proceed (Go's `netpollcheckerr`): the socket
/// was closed (Go's `ErrNetClosing`).
pub(crate) fn closing_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "use of closed network connection",
    )
}

fn foreign_runtime_error() -> io::Error {
    io::Error::other(
        "gmp::net: socket used outside the gmp runtime (block_on call) that created it; \
         each block_on has its own netpoller and only it can wake this socket's waiters",
    )
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

impl PollDesc {
    fn new(token: Token, shared: Arc<Shared>) -> Arc<PollDesc> {
        Arc::new_cyclic(|weak: &Weak<PollDesc>| {
            let deadline = |mode| {
                let w = weak.clone();
                Deadline {
                    set: Mutex::new(()),
                    at: Mutex::new(None),
                    expired: AtomicBool::new(false),
                    // Go's netpollReadDeadline / netpollWriteDeadline.
                    timer: Timer::new(move |now| {
                        if let Some(pd) = w.upgrade() {
                            pd.netpolldeadlineimpl(mode, now);
                        }
                    }),
                }
            };
            PollDesc {
                token,
                closing: AtomicBool::new(false),
                rg: WaitSlot::default(),
                wg: WaitSlot::default(),
                rd: deadline(Mode::Read),
                wd: deadline(Mode::Write),
                shared,
            }
        })
    }

    fn slot(&self, mode: Mode) -> &WaitSlot {
        match mode {
            Mode::Read => &self.rg,
            Mode::Write => &self.wg,
        }
    }

    fn deadline(&self, mode: Mode) -> &Deadline {
        match mode {
            Mode::Read => &self.rd,
            Mode::Write => &self.wd,
        }
    }

    /// Go's `netpollcheckerr`: closing first, then an expired deadline.
    pub(crate) fn netpollcheckerr(&self, mode: Mode) -> io::Result<()> {
        if self.closing.load(Acquire) {
            return Err(closing_error());
        }
        if self.deadline(mode).expired.load(Acquire) {
            return Err(timed_out());
        }
        Ok(())
    }

    /// The readiness-edge count an operation snapshots before its syscall.
    fn seen(&self, mode: Mode) -> u64 {
        self.slot(mode).events.load(Acquire)
    }

    /// Go's `netpollblock`, as a poll: `Ready` means "retry the operation"
    /// (an edge arrived since `seen`, or the pollDesc is closing or past its
    /// deadline, which the caller's `netpollcheckerr` reports); `Pending`
    /// means the goroutine is parked in the slot with reason `IO wait`.
    fn netpollblock(&self, mode: Mode, seen: u64, cx: &mut Context<'_>) -> TaskPoll<()> {
        let slot = self.slot(mode);
        let mut p = slot.parked.lock().unwrap();
        if slot.events.load(Acquire) != seen || self.netpollcheckerr(mode).is_err() {
            // Go: CAS(pdReady -> 0) succeeded, or netpollblockcommit was
            // refused because of an error.
            return TaskPoll::Ready(());
        }
        let me = cx.waker();
        let known =
            p.g.as_ref().is_some_and(|w| w.will_wake(me)) || p.more.iter().any(|w| w.will_wake(me));
        if !known {
            if p.g.is_none() {
                p.g = Some(me.clone());
            } else {
                p.more.push(me.clone());
            }
            slot.nparked.fetch_add(1, Relaxed);
            self.shared.waiters.fetch_add(1, SeqCst);
        }
        drop(p);
        gmp_core::park::set_wait_reason(gmp_core::WaitReason::IoWait);
        TaskPoll::Pending
    }

    /// Go's `netpollunblock` + `netpollgoready`: with `ioready` record the
    /// edge (Go's `pdReady`); wake whoever is parked. Returns how many.
    fn netpollunblock(&self, mode: Mode, ioready: bool) -> usize {
        let slot = self.slot(mode);
        let mut p = slot.parked.lock().unwrap();
        if ioready {
            slot.events.fetch_add(1, Release);
        }
        if slot.nparked.load(Relaxed) == 0 {
            return 0;
        }
        // No allocation for the usual single waiter (`more` is empty).
        let g = p.g.take();
        let more = std::mem::take(&mut p.more);
        slot.nparked.store(0, Relaxed);
        drop(p);
        let n = usize::from(g.is_some()) + more.len();
        if ioready {
            // From netpoll itself: the polling M is already awake.
            self.shared.waiters.fetch_sub(n, SeqCst);
        } else {
            self.shared.unparked(n);
        }
        g.into_iter().chain(more).for_each(Waker::wake);
        n
    }

    /// Remove `waker` from the slot: its operation finished or was dropped
    /// while it was still parked (a spurious poll, or a cancelled future).
    pub(crate) fn forget(&self, mode: Mode, waker: &Waker) {
        let slot = self.slot(mode);
        if slot.nparked.load(Relaxed) == 0 {
            return;
        }
        let mut p = slot.parked.lock().unwrap();
        let mut removed = 0;
        if p.g.as_ref().is_some_and(|w| w.will_wake(waker)) {
            p.g = if p.more.is_empty() {
                None
            } else {
                Some(p.more.remove(0))
            };
            removed += 1;
        }
        let before = p.more.len();
        p.more.retain(|w| !w.will_wake(waker));
        removed += before - p.more.len();
        if removed > 0 {
            slot.nparked.fetch_sub(removed, Relaxed);
            drop(p);
            self.shared.unparked(removed);
        }
    }

    /// Go's `poll_runtime_pollSetDeadline` for one direction: `None`
    /// clears; a time in the past expires at once and unblocks the waiter;
    /// a future time arms the timer (and re-enables operations).
    pub(crate) fn set_deadline(&self, mode: Mode, at: Option<Instant>) {
        let d = self.deadline(mode);
        let _serial = d.set.lock().unwrap();
        let past = at.is_some_and(|t| t <= Instant::now());
        {
            let mut cur = d.at.lock().unwrap();
            *cur = at;
            d.expired.store(past, Release);
        }
        // The pollDesc lock (`at`) is not held here: the timer calls back
        // with its own lock held and then takes `at`.
        match at {
            Some(t) if !past => d.timer.start(t, None),
            _ => {
                d.timer.stop();
            }
        }
        if past {
            self.netpollunblock(mode, false);
        }
    }

    /// Go's `pollDesc.evict` (`poll_runtime_pollUnblock`): mark the
    /// pollDesc closing, stop both deadline timers and wake every waiter,
    /// which then fails in `netpollcheckerr`. False if it was already
    /// closing.
    fn evict(&self) -> bool {
        if self.closing.swap(true, AcqRel) {
            return false;
        }
        self.rd.timer.stop();
        self.wd.timer.stop();
        self.netpollunblock(Mode::Read, false);
        self.netpollunblock(Mode::Write, false);
        true
    }

    /// This side shut a direction down itself (`shutdown`): its reads
    /// (writes) now end at once, so never park them on readiness memory.
    pub(crate) fn mark_shut(&self, how: std::net::Shutdown) {
        use std::net::Shutdown::*;
        if matches!(how, Read | Both) {
            self.rg.closed.store(true, Release);
        }
        if matches!(how, Write | Both) {
            self.wg.closed.store(true, Release);
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Acquire)
    }

    /// Go's `netpolldeadlineimpl`: the deadline timer fired.
    fn netpolldeadlineimpl(&self, mode: Mode, fired: Instant) {
        let d = self.deadline(mode);
        {
            let at = d.at.lock().unwrap();
            // A firing for a deadline that was moved later or cleared in the
            // meantime is stale (Go compares rseq).
            match *at {
                Some(t) if t <= fired.max(Instant::now()) => d.expired.store(true, Release),
                _ => return,
            }
        }
        self.netpollunblock(mode, false);
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
    fn token_for(&self, key: usize) -> Token {
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

    fn key_of(token: Token) -> usize {
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
    fn register(&self, src: &mut impl mio::event::Source) -> io::Result<Arc<PollDesc>> {
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
    fn deregister(&self, src: &mut impl mio::event::Source, pd: &PollDesc) {
        if pd.evict() {
            let _ = self.registry.deregister(src);
            self.forget_desc(pd);
        }
    }

    /// Drop the pollDesc from the table: later events for its token are
    /// stale.
    fn forget_desc(&self, pd: &PollDesc) {
        self.descs
            .lock()
            .unwrap()
            .try_remove(Self::key_of(pd.token));
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
                    Some(pd) if pd.token == ev.token() => {
                        let rc = ev.is_read_closed() || ev.is_error();
                        let wc = ev.is_write_closed() || ev.is_error();
                        let r = ev.is_readable() || rc;
                        let w = ev.is_writable() || wc;
                        st.ready.push((pd.clone(), r, w, rc, wc));
                    }
                    // Closed, or its slot reused: a stale event.
                    _ => {}
                }
            }
        }
        let mut woken = 0;
        for (pd, r, w, rc, wc) in st.ready.drain(..) {
            // Before the edge is counted: whoever sees the new count sees
            // the flag.
            if rc {
                pd.rg.closed.store(true, Release);
            }
            if wc {
                pd.wg.closed.store(true, Release);
            }
            if r {
                woken += pd.netpollunblock(Mode::Read, true);
            }
            if w {
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

/// A registered source plus its pollDesc, deregistered on drop (Go's
/// `poll.FD` + `pollDesc`).
pub(crate) struct Registered<S: mio::event::Source> {
    pub(crate) src: S,
    pub(crate) pd: Arc<PollDesc>,
    np: Arc<dyn Netpoller>,
}

impl<S: mio::event::Source> Registered<S> {
    pub(crate) fn new(mut src: S, what: &str) -> io::Result<Self> {
        let np = NetPoll::current(what)?;
        let pd = Self::netpoll_of(&np).register(&mut src)?;
        Ok(Registered { src, pd, np })
    }

    fn netpoll_of(np: &Arc<dyn Netpoller>) -> &NetPoll {
        np.as_any()
            .downcast_ref::<NetPoll>()
            .expect("checked in NetPoll::current")
    }

    /// Run `op` until it does not return WouldBlock, parking on `mode`
    /// readiness in between (Go's `fd.Read` loop: `prepareRead`, syscall,
    /// `waitRead`). Checks the coop budget first, so a source that is
    /// always ready still lets others run.
    pub(crate) fn poll_io<R>(
        &self,
        mode: Mode,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> TaskPoll<io::Result<R>> {
        if gmp_core::poll_proceed(cx).is_pending() {
            return TaskPoll::Pending;
        }
        let pd = &*self.pd;
        loop {
            if let Err(e) = pd.netpollcheckerr(mode) {
                pd.forget(mode, cx.waker());
                return TaskPoll::Ready(Err(e));
            }
            let seen = pd.seen(mode);
            match op(&self.src) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.on_own_runtime() {
                        return TaskPoll::Ready(Err(foreign_runtime_error()));
                    }
                    match pd.netpollblock(mode, seen, cx) {
                        TaskPoll::Ready(()) => continue,
                        TaskPoll::Pending => return TaskPoll::Pending,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => {
                    // Re-polled while still parked (e.g. by a select): the
                    // slot must not keep this goroutine's waker.
                    pd.forget(mode, cx.waker());
                    return TaskPoll::Ready(closed_in_flight(pd, r));
                }
            }
        }
    }

    /// `poll_io` for a stream socket's reads and writes of `want` bytes,
    /// with readiness memory (tokio's readiness clearing, kept within Go's
    /// pollDesc protocol): an operation that moved fewer bytes than asked,
    /// or got `WouldBlock`, records the edge count it snapshotted before
    /// its syscall; the next operation, finding the count unchanged, parks
    /// at once instead of making a syscall that can only say `WouldBlock`.
    /// Any edge after the snapshot changes the count, so no readiness is
    /// lost; a short transfer on a stream socket means the kernel buffer
    /// was drained (reads) or filled (writes) at that moment. End of file
    /// (`Ok(0)`) records nothing: it is reported once by the poller, and
    /// every later read must see it again.
    pub(crate) fn poll_stream_io(
        &self,
        mode: Mode,
        cx: &mut Context<'_>,
        want: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> TaskPoll<io::Result<usize>> {
        if gmp_core::poll_proceed(cx).is_pending() {
            return TaskPoll::Pending;
        }
        let pd = &*self.pd;
        let slot = pd.slot(mode);
        loop {
            if let Err(e) = pd.netpollcheckerr(mode) {
                pd.forget(mode, cx.waker());
                return TaskPoll::Ready(Err(e));
            }
            let seen = pd.seen(mode);
            let known_drained =
                want > 0 && slot.drained.load(Acquire) == seen && !slot.closed.load(Acquire);
            if !known_drained || !self.on_own_runtime() {
                match op(&self.src) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if !self.on_own_runtime() {
                            return TaskPoll::Ready(Err(foreign_runtime_error()));
                        }
                        slot.drained.store(seen, Release);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => {
                        if let Ok(n) = r {
                            if n > 0 && n < want {
                                slot.drained.store(seen, Release);
                            }
                        }
                        pd.forget(mode, cx.waker());
                        return TaskPoll::Ready(closed_in_flight(pd, r));
                    }
                }
            }
            match pd.netpollblock(mode, seen, cx) {
                TaskPoll::Ready(()) => continue,
                TaskPoll::Pending => return TaskPoll::Pending,
            }
        }
    }

    /// Parking is only possible on the runtime (the `block_on` call) whose
    /// netpoller this source is registered with: nobody polls another's.
    fn on_own_runtime(&self) -> bool {
        gmp_core::netpoll::current_netpoller().is_some_and(|np| {
            std::ptr::eq(
                Arc::as_ptr(&np) as *const (),
                Arc::as_ptr(&self.np) as *const (),
            )
        })
    }

    /// `poll_io` as a future that leaves no waker behind when dropped
    /// mid-wait (a cancelled accept or recv).
    pub(crate) fn io<'a, R, F>(&'a self, mode: Mode, op: F) -> IoOp<'a, S, F>
    where
        F: FnMut(&S) -> io::Result<R> + Unpin,
    {
        IoOp {
            reg: self,
            mode,
            op,
            parked: None,
        }
    }

    pub(crate) fn set_deadline(&self, mode: Mode, at: Option<Instant>) {
        self.pd.set_deadline(mode, at);
    }
}

impl<S: mio::event::Source + AsRawFd> Registered<S> {
    /// Go's `FD.Close`: from any goroutine, wake every operation parked on
    /// this socket and fail it and every later one with "use of closed
    /// network connection"; release the socket itself at once (the peer
    /// sees the close, a listener stops listening); the descriptor number
    /// stays reserved until the last handle drops. A second close fails
    /// with the same error, as in Go.
    pub(crate) fn close(&self) -> io::Result<()> {
        if !self.pd.evict() {
            return Err(closing_error());
        }
        // The socket is released below, which takes it out of the epoll
        // set; a late event for the token is stale once the desc is gone.
        Self::netpoll_of(&self.np).forget_desc(&self.pd);
        crate::sys::release(self.src.as_raw_fd());
        Ok(())
    }

    /// Take the source back (for `into_std`): deregistered, deadlines
    /// stopped, no waiter left.
    pub(crate) fn into_source(self) -> io::Result<S> {
        if self.pd.is_closing() {
            return Err(closing_error());
        }
        let mut me = std::mem::ManuallyDrop::new(self);
        let np = me.np.clone();
        let pd = me.pd.clone();
        Self::netpoll_of(&np).deregister(&mut me.src, &pd);
        // SAFETY: `me` is never used or dropped again; each field is read
        // out exactly once, and the ones other than `src` are dropped here.
        unsafe {
            drop(std::ptr::read(&me.pd));
            drop(std::ptr::read(&me.np));
            Ok(std::ptr::read(&me.src))
        }
    }
}

/// A syscall that failed (or saw end of file) because another goroutine
/// closed the socket under it reports the close, as Go's does.
fn closed_in_flight<R>(pd: &PollDesc, r: io::Result<R>) -> io::Result<R> {
    match r {
        Err(_) if pd.is_closing() => Err(closing_error()),
        r => r,
    }
}

impl<S: mio::event::Source> Drop for Registered<S> {
    fn drop(&mut self) {
        let np = self.np.clone();
        Self::netpoll_of(&np).deregister(&mut self.src, &self.pd);
    }
}

/// The future of one I/O operation (see [`Registered::io`]).
pub(crate) struct IoOp<'a, S: mio::event::Source, F> {
    reg: &'a Registered<S>,
    mode: Mode,
    op: F,
    /// The waker last left in the slot, removed on drop.
    parked: Option<Waker>,
}

impl<S: mio::event::Source, R, F> Future for IoOp<'_, S, F>
where
    F: FnMut(&S) -> io::Result<R> + Unpin,
{
    type Output = io::Result<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<io::Result<R>> {
        let this = self.get_mut();
        match this.reg.poll_io(this.mode, cx, &mut this.op) {
            TaskPoll::Pending => {
                if !this
                    .parked
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    this.parked = Some(cx.waker().clone());
                }
                TaskPoll::Pending
            }
            r => {
                this.parked = None;
                r
            }
        }
    }
}

impl<S: mio::event::Source, F> Drop for IoOp<'_, S, F> {
    fn drop(&mut self) {
        if let Some(w) = self.parked.take() {
            self.reg.pd.forget(self.mode, &w);
        }
    }
}
