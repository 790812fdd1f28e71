//! `Runtime` and its `Builder`: GOMAXPROCS, the unhandled-panic policy, the
//! netpoller hook, and `block_on`, which runs a future as goroutine 1 on
//! the calling thread (M0) and tears the goroutine world down when it
//! returns, as Go's `main` does.

use crate::g::Header;
use crate::g::{self, join::JoinHandle};
use crate::lockedm;
use crate::netpoll::NetpollerFactory;
use crate::sched::{expect_current, on_m, Config, Sched};
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The environment variable read for GOMAXPROCS when code sets none.
pub const MAXPROCS_ENV: &str = "GMP_MAXPROCS";

pub use crate::sched::UnhandledPanic;

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
            Some(n) if n > crate::allp::MAX_GOMAXPROCS => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "gmp: procs({n}) is too large: GOMAXPROCS must be at most {}",
                        crate::allp::MAX_GOMAXPROCS
                    ),
                ))
            }
            Some(n) => n,
            None => match std::env::var_os(MAXPROCS_ENV) {
                // Empty means unset, as for Go's GOMAXPROCS.
                Some(v) if !v.is_empty() => parse_maxprocs(&v.to_string_lossy())?,
                _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        };
        let debug = match std::env::var(crate::diag::schedtrace::DEBUG_ENV) {
            Ok(v) => crate::diag::schedtrace::parse_debug(&v)?,
            Err(std::env::VarError::NotPresent) => Default::default(),
            Err(std::env::VarError::NotUnicode(v)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{}={v:?} is not valid UTF-8",
                        crate::diag::schedtrace::DEBUG_ENV
                    ),
                ))
            }
        };
        // Last, so that a configuration error leaves no trace file behind.
        if let Some(v) = std::env::var_os(crate::diag::trace::TRACE_ENV) {
            let path = match v.to_str() {
                Some(s) => crate::diag::trace::parse_trace(s)?,
                None => std::path::PathBuf::from(v),
            };
            crate::diag::trace::start_from_env(&path)?;
        }
        Ok(Runtime {
            procs,
            exit_on_deadlock: self.exit_on_deadlock,
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
        Ok(n) if n > 0 && n <= crate::allp::MAX_GOMAXPROCS => Ok(n),
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
    sigquit_exit: bool,
    sigquit_dump: bool,
    unhandled_panic: UnhandledPanic,
    debug: crate::diag::schedtrace::DebugConfig,
    netpoller: Option<NetpollerFactory>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("procs", &self.procs)
            .finish()
    }
}

/// Built by `Builder::new()...build()`: the facade's `gmp::Runtime` is
/// the one with `Runtime::builder()` and `Runtime::new()`, since only it
/// installs the netpoller.
impl Runtime {
    /// GOMAXPROCS of this runtime.
    pub fn procs(&self) -> usize {
        self.procs
    }

    /// Run `fut` as the main goroutine until it completes. `fut` need not
    /// be `Send`: it is polled on this thread, which polls nothing else
    /// (other goroutines run on other Ms), so no goroutine's syscall or
    /// long poll can hold main up. When it returns, the program ends:
    /// `block_on` returns at once, polls still in flight on other Ms
    /// finish there, nothing is polled again, and the remaining goroutines
    /// are dropped. For a `Send` main that talks to goroutines in a hot
    /// loop, [`block_on_goroutine`](Self::block_on_goroutine) avoids the
    /// thread hand-off at each of main's wake-ups.
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
        let sched = self.start("Runtime::block_on");
        let main_g = lockedm::new_main_g(&sched, site);
        let main_ptr = main_g.as_ptr();
        sched.set_main(main_g);
        let mut fut = std::pin::pin!(fut);
        let mut out: Option<std::thread::Result<F::Output>> = None;
        lockedm::run_main(&sched, &mut |_ctx| {
            if sched.is_failed() {
                return true;
            }
            let waker = g::borrowed_waker(main_ptr);
            let mut cx = Context::from_waker(&waker);
            match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
                Ok(Poll::Pending) => false,
                Ok(Poll::Ready(v)) => {
                    crate::diag::leakcheck::on_main_return(&sched);
                    out = Some(Ok(v));
                    true
                }
                Err(p) => {
                    out = Some(Err(p));
                    true
                }
            }
        });
        end(&sched);
        match out.expect("main goroutine did not finish") {
            Ok(v) => v,
            Err(p) => resume_unwind(p),
        }
    }

    /// `block_on` for a `Send + 'static` main: it runs as an ordinary
    /// goroutine 1 that any M may poll, as Go's main does, and this thread
    /// only waits for it. Main then shares Ms with the goroutines it talks
    /// to (no thread hand-off per wake-up), and never waits behind a
    /// syscall or long poll on the calling thread. What `#[gmp::main]` and
    /// `#[gmp::test]` use when main is `Send`. A panic in main is re-raised
    /// here after teardown.
    #[track_caller]
    pub fn block_on_goroutine<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.block_on_goroutine_at(fut, Location::caller())
    }

    /// `block_on_goroutine` recording `site` as main's creation site.
    #[doc(hidden)]
    pub fn block_on_goroutine_at<F>(&self, fut: F, site: &'static Location<'static>) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let sched = self.start("Runtime::block_on_goroutine");
        let handle = lockedm::spawn_main_goroutine(&sched, fut, site);
        let out = lockedm::run_main_goroutine(&sched, handle);
        end(&sched);
        match out.expect("main goroutine did not finish") {
            Ok(v) => v,
            Err(e) if e.is_panic() => resume_unwind(e.into_panic()),
            Err(e) => panic!("gmp: main goroutine ended without finishing: {e}"),
        }
    }

    /// A fresh scheduler with its sysmon (and the SIGQUIT dump) running,
    /// for `what` called on a plain thread.
    fn start(&self, what: &str) -> Arc<Sched> {
        if on_m() {
            panic!(
                "{what} called from inside a gmp runtime: \
                 a goroutine must .await instead of blocking its M"
            );
        }
        let sched = self.new_sched();
        crate::sysmon::start(&sched);
        #[cfg(unix)]
        if self.sigquit_dump {
            crate::diag::sigquit::register(&sched);
        }
        sched
    }

    fn new_sched(&self) -> Arc<Sched> {
        let netpoll = self
            .netpoller
            .as_ref()
            .map(|f| f().unwrap_or_else(|e| panic!("gmp: cannot create the netpoller: {e}")));
        Sched::new(
            self.procs,
            Config {
                unhandled_panic: self.unhandled_panic,
                debug: self.debug,
                sigquit_exit: self.sigquit_exit,
                exit_on_deadlock: self.exit_on_deadlock,
            },
            netpoll,
        )
    }
}

/// Main is done (or the runtime failed): the trace file is made whole,
/// and a deadlock or a propagated panic is raised here.
fn end(sched: &Sched) {
    crate::diag::trace::checkpoint();
    if let Some(text) = sched.deadlock.lock().unwrap().take() {
        panic!("{text}");
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
        sched.newproc(ctx, |goid, spawner| {
            pre.finish(Header::new(
                sched,
                g::go_vtable::<F>(),
                goid,
                spawner,
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
        let ptr: NonNull<Header> = sched.newproc(ctx, |goid, spawner| {
            pre.finish(Header::new(
                sched,
                g::spawn_vtable::<F>(),
                goid,
                spawner,
                site,
                true,
                false,
            ))
        });
        // SAFETY: a spawn G of output F::Output, created with HANDLE set.
        unsafe { JoinHandle::new(ptr) }
    })
}
