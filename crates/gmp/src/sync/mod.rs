//! Go's `sync` package for goroutines: `WaitGroup`, `Mutex` (with Go's
//! normal and starvation modes), `RwMutex` (writer preference), `Once`,
//! `Cond`; and from golang.org/x/sync, `Semaphore` and `ErrGroup`.
//! Each parks with Go's wait reason, so the goroutine dump and the
//! deadlock detector see them.

mod cond;
mod errgroup;
mod mutex;
mod once;
mod rwmutex;
mod semaphore;
mod waitgroup;
mod waitq;

pub use cond::Cond;
pub use errgroup::ErrGroup;
pub use mutex::{Lock, Mutex, MutexGuard};
pub use once::{CallOnce, Once};
pub use rwmutex::{Read, RwMutex, RwMutexReadGuard, RwMutexWriteGuard, Write};
pub use semaphore::{Acquire, Semaphore};
pub use waitgroup::{Wait, WaitGroup};
