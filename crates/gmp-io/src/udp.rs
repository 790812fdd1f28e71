//! UDP on the netpoller: `UdpSocket` (Go's `*net.UDPConn`), with deadlines.

use crate::fd::Registered;
use crate::netpoll::NetPoll;
use crate::polldesc::Mode;
use crate::tcp::resolve;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Instant;

/// A UDP socket. Several goroutines may send and receive on one socket
/// at once (share it in an `Arc`).
pub struct UdpSocket {
    reg: Registered<mio::net::UdpSocket>,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

impl UdpSocket {
    /// Bind to the first address that works.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        NetPoll::current("gmp::net::UdpSocket::bind")?;
        let mut last = None;
        for a in resolve(addr)? {
            match mio::net::UdpSocket::bind(a) {
                Ok(s) => {
                    return Ok(UdpSocket {
                        reg: Registered::new(s, "gmp::net::UdpSocket::bind")?,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("bind: no address")))
    }

    /// Adopt a bound `std::net::UdpSocket` (made non-blocking here). Must
    /// be called on a gmp runtime.
    pub fn from_std(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        s.set_nonblocking(true)?;
        Ok(UdpSocket {
            reg: Registered::new(
                mio::net::UdpSocket::from_std(s),
                "gmp::net::UdpSocket::from_std",
            )?,
        })
    }

    /// Give the socket back as a `std::net::UdpSocket` (still
    /// non-blocking), deregistered. Fails if it was closed.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        let s = self.reg.into_source()?;
        Ok(std::net::UdpSocket::from(OwnedFd::from(s)))
    }

    /// Go's `Conn.Close` from any goroutine: parked and later sends and
    /// receives fail with `ErrorKind::NotConnected` "use of closed network
    /// connection"; the descriptor is freed when the socket drops.
    pub fn close(&self) -> io::Result<()> {
        self.reg.close()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.reg.src.local_addr()
    }

    /// The connected peer, if `connect` was called.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.reg.src.peer_addr()
    }

    /// Go's `SetReadDeadline`: receives fail with `TimedOut` once `at` has
    /// passed, until it is moved or cleared (`None`).
    pub fn set_read_deadline(&self, at: Option<Instant>) {
        self.reg.set_deadline(Mode::Read, at);
    }

    /// Go's `SetWriteDeadline`.
    pub fn set_write_deadline(&self, at: Option<Instant>) {
        self.reg.set_deadline(Mode::Write, at);
    }

    /// Both deadlines (Go's `SetDeadline`).
    pub fn set_deadline(&self, at: Option<Instant>) {
        self.set_read_deadline(at);
        self.set_write_deadline(at);
    }

    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let to = resolve(target)?[0];
        self.reg.io(Mode::Write, |s| s.send_to(buf, to)).await
    }

    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.reg.io(Mode::Read, |s| s.recv_from(buf)).await
    }

    /// Fix the peer for `send`/`recv`.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let to = resolve(addr)?[0];
        self.reg.src.connect(to)
    }

    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.reg.io(Mode::Write, |s| s.send(buf)).await
    }

    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reg.io(Mode::Read, |s| s.recv(buf)).await
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.reg.src.as_raw_fd()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.reg.src.as_fd()
    }
}
