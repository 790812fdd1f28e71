//! Go's ticker-based rate limiter: requests are served at most one per
//! tick, with a small burst allowance refilled by the same ticker
//! (gobyexample's "rate limiting", with a buffered channel as the bucket).
//!
//! Run: `cargo run --release --example rate_limiter`

use gmp::time::Ticker;
use std::time::{Duration, Instant};

const RATE: Duration = Duration::from_millis(20);
const BURST: usize = 3;
const REQUESTS: u32 = 10;

#[gmp::main]
async fn main() {
    let start = Instant::now();
    let (requests_tx, requests) = gmp::chan::bounded::<u32>(REQUESTS as usize);
    for r in 1..=REQUESTS {
        requests_tx.try_send(r).expect("room for every request");
    }
    drop(requests_tx);

    // The bucket starts full; a ticker refills one token per period.
    let (bucket_tx, bucket) = gmp::chan::bounded::<Instant>(BURST);
    for _ in 0..BURST {
        bucket_tx.try_send(Instant::now()).unwrap();
    }
    let (stop_tx, stop) = gmp::chan::bounded::<()>(0);
    gmp::go(async move {
        let ticker = Ticker::new(RATE);
        loop {
            gmp::select! {
                recv(ticker.channel()) -> t => {
                    // A full bucket drops the token, as a full tick channel does.
                    let _ = bucket_tx.try_send(t.unwrap());
                },
                recv(stop) -> _ => {
                    ticker.stop();
                    return;
                },
            }
        }
    });

    let mut last = start;
    while let Ok(r) = requests.recv().await {
        bucket.recv().await.unwrap();
        let now = Instant::now();
        println!(
            "request {r:2} served at {:6.1} ms (+{:5.1} ms)",
            (now - start).as_secs_f64() * 1e3,
            (now - last).as_secs_f64() * 1e3
        );
        last = now;
    }
    drop(stop_tx);
    println!(
        "rate_limiter: {REQUESTS} requests, burst {BURST}, then one per {RATE:?}: {:?} in all",
        start.elapsed()
    );
}
