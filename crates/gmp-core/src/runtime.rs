//! `Runtime` and its `Builder`: GOMAXPROCS, the unhandled-panic policy, the
//! netpoller hook, and `block_on`, which runs a future as goroutine 1 on
//! the calling thread (M0) and tears the goroutine world down when it
//! returns, as Go's `main` does.

use crate::g::Header;
use crate::netpoll::NetpollerFactory;
use crate::sched::{self, expect_current, on_m, Config, Sched};
use crate::{g, JoinHandle};
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// The environment variable read for GOMAXPROCS when code sets none.
pub const MAXPROCS_ENV: &str = "GMP_MAXPROCS";

/// What a panic in a goroutine started with `go` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnhandledPanic {
    /// Print Go's panic report and exit the process with code 2 (Go).
    #[default]
    ExitProcess,
    /// Drop the goroutine and carry on.
    Ignore,
}

/// Configures a [`Runtime`].
#[derive(Clone, Default)]
pub struct Builder {
    procs: Option<usize>,
    exit_on_deadlock: bool,
    no_sigquit_exit: bool,
    no_sigquit_dump: bool,
    unhandled_panic: UnhandledPanic,
    netpoller: Option<NetpollerFactory>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("procs", &self.procs)
            .field("unhandled_panic", &self.unhandled_panic)
            .field("netpoller", &self.netpoller.is_some())
            .finish()
    }
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// GOMAXPROCS: how many Ps (goroutines running in parallel). Wins over
    /// `GMP_MAXPROCS`, as `runtime.GOMAXPROCS(n)` does in Go.
    pub fn procs(mut self, n: usize) -> Builder {
        self.procs = Some(n);
        self
    }

    /// What a panic in a `go` goroutine does (default: exit with code 2).
    pub fn unhandled_panic(mut self, policy: UnhandledPanic) -> Builder {
        self.unhandled_panic = policy;
        self
    }

    /// Whether SIGQUIT, after printing the goroutine dump, exits the
    /// process with code 2 (default true, as in Go).
    pub fn sigquit_exit(mut self, exit: bool) -> Builder {
        self.no_sigquit_exit = !exit;
        self
    }

    /// Whether this runtime installs the SIGQUIT dump action (default
    /// true, as in Go). `false` registers no handler at all: a program
    /// that embeds gmp keeps SIGQUIT to itself.
    pub fn sigquit_dump(mut self, dump: bool) -> Builder {
        self.no_sigquit_dump = !dump;
        self
    }

    /// On a deadlock, print Go's report and exit with code 2 instead of
    /// panicking in `block_on` (what `#[gmp::main]` wants).
    #[doc(hidden)]
    pub fn exit_on_deadlock(mut self, exit: bool) -> Builder {
        self.exit_on_deadlock = exit;
        self
    }

    /// Install the netpoller (the `gmp` facade does this).
    #[doc(hidden)]
    pub fn netpoller(mut self, factory: NetpollerFactory) -> Builder {
        self.netpoller = Some(factory);
        self
    }

    /// Resolve the configuration. Fails with `InvalidInput` for `procs(0)`
    /// or a malformed `GMP_MAXPROCS`.
    pub fn build(self) -> io::Result<Runtime> {
        let procs = match self.procs {
            Some(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "gmp: procs must be at least 1",
                ))
            }
            Some(n) => n,
            None => match std::env::var_os(MAXPROCS_ENV) {
                // Empty means unset, as for Go's GOMAXPROCS.
                Some(v) if !v.is_empty() => parse_maxprocs(&v.to_string_lossy())?,
                _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        };
        let debug = match std::env::var(crate::schedtrace::DEBUG_ENV) {
            Ok(v) => crate::schedtrace::parse_debug(&v)?,
            Err(std::env::VarError::NotPresent) => Default::default(),
            Err(std::env::VarError::NotUnicode(v)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}={v:?} is not valid UTF-8", crate::schedtrace::DEBUG_ENV),
                ))
            }
        };
        let trace = match std::env::var(crate::trace::TRACE_ENV) {
            Ok(v) => Some(crate::trace::parse_trace(&v)?),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(v)) => Some(std::path::PathBuf::from(v)),
        };
        Ok(Runtime {
            procs,
            exit_on_deadlock: self.exit_on_deadlock,
            trace,
            sigquit_exit: !self.no_sigquit_exit,
            sigquit_dump: !self.no_sigquit_dump,
            unhandled_panic: self.unhandled_panic,
            debug,
            netpoller: self.netpoller,
        })
    }
}

/// Parse a `GMP_MAXPROCS` value: a positive integer, nothing else.
pub fn parse_maxprocs(v: &str) -> io::Result<usize> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 && n <= 1 << 16 => Ok(n),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{MAXPROCS_ENV}={v:?} is not valid: expected a positive integer (GOMAXPROCS)"),
        )),
    }
}

/// A gmp runtime: GOMAXPROCS Ps, Ms on demand, sysmon.
///
/// Each `block_on` runs a whole Go program: its future is goroutine 1
/// (main); when it returns, every other goroutine is dropped.
pub struct Runtime {
    procs: usize,
    exit_on_deadlock: bool,
    trace: Option<std::path::PathBuf>,
    sigquit_exit: bool,
    sigquit_dump: bool,
    unhandled_panic: UnhandledPanic,
    debug: crate::schedtrace::DebugConfig,
    netpoller: Option<NetpollerFactory>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("procs", &self.procs)
            .finish()
    }
}

impl Runtime {
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with the default configuration.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// GOMAXPROCS of this runtime.
    pub fn procs(&self) -> usize {
        self.procs
    }

    /// Run `fut` as the main goroutine on this thread until it completes,
    /// running other goroutines here and on other Ms meanwhile. When it
    /// returns, in-flight polls finish, nothing is polled again, and the
    /// remaining goroutines are dropped.
    ///
    /// Panics if called from inside a gmp runtime (use `.await`), or if the
    /// netpoller cannot be created. A panic in `fut` is re-raised here
    /// after teardown.
    #[track_caller]
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.block_on_at(fut, Location::caller())
    }

    /// `block_on` recording `site` as main's creation site (for wrappers
    /// such as `#[gmp::main]`, whose caller location would be their own).
    #[doc(hidden)]
    pub fn block_on_at<F: Future>(&self, fut: F, site: &'static Location<'static>) -> F::Output {
        if on_m() {
            panic!(
                "Runtime::block_on called from inside a gmp runtime: \
                 a goroutine must .await instead of blocking its M"
            );
        }
        let netpoll = self
            .netpoller
            .as_ref()
            .map(|f| f().unwrap_or_else(|e| panic!("gmp: cannot create the netpoller: {e}")));
        let sched = Sched::new(
            self.procs,
            Config {
                unhandled_panic: self.unhandled_panic,
                debug: self.debug,
                sigquit_exit: self.sigquit_exit,
                trace: self.trace.clone(),
                exit_on_deadlock: self.exit_on_deadlock,
            },
            netpoll,
        );
        let main_g = sched::new_main_g(&sched, site);
        let main_ptr = main_g.as_ptr();
        sched.set_main(main_g);
        crate::sysmon::start(&sched);
        if self.sigquit_dump {
            crate::sigquit::register(&sched);
        }
        let mut fut = std::pin::pin!(fut);
        let mut out: Option<std::thread::Result<F::Output>> = None;
        sched::run_main(&sched, &mut |_ctx| {
            let waker = g::borrowed_waker(main_ptr);
            let mut cx = Context::from_waker(&waker);
            match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
                Ok(Poll::Pending) => false,
                Ok(Poll::Ready(v)) => {
                    out = Some(Ok(v));
                    true
                }
                Err(p) => {
                    out = Some(Err(p));
                    true
                }
            }
        });
        if let Some(text) = sched.deadlock.lock().unwrap().take() {
            panic!("{text}");
        }
        match out.expect("main goroutine did not finish") {
            Ok(v) => v,
            Err(p) => resume_unwind(p),
        }
    }
}

// ---- goroutine creation ----

/// Start a goroutine (Go's `go` statement). Its creation site is recorded
/// for the goroutine dump. Panics outside a runtime.
#[track_caller]
pub fn go<F>(f: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let site = Location::caller();
    // The future goes to the heap first (one copy); see `g::PreG`.
    let pre = g::pre_go(f);
    expect_current("gmp::go", move |ctx| {
        if ctx
            .sched
            .shutdown
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        // No temporary Arc clone: the count's cache line is shared with
        // every M (each G holds a reference), so each increment is a miss.
        let sched = &ctx.sched;
        sched.newproc(ctx, |goid, parent| {
            pre.finish(Header::new(
                sched,
                g::go_vtable::<F>(),
                goid,
                parent,
                site,
                false,
                false,
            ))
        });
    })
}

/// Start a goroutine and get a handle to await its result. A panic in the
/// goroutine comes back as `JoinError`. Panics outside a runtime.
#[track_caller]
pub fn spawn<F>(f: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let site = Location::caller();
    let pre = g::pre_spawn(f);
    expect_current("gmp::spawn", move |ctx| {
        let sched = &ctx.sched;
        let ptr: NonNull<Header> = sched.newproc(ctx, |goid, parent| {
            pre.finish(Header::new(
                sched,
                g::spawn_vtable::<F>(),
                goid,
                parent,
                site,
                true,
                false,
            ))
        });
        // SAFETY: a spawn G of output F::Output, created with HANDLE set.
        unsafe { JoinHandle::new(ptr) }
    })
}
