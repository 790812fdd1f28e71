//! The scheduler while other processes leave too few cores for its Ps
//! (`Metrics::cores_scarce`): it then wakes no M for parallelism alone (a
//! netpoll burst stays on the P that polled it, a spinning M that found
//! work wakes nobody), and nothing may be lost or left waiting for that.
//! One test in its own binary: its busy threads would disturb other tests.

use futures::{AsyncReadExt, AsyncWriteExt};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::{echo_server, poll_until, rt, wait_for_reason, watchdog};

/// Threads that keep every core busy until dropped (bounded by `limit`
/// in any case).
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    fn start(n: usize, limit: Duration) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let end = std::time::Instant::now() + limit;
                    while !stop.load(Relaxed) && std::time::Instant::now() < end {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Hogs { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn with_cores_scarce_every_io_wakeup_and_goroutine_still_runs() {
    let _w = watchdog("scarce-cores echo", Duration::from_secs(60));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let _hogs = Hogs::start(cores + 1, Duration::from_secs(50));
    rt(2).block_on(async {
        poll_until(
            Duration::from_secs(10),
            "sysmon to see the cores scarce",
            || gmp::runtime::metrics().cores_scarce,
        )
        .await;

        // An echo server and 32 clients, each doing 100 round trips: every
        // netpoll burst now stays on one P, and every byte still comes back.
        let (addr, _server) = echo_server().await;
        let clients: Vec<_> = (0..32u8)
            .map(|id| {
                gmp::spawn(async move {
                    let mut c = gmp::net::TcpStream::connect(addr).await.unwrap();
                    for round in 0..100u8 {
                        let msg = [id, round, id ^ round, 7];
                        c.write_all(&msg).await.unwrap();
                        let mut got = [0u8; 4];
                        c.read_exact(&mut got).await.unwrap();
                        assert_eq!(got, msg, "client {id} round {round}");
                    }
                    id as u32
                })
            })
            .collect();
        let mut sum = 0;
        for h in clients {
            sum += h.await.unwrap();
        }
        assert_eq!(sum, (0..32).sum::<u32>());

        // A goroutine readied while its waker keeps the P busy (no await)
        // still runs, on the other P.
        let ran = Arc::new(AtomicBool::new(false));
        let (tx, rx) = gmp::chan::bounded::<()>(1);
        let child = {
            let ran = ran.clone();
            gmp::spawn(async move {
                rx.recv().await.unwrap();
                ran.store(true, Relaxed);
            })
        };
        wait_for_reason(child.goid(), "chan receive", Duration::from_secs(10)).await;
        tx.try_send(()).unwrap();
        let spin_until = std::time::Instant::now() + Duration::from_secs(10);
        while !ran.load(Relaxed) && std::time::Instant::now() < spin_until {
            std::hint::spin_loop();
        }
        assert!(
            ran.load(Relaxed),
            "a goroutine readied while a P was idle did not run while its waker kept its P"
        );
        child.await.unwrap();
    });
}
