//! The netpoller hook. gmp-core knows nothing of mio: gmp-io implements
//! this trait and the facade installs it, so `find_runnable` can poll for
//! I/O the way Go's scheduler calls `netpoll` (non-blocking between the
//! global queue and stealing, blocking when an M is about to park).

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A runtime's poller for I/O readiness.
pub trait Netpoller: Send + Sync + 'static {
    /// Wait up to `timeout` (`None`: until `netpoll_break`) for readiness
    /// and wake the goroutines it unblocks through their wakers. Returns
    /// how many goroutines were woken.
    fn netpoll(&self, timeout: Option<Duration>) -> usize;
    /// Interrupt a blocking `netpoll` (Go's `netpollBreak`).
    fn netpoll_break(&self);
    /// True when some goroutine waits on I/O (Go's `netpollWaiters > 0`).
    fn has_waiters(&self) -> bool;
    /// For the implementation to find its concrete type again (gmp-io's
    /// `TcpStream::connect` reaches the runtime's poller through
    /// [`current_netpoller`]).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// The netpoller of the runtime the calling goroutine runs on, if the
/// runtime has one. `None` off-runtime.
pub fn current_netpoller() -> Option<Arc<dyn Netpoller>> {
    crate::sched::with_current(|ctx| ctx.sched.netpoll.clone()).flatten()
}

/// Makes one netpoller per runtime instance (`block_on`).
pub type NetpollerFactory = Arc<dyn Fn() -> io::Result<Arc<dyn Netpoller>> + Send + Sync>;

/// The netpoller stand-in when none is installed: blocking "polls" are
/// timed sleeps that `netpoll_break` cuts short. It never has I/O waiters.
#[derive(Default)]
pub(crate) struct ParkPoller {
    woken: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Netpoller for ParkPoller {
    fn netpoll(&self, timeout: Option<Duration>) -> usize {
        let mut w = self.woken.lock().unwrap();
        if !*w {
            w = match timeout {
                None => self.cv.wait(w).unwrap(),
                Some(t) => self.cv.wait_timeout(w, t).unwrap().0,
            };
        }
        *w = false;
        0
    }
    fn netpoll_break(&self) {
        *self.woken.lock().unwrap() = true;
        self.cv.notify_one();
    }
    fn has_waiters(&self) -> bool {
        false
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
