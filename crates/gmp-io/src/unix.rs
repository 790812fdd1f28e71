//! Unix domain stream sockets on the netpoller: `UnixListener` and
//! `UnixStream` (Go's `*net.UnixListener`, `*net.UnixConn`), with the
//! TCP surface (deadlines, halves, close from any goroutine).

use crate::fd::Registered;
use crate::netpoll::NetPoll;
use crate::polldesc::Mode;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A Unix stream connection. `AsyncRead + AsyncWrite`, also through
/// `&UnixStream`; halves, deadlines and `close` as for
/// [`TcpStream`](crate::TcpStream).
pub struct UnixStream {
    conn: Arc<Conn>,
}

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

crate::stream::stream_surface! {
    stream: UnixStream,
    src: mio::net::UnixStream,
    addr: SocketAddr,
    read_half: ReadHalf,
    write_half: WriteHalf,
    owned_read_half: OwnedReadHalf,
    owned_write_half: OwnedWriteHalf,
}

impl UnixStream {
    fn from_mio(s: mio::net::UnixStream, what: &str) -> io::Result<UnixStream> {
        crate::sys::no_sigpipe(s.as_raw_fd())?;
        Ok(UnixStream {
            conn: Arc::new(Registered::new(s, what)?),
        })
    }

    /// Connect to the socket at `path`. A path nobody listens on is an
    /// `io::Error` (`NotFound` or `ConnectionRefused`); a listener whose
    /// backlog is full fails with `WouldBlock`, as Go's `Dial` does.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        const WHAT: &str = "gmp::net::UnixStream::connect";
        NetPoll::current(WHAT)?;
        // A Unix connect completes or fails at once: there is no
        // handshake to wait for.
        UnixStream::from_mio(mio::net::UnixStream::connect(path)?, WHAT)
    }

    /// Adopt a connected `std::os::unix::net::UnixStream` (made
    /// non-blocking here). Must be called on a gmp runtime.
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        s.set_nonblocking(true)?;
        UnixStream::from_mio(
            mio::net::UnixStream::from_std(s),
            "gmp::net::UnixStream::from_std",
        )
    }

    /// Give the connection back as a `std::os::unix::net::UnixStream`
    /// (still non-blocking), deregistered. Fails if it was closed.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let conn = Arc::try_unwrap(self.conn)
            .map_err(|_| io::Error::other("into_std: the stream is still shared"))?;
        let s = conn.into_source()?;
        Ok(std::os::unix::net::UnixStream::from(OwnedFd::from(s)))
    }
}

/// A Unix stream listening socket. The socket file it created is removed
/// when it is closed or dropped, as Go's `UnixListener.Close` does.
pub struct UnixListener {
    reg: Registered<mio::net::UnixListener>,
    socket_file: SocketFile,
}

/// The socket file `bind` created: removed once, at `close` or drop.
struct SocketFile {
    path: Option<PathBuf>,
    removed: AtomicBool,
}

impl SocketFile {
    fn new(path: Option<PathBuf>) -> SocketFile {
        SocketFile {
            path,
            removed: AtomicBool::new(false),
        }
    }

    fn remove(&self) {
        if let Some(p) = &self.path {
            if !self.removed.swap(true, Ordering::AcqRel) {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// Keep the file: the socket lives on elsewhere (`into_std`).
    fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.remove();
    }
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

impl UnixListener {
    /// Create the socket file at `path` and listen on it (backlog:
    /// somaxconn). Fails with `AddrInUse` if the path exists.
    pub async fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        const WHAT: &str = "gmp::net::UnixListener::bind";
        NetPoll::current(WHAT)?;
        let path = path.as_ref();
        let l = mio::net::UnixListener::bind(path)?;
        crate::sys::relisten(l.as_raw_fd())?;
        Ok(UnixListener {
            reg: Registered::new(l, WHAT)?,
            socket_file: SocketFile::new(Some(path.to_path_buf())),
        })
    }

    /// Adopt a listening `std::os::unix::net::UnixListener` (made
    /// non-blocking here); its socket file is left alone on close.
    pub fn from_std(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        l.set_nonblocking(true)?;
        Ok(UnixListener {
            reg: Registered::new(
                mio::net::UnixListener::from_std(l),
                "gmp::net::UnixListener::from_std",
            )?,
            socket_file: SocketFile::new(None),
        })
    }

    /// Give the listener back as a `std::os::unix::net::UnixListener`
    /// (still non-blocking), deregistered; its socket file stays.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        let UnixListener { reg, socket_file } = self;
        socket_file.keep();
        let l = reg.into_source()?;
        Ok(std::os::unix::net::UnixListener::from(OwnedFd::from(l)))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.reg.src.local_addr()
    }

    /// Go's `SetDeadline` for `accept`.
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.reg.set_deadline(Mode::Read, at);
    }

    /// Go's `Listener.Close` from any goroutine (see
    /// [`TcpListener::close`](crate::TcpListener::close)); also removes
    /// the socket file `bind` created.
    pub fn close(&self) -> io::Result<()> {
        let r = self.reg.close();
        self.socket_file.remove();
        r
    }

    /// Accept a connection; out of descriptors backs off (5ms doubling to
    /// 1s) instead of spinning.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, peer) = self.reg.accept(|l| l.accept()).await?;
        Ok((
            UnixStream::from_mio(s, "gmp::net::UnixListener::accept")?,
            peer,
        ))
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.reg.src.as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.reg.src.as_fd()
    }
}
