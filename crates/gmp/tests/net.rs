//! gmp::net on the netpoller: echo under load, deadlines, errors, UDP,
//! and I/O while a goroutine sits in a syscall.

use futures::{AsyncReadExt, AsyncWriteExt};
use std::io::ErrorKind;
use std::time::{Duration, Instant};

mod support;
use support::{cpu_time, echo_server, is_child, rt, run_child, wait_for_reason};

/// 200 concurrent connections x 200 round trips, byte-exact.
#[test]
fn echo_200_connections_200_round_trips() {
    for procs in [1, 2] {
        let total = rt(procs).block_on(async {
            let (addr, _srv) = echo_server().await;
            let clients: Vec<_> = (0..200u32)
                .map(|c| {
                    gmp::spawn(async move {
                        let mut s = gmp::net::TcpStream::connect(addr).await.unwrap();
                        let mut n = 0u64;
                        for r in 0..200u32 {
                            let msg =
                                format!("conn {c} round {r} {}", "x".repeat((r % 64) as usize));
                            s.write_all(msg.as_bytes()).await.unwrap();
                            let mut back = vec![0u8; msg.len()];
                            s.read_exact(&mut back).await.unwrap();
                            assert_eq!(back, msg.as_bytes());
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            let mut total = 0;
            for c in clients {
                total += c.await.unwrap();
            }
            total
        });
        assert_eq!(total, 200 * 200, "procs={procs}");
    }
}

/// A read deadline fails the parked read with TimedOut; it stays failed
/// until reset; after a reset, a read succeeds when data arrives.
#[test]
fn read_deadline_fires_and_can_be_reset() {
    rt(2).block_on(async {
        let (addr, _srv) = echo_server().await;
        let mut s = gmp::net::TcpStream::connect(addr).await.unwrap();
        s.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)));
        let t = Instant::now();
        let mut buf = [0u8; 8];
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(t.elapsed() >= Duration::from_millis(20));
        // Still past: fails at once.
        assert_eq!(
            s.read(&mut buf).await.unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        // Reset: works again.
        s.set_read_deadline(None);
        s.write_all(b"ping").await.unwrap();
        s.read_exact(&mut buf[..4]).await.unwrap();
        assert_eq!(&buf[..4], b"ping");
    });
}

/// Setting a deadline from another goroutine wakes a read parked
/// without one.
#[test]
fn deadline_set_while_parked_wakes_the_reader() {
    rt(2).block_on(async {
        let (addr, _srv) = echo_server().await;
        let s = std::sync::Arc::new(gmp::net::TcpStream::connect(addr).await.unwrap());
        let s2 = s.clone();
        let reader = gmp::spawn(async move {
            let mut buf = [0u8; 8];
            let mut r: &gmp::net::TcpStream = &s2;
            futures::AsyncReadExt::read(&mut r, &mut buf)
                .await
                .unwrap_err()
                .kind()
        });
        // The reader must be parked in the netpoller before the deadline
        // is set, or this would only test a deadline set before the read.
        wait_for_reason(reader.goid(), "IO wait", Duration::from_secs(10)).await;
        s.set_read_deadline(Some(Instant::now()));
        assert_eq!(reader.await.unwrap(), ErrorKind::TimedOut);
    });
}

#[test]
fn connection_refused_is_an_io_error() {
    rt(1).block_on(async {
        // Bind then drop to get a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = gmp::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    });
}

#[test]
fn udp_round_trip() {
    rt(2).block_on(async {
        let a = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let baddr = b.local_addr().unwrap();
        let echo = gmp::spawn(async move {
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            b.send_to(&buf[..n], from).await.unwrap();
        });
        a.send_to(b"hello udp", baddr).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = a.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello udp");
        assert_eq!(from, baddr);
        echo.await.unwrap();
        // Connected form.
        let c = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let d = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.connect(d.local_addr().unwrap()).await.unwrap();
        d.connect(c.local_addr().unwrap()).await.unwrap();
        c.send(b"x").await.unwrap();
        assert_eq!(d.recv(&mut buf).await.unwrap(), 1);
    });
}

/// With procs = 1, a goroutine sitting in `gmp::syscall` does not stop
/// I/O and timers elsewhere.
#[test]
fn io_and_timers_work_while_a_goroutine_is_in_syscall() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    let ok = rt(1).block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let blocker = gmp::spawn(async move {
            gmp::syscall(|| std::thread::sleep(Duration::from_millis(500)));
            d.store(true, SeqCst);
        });
        let d = done.clone();
        let worker = gmp::spawn(async move {
            let (addr, _srv) = echo_server().await;
            let mut s = gmp::net::TcpStream::connect(addr).await.unwrap();
            for _ in 0..10 {
                s.write_all(b"abc").await.unwrap();
                let mut b = [0u8; 3];
                s.read_exact(&mut b).await.unwrap();
                gmp::time::sleep(Duration::from_millis(1)).await;
            }
            !d.load(SeqCst)
        });
        let first = worker.await.unwrap();
        blocker.await.unwrap();
        first
    });
    assert!(ok, "I/O waited for the syscall to finish");
}

/// A server parked in accept is a live program, not a deadlock, and
/// other goroutines keep running meanwhile.
#[test]
fn server_blocked_in_accept_while_others_work() {
    rt(2).block_on(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        let srv = gmp::spawn(async move {
            let (_c, peer) = ln.accept().await.unwrap();
            peer
        });
        // Work while the server waits in accept (an I/O wait: never a
        // deadlock).
        gmp::time::sleep(Duration::from_millis(400)).await;
        let c = gmp::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(srv.await.unwrap(), c.local_addr().unwrap());
    });
}

#[test]
fn net_outside_a_runtime_is_a_clear_error() {
    let e = futures::executor::block_on(gmp::net::TcpListener::bind("127.0.0.1:0")).unwrap_err();
    assert!(e.to_string().contains("outside a gmp runtime"), "{e}");
}

/// Running out of file descriptors in `accept` backs off instead of
/// spinning, and accepting resumes once descriptors are free again.
#[test]
fn accept_backs_off_on_fd_exhaustion() {
    const NAME: &str = "accept_backs_off_on_fd_exhaustion";
    if !is_child(NAME) {
        let out = run_child(NAME, &[]);
        assert!(out.success(), "{}", out.stderr);
        return;
    }
    rt(1).block_on(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        // Lower the soft limit, then fill the descriptor table up to it.
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a valid struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        lim.rlim_cur = lim.rlim_cur.min(256);
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        let mut hogs = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            hogs.push(f);
            if hogs.len() > 100_000 {
                break;
            }
        }
        // A client connects from a plain thread (its socket was made before
        // the table filled up: free one slot for it, then take it back).
        drop(hogs.pop());
        let client = std::thread::spawn(move || std::net::TcpStream::connect(addr));
        let c = client.join().unwrap().expect("client connect");
        // The table is full now: accept gets EMFILE and must back off.
        let acc = gmp::spawn(async move { ln.accept().await.map(|(_, p)| p) });
        let before = cpu_time();
        gmp::time::sleep(Duration::from_millis(300)).await;
        let spent = cpu_time() - before;
        assert!(
            spent < Duration::from_millis(100),
            "accept spun: {spent:?} CPU in 300ms"
        );
        assert!(
            !acc.is_finished(),
            "accept returned while no descriptor was free"
        );
        // Free descriptors: the pending connection is accepted.
        drop(hogs);
        let peer = acc.await.unwrap().expect("accept after fds freed");
        assert_eq!(peer, c.local_addr().unwrap());
    });
}
