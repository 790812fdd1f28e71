//! Go's `sync` package for goroutines: `WaitGroup`, `Mutex` (with Go's
//! normal and starvation modes), `RwMutex` (writer preference), `Once`.
//! Each parks with Go's wait reason, so the goroutine dump and the
//! deadlock detector see them.

mod mutex;
mod once;
mod rwmutex;
mod waitgroup;
mod waitq;

pub use mutex::{Lock, Mutex, MutexGuard};
pub use once::{CallOnce, Once};
pub use rwmutex::{Read, RwMutex, RwMutexReadGuard, RwMutexWriteGuard, Write};
pub use waitgroup::{Wait, WaitGroup};
