//! TCP on the netpoller: `TcpListener`, `TcpStream` (futures' `AsyncRead`
//! and `AsyncWrite`), its owned halves, and Go's deadline semantics.

use crate::fd::Registered;
use crate::netpoll::NetPoll;
use crate::polldesc::Mode;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

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
        crate::sys::no_sigpipe(s.as_raw_fd())?;
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

    /// Nagle's algorithm off (`true`, the default) or on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.conn.src.set_nodelay(nodelay)
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        self.conn.src.nodelay()
    }

    /// Give the connection back as a `std::net::TcpStream` (still in
    /// non-blocking mode), deregistered from the netpoller. Fails if the
    /// stream was closed.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let conn = Arc::try_unwrap(self.conn)
            .map_err(|_| io::Error::other("into_std: the stream is still shared"))?;
        let s = conn.into_source()?;
        Ok(std::net::TcpStream::from(std::os::fd::OwnedFd::from(s)))
    }
}

crate::stream::stream_surface! {
    stream: TcpStream,
    src: mio::net::TcpStream,
    addr: SocketAddr,
    read_half: ReadHalf,
    write_half: WriteHalf,
    owned_read_half: OwnedReadHalf,
    owned_write_half: OwnedWriteHalf,
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

impl TcpListener {
    /// Bind to the first address that works.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        NetPoll::current(BIND)?;
        let mut last = None;
        for a in resolve(addr)? {
            match mio::net::TcpListener::bind(a) {
                Ok(l) => {
                    // mio listens with std's backlog; Go's is somaxconn, so
                    // a burst of connects does not wait for SYN retransmits.
                    crate::sys::relisten(l.as_raw_fd())?;
                    return Ok(TcpListener {
                        reg: Registered::new(l, BIND)?,
                    });
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

    /// Give the listener back as a `std::net::TcpListener` (still in
    /// non-blocking mode), deregistered from the netpoller. Fails if it was
    /// closed.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let l = self.reg.into_source()?;
        Ok(std::net::TcpListener::from(OwnedFd::from(l)))
    }

    /// Go's `Listener.Close`, from any goroutine: an `accept` parked on it
    /// wakes and fails, as does every later one, with
    /// `ErrorKind::NotConnected` "use of closed network connection"; the
    /// socket stops listening at once (new connects are refused). The
    /// descriptor is freed when the listener drops. A second `close` fails
    /// with the same error.
    pub fn close(&self) -> io::Result<()> {
        self.reg.close()
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
        let (s, peer) = self.reg.accept(|l| l.accept()).await?;
        Ok((
            TcpStream::from_mio(s, "gmp::net::TcpListener::accept")?,
            peer,
        ))
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.reg.src.as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.reg.src.as_fd()
    }
}
