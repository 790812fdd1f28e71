//! The raw socket calls gmp-io makes itself rather than through mio or
//! std: reads into uninitialised memory, writes that never raise SIGPIPE,
//! the listen backlog, and the close that releases a socket while other
//! handles still name its descriptor.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;

/// `send`/`sendmsg` flag that turns SIGPIPE into `EPIPE`. Where it does
/// not exist (Apple) the socket carries `SO_NOSIGPIPE` instead
/// ([`no_sigpipe`]).
#[cfg(not(target_vendor = "apple"))]
const NOSIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
const NOSIGNAL: libc::c_int = 0;

fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Mark a socket so a write to a closed peer fails with `EPIPE` instead of
/// raising SIGPIPE, where the per-call flag does not exist.
pub(crate) fn no_sigpipe(_fd: RawFd) -> io::Result<()> {
    #[cfg(target_vendor = "apple")]
    {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `one`.
        let r = unsafe {
            libc::setsockopt(
                _fd,
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `recv` into memory that need not be initialised: the kernel writes the
/// bytes it returns and reads none.
pub(crate) fn recv(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, which we own mutably;
    // recv(2) only writes into it and never reads it.
    cvt(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// `send` with SIGPIPE suppressed.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `buf`, which send(2) only
    // reads.
    cvt(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), NOSIGNAL) })
}

/// One `sendmsg` for several buffers (a `writev` that cannot raise
/// SIGPIPE).
pub(crate) fn sendmsg(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(libc::c_int::MAX as usize) as _;
    // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix; sendmsg(2)
    // only reads the buffers and the header, which outlive the call.
    cvt(unsafe { libc::sendmsg(fd, &msg, NOSIGNAL) })
}

/// Go's listen backlog: the kernel's `somaxconn`, read once, or 4096
/// (Linux's default since 5.4) when it cannot be read.
pub(crate) fn somaxconn() -> libc::c_int {
    static N: OnceLock<libc::c_int> = OnceLock::new();
    *N.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<libc::c_int>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(4096)
    })
}

/// Set a listening socket's backlog to [`somaxconn`]. Calling `listen` on
/// a socket that already listens only changes its backlog.
pub(crate) fn relisten(fd: RawFd) -> io::Result<()> {
    // SAFETY: listen(2) on a descriptor we own; no memory is passed.
    if unsafe { libc::listen(fd, somaxconn()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Release the socket behind `fd` now, keeping the number `fd` allocated
/// until its owner drops it: a placeholder (one unconnected Unix socket
/// per process) is put in its place with one atomic `dup3`, so the peer
/// sees the close, a listener stops listening, and any call that still
/// reaches `fd` fails instead of touching a descriptor reused by someone
/// else. Go gets the same from fdMutex reference counting; a Rust handle
/// owns its descriptor, so the number cannot be given back before the
/// handle goes. Sharing the placeholder is harmless: every operation on an
/// unconnected socket fails, and gmp never registers it with a poller.
///
/// Falls back to `shutdown(SHUT_RDWR)` when no placeholder can be made
/// (out of descriptors).
pub(crate) fn release(fd: RawFd) {
    let replaced = placeholder().is_some_and(|p| {
        // SAFETY: `p` is our open placeholder and `fd` an open descriptor
        // our caller owns; dup3/dup2 atomically closes `fd`'s socket and
        // makes `fd` name the placeholder (close-on-exec).
        unsafe {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let r = libc::dup3(p, fd, libc::O_CLOEXEC);
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let r = match libc::dup2(p, fd) {
                r if r >= 0 => libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
                r => r,
            };
            r >= 0
        }
    });
    if !replaced {
        // SAFETY: shutdown(2) on a descriptor our caller owns.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
}

/// The process's placeholder socket, made on first use (retried while it
/// cannot be made).
fn placeholder() -> Option<RawFd> {
    static FD: OnceLock<std::os::fd::OwnedFd> = OnceLock::new();
    if let Some(fd) = FD.get() {
        return Some(fd.as_raw_fd());
    }
    // An unconnected, non-listening stream socket: recv and accept fail
    // with EINVAL, send with EPIPE (never blocking), whatever races in.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let ty = libc::SOCK_STREAM;
    // SAFETY: socket(2) takes no memory; the new descriptor is ours.
    let raw = unsafe { libc::socket(libc::AF_UNIX, ty, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` was just returned by socket(2) and nothing else owns it.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: fcntl on the descriptor we own.
    unsafe {
        libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(raw, libc::F_SETFL, libc::O_NONBLOCK);
    }
    Some(FD.get_or_init(|| owned).as_raw_fd())
}
