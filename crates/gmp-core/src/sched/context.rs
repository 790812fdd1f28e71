//! The M context (Go's `getg().m`): the thread-local that makes a thread
//! an M of one runtime while it runs the scheduler, and what the M keeps
//! there (its P, the goroutine it polls, the time slice's budget, the
//! flags a poll leaves for the scheduler).

use super::{Sched, BUDGET};
use crate::g::status::WaitReason;
use crate::g::{GPtr, Header};
use crate::m::M;
use crate::p::P;
use std::cell::{Cell, RefCell};
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// The M-local context (Go's `getg().m`), installed in a thread-local
/// while a thread acts as an M of some runtime.
pub(crate) struct MCtx {
    pub(crate) sched: Arc<Sched>,
    pub(crate) m: Arc<M>,
    pub(crate) p: CurP,
    pub(crate) curg: Cell<Option<NonNull<Header>>>,
    pub(crate) budget: Cell<u32>,
    /// The current G asked to go to the global queue's tail (gosched,
    /// preemption) rather than the local tail.
    pub(crate) yield_global: Cell<bool>,
    /// The current G yielded through its own waker without the wake CAS.
    pub(crate) self_yield: Cell<bool>,
    pub(crate) wait_reason: Cell<WaitReason>,
    /// The park about to happen can be completed by a plain thread.
    pub(crate) wait_external: Cell<bool>,
    pub(crate) spinning: Cell<bool>,
    /// Inside `gmp::syscall`'s closure: a spawn or wake from there never
    /// waits for a P.
    pub(crate) in_syscall: Cell<bool>,
    pub(super) rng: Cell<u64>,
    /// While polling the netpoller: woken Gs are collected, then injected.
    pub(super) batch: RefCell<Option<Vec<GPtr>>>,
    pub(crate) trace_buf: Arc<crate::diag::trace::MBuf>,
    /// The version of the scheduler loop running: traced or not.
    pub(crate) traced: Cell<bool>,
}

thread_local! {
    static CURRENT: Cell<*const MCtx> = const { Cell::new(ptr::null()) };
}

/// Run `f` with the current M context, if this thread is an M.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&MCtx) -> R) -> Option<R> {
    CURRENT.with(|c| {
        let p = c.get();
        if p.is_null() {
            None
        } else {
            // SAFETY: the pointer is installed by `enter` for the lifetime
            // of a stack frame that outlives every use on this thread.
            Some(f(unsafe { &*p }))
        }
    })
}

/// Like `with_current`, panicking with a clear message outside a runtime.
#[track_caller]
pub(crate) fn expect_current<R>(what: &str, f: impl FnOnce(&MCtx) -> R) -> R {
    match with_current(f) {
        Some(r) => r,
        None => panic!(
            "{what} called outside a gmp runtime: call it from a goroutine, inside \
             Runtime::block_on or a #[gmp::main] / #[gmp::test] function"
        ),
    }
}

/// Installs `ctx` as this thread's M context until the guard drops.
pub(crate) struct Enter {
    prev: *const MCtx,
}

impl Enter {
    pub(crate) fn new(ctx: &MCtx) -> Enter {
        let prev = CURRENT.with(|c| c.replace(ctx as *const MCtx));
        Enter { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}

pub(crate) fn on_m() -> bool {
    CURRENT.with(|c| !c.get().is_null())
}

impl MCtx {
    pub(crate) fn new(sched: Arc<Sched>, m: Arc<M>) -> MCtx {
        let seed = crate::rand::seed(m.id);
        let p = CurP::new(&sched.allp);
        MCtx {
            sched,
            m,
            p,
            curg: Cell::new(None),
            budget: Cell::new(BUDGET),
            yield_global: Cell::new(false),
            self_yield: Cell::new(false),
            wait_reason: Cell::new(WaitReason::None),
            wait_external: Cell::new(false),
            spinning: Cell::new(false),
            in_syscall: Cell::new(false),
            rng: Cell::new(seed),
            batch: RefCell::new(None),
            trace_buf: crate::diag::trace::MBuf::new(),
            traced: Cell::new(false),
        }
    }

    #[inline]
    pub(crate) fn fastrand(&self) -> u64 {
        crate::rand::next(&self.rng)
    }

    /// The goroutine this M is polling, if any. For code that runs inside
    /// the poll (the goroutine and what it calls): the scheduler, which
    /// sets and clears `curg` around the poll, does not hold the result
    /// across it.
    #[inline]
    pub(crate) fn curg_header(&self) -> Option<&Header> {
        // SAFETY: curg is Some only while this M polls that G, holding its
        // runnable reference, so the G is alive; per the contract above the
        // borrow ends before the poll does.
        self.curg.get().map(|g| unsafe { &*g.as_ptr() })
    }

    /// Current goroutine id (0 when not in a goroutine).
    pub(crate) fn goid(&self) -> u64 {
        self.curg_header().map_or(0, |h| h.goid)
    }

    #[inline]
    pub(crate) fn curp(&self) -> Option<&P> {
        self.p.ptr()
    }
}

/// The P an M holds: its id, and its address cached beside it. Finding a
/// P by id in the segmented `allp` is a leading-zero count, shifts and
/// checks, and every channel operation's budget check reads the P's
/// preempt flag; `set` does that lookup once.
pub(crate) struct CurP {
    /// The runtime's `allp`, inside the `Arc<Sched>` the M context holds,
    /// so it outlives this.
    allp: NonNull<crate::allp::AllP>,
    id: Cell<Option<usize>>,
    ptr: Cell<Option<NonNull<P>>>,
}

impl CurP {
    fn new(allp: &crate::allp::AllP) -> CurP {
        CurP {
            allp: NonNull::from(allp),
            id: Cell::new(None),
            ptr: Cell::new(None),
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> Option<usize> {
        self.id.get()
    }

    #[inline]
    pub(crate) fn set(&self, id: Option<usize>) {
        self.id.set(id);
        // SAFETY: `allp` points into the Sched the M context keeps alive;
        // Ps are never freed while it lives.
        let allp = unsafe { self.allp.as_ref() };
        self.ptr.set(id.map(|i| NonNull::from(&allp[i])));
    }

    pub(crate) fn replace(&self, id: Option<usize>) -> Option<usize> {
        let old = self.get();
        self.set(id);
        old
    }

    pub(crate) fn take(&self) -> Option<usize> {
        self.replace(None)
    }

    #[inline]
    fn ptr(&self) -> Option<&P> {
        // SAFETY: set from `allp`, whose Ps live as long as the Sched the
        // M context keeps alive (see `set`).
        self.ptr.get().map(|p| unsafe { p.as_ref() })
    }
}
