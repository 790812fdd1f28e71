//! The readiness memory of stream sockets (a read or write that moved
//! fewer bytes than asked parks the next one without a syscall) must lose
//! no edge: randomly sized writes, pauses and read buffers on many
//! connections at once, every byte arriving in order, with a watchdog
//! turning a lost wake-up into a failure.

use futures::{AsyncReadExt, AsyncWriteExt};
use std::time::Duration;

const WATCHDOG: Duration = Duration::from_secs(60);

/// xorshift: deterministic sizes per connection.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn byte_at(i: usize) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

#[test]
fn random_chunks_and_buffers_lose_no_edge() {
    const CONNS: u64 = 16;
    const LEN: usize = 1024 * 1024;
    let rt = gmp::Runtime::builder().procs(2).build().unwrap();
    rt.block_on(async {
        gmp::time::timeout(WATCHDOG, async {
            let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = ln.local_addr().unwrap();
            let wg = gmp::sync::WaitGroup::new();
            for k in 0..CONNS {
                // Writer: the client side, random chunk sizes and pauses.
                wg.go(async move {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (k + 1));
                    let mut c = gmp::net::TcpStream::connect(addr).await.unwrap();
                    let data: Vec<u8> = (0..LEN).map(byte_at).collect();
                    let mut at = 0;
                    while at < LEN {
                        // Mostly small; sometimes more than the socket
                        // buffers hold, so writes come back short.
                        let max = if rng.below(10) == 0 { 300_000 } else { 3000 };
                        let n = (1 + rng.below(max) as usize).min(LEN - at);
                        c.write_all(&data[at..at + n]).await.unwrap();
                        at += n;
                        match rng.below(8) {
                            0 => gmp::time::sleep(Duration::from_micros(rng.below(500))).await,
                            1 => gmp::runtime::gosched().await,
                            _ => {}
                        }
                    }
                });
            }
            for k in 0..CONNS {
                let (mut s, _) = ln.accept().await.unwrap();
                // Reader: random buffer sizes, so reads are short or full.
                wg.go(async move {
                    let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (k + 1));
                    let mut buf = vec![0u8; 4096];
                    let mut got = 0;
                    loop {
                        let want = 1 + rng.below(4096) as usize;
                        let n = s.read(&mut buf[..want]).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        for (j, &b) in buf[..n].iter().enumerate() {
                            assert_eq!(b, byte_at(got + j), "byte {} differs", got + j);
                        }
                        got += n;
                        // A slow reader now and then, so the writer's
                        // buffers fill.
                        if rng.below(32) == 0 {
                            gmp::time::sleep(Duration::from_micros(rng.below(2000))).await;
                        }
                    }
                    assert_eq!(got, LEN);
                });
            }
            wg.wait().await;
        })
        .await
        .expect("watchdog: a read or write never woke (lost edge?)");
    });
}
