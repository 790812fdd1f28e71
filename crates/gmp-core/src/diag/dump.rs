//! Seeing inside: `goroutines()` (a snapshot of allgs) and `dump()`, Go's
//! goroutine dump text (`goroutine 7 [chan receive, 2 minutes]:`).

use crate::g::status::{GStatus, WaitReason};
use crate::sched::{expect_current, Sched};
use std::fmt::Write;
use std::panic::Location;
use std::time::Duration;

/// One goroutine as `gmp::runtime::goroutines()` sees it.
#[derive(Clone, Debug)]
pub struct GoroutineInfo {
    pub id: u64,
    pub status: GStatus,
    /// Go's wait reason string while `status` is `Waiting`.
    pub wait_reason: Option<&'static str>,
    /// How long it has been waiting (coarse, sysmon's clock).
    pub waiting_for: Option<Duration>,
    /// Where `go`/`spawn` was called (for main: the `block_on` call).
    pub created_at: &'static Location<'static>,
    /// The goroutine that started this one.
    pub parent: Option<u64>,
}

impl Sched {
    pub(crate) fn goroutines(&self) -> Vec<GoroutineInfo> {
        let now = self.coarse_ms();
        let mut out = Vec::new();
        self.allgs.for_each(|h| {
            let status = h.status();
            let (wait_reason, waiting_for) = if status == GStatus::Waiting {
                let r = h.wait_reason();
                let since = h.since.load(std::sync::atomic::Ordering::Relaxed);
                (
                    Some(if r == WaitReason::None {
                        "waiting"
                    } else {
                        r.as_str()
                    }),
                    Some(Duration::from_millis(now.saturating_sub(since) as u64)),
                )
            } else {
                (None, None)
            };
            out.push(GoroutineInfo {
                id: h.goid,
                status,
                wait_reason,
                waiting_for,
                created_at: h.created_at,
                parent: (h.parent != 0).then_some(h.parent),
            });
        });
        out.sort_by_key(|g| g.id);
        out
    }
}

/// Go's text for a goroutine list.
pub(crate) fn format_dump(gs: &[GoroutineInfo]) -> String {
    let mut s = String::new();
    for g in gs {
        let what = match g.status {
            GStatus::Waiting => g.wait_reason.unwrap_or("waiting"),
            other => other.as_str(),
        };
        let _ = write!(s, "goroutine {} [{}", g.id, what);
        if let Some(w) = g.waiting_for {
            let mins = w.as_secs() / 60;
            if mins >= 1 {
                let _ = write!(s, ", {} minute{}", mins, if mins == 1 { "" } else { "s" });
            }
        }
        s.push_str("]:\n");
        let loc = g.created_at;
        match g.parent {
            Some(p) => {
                let _ = writeln!(
                    s,
                    "created by goroutine {} at {}:{}",
                    p,
                    loc.file(),
                    loc.line()
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "main goroutine, started at {}:{}",
                    loc.file(),
                    loc.line()
                );
            }
        }
        s.push('\n');
    }
    s
}

/// A snapshot of every live goroutine of the current runtime.
#[track_caller]
pub fn goroutines() -> Vec<GoroutineInfo> {
    expect_current("gmp::runtime::goroutines", |ctx| ctx.sched.goroutines())
}

/// Go's goroutine dump of the current runtime.
#[track_caller]
pub fn dump() -> String {
    format_dump(&goroutines())
}
