//! `sync.RWMutex`: many readers or one writer; a waiting writer blocks new
//! readers (so writers are not starved), and a writer's unlock lets the
//! readers that queued behind it in before the next writer.

use super::waitq::{wake_all, WaitQueue, Waiter};
use gmp_core::WaitReason;
use std::cell::UnsafeCell;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll, Waker};

/// Go's `sync.RWMutex`, owning the data it protects.
pub struct RwMutex<T: ?Sized> {
    st: StdMutex<State>,
    data: UnsafeCell<T>,
}

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
    rq: WaitQueue,
    wq: WaitQueue,
}

// SAFETY: readers share `&T` (needs Sync), the writer gets `&mut T`.
unsafe impl<T: ?Sized + Send> Send for RwMutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwMutex<T> {}

impl<T: ?Sized> std::fmt::Debug for RwMutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.st.lock().unwrap();
        f.debug_struct("RwMutex")
            .field("readers", &s.readers)
            .field("writer", &s.writer)
            .finish_non_exhaustive()
    }
}

impl<T: Default> Default for RwMutex<T> {
    fn default() -> Self {
        RwMutex::new(T::default())
    }
}

impl<T> RwMutex<T> {
    pub fn new(v: T) -> RwMutex<T> {
        RwMutex {
            st: StdMutex::new(State::default()),
            data: UnsafeCell::new(v),
        }
    }

    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl State {
    fn read_unlock(&mut self) -> Vec<Option<Waker>> {
        self.readers -= 1;
        if self.readers == 0 && !self.writer {
            if let Some(w) = self.wq.pop_front() {
                self.writer = true;
                return vec![w.grant()];
            }
        }
        Vec::new()
    }

    fn write_unlock(&mut self) -> Vec<Option<Waker>> {
        self.writer = false;
        if !self.rq.is_empty() {
            self.readers += self.rq.len();
            return self.rq.drain().map(|w| w.grant()).collect();
        }
        if let Some(w) = self.wq.pop_front() {
            self.writer = true;
            return vec![w.grant()];
        }
        Vec::new()
    }
}

impl<T: ?Sized> RwMutex<T> {
    /// Shared access.
    pub fn read(&self) -> Read<'_, T> {
        Read {
            m: self,
            waiter: None,
        }
    }

    /// Exclusive access.
    pub fn write(&self) -> Write<'_, T> {
        Write {
            m: self,
            waiter: None,
        }
    }
}

/// Future returned by [`RwMutex::read`].
#[must_use = "futures do nothing unless awaited"]
pub struct Read<'a, T: ?Sized> {
    m: &'a RwMutex<T>,
    waiter: Option<Arc<Waiter>>,
}

/// Future returned by [`RwMutex::write`].
#[must_use = "futures do nothing unless awaited"]
pub struct Write<'a, T: ?Sized> {
    m: &'a RwMutex<T>,
    waiter: Option<Arc<Waiter>>,
}

/// Which side of the lock a waiter wants.
#[derive(Clone, Copy)]
enum Mode {
    Read,
    Write,
}

impl State {
    /// Take the lock at once if nobody is in the way (a queued writer is:
    /// it holds back new readers).
    fn try_take(&mut self, mode: Mode) -> bool {
        let free = match mode {
            Mode::Read => !self.writer && self.wq.is_empty(),
            Mode::Write => !self.writer && self.readers == 0 && self.wq.is_empty(),
        };
        if free {
            match mode {
                Mode::Read => self.readers += 1,
                Mode::Write => self.writer = true,
            }
        }
        free
    }

    fn queue(&mut self, mode: Mode) -> &mut WaitQueue {
        match mode {
            Mode::Read => &mut self.rq,
            Mode::Write => &mut self.wq,
        }
    }
}

impl<T: ?Sized> RwMutex<T> {
    /// Both futures' poll: Ready once the lock is held in `mode` (taken
    /// now, or granted by an unlock while queued).
    fn poll_acquire(
        &self,
        waiter: &mut Option<Arc<Waiter>>,
        mode: Mode,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        if gmp_core::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let mut s = self.st.lock().unwrap();
        match waiter {
            Some(w) if w.is_granted() => {
                drop(s);
                *waiter = None;
                return Poll::Ready(());
            }
            Some(w) => w.update(cx.waker()),
            None => {
                if s.try_take(mode) {
                    return Poll::Ready(());
                }
                let w = Waiter::new(cx.waker());
                s.queue(mode).push_back(w.clone());
                drop(s);
                *waiter = Some(w);
            }
        }
        gmp_core::park::set_wait_reason(match mode {
            Mode::Read => WaitReason::SyncRWMutexRLock,
            Mode::Write => WaitReason::SyncRWMutexLock,
        });
        Poll::Pending
    }
}

impl<'a, T: ?Sized> Future for Read<'a, T> {
    type Output = RwMutexReadGuard<'a, T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let m = self.m;
        m.poll_acquire(&mut self.waiter, Mode::Read, cx)
            .map(|()| RwMutexReadGuard { m })
    }
}

impl<T: ?Sized> Drop for Read<'_, T> {
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else { return };
        let mut s = self.m.st.lock().unwrap();
        if !s.rq.remove(&w) && w.is_granted() {
            let wake = s.read_unlock();
            drop(s);
            wake_all(wake);
        }
    }
}

impl<'a, T: ?Sized> Future for Write<'a, T> {
    type Output = RwMutexWriteGuard<'a, T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let m = self.m;
        m.poll_acquire(&mut self.waiter, Mode::Write, cx)
            .map(|()| RwMutexWriteGuard { m })
    }
}

impl<T: ?Sized> Drop for Write<'_, T> {
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else { return };
        let mut s = self.m.st.lock().unwrap();
        let wake = if s.wq.remove(&w) {
            // A queued writer was holding back new readers; if it was the
            // last writer and no one holds the lock, let them in.
            if s.wq.is_empty() && !s.writer {
                s.readers += s.rq.len();
                s.rq.drain().map(|w| w.grant()).collect()
            } else {
                Vec::new()
            }
        } else if w.is_granted() {
            s.write_unlock()
        } else {
            Vec::new()
        };
        drop(s);
        wake_all(wake);
    }
}

/// Shared access to an [`RwMutex`]'s data.
#[must_use = "the lock is released as soon as the guard drops"]
pub struct RwMutexReadGuard<'a, T: ?Sized> {
    m: &'a RwMutex<T>,
}

/// Exclusive access to an [`RwMutex`]'s data.
#[must_use = "the lock is released as soon as the guard drops"]
pub struct RwMutexWriteGuard<'a, T: ?Sized> {
    m: &'a RwMutex<T>,
}

impl<T: ?Sized> Deref for RwMutexReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer holds the lock.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> Deref for RwMutexWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write guard proves exclusive access.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwMutexWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write guard proves exclusive access.
        unsafe { &mut *self.m.data.get() }
    }
}

impl<T: ?Sized> Drop for RwMutexReadGuard<'_, T> {
    fn drop(&mut self) {
        let wake = self.m.st.lock().unwrap().read_unlock();
        wake_all(wake);
    }
}

impl<T: ?Sized> Drop for RwMutexWriteGuard<'_, T> {
    fn drop(&mut self) {
        let wake = self.m.st.lock().unwrap().write_unlock();
        wake_all(wake);
    }
}
