//! TCP on the netpoller: `TcpListener`, `TcpStream` (futures' `AsyncRead`
//! and `AsyncWrite`), its owned halves, and Go's deadline semantics.

use crate::netpoll::{Mode, Registered};
use futures::io::{AsyncRead, AsyncWrite};
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Resolve addresses off the P (name lookups block).
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = gmp_core::syscall(|| addr.to_socket_addrs())?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no addresses to use",
        ));
    }
    Ok(addrs)
}

/// One direction's deadline (Go's `rd`/`wd` plus the timer that fires it).
#[derive(Default)]
pub(crate) struct Deadline {
    state: Mutex<(Option<Instant>, Option<gmp_core::timer::Sleep>)>,
}

impl Deadline {
    fn set(&self, at: Option<Instant>) {
        let mut s = self.state.lock().unwrap();
        s.0 = at;
        s.1 = None;
    }

    /// Err(TimedOut) once the deadline has passed.
    fn check(&self) -> io::Result<()> {
        match self.state.lock().unwrap().0 {
            Some(at) if Instant::now() >= at => Err(timed_out()),
            _ => Ok(()),
        }
    }

    /// After the operation parked: arm the deadline's timer on this
    /// goroutine too. Returns Err if it has already passed.
    fn arm(&self, cx: &mut Context<'_>) -> io::Result<()> {
        let mut s = self.state.lock().unwrap();
        let Some(at) = s.0 else { return Ok(()) };
        let sleep = s.1.get_or_insert_with(|| gmp_core::timer::sleep_until(at));
        match Pin::new(sleep).poll(cx) {
            Poll::Ready(()) => Err(timed_out()),
            Poll::Pending => Ok(()),
        }
    }
}

use std::future::Future as _;

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

struct Inner {
    reg: Registered<mio::net::TcpStream>,
    rd: Deadline,
    wd: Deadline,
}

impl Inner {
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.rd.check()?;
        match self.reg.poll_io(Mode::Read, cx, |s| {
            let mut s: &mio::net::TcpStream = s;
            s.read(buf)
        }) {
            Poll::Pending => {
                if let Err(e) = self.rd.arm(cx) {
                    self.reg.poller().forget(&self.reg.pd, Mode::Read);
                    return Poll::Ready(Err(e));
                }
                Poll::Pending
            }
            r => r,
        }
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.wd.check()?;
        match self.reg.poll_io(Mode::Write, cx, |s| {
            let mut s: &mio::net::TcpStream = s;
            s.write(buf)
        }) {
            Poll::Pending => {
                if let Err(e) = self.wd.arm(cx) {
                    self.reg.poller().forget(&self.reg.pd, Mode::Write);
                    return Poll::Ready(Err(e));
                }
                Poll::Pending
            }
            r => r,
        }
    }
}

/// A TCP connection. `AsyncRead + AsyncWrite`; Nagle is off by default, as
/// in Go.
pub struct TcpStream {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

impl TcpStream {
    fn from_mio(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        let _ = s.set_nodelay(true);
        Ok(TcpStream {
            inner: Arc::new(Inner {
                reg: Registered::new(s, "gmp::net::TcpStream")?,
                rd: Deadline::default(),
                wd: Deadline::default(),
            }),
        })
    }

    /// Connect to the first address that accepts. A refused connection is
    /// an `io::Error` of kind `ConnectionRefused`.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in resolve(addr)? {
            match Self::connect_one(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("connect: no address")))
    }

    async fn connect_one(a: SocketAddr) -> io::Result<TcpStream> {
        let s = TcpStream::from_mio(mio::net::TcpStream::connect(a)?)?;
        poll_fn(|cx| {
            let reg = &s.inner.reg;
            loop {
                if let Some(e) = reg.src.take_error()? {
                    return Poll::Ready(Err(e));
                }
                match reg.src.peer_addr() {
                    Ok(_) => return Poll::Ready(Ok(())),
                    Err(e)
                        if e.kind() == io::ErrorKind::NotConnected
                            || e.raw_os_error() == Some(libc::EINPROGRESS) =>
                    {
                        match reg.poller().poll_ready(&reg.pd, Mode::Write, cx) {
                            Poll::Ready(()) => continue,
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        })
        .await?;
        Ok(s)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.reg.src.peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.reg.src.local_addr()
    }

    /// Nagle's algorithm off (`true`, the default) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.reg.src.set_nodelay(nodelay)
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.reg.src.shutdown(how)
    }

    /// Go's `SetReadDeadline`: once `at` has passed, pending and later
    /// reads fail with `ErrorKind::TimedOut` until the deadline is moved or
    /// cleared (`None`). Affects a read already parked.
    pub fn set_read_deadline(&self, at: Option<Instant>) {
        self.inner.rd.set(at);
        self.inner.reg.poller().kick(&self.inner.reg.pd, Mode::Read);
    }

    /// Go's `SetWriteDeadline`.
    pub fn set_write_deadline(&self, at: Option<Instant>) {
        self.inner.wd.set(at);
        self.inner
            .reg
            .poller()
            .kick(&self.inner.reg.pd, Mode::Write);
    }

    /// Both deadlines (Go's `SetDeadline`).
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.set_read_deadline(at);
        self.set_write_deadline(at);
    }

    /// Split into halves that can move to different goroutines.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                inner: self.inner.clone(),
            },
            OwnedWriteHalf { inner: self.inner },
        )
    }
}

/// `AsyncRead` for a handle whose `inner` is the shared connection.
macro_rules! impl_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_read(cx, buf)
            }
        }
    };
}

/// `AsyncWrite` likewise; `close` shuts down the write side.
macro_rules! impl_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_write(cx, buf)
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.inner.reg.src.shutdown(Shutdown::Write))
            }
        }
    };
}

impl_read!(TcpStream);
impl_write!(TcpStream);
// Through a shared reference too, as Go's `net.Conn` allows (one reader
// and one writer at a time).
impl_read!(&TcpStream);
impl_write!(&TcpStream);
impl_read!(OwnedReadHalf);
impl_write!(OwnedWriteHalf);

/// The reading half of a [`TcpStream`].
pub struct OwnedReadHalf {
    inner: Arc<Inner>,
}

/// The writing half of a [`TcpStream`]; dropping it shuts down writes.
pub struct OwnedWriteHalf {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OwnedReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnedReadHalf")
    }
}

impl std::fmt::Debug for OwnedWriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnedWriteHalf")
    }
}

impl OwnedReadHalf {
    pub fn set_read_deadline(&self, at: Option<Instant>) {
        self.inner.rd.set(at);
        self.inner.reg.poller().kick(&self.inner.reg.pd, Mode::Read);
    }
}

impl OwnedWriteHalf {
    pub fn set_write_deadline(&self, at: Option<Instant>) {
        self.inner.wd.set(at);
        self.inner
            .reg
            .poller()
            .kick(&self.inner.reg.pd, Mode::Write);
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        let _ = self.inner.reg.src.shutdown(Shutdown::Write);
    }
}

/// A TCP listening socket.
pub struct TcpListener {
    reg: Registered<mio::net::TcpListener>,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

impl TcpListener {
    /// Bind to the first address that works.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            match mio::net::TcpListener::bind(a) {
                Ok(l) => {
                    return Ok(TcpListener {
                        reg: Registered::new(l, "gmp::net::TcpListener::bind")?,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("bind: no address")))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.reg.src.local_addr()
    }

    /// Accept a connection. Running out of file descriptors does not spin:
    /// like Go's `http.Server`, back off (5ms doubling to 1s) and retry.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut backoff = Duration::from_millis(5);
        loop {
            let r = poll_fn(|cx| self.reg.poll_io(Mode::Read, cx, |l| l.accept())).await;
            match r {
                Ok((s, peer)) => return Ok((TcpStream::from_mio(s)?, peer)),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    gmp_core::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
