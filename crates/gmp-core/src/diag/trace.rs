//! The execution tracer (Go's `runtime/trace`): `GMP_TRACE=file` for a
//! whole run, `gmp::runtime::trace::start(path)` / `stop()` for a window.
//! The file is Chrome's trace-event JSON (Perfetto and chrome://tracing
//! open it; `trace_json.rs` writes it): one track per P of each runtime,
//! one slice per poll, instant events for spawns, readies, steals and
//! parks.
//!
//! One trace per process, as in Go. Each M records into its own buffer
//! (an uncontended lock: the exit paths drain every M's buffer from the
//! thread that ends the process); a full buffer (`FLUSH_AT` events) is
//! formatted and written to the file by the M that filled it, so memory
//! stays bounded however long the program runs. The file is valid JSON at
//! every checkpoint: the closing bracket is written, flushed, and then
//! overwritten by the next events. Checkpoints happen when a `block_on`
//! returns, at `stop()`, and in `finish_on_exit()`, which every path that
//! ends the process (a `go` panic, the deadlock report, SIGQUIT, main's
//! exit) calls.
//!
//! Off, an event site costs a load of one process-wide flag and a branch;
//! the scheduler loop is monomorphised on tracing and switches versions at
//! its 61st-tick check when tracing starts or stops.

use crate::diag::registry::Registry;
use crate::sched::{MCtx, Sched};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{
    AtomicBool, AtomicU32,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// The environment variable naming the trace file.
pub const TRACE_ENV: &str = "GMP_TRACE";

/// Events an M buffers before writing them out.
const FLUSH_AT: usize = 4096;

/// Tracing is on: read on every event site.
static ON: AtomicBool = AtomicBool::new(false);
/// The open trace file, if any.
static SESSION: Mutex<Option<Session>> = Mutex::new(None);
/// Every M's buffer, for the exit paths to drain.
static BUFS: Registry<MBuf> = Registry::new();
/// GMP_TRACE opened its session already in this process.
static ENV_STARTED: AtomicBool = AtomicBool::new(false);
static NEXT_RUNTIME: AtomicU32 = AtomicU32::new(1);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Whether tracing is on now.
#[inline]
pub(crate) fn on() -> bool {
    ON.load(Relaxed)
}

/// Whether tracing is on now, ordered with `open`'s store (the spawn
/// hook's re-check; see `Sched::spawn_hook`).
pub(crate) fn on_ordered() -> bool {
    ON.load(SeqCst)
}

/// Every runtime of the process, for `start` to reach their Ps.
static RUNTIMES: Registry<Sched> = Registry::new();

/// Register a new runtime for `start`.
pub(crate) fn register(sched: &Arc<Sched>) {
    RUNTIMES.add(sched);
}

/// The trace's process id for a new runtime (one track group each).
pub(crate) fn next_runtime_id() -> u32 {
    NEXT_RUNTIME.fetch_add(1, Relaxed)
}

/// Microseconds since the trace clock's epoch (shared by all runtimes).
#[inline]
fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

#[derive(Clone, Copy)]
pub(crate) struct Event {
    pub(crate) ts_us: u64,
    /// The runtime (a trace "process").
    pub(crate) rt: u32,
    /// The P (a trace "thread").
    pub(crate) p: u32,
    pub(crate) kind: Kind,
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// A goroutine ran for `dur_us`, then ended as `end` (parked for
    /// `reason` when `end` is `Park`).
    Run {
        goid: u64,
        dur_us: u64,
        end: crate::sched::RunEnd,
        reason: crate::g::status::WaitReason,
    },
    Spawn {
        parent: u64,
        child: u64,
    },
    Ready {
        goid: u64,
    },
    Steal {
        n: u32,
        from: usize,
    },
}

/// One M's event buffer.
pub(crate) struct MBuf(Mutex<Vec<Event>>);

impl MBuf {
    /// A buffer registered for the exit paths to drain.
    pub(crate) fn new() -> Arc<MBuf> {
        let b = Arc::new(MBuf(Mutex::new(Vec::new())));
        BUFS.add(&b);
        b
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The open trace file.
struct Session {
    out: BufWriter<File>,
    path: PathBuf,
    json: crate::diag::trace_json::Writer,
    /// A batch's text, reused.
    text: Vec<u8>,
    /// The first write error; later writes are skipped, `stop` reports it.
    error: Option<io::Error>,
}

impl Session {
    fn create(path: &Path) -> io::Result<Session> {
        let file = File::create(path)?;
        let mut s = Session {
            out: BufWriter::with_capacity(1 << 16, file),
            path: path.to_path_buf(),
            json: crate::diag::trace_json::Writer::default(),
            text: Vec::new(),
            error: None,
        };
        s.io(|out| out.write_all(crate::diag::trace_json::HEAD));
        s.checkpoint();
        match s.error.take() {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }

    fn io(&mut self, f: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) {
        if self.error.is_none() {
            if let Err(e) = f(&mut self.out) {
                self.error = Some(e);
            }
        }
    }

    fn write(&mut self, events: &[Event]) {
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        for e in events {
            self.json.event(&mut text, e);
        }
        self.io(|out| out.write_all(&text));
        self.text = text;
    }

    /// Make the file valid as it stands: write the closing bracket, flush,
    /// and step back over it so the next events replace it.
    fn checkpoint(&mut self) {
        self.io(|out| {
            let tail = crate::diag::trace_json::TAIL;
            out.write_all(tail)?;
            out.flush()?;
            out.seek(SeekFrom::Current(-(tail.len() as i64)))?;
            Ok(())
        });
    }
}

fn session() -> std::sync::MutexGuard<'static, Option<Session>> {
    SESSION.lock().unwrap_or_else(|e| e.into_inner())
}

/// Write `events` of a runtime to the open trace, if any. Once that
/// runtime has ended, `block_on` has made the file valid and returned, and
/// its Ms still finishing a poll write what they recorded as they leave:
/// each such write is checkpointed at once, so the file is valid again as
/// soon as the session lock is released (the lock `finish_on_exit` takes
/// before the process exits).
fn write_out(events: &[Event], shutdown: &std::sync::atomic::AtomicBool) {
    if let Some(s) = session().as_mut() {
        s.write(events);
        if shutdown.load(std::sync::atomic::Ordering::SeqCst) {
            s.checkpoint();
        }
    }
}

/// Drain every M's buffer into the file and checkpoint it.
fn drain_and_checkpoint(s: &mut Session) {
    for b in BUFS.live() {
        s.write(&b.take());
    }
    s.checkpoint();
}

fn open(path: &Path) -> io::Result<()> {
    let mut cur = session();
    if cur.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "gmp: tracing is already enabled",
        ));
    }
    *cur = Some(Session::create(path)?);
    ON.store(true, SeqCst);
    for s in RUNTIMES.live() {
        s.trace_started();
    }
    Ok(())
}

/// Start tracing into `path` (Go's `trace.Start`): every runtime of the
/// process records into it until [`stop`]. Fails if tracing is on already
/// (`GMP_TRACE` or an earlier `start`) or the file cannot be created.
pub fn start(path: impl AsRef<Path>) -> io::Result<()> {
    open(path.as_ref())
}

/// Stop tracing (Go's `trace.Stop`): write out every buffered event and
/// close the file, which is then complete. A no-op when tracing is off;
/// reports the first write error of the session.
pub fn stop() -> io::Result<()> {
    ON.store(false, Relaxed);
    let Some(mut s) = session().take() else {
        return Ok(());
    };
    drain_and_checkpoint(&mut s);
    match s.error.take() {
        Some(e) => Err(io::Error::new(
            e.kind(),
            format!("gmp: writing the trace {}: {e}", s.path.display()),
        )),
        None => Ok(()),
    }
}

/// Complete the trace file before the process ends. Every path that ends
/// a gmp process calls it (a `go` panic, the deadlock report, SIGQUIT,
/// `#[gmp::main]`'s exit); a program that calls `std::process::exit`
/// itself may too. Stops tracing; prints a write error to stderr.
pub fn finish_on_exit() {
    if let Err(e) = stop() {
        eprintln!("{e}");
    }
}

/// A `block_on` returned: make the file valid, keep tracing (another
/// runtime may still run, or a later one continue the file).
pub(crate) fn checkpoint() {
    if let Some(s) = session().as_mut() {
        drain_and_checkpoint(s);
    }
}

/// `GMP_TRACE`: open the process's trace the first time a runtime is
/// built with the variable set. A path that cannot be created (missing
/// directory, read-only file, a directory) is an `InvalidInput` error
/// naming the variable.
pub(crate) fn start_from_env(path: &Path) -> io::Result<()> {
    if ENV_STARTED.swap(true, Relaxed) {
        return Ok(());
    }
    match open(path) {
        Ok(()) => Ok(()),
        // Tracing was started by `start`: that file serves.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            ENV_STARTED.store(false, Relaxed);
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{TRACE_ENV}={}: cannot create the trace file: {e}",
                    path.display()
                ),
            ))
        }
    }
}

impl Sched {
    #[inline]
    pub(crate) fn trace_now(&self) -> u64 {
        now_us()
    }

    /// Record an event on the current M's buffer.
    pub(crate) fn trace(&self, ctx: &MCtx, ts_us: u64, kind: Kind) {
        if !on() {
            return;
        }
        let p = ctx.p.get().unwrap_or(0) as u32;
        let full = {
            let mut b = ctx.trace_buf.0.lock().unwrap_or_else(|e| e.into_inner());
            b.push(Event {
                ts_us,
                rt: self.trace_id,
                p,
                kind,
            });
            (b.len() >= FLUSH_AT).then(|| std::mem::replace(&mut *b, Vec::with_capacity(FLUSH_AT)))
        };
        if let Some(batch) = full {
            write_out(&batch, &self.shutdown);
        }
    }

    /// Hand this M's buffered events to the file (M exit, teardown).
    pub(crate) fn trace_flush(&self, ctx: &MCtx) {
        let batch = ctx.trace_buf.take();
        if !batch.is_empty() {
            write_out(&batch, &self.shutdown);
        }
    }
}

/// Parse `GMP_TRACE`: a non-empty path.
pub fn parse_trace(v: &str) -> io::Result<PathBuf> {
    if v.trim().is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{TRACE_ENV} is set but empty: expected a file path such as trace.json"),
        ));
    }
    Ok(PathBuf::from(v))
}
