//! Telling HTTP/1.1 from HTTP/2 (prior knowledge) by a connection's first
//! bytes, and [`Sniffed`], the socket that hands those bytes back to hyper.
//!
//! hyper-util's auto connection does the same, but hands hyper the sniffed
//! bytes as a read of their own: hyper's parser then finds half a request
//! head in an 8 KiB buffer and reserves another 8 KiB next to it, which
//! doubles the buffer every idle keep-alive connection keeps. [`Sniffed`]
//! returns the sniffed bytes *and* whatever followed them in one read, so
//! hyper sees the whole head at once; and since the protocol is known
//! before hyper starts, the connection future is hyper's HTTP/1 or HTTP/2
//! one alone, not an enum carrying both and both builders' settings.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use hyper::rt::ReadBufCursor;

use crate::rt::{read_into, Transport};

/// What a client speaking HTTP/2 with prior knowledge sends first.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol a connection's first bytes chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// How sniffing ended.
#[derive(Debug)]
pub(crate) enum Sniff {
    /// The first bytes decided.
    Speaks(Protocol),
    /// The peer closed before sending anything.
    Closed,
}

/// A socket whose first bytes were read to choose the protocol; hyper's
/// reads get them back first.
pub(crate) struct Sniffed<T> {
    io: T,
    head: [u8; H2_PREFACE.len()],
    /// `head[pos..len]` is still to be handed to hyper.
    pos: u8,
    len: u8,
}

impl<T: Transport> Sniffed<T> {
    pub(crate) fn new(io: T) -> Sniffed<T> {
        Sniffed {
            io,
            head: [0; H2_PREFACE.len()],
            pos: 0,
            len: 0,
        }
    }

    /// Read until the bytes so far are not a prefix of the HTTP/2 preface
    /// (HTTP/1.1), are all of it (HTTP/2), or the peer stops sending (an
    /// incomplete preface is HTTP/1.1's to reject, as hyper-util decides).
    pub(crate) fn poll_sniff(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Sniff>> {
        loop {
            let len = usize::from(self.len);
            if self.head[..len] != H2_PREFACE[..len] {
                return Poll::Ready(Ok(Sniff::Speaks(Protocol::Http1)));
            }
            if len == H2_PREFACE.len() {
                return Poll::Ready(Ok(Sniff::Speaks(Protocol::Http2)));
            }
            let n = ready!(futures::io::AsyncRead::poll_read(
                Pin::new(&mut self.io),
                cx,
                &mut self.head[len..]
            ))?;
            if n == 0 {
                return Poll::Ready(Ok(if len == 0 {
                    Sniff::Closed
                } else {
                    Sniff::Speaks(Protocol::Http1)
                }));
            }
            self.len += u8::try_from(n).expect("read at most the preface's length");
        }
    }
}

impl<T: Transport> hyper::rt::Read for Sniffed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos == this.len {
            return read_into(&mut this.io, cx, &mut buf);
        }
        let (pos, len) = (usize::from(this.pos), usize::from(this.len));
        let n = buf.remaining().min(len - pos);
        buf.put_slice(&this.head[pos..pos + n]);
        this.pos += u8::try_from(n).expect("at most the preface's length");
        if this.pos == this.len && buf.remaining() > 0 {
            // The rest of the request head, in the same read. Whatever this
            // read says, the sniffed bytes are already handed over: a
            // `Pending` leaves the goroutine's waker on the socket (hyper
            // reads again after parsing); an error is left to that next
            // read, which reports it again or sees end of file (a reset
            // is reported once), either of which ends the connection.
            let _ = read_into(&mut this.io, cx, &mut buf);
        }
        Poll::Ready(Ok(()))
    }
}

crate::rt::write_to_transport!(Sniffed);
