//! Diagnostics: what the runtime tells about itself. Nothing here is on the
//! scheduler's hot path except the trace hooks, which are one flag check
//! when tracing is off.
//!
//! - `dump`: the goroutine dump (Go's traceback of all goroutines);
//! - `checkdead`: the deadlock detector;
//! - `schedtrace`: `GMP_DEBUG` parsing and the schedtrace lines;
//! - `trace`, `trace_json`: the streaming execution trace;
//! - `metrics`: counters and histograms;
//! - `profile`, `protobuf`: the goroutine profile in pprof's format;
//! - `leakcheck`: goroutines still blocked when main returns;
//! - `sigquit`: the SIGQUIT dump;
//! - `registry`: the lists of live runtimes and trace buffers those use.

pub(crate) mod checkdead;
pub(crate) mod dump;
pub(crate) mod leakcheck;
pub(crate) mod metrics;
pub(crate) mod profile;
mod protobuf;
mod registry;
pub(crate) mod schedtrace;
#[doc(hidden)]
pub mod sigquit;
pub mod trace;
mod trace_json;
