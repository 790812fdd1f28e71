//! A worker pool the Go way: an `ErrGroup` with a limit runs the jobs, a
//! weighted `Semaphore` caps the "memory" the jobs hold at once, and the
//! group's context stops the remaining work after the first failure.
//!
//! Run: `cargo run --release --example worker_pool`

use gmp::context::Context;
use gmp::sync::{ErrGroup, Semaphore};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOBS: u64 = 40;
const WORKERS: usize = 4;
/// Memory units the jobs may hold together; job `i` needs `1 + i % 4`.
const MEMORY: u64 = 6;
/// This job fails, cancelling the ones not yet started.
const BAD_JOB: u64 = 25;

#[derive(Debug)]
struct JobError {
    job: u64,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job {} failed", self.job)
    }
}

struct Stats {
    done: AtomicUsize,
    skipped: AtomicUsize,
    memory_peak: AtomicU64,
    memory_now: AtomicU64,
}

async fn job(i: u64, ctx: Context, mem: Arc<Semaphore>, stats: Arc<Stats>) -> Result<(), JobError> {
    if ctx.err().is_some() {
        stats.skipped.fetch_add(1, SeqCst);
        return Ok(());
    }
    let need = 1 + i % 4;
    mem.acquire(need).await;
    let now = stats.memory_now.fetch_add(need, SeqCst) + need;
    stats.memory_peak.fetch_max(now, SeqCst);
    // "Work", abandoned early if the group is cancelled meanwhile.
    let cancelled = gmp::select! {
        recv(ctx.done()) -> _ => true,
        recv(gmp::time::after(Duration::from_millis(2 + i % 5))) -> _ => false,
    };
    stats.memory_now.fetch_sub(need, SeqCst);
    mem.release(need);
    if cancelled {
        stats.skipped.fetch_add(1, SeqCst);
        return Ok(());
    }
    if i == BAD_JOB {
        return Err(JobError { job: i });
    }
    stats.done.fetch_add(1, SeqCst);
    Ok(())
}

#[gmp::main]
async fn main() {
    let start = Instant::now();
    let (g, ctx) = ErrGroup::with_context(&gmp::context::background());
    g.set_limit(WORKERS);
    let mem = Arc::new(Semaphore::new(MEMORY));
    let stats = Arc::new(Stats {
        done: AtomicUsize::new(0),
        skipped: AtomicUsize::new(0),
        memory_peak: AtomicU64::new(0),
        memory_now: AtomicU64::new(0),
    });
    for i in 0..JOBS {
        g.go(job(i, ctx.clone(), mem.clone(), stats.clone()));
    }
    let result = g.wait().await;
    println!(
        "worker_pool: {JOBS} jobs, at most {WORKERS} at once, {MEMORY} memory units \
         (peak held: {})",
        stats.memory_peak.load(SeqCst)
    );
    println!(
        "  completed {}, skipped after cancellation {}, result: {}",
        stats.done.load(SeqCst),
        stats.skipped.load(SeqCst),
        match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        }
    );
    println!("  context after wait: {:?}", ctx.err());
    println!("  took {:?}", start.elapsed());
}
