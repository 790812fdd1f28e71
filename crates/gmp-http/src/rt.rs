//! hyper's runtime traits on gmp: [`GmpExecutor`] spawns goroutines,
//! [`GmpTimer`] sleeps on the per-P timer heaps, [`GmpIo`] adapts a gmp
//! socket to hyper's `Read`/`Write`. [`Transport`] is what a socket must
//! offer to be wrapped: futures-io plus a read into uninitialised memory.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use futures::io::{AsyncRead, AsyncWrite};
use hyper::rt::{ReadBufCursor, Sleep};

/// hyper's `Executor`: every future hyper spawns (an HTTP/2 stream, a
/// client connection) becomes a goroutine, as `gmp::go` would make it.
#[derive(Clone, Copy, Debug, Default)]
pub struct GmpExecutor;

impl<F> hyper::rt::Executor<F> for GmpExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    #[track_caller]
    fn execute(&self, fut: F) {
        gmp_core::go(fut);
    }
}

/// hyper's `Timer` on gmp's timers (the same heaps as `gmp::time::sleep`).
#[derive(Clone, Copy, Debug, Default)]
pub struct GmpTimer;

/// The `Sleep` [`GmpTimer`] (and a server connection's own timer) hands to
/// hyper.
#[derive(Debug)]
pub struct GmpSleep {
    /// `Some` until dropped.
    sleep: Option<gmp_core::timer::Sleep>,
    /// Where a connection's timer keeps this sleep for its next request
    /// (`ConnTimer`), if it came from one.
    spare: Option<Arc<Spare>>,
}

/// A connection's stopped sleep, kept for reuse (`ConnTimer`).
pub(crate) type Spare = Mutex<Option<gmp_core::timer::Sleep>>;

impl GmpSleep {
    pub(crate) fn new(sleep: gmp_core::timer::Sleep, spare: Option<Arc<Spare>>) -> GmpSleep {
        GmpSleep {
            sleep: Some(sleep),
            spare,
        }
    }

    fn reset(&mut self, at: Instant) {
        if let Some(s) = &mut self.sleep {
            s.reset(at);
        }
    }
}

impl Future for GmpSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.sleep {
            Some(s) => Pin::new(s).poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Drop for GmpSleep {
    fn drop(&mut self) {
        if let (Some(spare), Some(mut s)) = (self.spare.take(), self.sleep.take()) {
            s.stop();
            *spare.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
        }
    }
}

impl Sleep for GmpSleep {}

impl hyper::rt::Timer for GmpTimer {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(GmpSleep::new(gmp_core::timer::sleep(d), None))
    }

    fn sleep_until(&self, at: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(GmpSleep::new(gmp_core::timer::sleep_until(at), None))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Re-arm in place when the sleep is ours: hyper resets its
    /// header-read timer once per request, and this saves an allocation.
    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, at: Instant) {
        reset_sleep(sleep, at, || self.sleep_until(at));
    }
}

/// hyper's `Timer::reset`: in place if `sleep` is a [`GmpSleep`], else a
/// new one from `fresh`.
pub(crate) fn reset_sleep(
    sleep: &mut Pin<Box<dyn Sleep>>,
    at: Instant,
    fresh: impl FnOnce() -> Pin<Box<dyn Sleep>>,
) {
    match sleep.as_mut().downcast_mut_pin::<GmpSleep>() {
        Some(s) => s.get_mut().reset(at),
        None => *sleep = fresh(),
    }
}

/// A byte stream hyper can run over: futures-io's `AsyncRead` and
/// `AsyncWrite`, plus a read straight into uninitialised memory (hyper
/// hands out unfilled buffer space; zeroing it first costs a memset per
/// read) and whether vectored writes are real.
pub trait Transport: AsyncRead + AsyncWrite + Unpin {
    /// Read into `buf` without assuming it is initialised; returns how many
    /// leading bytes of `buf` now hold data. The default zero-fills `buf`
    /// and calls `AsyncRead::poll_read`.
    fn poll_read_uninit(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        for b in buf.iter_mut() {
            b.write(0);
        }
        // SAFETY: every byte of `buf` was initialised just above, and
        // `MaybeUninit<u8>` has the layout of `u8`.
        let init = unsafe { &mut *(buf as *mut [MaybeUninit<u8>] as *mut [u8]) };
        Pin::new(self).poll_read(cx, init)
    }

    /// Whether `poll_write_vectored` writes several buffers in one call
    /// (hyper then sends head and body with one `writev`).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// gmp's streams read into uninitialised memory and write vectors with
/// one `sendmsg`.
macro_rules! gmp_transport {
    ($t:ty) => {
        impl Transport for $t {
            fn poll_read_uninit(
                &mut self,
                cx: &mut Context<'_>,
                buf: &mut [MaybeUninit<u8>],
            ) -> Poll<io::Result<usize>> {
                <$t>::poll_read_uninit(self, cx, buf)
            }

            fn is_write_vectored(&self) -> bool {
                <$t>::is_write_vectored(self)
            }
        }
    };
}

gmp_transport!(gmp_io::TcpStream);
#[cfg(unix)]
gmp_transport!(gmp_io::UnixStream);

/// A gmp socket seen through hyper's `Read` and `Write`.
#[derive(Debug)]
pub struct GmpIo<T> {
    io: T,
}

impl<T> GmpIo<T> {
    /// Wrap `io` for hyper.
    pub fn new(io: T) -> GmpIo<T> {
        GmpIo { io }
    }

    /// The wrapped socket.
    pub fn inner(&self) -> &T {
        &self.io
    }

    /// Unwrap.
    pub fn into_inner(self) -> T {
        self.io
    }
}

/// One read from `io` into the unfilled part of hyper's buffer.
pub(crate) fn read_into<T: Transport>(
    io: &mut T,
    cx: &mut Context<'_>,
    buf: &mut ReadBufCursor<'_>,
) -> Poll<io::Result<()>> {
    // SAFETY: `poll_read_uninit` only writes initialised bytes into the
    // slice and never de-initialises any.
    let n = ready!(io.poll_read_uninit(cx, unsafe { buf.as_mut() }))?;
    // SAFETY: the transport reported the first `n` bytes initialised.
    unsafe { buf.advance(n) };
    Poll::Ready(Ok(()))
}

impl<T: Transport> hyper::rt::Read for GmpIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        read_into(&mut self.get_mut().io, cx, &mut buf)
    }
}

/// hyper's `Write` for a wrapper `$ty<T>` whose field `io: T` is the
/// transport: every call goes straight to it.
macro_rules! write_to_transport {
    ($ty:ident) => {
        impl<T: $crate::rt::Transport> hyper::rt::Write for $ty<T> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                futures::io::AsyncWrite::poll_write(
                    std::pin::Pin::new(&mut self.get_mut().io),
                    cx,
                    buf,
                )
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                futures::io::AsyncWrite::poll_write_vectored(
                    std::pin::Pin::new(&mut self.get_mut().io),
                    cx,
                    bufs,
                )
            }

            fn is_write_vectored(&self) -> bool {
                $crate::rt::Transport::is_write_vectored(&self.io)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                futures::io::AsyncWrite::poll_flush(std::pin::Pin::new(&mut self.get_mut().io), cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                futures::io::AsyncWrite::poll_close(std::pin::Pin::new(&mut self.get_mut().io), cx)
            }
        }
    };
}
pub(crate) use write_to_transport;

write_to_transport!(GmpIo);
