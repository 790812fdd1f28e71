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
pub use rt::{Builder, Runtime, UnhandledPanic};
pub use gmp_macros::{main, test};

/// Go's channels: `bounded`, `never`, `Sender`, `Receiver` and errors.
pub mod chan {
    pub use gmp_chan::*;
}

/// Go's `time` package: sleeps, `after`, `Ticker`, `timeout`.
pub mod time;

/// Go's `runtime` package.
pub mod runtime {
    pub use gmp_core::rt::{
        dump, fastrandn, gomaxprocs, goid, goroutines, gosched, metrics, num_goroutine, GoroutineInfo,
        Gosched, Histogram, Metrics,
        G_HEADER_SIZE,
    };
    pub use crate::rt::{Builder, Runtime, UnhandledPanic};
    pub use gmp_core::{parse_maxprocs, GStatus, WaitReason, MAXPROCS_ENV};
}

#[doc(hidden)]
pub mod __private {
    /// `#[gmp::main]` runtime construction: a bad configuration (e.g. a
    /// malformed `GMP_MAXPROCS`) prints the error and exits with code 2.
    pub fn build_or_exit(procs: Option<usize>) -> crate::Runtime {
        let mut b = crate::Runtime::builder();
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
