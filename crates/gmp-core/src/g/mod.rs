//! G: the goroutine. One heap allocation per goroutine holds its header and
//! its future; this directory owns everything about that allocation.
//!
//! - `header`: the 64-byte header and `GPtr`, the owned reference;
//! - `raw`: the allocation's layout and per-future vtable (`go`/`spawn`);
//! - `waker`: the waker whose data pointer is the G;
//! - `state`: the atomic state word (RUNNING, NOTIFIED, references, ...);
//! - `status`: Go's `_Grunnable`/`_Gwaiting`/... and wait reasons;
//! - `join`: `JoinHandle` and `JoinError`;
//! - `gcache`: recycled allocations (Go's gFree lists);
//! - `allgs`: the registry of live goroutines (Go's `allgs`);
//! - `ancestry`: creation chains for the goroutine profile.

#[cfg(not(loom))]
pub(crate) mod allgs;
#[cfg(not(loom))]
pub(crate) mod ancestry;
#[cfg(not(loom))]
pub(crate) mod gcache;
#[cfg(not(loom))]
mod header;
#[cfg(not(loom))]
pub(crate) mod join;
#[cfg(not(loom))]
mod raw;
pub(crate) mod state;
#[cfg(not(loom))]
pub(crate) mod status;
#[cfg(not(loom))]
mod waker;

#[cfg(not(loom))]
pub(crate) use header::{GPtr, Header, NewG, PollOutcome};
#[cfg(not(loom))]
pub(crate) use raw::{go_vtable, new_go, pre_go, pre_spawn, spawn_vtable};
#[cfg(not(loom))]
pub(crate) use waker::{borrowed_waker, is_own_waker};
