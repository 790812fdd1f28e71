//! The gmp side of the channel workloads, shared by the chan bench
//! (`benches/chan.rs`, which times them against the other channels) and
//! the `chan_cost` driver (which runs them alone, for callgrind and perf).

/// Unbuffered ping-pong: `n` round trips between two goroutines.
pub async fn ping_pong(n: u64) {
    let (atx, arx) = gmp::chan::bounded::<u64>(0);
    let (btx, brx) = gmp::chan::bounded::<u64>(0);
    let echo = gmp::spawn(async move {
        while let Ok(v) = arx.recv().await {
            if btx.send(v).await.is_err() {
                break;
            }
        }
    });
    let ping = gmp::spawn(async move {
        for i in 0..n {
            atx.send(i).await.unwrap();
            brx.recv().await.unwrap();
        }
    });
    ping.await.unwrap();
    echo.await.unwrap();
}

/// 4 producers and 4 consumers on one channel of capacity 1024, `n`
/// values in all (a multiple of 4); checks every value arrived once.
pub async fn mpmc(n: u64) {
    let (tx, rx) = gmp::chan::bounded::<u64>(1024);
    let per = n / 4;
    let mut hs = Vec::new();
    for _ in 0..4 {
        let tx = tx.clone();
        hs.push(gmp::spawn(async move {
            for i in 0..per {
                tx.send(i).await.unwrap();
            }
            0u64
        }));
    }
    drop(tx);
    for _ in 0..4 {
        let rx = rx.clone();
        hs.push(gmp::spawn(async move {
            let mut s = 0u64;
            while let Ok(v) = rx.recv().await {
                s = s.wrapping_add(v);
            }
            s
        }));
    }
    let mut sum = 0u64;
    for h in hs {
        sum = sum.wrapping_add(h.await.unwrap());
    }
    assert_eq!(sum, 4 * (per * (per.max(1) - 1) / 2));
}

/// 8 senders, each on its own unbuffered channel, and one `select!` over
/// all 8 receiving `n` values (a multiple of 8). Like Go's version, nobody
/// closes the channels: a sender of each is kept until the end.
pub async fn fanin(n: u64) {
    let per = n / 8;
    let mut rxs = Vec::new();
    let mut keep = Vec::new();
    for _ in 0..8 {
        let (tx, rx) = gmp::chan::bounded::<u64>(0);
        rxs.push(rx);
        keep.push(tx.clone());
        gmp::go(async move {
            for i in 0..per {
                if tx.send(i).await.is_err() {
                    return;
                }
            }
        });
    }
    let [r0, r1, r2, r3, r4, r5, r6, r7]: [gmp::chan::Receiver<u64>; 8] = rxs.try_into().unwrap();
    for _ in 0..per * 8 {
        let v = gmp::select! {
            recv(r0) -> v => v,
            recv(r1) -> v => v,
            recv(r2) -> v => v,
            recv(r3) -> v => v,
            recv(r4) -> v => v,
            recv(r5) -> v => v,
            recv(r6) -> v => v,
            recv(r7) -> v => v,
        };
        v.unwrap();
    }
    drop(keep);
}
