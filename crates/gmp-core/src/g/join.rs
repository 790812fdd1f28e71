//! `JoinHandle<T>`: awaiting a `spawn`ed goroutine, and `JoinError`.

use crate::g::status::WaitReason;
use crate::g::Header;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::task::{Context, Poll};

/// Awaits the result of a goroutine started with [`spawn`](crate::spawn).
///
/// Dropping the handle detaches the goroutine; it keeps running.
pub struct JoinHandle<T> {
    g: NonNull<Header>,
    _t: PhantomData<T>,
}

// SAFETY: the handle only moves `T` (which must be Send) out of the G.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` exposes nothing but `goid`.
unsafe impl<T: Send> Sync for JoinHandle<T> {}
impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    /// `g` is a `spawn` G of output `T` whose HANDLE flag is set.
    pub(crate) unsafe fn new(g: NonNull<Header>) -> Self {
        JoinHandle { g, _t: PhantomData }
    }

    fn header(&self) -> &Header {
        // SAFETY: the HANDLE flag keeps the allocation alive.
        unsafe { self.g.as_ref() }
    }

    /// The goroutine id of the spawned goroutine.
    pub fn goid(&self) -> u64 {
        self.header().goid
    }

    /// True once the goroutine has finished.
    pub fn is_finished(&self) -> bool {
        self.header().state.load() & (crate::g::state::COMPLETE | crate::g::state::CLOSED) != 0
    }

    fn read_output(&self) -> Result<T, JoinError> {
        let mut out = MaybeUninit::<Result<T, JoinError>>::uninit();
        // SAFETY: take_output/drop_handle gave us ownership of the output;
        // the vtable belongs to a JoinKind<T> G.
        unsafe {
            (self.header().vtable.read_output)(self.g, out.as_mut_ptr() as *mut ());
            out.assume_init()
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let h = self.header();
        loop {
            match h.state.take_output() {
                Ok(true) => return Poll::Ready(self.read_output()),
                Err(()) => {
                    return Poll::Ready(Err(JoinError {
                        goid: h.goid,
                        panic: None,
                    }))
                }
                Ok(false) => {}
            }
            if let Some(mut slot) = h.awaiter_for_register() {
                match &*slot {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
                drop(slot);
                crate::park::set_wait_reason(WaitReason::Join);
                return Poll::Pending;
            }
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let (take, free) = self.header().state.drop_handle();
        if take {
            drop(self.read_output());
        }
        if free {
            // SAFETY: no references and no handle remain.
            unsafe { (self.header().vtable.dealloc)(self.g) }
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("goid", &self.goid())
            .finish()
    }
}

/// A spawned goroutine did not produce its value: it panicked, or the
/// runtime ended (main returned) before it finished.
pub struct JoinError {
    pub(crate) goid: u64,
    /// The panic payload (in a mutex only so that `JoinError` is `Sync`,
    /// as `Box<dyn Error + Send + Sync>` needs).
    pub(crate) panic: Option<Mutex<Box<dyn Any + Send + 'static>>>,
}

impl JoinError {
    /// The goroutine panicked.
    pub fn is_panic(&self) -> bool {
        self.panic.is_some()
    }

    /// The runtime shut down before the goroutine finished.
    pub fn is_cancelled(&self) -> bool {
        self.panic.is_none()
    }

    /// The id of the goroutine that failed.
    pub fn goid(&self) -> u64 {
        self.goid
    }

    /// The panic payload, to re-raise with `std::panic::resume_unwind`.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .unwrap_or_else(|_| panic!("JoinError::into_panic: the goroutine did not panic"))
    }

    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.panic {
            Some(p) => Ok(p.into_inner().unwrap_or_else(|e| e.into_inner())),
            None => Err(self),
        }
    }

    fn message(&self) -> Option<String> {
        let p = self
            .panic
            .as_ref()?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.downcast_ref::<&'static str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.panic, self.message()) {
            (Some(_), Some(m)) => write!(f, "goroutine {} panicked: {}", self.goid, m),
            (Some(_), None) => write!(f, "goroutine {} panicked", self.goid),
            (None, _) => write!(
                f,
                "goroutine {} was cancelled: the runtime ended before it finished",
                self.goid
            ),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.panic {
            Some(_) => write!(f, "JoinError::Panic({}, {:?})", self.goid, self.message()),
            None => write!(f, "JoinError::Cancelled({})", self.goid),
        }
    }
}

impl std::error::Error for JoinError {}
