//! Go's `pollDesc` (runtime/netpoll.go): the per-source reader and writer
//! wait slots, deadlines, the closing flag, and the readiness memory of
//! stream sockets.
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
//! `Registered::io` (fd.rs) is dropped mid-wait. `AsyncRead::poll_read` has no
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

use crate::netpoll::Shared;
use gmp_core::timer::Timer;
use mio::Token;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll as TaskPoll, Waker};
use std::time::Instant;

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

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

impl PollDesc {
    pub(crate) fn new(token: Token, shared: Arc<Shared>) -> Arc<PollDesc> {
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
    pub(crate) fn seen(&self, mode: Mode) -> u64 {
        self.slot(mode).events.load(Acquire)
    }

    /// Go's `netpollblock`, as a poll: `Ready` means "retry the operation"
    /// (an edge arrived since `seen`, or the pollDesc is closing or past its
    /// deadline, which the caller's `netpollcheckerr` reports); `Pending`
    /// means the goroutine is parked in the slot with reason `IO wait`.
    pub(crate) fn netpollblock(&self, mode: Mode, seen: u64, cx: &mut Context<'_>) -> TaskPoll<()> {
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
            self.shared.parked();
        }
        drop(p);
        gmp_core::park::set_wait_reason(gmp_core::WaitReason::IoWait);
        TaskPoll::Pending
    }

    /// Go's `netpollunblock` + `netpollgoready`: with `ioready` record the
    /// edge (Go's `pdReady`); wake whoever is parked. Returns how many.
    pub(crate) fn netpollunblock(&self, mode: Mode, ioready: bool) -> usize {
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
            self.shared.woken(n);
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
    pub(crate) fn evict(&self) -> bool {
        if self.closing.swap(true, AcqRel) {
            return false;
        }
        self.rd.timer.stop();
        self.wd.timer.stop();
        self.netpollunblock(Mode::Read, false);
        self.netpollunblock(Mode::Write, false);
        true
    }

    pub(crate) fn token(&self) -> Token {
        self.token
    }

    /// The readiness memory: true if an operation of `mode` found the
    /// socket drained at edge count `seen` (still the current count) and
    /// the poller has not reported the direction closed.
    pub(crate) fn known_drained(&self, mode: Mode, seen: u64) -> bool {
        let slot = self.slot(mode);
        slot.drained.load(Acquire) == seen && !slot.closed.load(Acquire)
    }

    /// An operation of `mode` that snapshotted `seen` moved fewer bytes
    /// than asked, or got `WouldBlock`.
    pub(crate) fn record_drained(&self, mode: Mode, seen: u64) {
        self.slot(mode).drained.store(seen, Release);
    }

    /// The poller reported the read (`r`) or write (`w`) direction closed.
    /// Called before the edge is counted, so whoever sees the new count
    /// sees the flag.
    pub(crate) fn mark_closed(&self, r: bool, w: bool) {
        if r {
            self.rg.closed.store(true, Release);
        }
        if w {
            self.wg.closed.store(true, Release);
        }
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
    pub(crate) fn netpolldeadlineimpl(&self, mode: Mode, fired: Instant) {
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
