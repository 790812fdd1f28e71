//! `metrics()`: scheduler counters and the scheduling-latency histogram
//! (runnable -> running), cheap enough to leave on: counters are bumped
//! where the scheduler already touches the cache line, and latency is
//! sampled on one ready in 256 per P.

use crate::sched::{expect_current, Sched};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Ready one G in this many per P gets a latency sample.
pub(crate) const SAMPLE_EVERY: u32 = 256;
const BUCKETS: usize = 32;

/// Log2 buckets of microseconds.
#[derive(Default)]
pub(crate) struct LatencyHist {
    buckets: [AtomicU64; BUCKETS],
}

impl LatencyHist {
    pub(crate) fn record(&self, us: u32) {
        let b = (32 - us.leading_zeros()) as usize;
        self.buckets[b.min(BUCKETS - 1)].fetch_add(1, Relaxed);
    }
}

/// Runtime counters, `gmp::runtime::metrics()`.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Live goroutines, main included.
    pub goroutines: usize,
    /// Goroutines created since the runtime started.
    pub spawned_total: u64,
    /// Goroutines moved by stealing.
    pub steals: u64,
    /// Length of the global run queue.
    pub global_runq: usize,
    /// Length of each P's local run queue (runnext included).
    pub local_runq: Vec<usize>,
    /// Goroutines made ready by the netpoller.
    pub netpoll_wakeups: u64,
    /// Times an M parked for lack of work.
    pub parks: u64,
    /// OS threads running the scheduler (Ms).
    pub threads: usize,
    /// Armed timers.
    pub timers: usize,
    /// Other processes' runnable threads and our Ps outnumber the cores,
    /// as sysmon last sampled: the scheduler wakes no M for parallelism
    /// alone (see the `cpuload` module).
    pub cores_scarce: bool,
    /// Runnable -> running latency (sampled).
    pub sched_latency: Histogram,
}

/// A log2 histogram: `buckets[i]` counts samples below `bounds[i]`
/// (and at or above the previous bound).
#[derive(Debug, Clone)]
pub struct Histogram {
    pub bounds: Vec<Duration>,
    pub buckets: Vec<u64>,
}

impl Histogram {
    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Upper bound of the bucket holding quantile `q` (0..=1).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let target = ((n as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, c) in self.bounds.iter().zip(&self.buckets) {
            seen += c;
            if seen >= target {
                return Some(*b);
            }
        }
        self.bounds.last().copied()
    }
}

impl Sched {
    /// Microseconds since start, wrapping (only differences matter).
    #[inline]
    pub(crate) fn micros(&self) -> u32 {
        Instant::now()
            .saturating_duration_since(self.start)
            .as_micros() as u32
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let h = &self.latency;
        Metrics {
            goroutines: self.allgs.len(),
            spawned_total: self.spawned_total(),
            steals: self.steals.load(Relaxed),
            global_runq: self.global_runq_len(),
            local_runq: self
                .allp
                .iter()
                .take(self.gomaxprocs())
                .map(|p| p.runq.len())
                .collect(),
            netpoll_wakeups: self.netpoll_wakeups.load(Relaxed),
            parks: self.mparks.load(Relaxed),
            threads: self.mcount(),
            timers: self.timers_pending(),
            cores_scarce: self.cpuload.scarce(),
            sched_latency: Histogram {
                bounds: (0..BUCKETS)
                    .map(|i| Duration::from_micros(1u64 << i))
                    .collect(),
                buckets: h.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            },
        }
    }
}

/// Counters of the current runtime.
#[track_caller]
pub fn metrics() -> Metrics {
    expect_current("gmp::runtime::metrics", |ctx| ctx.sched.metrics())
}
