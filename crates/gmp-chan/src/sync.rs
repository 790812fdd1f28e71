//! The primitives the channel core is built from, switched to loom's models
//! under `--cfg loom`: atomics, the channel lock (`RawLock`), and the hooks
//! into gmp-core's scheduler (wait reasons, cooperative preemption, fastrand,
//! "am I on a runtime"). Keeping them behind this one module lets the loom
//! tests drive the very hchan/sudog/select code the runtime uses, with plain
//! threads and loom's `block_on` waker in place of goroutines.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
};

/// A value slot of the lock-free ring (`hchan/ring.rs`): loom's checked
/// cell under `--cfg loom`, so the models catch a read racing a write.
pub(crate) struct SlotCell<T> {
    #[cfg(loom)]
    v: loom::cell::UnsafeCell<std::mem::MaybeUninit<T>>,
    #[cfg(not(loom))]
    v: std::cell::UnsafeCell<std::mem::MaybeUninit<T>>,
}

impl<T> SlotCell<T> {
    pub(crate) fn new() -> SlotCell<T> {
        SlotCell {
            #[cfg(loom)]
            v: loom::cell::UnsafeCell::new(std::mem::MaybeUninit::uninit()),
            #[cfg(not(loom))]
            v: std::cell::UnsafeCell::new(std::mem::MaybeUninit::uninit()),
        }
    }

    /// # Safety
    /// The caller owns the slot (claimed it) and it holds no value.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, x: T) {
        #[cfg(loom)]
        // SAFETY: the caller's contract.
        self.v.with_mut(|p| unsafe { (*p).write(x) });
        #[cfg(not(loom))]
        // SAFETY: the caller's contract.
        unsafe {
            (*self.v.get()).write(x)
        };
    }

    /// Move the value out.
    ///
    /// # Safety
    /// The caller owns the slot (claimed it) and it holds a value.
    #[inline(always)]
    pub(crate) unsafe fn read(&self) -> T {
        #[cfg(loom)]
        // SAFETY: the caller's contract.
        return self.v.with(|p| unsafe { (*p).assume_init_read() });
        #[cfg(not(loom))]
        // SAFETY: the caller's contract.
        unsafe {
            (*self.v.get()).assume_init_read()
        }
    }
}

/// One step of waiting for another thread to finish the few instructions
/// between claiming a ring slot and marking it (`hchan/ring.rs`). Under
/// loom a yield, so that the model lets the other thread run.
#[inline]
pub(crate) fn spin_wait(round: &mut u32) {
    #[cfg(loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        // The other thread may have been preempted by the kernel between
        // the two steps: after a short spin, give it the core.
        *round += 1;
        if *round < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

/// The channel lock (gmp-core's `RawLock`: Go's runtime `lock` shape, a
/// futex sleep after a short spin, a plain-store unlock). It is a raw lock
/// rather than `std::sync::Mutex` because `selectgo` holds the locks of
/// several channels of different element types at once and releases them
/// from type-erased code.
#[cfg(not(loom))]
pub(crate) use gmp_core::rawlock::RawLock;

/// Under loom a spin lock explodes the model (every spin is a branch), so
/// the same raw lock/unlock interface is built on loom's blocking `Mutex`,
/// keeping the guard inside the lock between `lock` and `unlock`.
#[cfg(loom)]
pub(crate) struct RawLock {
    m: loom::sync::Mutex<()>,
    guard: std::cell::UnsafeCell<Option<loom::sync::MutexGuard<'static, ()>>>,
}

#[cfg(loom)]
impl RawLock {
    pub(crate) fn new() -> RawLock {
        RawLock {
            m: loom::sync::Mutex::new(()),
            guard: std::cell::UnsafeCell::new(None),
        }
    }

    pub(crate) fn lock(&self) {
        let g = self.m.lock().unwrap();
        // SAFETY: the guard borrows `self.m`, which does not move while it
        // is locked (channels live in an `Arc`), and `unlock` drops the
        // guard before anyone can drop the lock; the lifetime is erased
        // only to park the guard in `self.guard`, which the lock we now
        // hold makes ours to write.
        unsafe {
            let g: loom::sync::MutexGuard<'static, ()> = std::mem::transmute(g);
            *self.guard.get() = Some(g);
        }
    }

    /// # Safety
    /// The caller holds the lock.
    pub(crate) unsafe fn unlock(&self) {
        // SAFETY: we hold the lock, so the guard slot is ours.
        let g = unsafe { (*self.guard.get()).take() };
        drop(g);
    }
}

/// Why a goroutine parks, as gmp-core's `WaitReason` (shown by the dump).
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    ChanReceive,
    ChanSend,
    ChanReceiveNil,
    Select,
    SelectNoCases,
}

#[cfg(not(loom))]
mod hooks {
    use super::Wait;
    use gmp_core::WaitReason;
    use std::task::{Context, Poll};

    #[inline]
    fn reason(w: Wait) -> WaitReason {
        match w {
            Wait::ChanReceive => WaitReason::ChanReceive,
            Wait::ChanSend => WaitReason::ChanSend,
            Wait::ChanReceiveNil => WaitReason::ChanReceiveNilChan,
            Wait::Select => WaitReason::Select,
            Wait::SelectNoCases => WaitReason::SelectNoCases,
        }
    }

    #[inline]
    pub(crate) fn set_wait_reason(w: Wait) {
        gmp_core::park::set_wait_reason(reason(w));
    }

    /// A park a plain thread may end (the channel was used off-runtime).
    #[inline]
    pub(crate) fn set_wait_reason_external(w: Wait) {
        gmp_core::park::set_wait_reason_external(reason(w));
    }

    /// `poll_proceed`, or `None` off the runtime.
    #[inline]
    pub(crate) fn poll_proceed_on_m(cx: &mut Context<'_>) -> Option<Poll<()>> {
        gmp_core::poll_proceed_on_m(cx)
    }

    #[inline]
    pub(crate) fn in_runtime() -> bool {
        gmp_core::park::in_runtime()
    }

    #[inline]
    pub(crate) fn fastrandn(n: u32) -> u32 {
        gmp_core::rt::fastrandn(n)
    }

    /// Run a future to completion on the calling (non-goroutine) thread.
    pub(crate) fn block_on<F: std::future::Future>(fut: F) -> F::Output {
        use std::sync::Arc;
        use std::task::Wake;
        struct ThreadWaker(std::thread::Thread);
        impl Wake for ThreadWaker {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
            fn wake_by_ref(self: &Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }
}

#[cfg(loom)]
mod hooks {
    use super::Wait;
    use std::task::{Context, Poll};

    pub(crate) fn set_wait_reason(_w: Wait) {}

    pub(crate) fn set_wait_reason_external(_w: Wait) {}

    loom::thread_local! {
        /// Whether this loom thread stands for a goroutine (see
        /// `pretend_goroutine`); by default loom threads are off the
        /// runtime, like plain threads.
        static ON_M: std::cell::Cell<bool> = std::cell::Cell::new(false);
    }

    /// Make the calling loom thread act as a goroutine: its channel
    /// operations do not mark channels as used from outside.
    pub fn pretend_goroutine() {
        ON_M.with(|c| c.set(true));
    }

    pub(crate) fn poll_proceed_on_m(_cx: &mut Context<'_>) -> Option<Poll<()>> {
        ON_M.with(|c| c.get()).then_some(Poll::Ready(()))
    }
    pub(crate) fn in_runtime() -> bool {
        ON_M.with(|c| c.get())
    }
    /// Deterministic under loom: the models explore interleavings, not
    /// poll orders.
    pub(crate) fn fastrandn(_n: u32) -> u32 {
        0
    }
    pub(crate) fn block_on<F: std::future::Future>(fut: F) -> F::Output {
        loom::future::block_on(fut)
    }
}

#[cfg(loom)]
pub use hooks::pretend_goroutine;
pub(crate) use hooks::*;
