//! What TCP and Unix stream sockets share: the read and write paths on a
//! registered connection (readiness memory, uninitialised reads, writes
//! that never raise SIGPIPE), and [`stream_surface!`], which gives a stream
//! type and its halves the same public surface whatever the socket family.

use crate::fd::Registered;
use crate::polldesc::Mode;
use crate::sys;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};

/// Read into `buf` without initialising it first.
pub(crate) fn poll_read_uninit<S: mio::event::Source + AsRawFd>(
    c: &Registered<S>,
    cx: &mut Context<'_>,
    buf: &mut [MaybeUninit<u8>],
) -> Poll<io::Result<usize>> {
    let want = buf.len();
    c.poll_stream_io(Mode::Read, cx, want, |s| sys::recv(s.as_raw_fd(), buf))
}

pub(crate) fn poll_read<S: mio::event::Source + AsRawFd>(
    c: &Registered<S>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let len = buf.len();
    // SAFETY: `MaybeUninit<u8>` has `u8`'s layout, and the read only
    // writes initialised bytes, so `buf` stays initialised.
    let buf = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast(), len) };
    poll_read_uninit(c, cx, buf)
}

/// One `readv` for several buffers (mio's, through std).
pub(crate) fn poll_read_vectored<S>(
    c: &Registered<S>,
    cx: &mut Context<'_>,
    bufs: &mut [IoSliceMut<'_>],
) -> Poll<io::Result<usize>>
where
    S: mio::event::Source,
    for<'a> &'a S: io::Read,
{
    let want = bufs.iter().map(|b| b.len()).sum();
    c.poll_stream_io(Mode::Read, cx, want, |mut s| {
        io::Read::read_vectored(&mut s, bufs)
    })
}

pub(crate) fn poll_write<S: mio::event::Source + AsRawFd>(
    c: &Registered<S>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    c.poll_stream_io(Mode::Write, cx, buf.len(), |s| {
        sys::send(s.as_raw_fd(), buf)
    })
}

/// Vectored writes of at most this many bytes in all are gathered into
/// one buffer and sent with `send` (see `poll_write_vectored`).
const GATHER_MAX: usize = 1024;

/// Several buffers (a response head and its body, say) in one syscall.
/// Small ones are copied together and sent with `send`: the kernel's
/// `sendmsg` path, which copies in the message header and the iovec array
/// and walks them, costs more than copying a few hundred bytes here. A
/// single non-empty buffer is sent as it is; larger writes are one
/// `sendmsg`. What the peer receives, and the partial-write count, are the
/// same either way.
pub(crate) fn poll_write_vectored<S: mio::event::Source + AsRawFd>(
    c: &Registered<S>,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let want: usize = bufs.iter().map(|b| b.len()).sum();
    let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
    match (nonempty.next(), nonempty.next()) {
        (Some(only), None) => poll_write(c, cx, only),
        (Some(_), Some(_)) if want <= GATHER_MAX => {
            let mut gathered = [0u8; GATHER_MAX];
            let mut at = 0;
            for b in bufs {
                gathered[at..at + b.len()].copy_from_slice(b);
                at += b.len();
            }
            poll_write(c, cx, &gathered[..want])
        }
        _ => c.poll_stream_io(Mode::Write, cx, want, |s| sys::sendmsg(s.as_raw_fd(), bufs)),
    }
}

/// The public surface of a stream type `$stream` (field `conn:
/// Arc<Registered<$src>>`) and its halves: `AsyncRead`/`AsyncWrite` (also
/// for `&$stream`), `poll_read_uninit`, `is_write_vectored`, `close`,
/// `shutdown`, deadlines, `split`/`into_split`, `AsRawFd`/`AsFd`, and
/// `peer_addr`/`local_addr` of type `$addr`.
macro_rules! stream_surface {
    (
        stream: $stream:ident,
        src: $src:ty,
        addr: $addr:ty,
        read_half: $rh:ident,
        write_half: $wh:ident,
        owned_read_half: $orh:ident,
        owned_write_half: $owh:ident $(,)?
    ) => {
        /// A connection shared by a stream and its halves.
        type Conn = $crate::fd::Registered<$src>;

        $crate::stream::stream_surface!(@read $stream);
        $crate::stream::stream_surface!(@read $rh<'_>);
        $crate::stream::stream_surface!(@read $orh);
        $crate::stream::stream_surface!(@write $stream);
        $crate::stream::stream_surface!(@write $wh<'_>);
        $crate::stream::stream_surface!(@write $owh);
        $crate::stream::stream_surface!(@read_trait $stream);
        $crate::stream::stream_surface!(@read_trait &$stream);
        $crate::stream::stream_surface!(@read_trait $rh<'_>);
        $crate::stream::stream_surface!(@read_trait $orh);
        $crate::stream::stream_surface!(@write_trait $stream);
        $crate::stream::stream_surface!(@write_trait &$stream);
        $crate::stream::stream_surface!(@write_trait $wh<'_>);
        $crate::stream::stream_surface!(@write_trait $owh);
        $crate::stream::stream_surface!(@common $stream, $addr);
        $crate::stream::stream_surface!(@common $rh<'_>, $addr);
        $crate::stream::stream_surface!(@common $wh<'_>, $addr);
        $crate::stream::stream_surface!(@common $orh, $addr);
        $crate::stream::stream_surface!(@common $owh, $addr);

        #[doc = concat!("The reading half of a [`", stringify!($stream), "`], borrowed (`split`).")]
        pub struct $rh<'a> {
            conn: &'a Conn,
        }

        #[doc = concat!("The writing half of a [`", stringify!($stream), "`], borrowed (`split`).")]
        pub struct $wh<'a> {
            conn: &'a Conn,
        }

        #[doc = concat!("The reading half of a [`", stringify!($stream), "`] (`into_split`).")]
        pub struct $orh {
            conn: std::sync::Arc<Conn>,
        }

        #[doc = concat!("The writing half of a [`", stringify!($stream), "`] (`into_split`); ")]
        /// dropping it shuts down writes (the peer reads end of file).
        pub struct $owh {
            conn: std::sync::Arc<Conn>,
        }

        impl Drop for $owh {
            fn drop(&mut self) {
                let _ = self.conn.src.shutdown(std::net::Shutdown::Write);
            }
        }

        impl $stream {
            /// Borrow a reading and a writing half, to drive both
            /// directions at once (`join!`, `select!`). With futures'
            /// `AsyncReadExt` in scope, `stream.split()` on a stream held
            /// by value picks that trait's `split(self)`; write
            #[doc = concat!("`", stringify!($stream), "::split(&stream)` or `(&stream).split()`.")]
            pub fn split(&self) -> ($rh<'_>, $wh<'_>) {
                ($rh { conn: &self.conn }, $wh { conn: &self.conn })
            }

            /// Split into halves that can move to different goroutines.
            /// Dropping the write half shuts down the write side; the
            /// socket closes when both are gone, or at `close` on either.
            pub fn into_split(self) -> ($orh, $owh) {
                ($orh { conn: self.conn.clone() }, $owh { conn: self.conn })
            }

            /// Set the read and write deadlines together (Go's
            /// `SetDeadline`).
            pub fn set_deadline(&self, at: Option<std::time::Instant>) {
                self.set_read_deadline(at);
                self.set_write_deadline(at);
            }

            /// Go's `SetReadDeadline`: once `at` has passed, pending and
            /// later reads fail with `ErrorKind::TimedOut` until the
            /// deadline is moved into the future or cleared (`None`). A
            /// time already past fails a read parked right now at once.
            pub fn set_read_deadline(&self, at: Option<std::time::Instant>) {
                self.conn.set_deadline($crate::polldesc::Mode::Read, at);
            }

            /// Go's `SetWriteDeadline`, likewise for writes.
            pub fn set_write_deadline(&self, at: Option<std::time::Instant>) {
                self.conn.set_deadline($crate::polldesc::Mode::Write, at);
            }
        }

        impl $rh<'_> {
            #[doc = concat!("[`", stringify!($stream), "::set_read_deadline`].")]
            pub fn set_read_deadline(&self, at: Option<std::time::Instant>) {
                self.conn.set_deadline($crate::polldesc::Mode::Read, at);
            }
        }

        impl $orh {
            #[doc = concat!("[`", stringify!($stream), "::set_read_deadline`].")]
            pub fn set_read_deadline(&self, at: Option<std::time::Instant>) {
                self.conn.set_deadline($crate::polldesc::Mode::Read, at);
            }
        }

        impl $wh<'_> {
            #[doc = concat!("[`", stringify!($stream), "::set_write_deadline`].")]
            pub fn set_write_deadline(&self, at: Option<std::time::Instant>) {
                self.conn.set_deadline($crate::polldesc::Mode::Write, at);
            }
        }

        impl $owh {
            #[doc = concat!("[`", stringify!($stream), "::set_write_deadline`].")]
            pub fn set_write_deadline(&self, at: Option<std::time::Instant>) {
                self.conn.set_deadline($crate::polldesc::Mode::Write, at);
            }
        }

        impl std::fmt::Debug for $rh<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($rh))
            }
        }
        impl std::fmt::Debug for $wh<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($wh))
            }
        }
        impl std::fmt::Debug for $orh {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($orh))
            }
        }
        impl std::fmt::Debug for $owh {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($owh))
            }
        }
    };

    (@read $t:ty) => {
        impl $t {
            /// Read into memory that need not be initialised (hyper's
            /// `ReadBufCursor`), without zero-filling it first. Same
            /// parking, deadline and close semantics as `AsyncRead`;
            /// `Ok(0)` is end of file. The first `n` bytes of `buf` are
            /// initialised when `Ok(n)` is returned.
            pub fn poll_read_uninit(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &mut [std::mem::MaybeUninit<u8>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::stream::poll_read_uninit(&self.conn, cx, buf)
            }
        }
    };

    (@write $t:ty) => {
        impl $t {
            /// Vectored writes are one syscall (true).
            pub fn is_write_vectored(&self) -> bool {
                true
            }
        }
    };

    (@read_trait $t:ty) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::stream::poll_read(&self.conn, cx, buf)
            }
            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::stream::poll_read_vectored(&self.conn, cx, bufs)
            }
        }
    };

    // Writes are unbuffered, so `flush` is a no-op; `close` shuts down the
    // write side (futures' `close`, not Go's: that is the inherent one).
    (@write_trait $t:ty) => {
        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::stream::poll_write(&self.conn, cx, buf)
            }
            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::stream::poll_write_vectored(&self.conn, cx, bufs)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.conn.src.shutdown(std::net::Shutdown::Write))
            }
        }
    };

    (@common $t:ty, $addr:ty) => {
        impl $t {
            /// Go's `Conn.Close`, callable from any goroutine and on any
            /// handle of the connection (stream or half): operations parked
            /// on it wake and fail, as does every later one, with
            /// `ErrorKind::NotConnected` "use of closed network
            /// connection"; the peer sees the close at once. The
            /// descriptor itself is freed when the last handle drops. A
            /// second `close` fails with the same error, as in Go.
            pub fn close(&self) -> std::io::Result<()> {
                self.conn.close()
            }

            /// Shut down the read side, the write side (the peer reads end
            /// of file) or both, leaving the descriptor open.
            pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                if self.conn.pd.is_closing() {
                    return Err($crate::polldesc::closing_error());
                }
                self.conn.src.shutdown(how)?;
                self.conn.pd.mark_shut(how);
                Ok(())
            }

            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                self.conn.src.peer_addr()
            }

            pub fn local_addr(&self) -> std::io::Result<$addr> {
                self.conn.src.local_addr()
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.conn.src.as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.conn.src)
            }
        }
    };
}

pub(crate) use stream_surface;
