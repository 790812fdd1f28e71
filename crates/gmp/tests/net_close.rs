//! Go's `Close` from any goroutine on gmp::net sockets: a blocked accept,
//! read or write wakes with "use of closed network connection", later
//! operations fail the same way, the peer sees the close at once; plus
//! half-close, `from_std`/`into_std`, close-on-exec, a connect burst
//! against the somaxconn backlog, and writes to a closed peer never
//! raising SIGPIPE.

use futures::{AsyncReadExt, AsyncWriteExt};
use std::io::{ErrorKind, IoSlice};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(procs: usize) -> gmp::Runtime {
    gmp::Runtime::builder().procs(procs).build().unwrap()
}

/// A lost wake-up fails the test instead of hanging the run.
const WATCHDOG: Duration = Duration::from_secs(20);

async fn watchdog<F: std::future::Future>(f: F) -> F::Output {
    gmp::time::timeout(WATCHDOG, f)
        .await
        .expect("watchdog: the operation never completed (lost wake-up?)")
}

/// Generous bound for "returns promptly after close" (the contract is
/// 1 ms; the machine is shared).
const PROMPT: Duration = Duration::from_millis(500);

fn assert_closed_error(e: &std::io::Error) {
    assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
    assert_eq!(e.to_string(), "use of closed network connection");
}

async fn pair() -> (gmp::net::TcpStream, gmp::net::TcpStream) {
    let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ln.local_addr().unwrap();
    let acc = gmp::spawn(async move { ln.accept().await.unwrap().0 });
    let c = gmp::net::TcpStream::connect(addr).await.unwrap();
    (c, acc.await.unwrap())
}

/// Wait until `g` is parked (IO wait) so the close really hits a blocked
/// operation.
async fn until_io_wait() {
    let t = Instant::now();
    loop {
        let parked = gmp::runtime::goroutines()
            .iter()
            .any(|g| g.wait_reason == Some("IO wait"));
        if parked {
            return;
        }
        assert!(t.elapsed() < WATCHDOG, "no goroutine ever parked on I/O");
        gmp::time::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn close_wakes_a_blocked_accept() {
    rt(2).block_on(watchdog(async {
        let ln = Arc::new(gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = ln.local_addr().unwrap();
        let l2 = ln.clone();
        let acc = gmp::spawn(async move {
            let r = l2.accept().await.map(|_| ());
            (r, Instant::now())
        });
        until_io_wait().await;
        let closed_at = Instant::now();
        ln.close().unwrap();
        let (r, woke_at) = acc.await.unwrap();
        assert_closed_error(&r.unwrap_err());
        assert!(woke_at.duration_since(closed_at) < PROMPT);
        // Every later accept fails too, and so does a second close.
        assert_closed_error(&ln.accept().await.map(|_| ()).unwrap_err());
        assert_closed_error(&ln.close().unwrap_err());
        // The socket no longer listens, though the listener is alive.
        let e = gmp::net::TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    }));
}

#[test]
fn close_wakes_a_blocked_read_and_the_peer_sees_it() {
    rt(2).block_on(watchdog(async {
        let (c, mut s) = pair().await;
        let c = Arc::new(c);
        let c2 = c.clone();
        let reader = gmp::spawn(async move {
            let mut buf = [0u8; 16];
            let r = (&*c2).read(&mut buf).await;
            (r, Instant::now())
        });
        until_io_wait().await;
        let closed_at = Instant::now();
        c.close().unwrap();
        let (r, woke_at) = reader.await.unwrap();
        assert_closed_error(&r.unwrap_err());
        assert!(woke_at.duration_since(closed_at) < PROMPT);
        // Later reads and writes fail the same way.
        let mut buf = [0u8; 4];
        assert_closed_error(&(&*c).read(&mut buf).await.unwrap_err());
        assert_closed_error(&(&*c).write(b"x").await.unwrap_err());
        assert_closed_error(&c.shutdown(std::net::Shutdown::Write).unwrap_err());
        // `c` is still alive, yet the peer reads end of file now.
        assert_eq!(s.read(&mut buf).await.unwrap(), 0);
        drop(c);
    }));
}

#[test]
fn close_wakes_a_blocked_write() {
    rt(2).block_on(watchdog(async {
        let (c, _s) = pair().await;
        let (r, w) = c.into_split();
        let writer = gmp::spawn(async move {
            let mut w = w;
            let chunk = vec![7u8; 64 * 1024];
            // The peer never reads: the buffers fill and the write parks.
            let e = loop {
                if let Err(e) = w.write(&chunk).await {
                    break e;
                }
            };
            (e, Instant::now())
        });
        until_io_wait().await;
        let closed_at = Instant::now();
        // Close through the other half: one connection, one close.
        r.close().unwrap();
        let (e, woke_at) = writer.await.unwrap();
        assert_closed_error(&e);
        assert!(woke_at.duration_since(closed_at) < PROMPT);
    }));
}

/// A read half parked in one goroutine, closed through the borrowed halves
/// of `split` in another scope: same contract.
#[test]
fn close_through_a_borrowed_half() {
    rt(1).block_on(watchdog(async {
        let (c, _s) = pair().await;
        // Path syntax: with futures' AsyncReadExt in scope, `c.split()` is
        // that trait's by-value split.
        let (mut rh, wh) = gmp::net::TcpStream::split(&c);
        let mut buf = [0u8; 8];
        let read = rh.read(&mut buf);
        // join! polls the read first, so it is parked when the close runs.
        let close = async {
            gmp::runtime::gosched().await;
            wh.close().unwrap();
        };
        let (r, ()) = futures::join!(read, close);
        assert_closed_error(&r.unwrap_err());
    }));
}

#[test]
fn udp_close_wakes_a_blocked_recv() {
    rt(2).block_on(watchdog(async {
        let s = Arc::new(gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let s2 = s.clone();
        let rx = gmp::spawn(async move {
            let mut buf = [0u8; 8];
            s2.recv_from(&mut buf).await.map(|_| ())
        });
        until_io_wait().await;
        s.close().unwrap();
        assert_closed_error(&rx.await.unwrap().unwrap_err());
        assert_closed_error(&s.send_to(b"x", "127.0.0.1:9").await.unwrap_err());
    }));
}

/// `shutdown(Write)`: the peer reads end of file and can still answer.
#[test]
fn half_close_peer_reads_eof_and_answers() {
    rt(2).block_on(watchdog(async {
        let (mut c, mut s) = pair().await;
        c.write_all(b"request").await.unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        s.write_all(b"answer").await.unwrap();
        drop(s);
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"answer");
    }));
}

/// A short read records "drained"; the end of file that arrives with the
/// last data must still be reported by the next read (it brings no new
/// readiness edge).
#[test]
fn eof_behind_a_short_read_is_seen() {
    rt(1).block_on(watchdog(async {
        for _ in 0..20 {
            let (mut c, mut s) = pair().await;
            c.write_all(b"tail").await.unwrap();
            drop(c);
            // Let the poller see data and FIN as one edge before the read
            // (setup only: the assertions below do not depend on timing).
            gmp::time::sleep(Duration::from_millis(2)).await;
            let mut buf = [0u8; 64];
            let mut got = 0;
            loop {
                match s.read(&mut buf).await.unwrap() {
                    0 => break,
                    n => got += n,
                }
            }
            assert_eq!(got, 4);
        }
    }));
}

#[test]
fn from_std_and_into_std_round_trip() {
    rt(2).block_on(watchdog(async {
        let std_ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_ln.local_addr().unwrap();
        let ln = gmp::net::TcpListener::from_std(std_ln).unwrap();
        let std_c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = ln.accept().await.unwrap();
        let mut c = gmp::net::TcpStream::from_std(std_c).unwrap();
        c.write_all(b"via gmp").await.unwrap();
        // Back to std, blocking: the bytes written through gmp arrive.
        let s = s.into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 7];
        std::io::Read::read_exact(&mut &s, &mut buf).unwrap();
        assert_eq!(&buf, b"via gmp");
        // And the listener comes back too, still listening on `addr`.
        let std_ln = ln.into_std().unwrap();
        assert_eq!(std_ln.local_addr().unwrap(), addr);
        let u = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ua = u.local_addr().unwrap();
        assert_eq!(u.into_std().unwrap().local_addr().unwrap(), ua);
    }));
}

fn is_cloexec(fd: i32) -> bool {
    // SAFETY: F_GETFD reads the flags of a descriptor we hold open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0);
    flags & libc::FD_CLOEXEC != 0
}

#[test]
fn sockets_are_close_on_exec() {
    rt(1).block_on(watchdog(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert!(is_cloexec(ln.as_raw_fd()));
        let (c, s) = pair().await;
        assert!(is_cloexec(c.as_raw_fd()));
        assert!(is_cloexec(s.as_raw_fd()));
        let u = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(is_cloexec(u.as_raw_fd()));
        // After close the descriptor number is still ours, and still
        // close-on-exec.
        c.close().unwrap();
        assert!(is_cloexec(c.as_raw_fd()));
    }));
}

/// 1,000 connects at once to a listener that accepts nothing for 100 ms:
/// with a somaxconn backlog every handshake completes in the kernel's
/// queue, then every connection is accepted and carries its bytes.
#[test]
fn backlog_burst_of_1000_connects() {
    const N: usize = 1000;
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    if somaxconn < N {
        eprintln!("skipped: somaxconn {somaxconn} < {N}");
        return;
    }
    let want = 3 * N as libc::rlim_t + 100;
    if raise_nofile(want) < want {
        eprintln!("skipped: the descriptor limit cannot reach {want}");
        return;
    }
    rt(2).block_on(watchdog(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        let wg = gmp::sync::WaitGroup::new();
        let (tx, rx) = gmp::chan::bounded(N);
        for i in 0..N {
            let tx = tx.clone();
            wg.go(async move {
                let mut c = gmp::net::TcpStream::connect(addr).await.unwrap();
                c.write_all(&(i as u32).to_le_bytes()).await.unwrap();
                tx.send(c).await.unwrap();
            });
        }
        drop(tx);
        gmp::time::sleep(Duration::from_millis(100)).await;
        let mut seen = vec![false; N];
        for _ in 0..N {
            let (mut s, _) = ln.accept().await.unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.unwrap();
            seen[u32::from_le_bytes(b) as usize] = true;
        }
        wg.wait().await;
        let mut clients = 0;
        while rx.recv().await.is_ok() {
            clients += 1;
        }
        assert_eq!(clients, N);
        assert!(
            seen.iter().all(|&s| s),
            "some connection's bytes never came"
        );
    }));
}

/// Raise the soft descriptor limit towards `want`; returns the new limit.
fn raise_nofile(want: libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_cur < want {
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
    lim.rlim_cur
}

/// In a process whose SIGPIPE is at its default action (a C host, a
/// cdylib), a vectored write to a closed peer fails with an error instead
/// of killing the process: every write path suppresses SIGPIPE.
#[test]
fn vectored_write_to_closed_peer_does_not_raise_sigpipe() {
    const NAME: &str = "vectored_write_to_closed_peer_does_not_raise_sigpipe";
    if std::env::var("GMP_CHILD").as_deref() != Ok(NAME) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("GMP_CHILD", NAME)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child died ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("write failed as expected"));
        return;
    }
    // SAFETY: restoring the default disposition of SIGPIPE in this child.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    rt(1).block_on(watchdog(async {
        let (mut c, s) = pair().await;
        drop(s);
        let parts = [IoSlice::new(b"head"), IoSlice::new(&[0u8; 4096])];
        let mut plain = true;
        let e = loop {
            // Alternate plain and vectored writes: both paths are covered.
            let r = if plain {
                c.write(b"x").await
            } else {
                c.write_vectored(&parts).await
            };
            plain = !plain;
            if let Err(e) = r {
                break e;
            }
            gmp::time::sleep(Duration::from_millis(1)).await;
        };
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "{e}"
        );
        // Once more, vectored, after the connection is known dead.
        assert!(c.write_vectored(&parts).await.is_err());
        println!("write failed as expected: {e}");
    }));
}
