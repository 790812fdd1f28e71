//! Go's `os/signal`: [`notify`] turns signals into channel values,
//! delivered through the netpoller.
//!
//! Each `notify` registers signal-hook's self-pipe for its signals
//! (signal-hook-mio's `Signals`, a mio source) with the runtime's
//! netpoller and starts one goroutine, Go's `signal.loop`, parked in
//! "IO wait" on it: no thread per signal. The goroutine drains the pipe
//! and `try_send`s each signal into the channel (capacity 1: a signal
//! that finds it full is dropped, as in Go).
//!
//! Giving the default action back: signal-hook's registry keeps its
//! handler installed once it has one and never runs the default action
//! itself, so the first `notify` of a signal whose disposition was the
//! default also registers signal-hook's conditional default, switched by
//! a per-signal flag that is on while no subscription wants the signal.
//! Nothing is told when the last `Receiver` of a channel drops; the
//! forwarding goroutine checks `Sender::has_receivers` when the next
//! signal arrives, and finding none, ends its subscription (the flag goes
//! on if it was the last) and raises the signal again, which now meets the
//! default action: the process dies of a SIGINT as if `notify` had never
//! been called. SIGQUIT's "default" is gmp's goroutine dump while the
//! runtime installed it (`Builder::sigquit_dump`): a `notify(Quit)`
//! subscription holds gmp-core's `QuitNotified`, which makes the dump
//! thread leave SIGQUIT to the channel.

use crate::chan::{bounded, Receiver, Sender};
use signal_hook_mio::v1_0::Signals;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// A signal `notify` can deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// SIGINT (Ctrl-C); Go's `os.Interrupt`.
    Interrupt,
    /// SIGTERM; Go's `syscall.SIGTERM`.
    Terminate,
    /// SIGQUIT (Ctrl-\). Notifying it turns off the goroutine dump while
    /// the subscription lives.
    Quit,
    /// SIGHUP.
    Hangup,
    /// SIGUSR1.
    User1,
    /// SIGUSR2.
    User2,
    /// SIGPIPE.
    Pipe,
    /// SIGCHLD.
    Child,
    /// SIGALRM.
    Alarm,
    /// SIGWINCH.
    WindowChange,
    /// SIGCONT.
    Continue,
    /// SIGTSTP (Ctrl-Z).
    TerminalStop,
}

/// Every variant, for `notify(&[])` (Go: all signals).
const ALL: [Signal; 12] = [
    Signal::Interrupt,
    Signal::Terminate,
    Signal::Quit,
    Signal::Hangup,
    Signal::User1,
    Signal::User2,
    Signal::Pipe,
    Signal::Child,
    Signal::Alarm,
    Signal::WindowChange,
    Signal::Continue,
    Signal::TerminalStop,
];

impl Signal {
    /// The signal's number (`libc::SIGINT`, ...).
    pub fn as_raw(self) -> i32 {
        match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
            Signal::Quit => libc::SIGQUIT,
            Signal::Hangup => libc::SIGHUP,
            Signal::User1 => libc::SIGUSR1,
            Signal::User2 => libc::SIGUSR2,
            Signal::Pipe => libc::SIGPIPE,
            Signal::Child => libc::SIGCHLD,
            Signal::Alarm => libc::SIGALRM,
            Signal::WindowChange => libc::SIGWINCH,
            Signal::Continue => libc::SIGCONT,
            Signal::TerminalStop => libc::SIGTSTP,
        }
    }

    /// The variant for a signal number, if `notify` can deliver it.
    pub fn from_raw(n: i32) -> Option<Signal> {
        ALL.into_iter().find(|s| s.as_raw() == n)
    }
}

impl std::fmt::Display for Signal {
    /// Go's `Signal.String()`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "interrupt",
            Signal::Terminate => "terminated",
            Signal::Quit => "quit",
            Signal::Hangup => "hangup",
            Signal::User1 => "user defined signal 1",
            Signal::User2 => "user defined signal 2",
            Signal::Pipe => "broken pipe",
            Signal::Child => "child exited",
            Signal::Alarm => "alarm clock",
            Signal::WindowChange => "window changed",
            Signal::Continue => "continued",
            Signal::TerminalStop => "stopped",
        })
    }
}

/// Go's `signal.Notify`: the signals named (every one [`Signal`] names if
/// `sigs` is empty) go to the returned channel instead of their default
/// action, until every `Receiver` of it is dropped. Capacity 1: a signal
/// that finds the channel full is dropped. Each call has its own channel,
/// and each channel gets its own copy of a signal.
///
/// Each call starts one goroutine that forwards the signals; it ends, and
/// the default action is back, when the next of its signals arrives and
/// finds no `Receiver` left (or when its runtime ends). Until then it
/// holds two descriptors (signal-hook's self-pipe), so call `notify` once
/// per purpose, not once per loop iteration.
///
/// # Panics
/// Outside a gmp runtime, or if the signal handler cannot be installed.
#[track_caller]
pub fn notify(sigs: &[Signal]) -> Receiver<Signal> {
    let sigs: Vec<Signal> = if sigs.is_empty() {
        ALL.to_vec()
    } else {
        sigs.to_vec()
    };
    match start(sigs) {
        Ok(rx) => rx,
        Err(e) => panic!("gmp::signal::notify: {e}"),
    }
}

fn start(sigs: Vec<Signal>) -> io::Result<Receiver<Signal>> {
    const WHAT: &str = "gmp::signal::notify";
    let sub = Subscription::new(&sigs)?;
    let raw: Vec<i32> = sigs.iter().map(|s| s.as_raw()).collect();
    let src = gmp_io::PollSource::new(SignalPipe(Mutex::new(Signals::new(&raw)?)), WHAT)?;
    let (tx, rx) = bounded(1);
    crate::go(signal_loop(sub, src, tx));
    Ok(rx)
}

/// Go's `os/signal.loop`: forward each arriving signal.
async fn signal_loop(sub: Subscription, src: gmp_io::PollSource<SignalPipe>, tx: Sender<Signal>) {
    loop {
        let got = src.read_io(|p| p.drain()).await;
        let Ok(got) = got else { return };
        if !tx.has_receivers() {
            // Nobody can receive: stop listening, then let the signals
            // that brought us here meet the action that is back.
            drop(src);
            for n in sub.end() {
                if got.contains(&n) {
                    // SAFETY: raise(3) sends a signal to this thread; no
                    // memory is involved.
                    unsafe { libc::raise(n) };
                }
            }
            return;
        }
        for n in got {
            if let Some(s) = Signal::from_raw(n) {
                // Full: dropped, as Go's does.
                let _ = tx.try_send(s);
            }
        }
    }
}

/// signal-hook-mio's `Signals` behind a lock: its `pending` wants `&mut`,
/// the netpoller's operations hand out `&`.
struct SignalPipe(Mutex<Signals>);

impl SignalPipe {
    /// The signals that arrived, or `WouldBlock` if none did; drains the
    /// self-pipe either way (the netpoller is edge-triggered).
    fn drain(&self) -> io::Result<Vec<i32>> {
        let got: Vec<i32> = self.0.lock().unwrap().pending().collect();
        if got.is_empty() {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(got)
        }
    }
}

impl mio::event::Source for SignalPipe {
    fn register(&mut self, r: &mio::Registry, t: mio::Token, i: mio::Interest) -> io::Result<()> {
        self.0.get_mut().unwrap().register(r, t, i)
    }
    fn reregister(&mut self, r: &mio::Registry, t: mio::Token, i: mio::Interest) -> io::Result<()> {
        self.0.get_mut().unwrap().reregister(r, t, i)
    }
    fn deregister(&mut self, r: &mio::Registry) -> io::Result<()> {
        self.0.get_mut().unwrap().deregister(r)
    }
}

/// Per signal number, process-wide: live subscriptions, and the flag of
/// the conditional default action (`None` when the disposition before the
/// first `notify` was not the default: ignored, or a handler of the host
/// program, which signal-hook keeps calling).
#[derive(Default)]
struct SignalState {
    subs: usize,
    default_on: Option<Arc<AtomicBool>>,
    checked: bool,
}

static STATE: Mutex<Option<HashMap<i32, SignalState>>> = Mutex::new(None);

/// One `notify`'s claim on its signals (RAII: `end` or drop gives them
/// back).
struct Subscription {
    sigs: Vec<i32>,
    _quit: Option<gmp_core::sigquit::QuitNotified>,
    ended: bool,
}

impl Subscription {
    fn new(sigs: &[Signal]) -> io::Result<Subscription> {
        let mut raw: Vec<i32> = sigs.iter().map(|s| s.as_raw()).collect();
        raw.sort_unstable();
        raw.dedup();
        let mut st = STATE.lock().unwrap();
        let map = st.get_or_insert_with(HashMap::new);
        for &n in &raw {
            let e = map.entry(n).or_default();
            if !e.checked {
                e.checked = true;
                if disposition_is_default(n)? {
                    let flag = Arc::new(AtomicBool::new(false));
                    signal_hook::flag::register_conditional_default(n, flag.clone())?;
                    e.default_on = Some(flag);
                }
            }
            e.subs += 1;
            if let Some(f) = &e.default_on {
                f.store(false, SeqCst);
            }
        }
        let quit = raw
            .contains(&libc::SIGQUIT)
            .then(gmp_core::sigquit::QuitNotified::new);
        Ok(Subscription {
            sigs: raw,
            _quit: quit,
            ended: false,
        })
    }

    /// Give the signals back; returns those this was the last subscriber
    /// of, whose action (default, or gmp's SIGQUIT dump) is now back.
    fn end(mut self) -> Vec<i32> {
        self.release()
    }

    fn release(&mut self) -> Vec<i32> {
        if std::mem::replace(&mut self.ended, true) {
            return Vec::new();
        }
        self._quit = None;
        let mut st = STATE.lock().unwrap();
        let map = st.get_or_insert_with(HashMap::new);
        let mut back = Vec::new();
        for &n in &self.sigs {
            let Some(e) = map.get_mut(&n) else { continue };
            e.subs -= 1;
            if e.subs > 0 {
                continue;
            }
            let dump = n == libc::SIGQUIT && gmp_core::sigquit::dump_installed();
            match &e.default_on {
                Some(f) if !dump => {
                    f.store(true, SeqCst);
                    back.push(n);
                }
                _ if dump => back.push(n),
                _ => {}
            }
        }
        back
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.release();
    }
}

/// True if `sig`'s current disposition is the default action (not
/// ignored, no handler).
fn disposition_is_default(sig: i32) -> io::Result<bool> {
    // SAFETY: an all-zero sigaction is a valid out-parameter; a null new
    // action only reads the current one.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `old` outlives the call.
    if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old.sa_sigaction == libc::SIG_DFL)
}
