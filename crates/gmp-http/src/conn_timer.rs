//! `ConnTimer`: hyper's `Timer` for one HTTP/1 connection, which keeps
//! the header-read sleep hyper drops after each request head and hands it
//! back, re-armed, for the next one.
//!
//! hyper makes a new sleep for every request head it waits for (30 s out
//! by default) and drops it once the head is parsed. A new sleep costs a
//! timer allocation and a heap entry, and the dropped one leaves a stale
//! entry for the heap's sweep. The kept sleep instead re-arms its existing
//! timer for a later deadline, which leaves its heap entry in place (the
//! timer module's "modified later"): no allocation and no heap operation
//! per request.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::rt::Sleep;

use crate::rt::{reset_sleep, GmpSleep, Spare};

/// hyper's `Timer` for one connection (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct ConnTimer {
    spare: Arc<Spare>,
}

impl ConnTimer {
    pub(crate) fn new() -> ConnTimer {
        ConnTimer {
            spare: Arc::new(Mutex::new(None)),
        }
    }

    fn take_spare(&self) -> Option<gmp_core::timer::Sleep> {
        self.spare.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl hyper::rt::Timer for ConnTimer {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Sleep>> {
        match gmp_core::timer::deadline_after(d) {
            Some(at) => self.sleep_until(at),
            // Too far for an `Instant`: never (a fresh sleep says so).
            None => Box::pin(GmpSleep::new(gmp_core::timer::sleep(d), None)),
        }
    }

    fn sleep_until(&self, at: Instant) -> Pin<Box<dyn Sleep>> {
        let sleep = match self.take_spare() {
            Some(mut s) => {
                s.reset(at);
                s
            }
            None => gmp_core::timer::sleep_until(at),
        };
        Box::pin(GmpSleep::new(sleep, Some(self.spare.clone())))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, at: Instant) {
        reset_sleep(sleep, at, || self.sleep_until(at));
    }
}
