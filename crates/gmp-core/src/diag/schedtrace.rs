//! `GMP_DEBUG=schedtrace=N[,scheddetail=1]`: Go's `SCHED` lines, printed by
//! sysmon every N ms (runtime/proc.go `schedtrace`).

use crate::g::status::GStatus;
use crate::p::status_of;
use crate::sched::Sched;
use std::fmt::Write;
use std::io;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

/// The environment variable holding debug settings.
pub const DEBUG_ENV: &str = "GMP_DEBUG";

/// Parsed `GMP_DEBUG`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugConfig {
    /// Print a SCHED line every this often (None: off).
    pub schedtrace: Option<Duration>,
    /// Add Go's per-P, per-M and per-G lines.
    pub scheddetail: bool,
    /// When main returns, report goroutines still blocked on a channel,
    /// select, lock or WaitGroup (`leakcheck.rs`).
    pub leakcheck: bool,
}

/// Parse a `GMP_DEBUG` value: comma-separated `key=value` with keys
/// `schedtrace` (milliseconds), `scheddetail` and `leakcheck` (0 or 1).
pub fn parse_debug(v: &str) -> io::Result<DebugConfig> {
    let bad = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{DEBUG_ENV}={v:?} is not valid: {what} (expected e.g. schedtrace=1000,scheddetail=1 or leakcheck=1)"),
        )
    };
    let mut cfg = DebugConfig::default();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, val) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} has no '='")))?;
        let n: u64 = val
            .trim()
            .parse()
            .map_err(|_| bad(format!("{k} needs a non-negative integer, got {val:?}")))?;
        match k.trim() {
            "schedtrace" => cfg.schedtrace = (n > 0).then(|| Duration::from_millis(n)),
            "scheddetail" => match n {
                0 | 1 => cfg.scheddetail = n == 1,
                _ => return Err(bad(format!("scheddetail must be 0 or 1, got {n}"))),
            },
            "leakcheck" => match n {
                0 | 1 => cfg.leakcheck = n == 1,
                _ => return Err(bad(format!("leakcheck must be 0 or 1, got {n}"))),
            },
            other => return Err(bad(format!("unknown setting {other:?}"))),
        }
    }
    Ok(cfg)
}

impl Sched {
    /// Go's `schedtrace(detailed)` text.
    pub(crate) fn schedtrace_text(&self, now: Instant, detail: bool) -> String {
        let ms = now.saturating_duration_since(self.start).as_millis();
        let idle = self.npidle.load(SeqCst);
        let threads = self.mcount() + 1; // + sysmon
        let mut s = format!(
            "SCHED {ms}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} idlethreads={} runqueue={}",
            self.gomaxprocs(),
            idle,
            threads,
            self.nmspinning.load(Relaxed),
            self.nmidle.load(Relaxed),
            self.global_runq_len(),
        );
        if !detail {
            s.push_str(" [");
            for (i, p) in self.allp.iter().take(self.gomaxprocs()).enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                let _ = write!(s, "{}", p.runq.len());
            }
            s.push_str("]\n");
            return s;
        }
        let _ = writeln!(
            s,
            " gcwaiting=0 nmidlelocked=0 stopwait=0 sysmonwait={}",
            u8::from(self.sysmon.is_sleeping())
        );
        for p in self.allp.iter().take(self.gomaxprocs()) {
            let w = p.status.load(Relaxed);
            let st = match status_of(w) {
                crate::p::PIDLE => 0,
                crate::p::PSYSCALL => 2,
                _ => 1,
            };
            let m = if st == 0 { -1 } else { (w >> 8) as i64 };
            let _ = writeln!(
                s,
                "  P{}: status={} schedtick={} syscalltick={} m={} runqsize={} gfreecnt=0 timerslen={}",
                p.id,
                st,
                p.schedtick.load(Relaxed),
                p.syscalltick.load(Relaxed),
                m,
                p.runq.len(),
                p.timers.live()
            );
        }
        for g in self.goroutines() {
            let st = g.status as u32;
            match g.status {
                GStatus::Waiting => {
                    let _ = writeln!(
                        s,
                        "  G{}: status={}({}) m=-1 lockedm={}",
                        g.id,
                        st,
                        g.wait_reason.unwrap_or(""),
                        if g.id == 1 { 1 } else { -1 }
                    );
                }
                _ => {
                    let _ = writeln!(
                        s,
                        "  G{}: status={}() m=-1 lockedm={}",
                        g.id,
                        st,
                        if g.id == 1 { 1 } else { -1 }
                    );
                }
            }
        }
        s
    }
}
