//! The facade's `Runtime` and `Builder`: gmp-core's, with gmp-io's
//! netpoller installed so `gmp::net` and `gmp::time` work in every runtime.

use std::future::Future;
use std::io;

pub use gmp_core::UnhandledPanic;

/// Configures a [`Runtime`]: `Runtime::builder().procs(4).build()?`.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    inner: gmp_core::Builder,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// GOMAXPROCS. Wins over `GMP_MAXPROCS`, as `runtime.GOMAXPROCS(n)`
    /// does in Go; `0` is an error.
    pub fn procs(self, n: usize) -> Builder {
        Builder {
            inner: self.inner.procs(n),
        }
    }

    /// What a panic in a `go` goroutine does: by default Go's (print the
    /// report, exit with code 2); `UnhandledPanic::Ignore` drops it.
    pub fn unhandled_panic(self, policy: UnhandledPanic) -> Builder {
        Builder {
            inner: self.inner.unhandled_panic(policy),
        }
    }

    /// Whether SIGQUIT exits with code 2 after printing the goroutine dump
    /// (default true, as in Go).
    pub fn sigquit_exit(self, exit: bool) -> Builder {
        Builder {
            inner: self.inner.sigquit_exit(exit),
        }
    }

    /// Whether SIGQUIT prints the goroutine dump (and exits with code 2):
    /// default true, as in Go. `false` installs no SIGQUIT handler, for a
    /// program that embeds gmp and keeps SIGQUIT to itself.
    pub fn sigquit_dump(self, dump: bool) -> Builder {
        Builder {
            inner: self.inner.sigquit_dump(dump),
        }
    }

    #[doc(hidden)]
    pub fn exit_on_deadlock(self, exit: bool) -> Builder {
        Builder {
            inner: self.inner.exit_on_deadlock(exit),
        }
    }

    /// Fails with `InvalidInput` for `procs(0)` or a malformed
    /// `GMP_MAXPROCS` (the message names the variable).
    pub fn build(self) -> io::Result<Runtime> {
        let inner = self.inner.netpoller(gmp_io::netpoller_factory()).build()?;
        Ok(Runtime { inner })
    }
}

/// A gmp runtime. `block_on` runs a future as goroutine 1 (main) on the
/// calling thread; when it returns, the remaining goroutines are dropped.
#[derive(Debug)]
pub struct Runtime {
    inner: gmp_core::Runtime,
}

impl Runtime {
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with GOMAXPROCS from `GMP_MAXPROCS` or the CPU count.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// GOMAXPROCS of this runtime.
    pub fn procs(&self) -> usize {
        self.inner.procs()
    }

    /// Run `fut` as main (goroutine 1) until it completes; see
    /// [`gmp_core::Runtime::block_on`].
    #[track_caller]
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.inner.block_on_at(fut, std::panic::Location::caller())
    }

    #[doc(hidden)]
    pub fn block_on_at<F: Future>(
        &self,
        fut: F,
        site: &'static std::panic::Location<'static>,
    ) -> F::Output {
        self.inner.block_on_at(fut, site)
    }
}
