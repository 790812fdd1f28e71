//! gmp: Go's concurrency model for Rust. Goroutines on a faithful G-P-M
//! scheduler, channels with Go's semantics and a real `select!`.
//!
//! ```no_run
//! #[gmp::main]
//! async fn main() {
//!     let h = gmp::spawn(async { 6 * 7 });
//!     println!("{}", h.await.unwrap());
//! }
//! ```

mod rt;

pub use gmp_core::{go, spawn, syscall, JoinError, JoinHandle};
pub use gmp_macros::{main, test};
pub use rt::{Builder, Runtime, UnhandledPanic};

/// Go's channels: `bounded`, `never`, `Sender`, `Receiver` and errors.
pub mod chan {
    pub use gmp_chan::*;
}
pub use gmp_chan::select;

/// Go's `net` package: TCP, UDP and Unix sockets on the netpoller.
pub mod net {
    pub use gmp_io::{
        OwnedReadHalf, OwnedWriteHalf, ReadHalf, TcpListener, TcpStream, UdpSocket, WriteHalf,
    };
    #[cfg(unix)]
    pub use gmp_io::{UnixListener, UnixStream};

    /// TCP's stream halves (also at `gmp::net` itself).
    pub mod tcp {
        pub use gmp_io::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
    }

    /// [`UnixStream`](super::UnixStream)'s halves.
    #[cfg(unix)]
    pub mod unix {
        pub use gmp_io::unix_halves::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
    }
}

/// Go's `context` package.
pub mod context;

/// HTTP on gmp (feature `http`): `serve`, `get`, `Client`, `pprof_handler`
/// and hyper's runtime traits; see the `gmp-http` crate.
#[cfg(feature = "http")]
pub mod http {
    pub use gmp_http::*;
}

/// A context is a shutdown signal for `gmp::http::serve(..).with_shutdown`.
#[cfg(feature = "http")]
impl gmp_http::ShutdownSignal for context::Context {
    fn done(&self) -> chan::Receiver<()> {
        context::Context::done(self)
    }
}

/// Go's `os/signal`: `notify` delivers signals as channel values.
#[cfg(unix)]
pub mod signal;

/// Go's `sync` package.
pub mod sync;

/// Go's `time` package: sleeps, `after`, `Ticker`, `timeout`.
pub mod time;

/// Go's `runtime` package.
pub mod runtime {
    pub use crate::rt::{Builder, Runtime, UnhandledPanic};
    pub use gmp_core::rt::{
        dump, fastrandn, goid, gomaxprocs, goroutines, gosched, metrics, num_goroutine,
        GoroutineInfo, Gosched, Histogram, Metrics, G_HEADER_SIZE,
    };
    pub use gmp_core::{
        parse_debug, parse_maxprocs, DebugConfig, GStatus, WaitReason, DEBUG_ENV, MAXPROCS_ENV,
    };
}

#[doc(hidden)]
pub mod __private {
    /// `#[gmp::main]` runtime construction: a bad configuration (e.g. a
    /// malformed `GMP_MAXPROCS`) prints the error and exits with code 2.
    pub fn build_or_exit(procs: Option<usize>) -> crate::Runtime {
        let mut b = crate::Runtime::builder().exit_on_deadlock(true);
        if let Some(n) = procs {
            b = b.procs(n);
        }
        match b.build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("gmp: {e}");
                std::process::exit(2);
            }
        }
    }

    /// `#[gmp::main]`'s `block_on`: a deadlock ends the process with exit
    /// code 2 as in Go (the report is already on stderr); other panics
    /// unwind as usual.
    #[track_caller]
    pub fn block_on_main<F: std::future::Future>(rt: &crate::Runtime, fut: F) -> F::Output {
        let site = std::panic::Location::caller();
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on_at(fut, site)));
        match r {
            Ok(v) => v,
            Err(p) => {
                let text = p
                    .downcast_ref::<String>()
                    .map(|s| s.as_str())
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("");
                if text.starts_with(gmp_core::DEADLOCK_MSG) {
                    std::process::exit(2);
                }
                std::panic::resume_unwind(p)
            }
        }
    }

    /// `#[gmp::main]` on a `Result`-returning main: print `Error: {e:?}`
    /// and exit with code 1, as Rust's `main` does.
    pub trait MainResult {
        fn report(self);
    }
    impl MainResult for () {
        fn report(self) {}
    }
    impl<E: std::fmt::Debug> MainResult for Result<(), E> {
        fn report(self) {
            if let Err(e) = self {
                eprintln!("Error: {e:?}");
                std::process::exit(1);
            }
        }
    }
}
