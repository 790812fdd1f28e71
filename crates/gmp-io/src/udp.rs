//! UDP on the netpoller.

use crate::netpoll::{Mode, Registered};
use crate::tcp::resolve;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// A UDP socket.
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

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.reg.src.local_addr()
    }

    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let to = resolve(target)?[0];
        poll_fn(|cx| self.reg.poll_io(Mode::Write, cx, |s| s.send_to(buf, to))).await
    }

    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.reg.poll_io(Mode::Read, cx, |s| s.recv_from(buf))).await
    }

    /// Fix the peer for `send`/`recv`.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let to = resolve(addr)?[0];
        self.reg.src.connect(to)
    }

    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.reg.poll_io(Mode::Write, cx, |s| s.send(buf))).await
    }

    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.reg.poll_io(Mode::Read, cx, |s| s.recv(buf))).await
    }
}
