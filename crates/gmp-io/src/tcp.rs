//! TCP on the netpoller: `TcpListener`, `TcpStream` (futures' `AsyncRead`
//! and `AsyncWrite`), its owned halves, and Go's deadline semantics.

use crate::netpoll::{Mode, NetPoll, Registered};
use futures::io::{AsyncRead, AsyncWrite};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
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

const CONNECT: &str = "gmp::net::TcpStream::connect";
const BIND: &str = "gmp::net::TcpListener::bind";

/// A connection shared by a stream and its halves.
type Conn = Registered<mio::net::TcpStream>;

fn poll_read(c: &Conn, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    c.poll_io(Mode::Read, cx, |s| {
        let mut s: &mio::net::TcpStream = s;
        s.read(buf)
    })
}

fn poll_write(c: &Conn, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    c.poll_io(Mode::Write, cx, |s| {
        let mut s: &mio::net::TcpStream = s;
        s.write(buf)
    })
}

fn poll_read_vectored(
    c: &Conn,
    cx: &mut Context<'_>,
    bufs: &mut [IoSliceMut<'_>],
) -> Poll<io::Result<usize>> {
    c.poll_io(Mode::Read, cx, |s| {
        let mut s: &mio::net::TcpStream = s;
        s.read_vectored(bufs)
    })
}

/// One `writev` for several buffers (a header and a body, say).
fn poll_write_vectored(
    c: &Conn,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    c.poll_io(Mode::Write, cx, |s| {
        let mut s: &mio::net::TcpStream = s;
        s.write_vectored(bufs)
    })
}

/// A TCP connection (Go's `*net.TCPConn`). `AsyncRead + AsyncWrite`, also
/// through `&TcpStream`, so several goroutines can share one connection as
/// they share a Go `net.Conn`: concurrent readers (or writers) each wait
/// their turn on the pollDesc and none loses its wake-up, though, as in
/// Go, how their bytes interleave is up to them. Nagle is off by default,
/// as in Go.
pub struct TcpStream {
    conn: Arc<Conn>,
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
    fn from_mio(s: mio::net::TcpStream, what: &str) -> io::Result<TcpStream> {
        // Go sets TCP_NODELAY on every TCP connection.
        let _ = s.set_nodelay(true);
        Ok(TcpStream {
            conn: Arc::new(Registered::new(s, what)?),
        })
    }

    /// Adopt a connected `std::net::TcpStream` (made non-blocking here).
    /// Must be called on a gmp runtime.
    pub fn from_std(s: std::net::TcpStream) -> io::Result<TcpStream> {
        s.set_nonblocking(true)?;
        TcpStream::from_mio(
            mio::net::TcpStream::from_std(s),
            "gmp::net::TcpStream::from_std",
        )
    }

    /// Connect to the first address that accepts. A refused connection is
    /// an `io::Error` of kind `ConnectionRefused`.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        // Off-runtime: fail before any lookup or connection attempt.
        NetPoll::current(CONNECT)?;
        let mut last = None;
        for a in resolve(addr)? {
            match Self::connect_one(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("connect: no address")))
    }

    /// A non-blocking connect, then wait until writable and read the
    /// outcome from SO_ERROR (Go's `netFD.connect`).
    async fn connect_one(a: SocketAddr) -> io::Result<TcpStream> {
        let s = TcpStream::from_mio(mio::net::TcpStream::connect(a)?, CONNECT)?;
        s.conn
            .io(Mode::Write, |src: &mio::net::TcpStream| {
                if let Some(e) = src.take_error()? {
                    return Err(e);
                }
                match src.peer_addr() {
                    Ok(_) => Ok(()),
                    // Still in progress.
                    Err(e)
                        if e.kind() == io::ErrorKind::NotConnected
                            || e.raw_os_error() == Some(libc::EINPROGRESS) =>
                    {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(s)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.conn.src.peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.conn.src.local_addr()
    }

    /// Nagle's algorithm off (`true`, the default) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.conn.src.set_nodelay(nodelay)
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        self.conn.src.nodelay()
    }

    /// Shut down the read side, the write side (the peer reads EOF) or
    /// both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.conn.src.shutdown(how)
    }

    /// Go's `SetReadDeadline`: once `at` has passed, pending and later
    /// reads fail with `ErrorKind::TimedOut` until the deadline is moved
    /// into the future or cleared (`None`). A time already past fails a
    /// read parked right now at once.
    pub fn set_read_deadline(&self, at: Option<Instant>) {
        self.conn.set_deadline(Mode::Read, at);
    }

    /// Go's `SetWriteDeadline`, likewise for writes.
    pub fn set_write_deadline(&self, at: Option<Instant>) {
        self.conn.set_deadline(Mode::Write, at);
    }

    /// Both deadlines (Go's `SetDeadline`).
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.set_read_deadline(at);
        self.set_write_deadline(at);
    }

    /// Split into halves that can move to different goroutines. Dropping
    /// the write half shuts down the write side; the socket closes when
    /// both are gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        (
            OwnedReadHalf {
                conn: self.conn.clone(),
            },
            OwnedWriteHalf { conn: self.conn },
        )
    }
}

/// `AsyncRead` for a handle whose `conn` is the shared connection.
macro_rules! impl_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                poll_read(&self.conn, cx, buf)
            }
            fn poll_read_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                poll_read_vectored(&self.conn, cx, bufs)
            }
        }
    };
}

/// `AsyncWrite` likewise; writes are unbuffered so `flush` is a no-op, and
/// `close` shuts down the write side.
macro_rules! impl_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                poll_write(&self.conn, cx, buf)
            }
            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                poll_write_vectored(&self.conn, cx, bufs)
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.conn.src.shutdown(Shutdown::Write))
            }
        }
    };
}

impl_read!(TcpStream);
impl_write!(TcpStream);
impl_read!(&TcpStream);
impl_write!(&TcpStream);
impl_read!(OwnedReadHalf);
impl_write!(OwnedWriteHalf);

/// The reading half of a [`TcpStream`].
pub struct OwnedReadHalf {
    conn: Arc<Conn>,
}

/// The writing half of a [`TcpStream`]; dropping it shuts down writes.
pub struct OwnedWriteHalf {
    conn: Arc<Conn>,
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
    /// [`TcpStream::set_read_deadline`].
    pub fn set_read_deadline(&self, at: Option<Instant>) {
        self.conn.set_deadline(Mode::Read, at);
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.conn.src.peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.conn.src.local_addr()
    }
}

impl OwnedWriteHalf {
    /// [`TcpStream::set_write_deadline`].
    pub fn set_write_deadline(&self, at: Option<Instant>) {
        self.conn.set_deadline(Mode::Write, at);
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.conn.src.peer_addr()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.conn.src.local_addr()
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        let _ = self.conn.src.shutdown(Shutdown::Write);
    }
}

/// A TCP listening socket (Go's `*net.TCPListener`).
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

/// Go's http.Server accept back-off on temporary errors: 5ms doubling to 1s.
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

impl TcpListener {
    /// Bind to the first address that works.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        NetPoll::current(BIND)?;
        let mut last = None;
        for a in resolve(addr)? {
            match mio::net::TcpListener::bind(a) {
                Ok(l) => {
                    return Ok(TcpListener {
                        reg: Registered::new(l, BIND)?,
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

    /// Adopt a bound, listening `std::net::TcpListener` (made non-blocking
    /// here). Must be called on a gmp runtime.
    pub fn from_std(l: std::net::TcpListener) -> io::Result<TcpListener> {
        l.set_nonblocking(true)?;
        Ok(TcpListener {
            reg: Registered::new(
                mio::net::TcpListener::from_std(l),
                "gmp::net::TcpListener::from_std",
            )?,
        })
    }

    /// Go's `TCPListener.SetDeadline`: a pending or later `accept` fails
    /// with `TimedOut` once `at` has passed; `None` clears.
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.reg.set_deadline(Mode::Read, at);
    }

    /// Accept a connection. Running out of file descriptors does not spin:
    /// like Go's `http.Server`, back off (5ms doubling to 1s) and retry.
    /// Other errors are returned.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            match self.reg.io(Mode::Read, |l| l.accept()).await {
                Ok((s, peer)) => {
                    return Ok((
                        TcpStream::from_mio(s, "gmp::net::TcpListener::accept")?,
                        peer,
                    ))
                }
                Err(e) if is_resource_exhaustion(&e) => {
                    gmp_core::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
