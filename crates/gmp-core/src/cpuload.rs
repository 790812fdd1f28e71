//! Whether the machine has a core free for every P (`CpuLoad`).
//!
//! Go sizes its spinning on Ps alone: it assumes GOMAXPROCS cores are its
//! own. When other processes keep cores busy (a load generator beside a
//! server, a build), an M that spins waiting for work takes a core from a
//! thread with work to do, often our own busy M, and the kernel runs
//! that M late: milliseconds on a request's latency. So sysmon samples
//! how many threads of other processes are runnable, and while they and
//! our Ps together outnumber the cores, the wake-ups that only buy
//! parallelism stop:
//!
//! - `spin_before_park`, the one spin that is ours rather than Go's;
//! - `inject_local` (Go's `injectglist`) no longer spreads a netpoll burst
//!   over the idle Ps with an M started for each: the burst stays on the
//!   polling P;
//! - `resetspinning` no longer wakes the next spinning M.
//!
//! Each of those wakes a thread that then competes for a core with our
//! own busy M or with the process that made the cores scarce, and the
//! loser waits out a kernel time slice: on an HTTP server sharing two
//! cores with its load generator, that slice was the server's p99
//! (docs/benchmarks.md). A goroutine's own wake-ups are not touched:
//! `ready` and `newproc` still call `wakep`, so "a goroutine made runnable
//! while a P is idle starts promptly" holds whatever the machine's load.
//!
//! The sample is the kernel's instantaneous count of runnable threads
//! (the fourth field of `/proc/loadavg`, Linux), less the threads of ours
//! that can be running, averaged over a few samples; elsewhere the
//! machine always counts as free.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// How often sysmon samples the load. One `pread` of `/proc/loadavg`,
/// kept open, costs a few microseconds.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// The average's weight on the new sample, in sixteenths.
const NEW_WEIGHT: u32 = 4;

pub(crate) struct CpuLoad {
    cores: u32,
    /// `/proc/loadavg`, opened once: a sample is then one `pread` instead
    /// of open, stat, read and close.
    source: LoadSource,
    /// Runnable threads of other processes, moving average, 1/16 units.
    others_x16: AtomicU32,
    scarce: AtomicBool,
}

impl CpuLoad {
    pub(crate) fn new() -> CpuLoad {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        CpuLoad {
            cores,
            source: LoadSource::open(),
            others_x16: AtomicU32::new(0),
            scarce: AtomicBool::new(false),
        }
    }

    /// True while other processes' runnable threads and our Ps together
    /// outnumber the cores.
    #[inline]
    pub(crate) fn scarce(&self) -> bool {
        self.scarce.load(Relaxed)
    }

    /// sysmon, every `SAMPLE_EVERY`: `ours` is how many of our threads
    /// can be running now (Ms holding a P, and sysmon itself), `procs` is
    /// GOMAXPROCS.
    pub(crate) fn sample(&self, ours: u32, procs: u32) {
        let Some(running) = self.source.runnable_threads() else {
            return;
        };
        let others = running.saturating_sub(ours);
        let avg = next_average(self.others_x16.load(Relaxed), others);
        self.others_x16.store(avg, Relaxed);
        self.scarce
            .store(is_scarce(avg, self.cores, procs), Relaxed);
    }
}

fn next_average(avg_x16: u32, others: u32) -> u32 {
    (avg_x16 * (16 - NEW_WEIGHT) + others.min(1 << 16) * 16 * NEW_WEIGHT) / 16
}

/// Scarce when the average rounds to more busy threads than the cores our
/// Ps leave over.
fn is_scarce(avg_x16: u32, cores: u32, procs: u32) -> bool {
    avg_x16 > cores.saturating_sub(procs) * 16 + 8
}

/// Where the count of runnable threads comes from.
struct LoadSource {
    #[cfg(target_os = "linux")]
    file: Option<std::fs::File>,
}

impl LoadSource {
    fn open() -> LoadSource {
        LoadSource {
            #[cfg(target_os = "linux")]
            file: std::fs::File::open("/proc/loadavg").ok(),
        }
    }

    /// The kernel's count of runnable threads right now (this one
    /// included). Reading at offset 0 makes procfs render the file anew.
    #[cfg(target_os = "linux")]
    fn runnable_threads(&self) -> Option<u32> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 128];
        let n = self.file.as_ref()?.read_at(&mut buf, 0).ok()?;
        parse_loadavg(std::str::from_utf8(&buf[..n]).ok()?)
    }

    #[cfg(not(target_os = "linux"))]
    fn runnable_threads(&self) -> Option<u32> {
        None
    }
}

/// `"0.50 0.40 0.30 3/250 12345"` -> 3.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_loadavg(s: &str) -> Option<u32> {
    let field = s.split_whitespace().nth(3)?;
    field.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_the_running_field_through_the_kept_file() {
        let src = LoadSource::open();
        // This thread is running, so each fresh read counts at least one.
        for _ in 0..3 {
            assert!(src.runnable_threads().is_some_and(|n| n >= 1));
        }
    }

    #[test]
    fn parses_the_running_field() {
        assert_eq!(parse_loadavg("0.50 0.40 0.30 3/250 12345\n"), Some(3));
        assert_eq!(parse_loadavg("0.50 0.40"), None);
        assert_eq!(parse_loadavg("a b c x/1 2"), None);
    }

    #[test]
    fn scarce_follows_other_processes_load() {
        let settle = |others| (0..30).fold(0, |avg, _| next_average(avg, others));
        // Two Ps on two cores: one other busy thread leaves too few.
        assert!(is_scarce(settle(1), 2, 2));
        assert!(!is_scarce(settle(0), 2, 2));
        // One P on two cores: the other core is free for that thread.
        assert!(!is_scarce(settle(1), 2, 1));
        assert!(is_scarce(settle(2), 2, 1));
        // One sample does not flip it.
        assert!(!is_scarce(next_average(0, 1), 2, 2));
        // Nor does it stay scarce long after the load is gone.
        assert!(!is_scarce(
            (0..30).fold(settle(1), |a, _| next_average(a, 0)),
            2,
            2
        ));
    }
}
