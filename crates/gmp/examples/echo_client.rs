//! A load generator for `echo_server`: N connections, each doing M
//! sequential round trips of a 64-byte message; prints round trips/s.
//!
//! `cargo run --release --example echo_client [addr] [conns] [rounds]`
//! (defaults 127.0.0.1:7007, 64, 20000).

use futures::{AsyncReadExt, AsyncWriteExt};
use std::time::Instant;

#[gmp::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7007".into());
    let conns: usize = args.next().map_or(64, |v| v.parse().expect("conns"));
    let rounds: usize = args.next().map_or(20_000, |v| v.parse().expect("rounds"));
    let t = Instant::now();
    let wg = gmp::sync::WaitGroup::new();
    for _ in 0..conns {
        let addr = addr.clone();
        wg.go(async move {
            let mut s = gmp::net::TcpStream::connect(addr.as_str())
                .await
                .expect("connect");
            let msg = [7u8; 64];
            let mut back = [0u8; 64];
            for _ in 0..rounds {
                s.write_all(&msg).await.expect("write");
                s.read_exact(&mut back).await.expect("read");
            }
        });
    }
    wg.wait().await;
    let total = conns * rounds;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{conns} connections x {rounds} round trips = {total} in {secs:.2}s: {:.0} round trips/s",
        total as f64 / secs
    );
    Ok(())
}
