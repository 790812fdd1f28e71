//! `RawLock`: the runtime's own short-critical-section lock, used by every
//! channel (gmp-chan's hchan) and by the allgs registry. Raw (lock and
//! unlock, no guard) so that gmp-chan's `selectgo` can hold the locks of
//! several channels of different element types and release them from
//! type-erased code.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

/// Go's runtime `lock` (lock_futex.go) in shape: spin briefly, yield once,
/// then sleep on a futex, with one difference in `unlock`, which is a
/// plain store and a load instead of Go's atomic swap.
///
/// Why sleep: with two Ms hammering one channel, a waiter that kept
/// calling `sched_yield` spent a fifth of the machine in the kernel
/// (chan_mpmc at procs = 2) while the holder, its cache line warm, re-took
/// the lock every time; sleeping waiters halved that benchmark.
///
/// Why no swap in `unlock`: an uncontended lock/unlock pair is on every
/// channel operation, and the locked `xchg` made ping_pong 9% and an
/// uncontended chan_mpmc 25% slower. Without it, `unlock`'s load of
/// `sleepers` may be ordered before its store of `locked` (store-load
/// reordering, which even x86 allows), so a waiter that announces itself
/// in that window can miss its wake-up. Sleeps are therefore bounded
/// (`SLEEP`): a missed wake-up costs at most that long, never a hang,
/// and the window is a few nanoseconds wide against a sleep that only
/// follows a failed spin.
#[derive(Debug, Default)]
pub struct RawLock {
    locked: std::sync::atomic::AtomicU32,
    /// Waiters in (or about to enter) `futex::wait` on `locked`.
    sleepers: std::sync::atomic::AtomicU32,
}

/// The longest a waiter sleeps before it looks at the lock again.
const SLEEP: std::time::Duration = std::time::Duration::from_micros(50);

impl RawLock {
    pub fn new() -> RawLock {
        RawLock {
            locked: std::sync::atomic::AtomicU32::new(0),
            sleepers: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Acquire: the critical section must see the previous holder's
    /// writes, published by the Release store in `unlock`.
    #[inline]
    fn try_lock(&self) -> bool {
        self.locked
            .compare_exchange_weak(0, 1, Acquire, Relaxed)
            .is_ok()
    }

    #[inline]
    pub fn lock(&self) {
        if !self.try_lock() {
            self.lock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        loop {
            // Active spin (Go: 4 x procyield(30)), then one yield.
            for round in 0..5 {
                for _ in 0..4 {
                    if self.locked.load(Relaxed) != 0 {
                        break;
                    }
                    if self.try_lock() {
                        return;
                    }
                }
                if round < 4 {
                    for _ in 0..30 {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::yield_now();
                }
            }
            // SeqCst: the announcement must be visible before we look at
            // `locked` again (the other half of the store-load pair is the
            // one `unlock` does not fence; see the type's comment).
            self.sleepers.fetch_add(1, SeqCst);
            if self.try_lock() {
                self.sleepers.fetch_sub(1, Relaxed);
                return;
            }
            futex::wait(&self.locked, 1, SLEEP);
            self.sleepers.fetch_sub(1, Relaxed);
            if self.try_lock() {
                return;
            }
        }
    }

    /// # Safety
    /// The caller holds the lock.
    #[inline]
    pub unsafe fn unlock(&self) {
        // Release: publishes the critical section to the next holder.
        self.locked.store(0, Release);
        if self.sleepers.load(Relaxed) != 0 {
            futex::wake_one(&self.locked);
        }
    }
}

/// The futex calls behind `RawLock` (Linux), or a plain timed sleep where
/// there is no futex (`wake_one` is then a no-op: sleeps are bounded).
mod futex {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    #[cfg(target_os = "linux")]
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT on a live, aligned u32 that outlives the call
        // (the kernel only reads it) with a relative timeout. Early returns
        // (EINTR, EAGAIN when the word already changed, ETIMEDOUT) are
        // fine: the caller re-checks.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                &ts as *const libc::timespec,
            );
        }
    }

    #[cfg(target_os = "linux")]
    pub(super) fn wake_one(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE only uses the address as a key.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        if word.load(std::sync::atomic::Ordering::Relaxed) == expected {
            std::thread::sleep(timeout);
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn wake_one(_word: &AtomicU32) {}
}

#[cfg(test)]
mod tests {
    use super::RawLock;
    use std::cell::UnsafeCell;

    struct Counter {
        lock: RawLock,
        n: UnsafeCell<u64>,
    }
    // SAFETY: `n` is only touched with `lock` held.
    unsafe impl Sync for Counter {}

    /// Mutual exclusion under heavy contention, with more threads than
    /// cores so that waiters go through the spin, the yield and the futex
    /// sleep: no increment is lost and nobody hangs.
    #[test]
    fn raw_lock_excludes_and_wakes_sleepers() {
        const THREADS: u64 = 6;
        const ITERS: u64 = 50_000;
        let c = Counter {
            lock: RawLock::new(),
            n: UnsafeCell::new(0),
        };
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let c = &c;
                s.spawn(move || {
                    for i in 0..ITERS {
                        c.lock.lock();
                        // SAFETY: lock held.
                        unsafe { *c.n.get() += 1 };
                        if (i + t) % 997 == 0 {
                            // Hold it long enough for others to go to sleep.
                            std::thread::sleep(std::time::Duration::from_micros(100));
                        }
                        // SAFETY: we hold it.
                        unsafe { c.lock.unlock() };
                    }
                });
            }
        });
        // SAFETY: every thread has been joined.
        assert_eq!(unsafe { *c.n.get() }, THREADS * ITERS);
    }
}
