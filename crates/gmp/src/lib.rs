//! gmp: Go's concurrency model for Rust. Goroutines on a faithful G-P-M
//! scheduler, channels with Go's semantics and a real `select!`.
//!
//! ```
//! #[gmp::main]
//! async fn main() {
//!     let h = gmp::spawn(async { 6 * 7 });
//!     println!("{}", h.await.unwrap());
//! }
//! ```

mod rt;
mod testing;

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
        dump, fastrandn, goid, gomaxprocs, goroutine_profile, goroutines, gosched, metrics,
        num_goroutine, set_gomaxprocs, GoroutineInfo, Gosched, Histogram, Metrics, G_HEADER_SIZE,
        MAX_GOMAXPROCS,
    };
    pub use gmp_core::{
        parse_debug, parse_maxprocs, DebugConfig, GStatus, WaitReason, DEBUG_ENV, MAXPROCS_ENV,
    };

    /// Go's `runtime/trace`: `start(path)` / `stop()` trace a window of a
    /// running program into a Chrome trace-event file (Perfetto opens it);
    /// `GMP_TRACE=file` traces the whole run.
    pub mod trace {
        pub use gmp_core::trace::{finish_on_exit, start, stop, TRACE_ENV};
    }
}

#[doc(hidden)]
pub mod __private {
    pub use crate::testing::{test_main, TestOutcome};

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

    /// Main's future, run in the fastest shape it allows: an ordinary
    /// goroutine 1 that any M polls when it is `Send + 'static`, else
    /// locked to this thread (`block_on`). The choice is made at compile
    /// time by autoref: `(&&MainFut::new(f)).run_main(..)` resolves to
    /// [`RunAsGoroutine`] on `&MainFut<F>` when its bounds hold and falls
    /// back to [`RunOnThisThread`] on `MainFut<F>`.
    pub struct MainFut<F>(std::cell::Cell<Option<F>>);

    /// Where main was written (for the goroutine dump and profile).
    pub type Site = &'static std::panic::Location<'static>;

    impl<F> MainFut<F> {
        pub fn new(f: F) -> Self {
            MainFut(std::cell::Cell::new(Some(f)))
        }

        fn take(&self) -> F {
            self.0.take().expect("gmp: main future taken twice")
        }
    }

    pub trait RunAsGoroutine {
        type Output;
        fn run_main(&self, rt: &crate::Runtime, site: Site) -> Self::Output;
    }

    impl<F> RunAsGoroutine for &MainFut<F>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        type Output = F::Output;
        fn run_main(&self, rt: &crate::Runtime, site: Site) -> F::Output {
            rt.block_on_goroutine_at(self.take(), site)
        }
    }

    pub trait RunOnThisThread {
        type Output;
        fn run_main(&self, rt: &crate::Runtime, site: Site) -> Self::Output;
    }

    impl<F: std::future::Future> RunOnThisThread for MainFut<F> {
        type Output = F::Output;
        fn run_main(&self, rt: &crate::Runtime, site: Site) -> F::Output {
            rt.block_on_at(self.take(), site)
        }
    }

    /// `#[gmp::main]`: run main; a panic in it (already reported by the
    /// panic hook) or a deadlock (already reported by the runtime) ends
    /// the process with code 2, as in Go.
    pub fn main_or_exit<R>(run: impl FnOnce() -> R) -> R {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(r) => r,
            Err(_) => exit_now(2),
        }
    }

    /// End the process at once, as Go does when main returns: flush
    /// stdout (the trace file is complete by now) and exit, without
    /// waiting for goroutines still inside a syscall or a long poll.
    pub fn exit_now(code: i32) -> ! {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        gmp_core::trace::finish_on_exit();
        std::process::exit(code)
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
                exit_now(1);
            }
        }
    }
}
