//! gmp's showcase: what a Go programmer would write, in Rust.
//!
//! 1. A prime sieve: a daisy chain of goroutines connected by unbuffered
//!    channels (Go's classic `sieve.go`).
//! 2. Fan-out/fan-in: 10,000 goroutines square numbers from one channel
//!    and send results to another; a WaitGroup closes the results.
//! 3. `select!` with a timeout and a default case.
//! 4. A goroutine dump and the scheduler's metrics.
//!
//! Run: `cargo run --release --example showcase`

use gmp::chan::{self, Receiver, Sender};
use gmp::sync::WaitGroup;
use std::time::{Duration, Instant};

/// Send 2, 3, 4, ... to `out` until the receiver goes away.
async fn generate(out: Sender<u64>) {
    let mut i = 2;
    while out.send(i).await.is_ok() {
        i += 1;
    }
}

/// Copy values from `inp` to `out`, dropping multiples of `prime`.
async fn filter(inp: Receiver<u64>, out: Sender<u64>, prime: u64) {
    while let Ok(v) = inp.recv().await {
        if v % prime != 0 && out.send(v).await.is_err() {
            return;
        }
    }
}

async fn sieve(n: usize) -> Vec<u64> {
    let (tx, mut rx) = chan::bounded(0);
    gmp::go(generate(tx));
    let mut primes = Vec::with_capacity(n);
    for _ in 0..n {
        let prime = rx.recv().await.expect("generator stopped");
        primes.push(prime);
        let (tx2, rx2) = chan::bounded(0);
        gmp::go(filter(rx, tx2, prime));
        rx = rx2;
    }
    primes
}

async fn fan_out_fan_in(workers: usize, items: u64) -> (u64, usize) {
    let (jobs_tx, jobs_rx) = chan::bounded::<u64>(128);
    let (res_tx, res_rx) = chan::bounded::<u64>(128);
    let wg = WaitGroup::new();
    for _ in 0..workers {
        let (jobs, res) = (jobs_rx.clone(), res_tx.clone());
        wg.go(async move {
            while let Ok(v) = jobs.recv().await {
                let _ = res.send(v * v).await;
            }
        });
    }
    drop(jobs_rx);
    let peak = gmp::runtime::num_goroutine();
    gmp::go(async move {
        for i in 1..=items {
            jobs_tx.send(i).await.unwrap();
        }
        // Dropping the last sender closes `jobs`: the workers finish.
    });
    // Go's idiom: close the results once every worker is done.
    gmp::go(async move {
        wg.wait().await;
        res_tx.close();
    });
    let mut sum = 0;
    while let Ok(v) = res_rx.recv().await {
        sum += v;
    }
    (sum, peak)
}

#[gmp::main]
async fn main() {
    println!(
        "gmp showcase: GOMAXPROCS={}, G header = {} bytes\n",
        gmp::runtime::gomaxprocs(),
        gmp::runtime::G_HEADER_SIZE
    );

    let t = Instant::now();
    let primes = sieve(1000).await;
    println!(
        "1. prime sieve: a chain of 1000 filter goroutines over unbuffered channels\n   \
         the 1000th prime is {} (took {:?}); first ten: {:?}",
        primes[999],
        t.elapsed(),
        &primes[..10]
    );

    let t = Instant::now();
    let (sum, peak) = fan_out_fan_in(10_000, 200_000).await;
    let expect: u64 = (1..=200_000u64).map(|i| i * i).sum();
    println!(
        "2. fan-out/fan-in: 10,000 workers squared 200,000 numbers: sum {} ({}), \
         {} goroutines at peak, {:?}",
        sum,
        if sum == expect { "correct" } else { "WRONG" },
        peak,
        t.elapsed()
    );

    let (tx, rx) = chan::bounded::<&'static str>(0);
    gmp::go(async move {
        gmp::time::sleep(Duration::from_millis(30)).await;
        let _ = tx.send("late reply").await;
    });
    let first = gmp::select! {
        recv(rx) -> v => format!("received {:?}", v),
        recv(gmp::time::after(Duration::from_millis(10))) -> _ => "timed out after 10ms".to_string(),
    };
    let second = gmp::select! {
        recv(rx) -> v => format!("received {:?}", v),
        default => "nothing ready (default case)".to_string(),
    };
    let third = gmp::select! {
        recv(rx) -> v => format!("received {:?}", v.unwrap()),
        recv(gmp::time::after(Duration::from_secs(1))) -> _ => "timed out".to_string(),
    };
    println!("3. select: {first}; then {second}; then {third}");

    let (block_tx, block_rx) = chan::bounded::<()>(0);
    for _ in 0..3 {
        let rx = block_rx.clone();
        gmp::go(async move {
            let _ = rx.recv().await;
        });
    }
    gmp::time::sleep(Duration::from_millis(5)).await;
    let dump = gmp::runtime::dump();
    println!("4. goroutine dump (first lines):");
    for line in dump.lines().take(8) {
        println!("   {line}");
    }
    let m = gmp::runtime::metrics();
    println!(
        "   metrics: {} goroutines live, {} spawned, {} stolen, {} M parks, \
         p50 scheduling latency <= {:?}",
        m.goroutines,
        m.spawned_total,
        m.steals,
        m.parks,
        m.sched_latency.quantile(0.5).unwrap_or_default()
    );
    drop(block_tx);
}
