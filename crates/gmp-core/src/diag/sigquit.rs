//! SIGQUIT (Ctrl-\): print every live runtime's goroutine dump to stderr
//! and exit with code 2, as Go does.
//!
//! The action, registered through signal-hook's registry (so it shares
//! SIGQUIT with `gmp::signal::notify`), only writes a byte to a pipe, the
//! one thing a signal handler can safely do; a process-wide `gmp-sigquit`
//! thread reads it, prints the dumps of the registered runtimes, and exits
//! unless every runtime turned that off with `Builder::sigquit_exit(false)`.
//! A thread, not a goroutine, so the dump works even when every P is stuck.
//! While a program receives SIGQUIT itself (a live [`QuitNotified`]), the
//! thread leaves the signal to it. A runtime built with
//! `Builder::sigquit_dump(false)` registers nothing.

use crate::diag::dump::format_dump;
use crate::diag::registry::Registry;
use crate::sched::Sched;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Once;

static RUNTIMES: Registry<Sched> = Registry::new();
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Live `notify(Quit)` subscriptions.
static NOTIFIED: AtomicUsize = AtomicUsize::new(0);

/// Register a runtime for the SIGQUIT dump (installing the action once).
pub(crate) fn register(sched: &std::sync::Arc<Sched>) {
    INSTALL.call_once(install);
    RUNTIMES.add(sched);
}

/// True once the dump action is registered in this process.
pub fn dump_installed() -> bool {
    INSTALLED.load(SeqCst)
}

/// While one of these lives, SIGQUIT belongs to the program (Go's
/// `signal.Notify(c, syscall.SIGQUIT)`): the dump thread ignores it.
#[derive(Debug)]
pub struct QuitNotified(());

impl QuitNotified {
    #[allow(clippy::new_without_default)]
    pub fn new() -> QuitNotified {
        NOTIFIED.fetch_add(1, SeqCst);
        QuitNotified(())
    }
}

impl Drop for QuitNotified {
    fn drop(&mut self) {
        NOTIFIED.fetch_sub(1, SeqCst);
    }
}

fn install() {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills the two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    let (rfd, wfd) = (fds[0], fds[1]);
    for fd in fds {
        // SAFETY: fcntl on the descriptors pipe(2) just returned.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let spawned = std::thread::Builder::new()
        .name("gmp-sigquit".into())
        .spawn(move || loop {
            let mut b = 0u8;
            // SAFETY: reading one byte into a local from our own pipe.
            let n = unsafe { libc::read(rfd, &mut b as *mut u8 as *mut libc::c_void, 1) };
            if n == 1 {
                dump_and_maybe_exit();
            } else if n < 0
                && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                return;
            }
        });
    if spawned.is_err() {
        return;
    }
    // Whether the program receives SIGQUIT itself is decided when the
    // signal arrives (an atomic load is async-signal-safe), not when the
    // thread gets to read the pipe: by then a `notify(Quit)` receiver
    // that took this signal may be gone, and the dump would be wrong.
    let action = move || {
        if NOTIFIED.load(SeqCst) != 0 {
            return;
        }
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local.
        unsafe { libc::write(wfd, &b as *const u8 as *const libc::c_void, 1) };
    };
    // SAFETY: the action only calls write(2), which is async-signal-safe.
    if unsafe { signal_hook::low_level::register(libc::SIGQUIT, action) }.is_ok() {
        INSTALLED.store(true, SeqCst);
    }
}

fn dump_and_maybe_exit() {
    let live = RUNTIMES.live();
    let mut exit = live.is_empty();
    let mut out = String::from("SIGQUIT: quit\n\n");
    for s in &live {
        out.push_str(&format_dump(&s.goroutines()));
        exit |= s.config.sigquit_exit;
    }
    eprint!("{out}");
    if exit {
        crate::diag::trace::finish_on_exit();
        std::process::exit(2);
    }
}
