//! Go's `poll.FD` (internal/poll/fd_unix.go, fd_poll_runtime.go): a
//! registered source and its pollDesc, the read/write loop around the
//! syscall (`prepareRead`, syscall, `waitRead`), the stream sockets'
//! readiness memory, `Close` from any goroutine, and deregistration.

use crate::netpoll::NetPoll;
use crate::polldesc::{closing_error, Mode, PollDesc};
use gmp_core::netpoll::Netpoller;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll as TaskPoll, Waker};
use std::time::{Duration, Instant};

fn foreign_runtime_error() -> io::Error {
    io::Error::other(
        "gmp::net: socket used outside the gmp runtime (block_on call) that created it; \
         each block_on has its own netpoller and only it can wake this socket's waiters",
    )
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
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> TaskPoll<io::Result<R>> {
        self.poll_op(mode, cx, op, None::<fn(&R) -> bool>)
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
    /// every later read must see it again. `want == 0` never uses the
    /// memory (nothing to move, nothing learned).
    pub(crate) fn poll_stream_io(
        &self,
        mode: Mode,
        cx: &mut Context<'_>,
        want: usize,
        op: impl FnMut(&S) -> io::Result<usize>,
    ) -> TaskPoll<io::Result<usize>> {
        let drained = (want > 0).then_some(move |n: &usize| *n > 0 && *n < want);
        self.poll_op(mode, cx, op, drained)
    }

    /// The loop behind `poll_io` and `poll_stream_io`; with `drained`
    /// (which says whether a result means the socket was drained or full),
    /// the readiness memory is read and kept.
    fn poll_op<R>(
        &self,
        mode: Mode,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&S) -> io::Result<R>,
        drained: Option<impl Fn(&R) -> bool>,
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
            let known_drained = drained.is_some() && pd.known_drained(mode, seen);
            if !known_drained || !self.on_own_runtime() {
                match op(&self.src) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if !self.on_own_runtime() {
                            return TaskPoll::Ready(Err(foreign_runtime_error()));
                        }
                        if drained.is_some() {
                            pd.record_drained(mode, seen);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => {
                        if let (Some(drained), Ok(done)) = (&drained, &r) {
                            if drained(done) {
                                pd.record_drained(mode, seen);
                            }
                        }
                        // Re-polled while still parked (e.g. by a select):
                        // the slot must not keep this goroutine's waker.
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

    /// A listener's accept loop (Go's `FD.Accept` retries plus
    /// `http.Server`'s back-off): `ECONNABORTED` (the peer gave up while
    /// queued) is retried at once; running out of descriptors or socket
    /// memory sleeps, doubling from 5ms to 1s, since only time (other
    /// connections closing) can fix it and retrying at once would spin.
    /// Other errors are returned.
    pub(crate) async fn accept<C, A>(
        &self,
        mut accept: impl FnMut(&S) -> io::Result<(C, A)> + Unpin,
    ) -> io::Result<(C, A)> {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            match self.io(Mode::Read, &mut accept).await {
                Err(e) if is_resource_exhaustion(&e) => {
                    gmp_core::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                r => return r,
            }
        }
    }
}

/// Go's `http.Server` accept back-off bounds.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Out of file descriptors (or of kernel memory for sockets): waiting can
/// fix it, retrying at once cannot.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
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
