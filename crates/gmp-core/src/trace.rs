//! `GMP_TRACE=path.json`: an execution trace in Chrome's trace-event format
//! (open it in Perfetto or chrome://tracing). One track per P shows which
//! goroutine ran when; instant events mark spawns, readies, steals and
//! parks (with the wait reason).
//!
//! Off, it costs one predictable branch per event site. On, each M buffers
//! its events and hands them over in batches; the file is written when
//! `block_on` returns.

use crate::sched::{MCtx, Sched};
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// The environment variable naming the trace file.
pub const TRACE_ENV: &str = "GMP_TRACE";

const FLUSH_AT: usize = 4096;

pub(crate) struct Tracer {
    path: PathBuf,
    events: Mutex<Vec<Event>>,
}

#[derive(Clone, Copy)]
pub(crate) struct Event {
    ts_us: u64,
    p: usize,
    kind: Kind,
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// A goroutine ran for `dur_us`, then ended as `end`.
    Run {
        goid: u64,
        dur_us: u64,
        end: &'static str,
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

impl Tracer {
    pub(crate) fn new(path: PathBuf) -> Tracer {
        Tracer {
            path,
            events: Mutex::new(Vec::new()),
        }
    }

    fn absorb(&self, buf: &mut Vec<Event>) {
        self.events.lock().unwrap().append(buf);
    }

    /// Write the trace file (JSON array format plus track names).
    pub(crate) fn write(&self, procs: usize) -> io::Result<()> {
        let mut ev = std::mem::take(&mut *self.events.lock().unwrap());
        ev.sort_by_key(|e| e.ts_us);
        let mut s = String::with_capacity(64 + ev.len() * 96);
        s.push_str("{\"traceEvents\":[\n");
        let _ = write!(
            s,
            "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{{\"name\":\"gmp\"}}}}"
        );
        for p in 0..procs {
            let _ = write!(
                s,
                ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{p},\"args\":{{\"name\":\"P{p}\"}}}}"
            );
        }
        for e in &ev {
            let (ts, p) = (e.ts_us, e.p);
            match e.kind {
                Kind::Run { goid, dur_us, end } => {
                    let _ = write!(
                        s,
                        ",\n{{\"name\":\"G{goid}\",\"cat\":\"run\",\"ph\":\"X\",\"ts\":{ts},\"dur\":{},\"pid\":1,\"tid\":{p},\"args\":{{\"goid\":{goid},\"end\":\"{end}\"}}}}",
                        dur_us.max(1)
                    );
                    if let Some(reason) = end.strip_prefix("park: ") {
                        let _ = write!(
                            s,
                            ",\n{{\"name\":\"park G{goid}\",\"cat\":\"park\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{},\"pid\":1,\"tid\":{p},\"args\":{{\"reason\":\"{reason}\"}}}}",
                            ts + dur_us
                        );
                    }
                }
                Kind::Spawn { parent, child } => {
                    let _ = write!(
                        s,
                        ",\n{{\"name\":\"spawn G{child}\",\"cat\":\"spawn\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{ts},\"pid\":1,\"tid\":{p},\"args\":{{\"parent\":{parent},\"child\":{child}}}}}"
                    );
                }
                Kind::Ready { goid } => {
                    let _ = write!(
                        s,
                        ",\n{{\"name\":\"ready G{goid}\",\"cat\":\"ready\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{ts},\"pid\":1,\"tid\":{p},\"args\":{{\"goid\":{goid}}}}}"
                    );
                }
                Kind::Steal { n, from } => {
                    let _ = write!(
                        s,
                        ",\n{{\"name\":\"steal {n} from P{from}\",\"cat\":\"steal\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{ts},\"pid\":1,\"tid\":{p},\"args\":{{\"n\":{n},\"from\":{from}}}}}"
                    );
                }
            }
        }
        s.push_str("\n],\"displayTimeUnit\":\"ms\"}\n");
        std::fs::write(&self.path, s)
    }
}

impl Sched {
    #[inline]
    pub(crate) fn trace_now(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.start)
            .as_micros() as u64
    }

    /// Record an event on the current M's buffer.
    pub(crate) fn trace(&self, ctx: &MCtx, ts_us: u64, kind: Kind) {
        let Some(t) = &self.tracer else { return };
        let p = ctx.p.get().unwrap_or(0);
        let mut b = ctx.trace_buf.borrow_mut();
        b.push(Event { ts_us, p, kind });
        if b.len() >= FLUSH_AT {
            t.absorb(&mut b);
        }
    }

    /// Hand this M's buffered events to the tracer (M exit, teardown).
    pub(crate) fn trace_flush(&self, ctx: &MCtx) {
        if let Some(t) = &self.tracer {
            t.absorb(&mut ctx.trace_buf.borrow_mut());
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

/// Label of a run slice that ended in a park.
pub(crate) fn park_label(r: crate::status::WaitReason) -> &'static str {
    use crate::status::WaitReason::*;
    match r {
        ChanReceive => "park: chan receive",
        ChanSend => "park: chan send",
        Select => "park: select",
        SelectNoCases => "park: select (no cases)",
        Sleep => "park: sleep",
        IoWait => "park: IO wait",
        SyncWaitGroupWait => "park: sync.WaitGroup.Wait",
        SyncMutexLock => "park: sync.Mutex.Lock",
        SyncRWMutexRLock => "park: sync.RWMutex.RLock",
        SyncRWMutexLock => "park: sync.RWMutex.Lock",
        Join => "park: join",
        _ => "park: waiting",
    }
}
