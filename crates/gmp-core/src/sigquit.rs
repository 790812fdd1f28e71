//! SIGQUIT (Ctrl-\): print every live runtime's goroutine dump to stderr
//! and exit with code 2, as Go does.
//!
//! The signal handler only writes a byte to a pipe (the one thing it can
//! do safely); a process-wide `gmp-sigquit` thread reads it, prints the
//! dumps of the registered runtimes, and exits unless every runtime turned
//! that off with `Builder::sigquit_exit(false)`.

use crate::dump::format_dump;
use crate::sched::Sched;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::sync::{Mutex, Once, Weak};

static RUNTIMES: Mutex<Vec<Weak<Sched>>> = Mutex::new(Vec::new());
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static INSTALL: Once = Once::new();

extern "C" fn on_sigquit(_: libc::c_int) {
    let fd = PIPE_W.load(Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a local.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

/// Register a runtime for the SIGQUIT dump (installing the handler once).
pub(crate) fn register(sched: &std::sync::Arc<Sched>) {
    INSTALL.call_once(install);
    let mut rs = RUNTIMES.lock().unwrap();
    rs.retain(|w| w.strong_count() > 0);
    rs.push(std::sync::Arc::downgrade(sched));
}

fn install() {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills the two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    PIPE_W.store(fds[1], Relaxed);
    let rfd = fds[0];
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
    // SAFETY: installing a handler that only calls write(2); sa is zeroed
    // then filled as sigaction(2) requires.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigquit as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGQUIT, &sa, std::ptr::null_mut());
    }
}

fn dump_and_maybe_exit() {
    let live: Vec<_> = RUNTIMES
        .lock()
        .unwrap()
        .iter()
        .filter_map(|w| w.upgrade())
        .collect();
    let mut exit = live.is_empty();
    let mut out = String::from("SIGQUIT: quit\n\n");
    for s in &live {
        out.push_str(&format_dump(&s.goroutines()));
        exit |= s.config.sigquit_exit;
    }
    eprint!("{out}");
    if exit {
        crate::trace::finish_on_exit();
        std::process::exit(2);
    }
}
