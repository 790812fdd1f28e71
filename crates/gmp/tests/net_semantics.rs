//! gmp::net's Go semantics beyond the basics in net.rs: write, accept and
//! UDP deadlines, deadlines moved or made past while a goroutine is parked,
//! concurrent waiters on one socket (no lost wake-up), cancelled
//! operations leaving no waiter behind, split halves in full duplex, EOF,
//! and the "IO wait" wait reason.

use futures::{AsyncReadExt, AsyncWriteExt};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{is_child, rt, wait_for_reason};

/// Guard against a hang turning into a stuck test run: a lost wake-up
/// fails the test instead.
const WATCHDOG: Duration = Duration::from_secs(20);

async fn watchdog<F: std::future::Future>(f: F) -> F::Output {
    gmp::time::timeout(WATCHDOG, f)
        .await
        .expect("watchdog: the operation never completed (lost wake-up?)")
}

/// A connected pair over loopback: (client, server side).
async fn pair() -> (gmp::net::TcpStream, gmp::net::TcpStream) {
    let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = ln.local_addr().unwrap();
    let acc = gmp::spawn(async move { ln.accept().await.unwrap().0 });
    let c = gmp::net::TcpStream::connect(addr).await.unwrap();
    (c, acc.await.unwrap())
}

/// A writer whose peer never reads fills the socket buffers and parks; its
/// write deadline fails it with TimedOut; once the peer drains and the
/// deadline is cleared, writing works again.
#[test]
fn write_deadline_fires_and_can_be_cleared() {
    rt(2).block_on(watchdog(async {
        let (mut c, mut s) = pair().await;
        c.set_write_deadline(Some(Instant::now() + Duration::from_millis(50)));
        let chunk = vec![1u8; 64 * 1024];
        let mut sent = 0usize;
        let err = loop {
            match c.write(&chunk).await {
                Ok(n) => sent += n,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(sent > 0);
        // Still expired: fails at once.
        assert_eq!(c.write(b"x").await.unwrap_err().kind(), ErrorKind::TimedOut);
        // Drain everything on the other side, then write again.
        c.set_write_deadline(None);
        let drain = gmp::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0usize;
            loop {
                match s.read(&mut buf).await.unwrap() {
                    0 => return got,
                    n => got += n,
                }
            }
        });
        c.write_all(b"after").await.unwrap();
        AsyncWriteExt::close(&mut c).await.unwrap();
        assert_eq!(drain.await.unwrap(), sent + 5);
    }));
}

/// Go checks the deadline before trying the syscall: a past deadline fails
/// a read even when data is waiting; clearing it returns the data.
#[test]
fn past_deadline_fails_even_with_data_buffered() {
    rt(1).block_on(watchdog(async {
        let (mut c, mut s) = pair().await;
        s.write_all(b"waiting").await.unwrap();
        let mut buf = [0u8; 7];
        c.read_exact(&mut buf[..1]).await.unwrap();
        c.set_read_deadline(Some(Instant::now() - Duration::from_secs(1)));
        assert_eq!(
            c.read(&mut buf).await.unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        c.set_read_deadline(None);
        c.read_exact(&mut buf[..6]).await.unwrap();
        assert_eq!(&buf[..6], b"aiting");
    }));
}

/// A deadline moved later while a read is parked does not fire at the old
/// time: the read gets the data sent after the old deadline.
#[test]
fn deadline_moved_later_while_parked_does_not_fire_early() {
    rt(2).block_on(watchdog(async {
        let (c, mut s) = pair().await;
        let c = Arc::new(c);
        let old = Instant::now() + Duration::from_millis(100);
        c.set_read_deadline(Some(old));
        let c2 = c.clone();
        let reader = gmp::spawn(async move {
            let mut buf = [0u8; 4];
            let mut r: &gmp::net::TcpStream = &c2;
            r.read_exact(&mut buf).await.map(|_| buf)
        });
        // Move the deadline only once the read is parked on it.
        wait_for_reason(reader.goid(), "IO wait", WATCHDOG).await;
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(60)));
        // Send only once the old deadline is well past.
        gmp::time::sleep_until(old + Duration::from_millis(100)).await;
        s.write_all(b"late").await.unwrap();
        assert_eq!(&reader.await.unwrap().unwrap(), b"late");
    }));
}

/// Two goroutines reading the same `&TcpStream` at once: neither wake-up
/// is lost (Go serializes them with fd.readLock; here both park in the
/// slot). Every byte is read exactly once and both see EOF.
#[test]
fn two_readers_on_one_stream_lose_no_wakeup() {
    rt(2).block_on(watchdog(async {
        let (c, mut s) = pair().await;
        let c = Arc::new(c);
        let total = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (c, total) = (c.clone(), total.clone());
                gmp::spawn(async move {
                    let mut buf = [0u8; 100];
                    let mut r: &gmp::net::TcpStream = &c;
                    loop {
                        match r.read(&mut buf).await.unwrap() {
                            0 => return,
                            n => {
                                assert!(buf[..n].iter().all(|&b| b == 9));
                                total.fetch_add(n, SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        // Both park, then data dribbles in with pauses.
        for r in &readers {
            wait_for_reason(r.goid(), "IO wait", WATCHDOG).await;
        }
        for _ in 0..50 {
            s.write_all(&[9u8; 37]).await.unwrap();
            gmp::time::sleep(Duration::from_millis(1)).await;
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        for r in readers {
            r.await.unwrap();
        }
        assert_eq!(total.load(SeqCst), 50 * 37);
    }));
}

/// Several goroutines in `recv_from` on one UDP socket: every datagram is
/// received once, even when they arrive in bursts while all are parked.
#[test]
fn concurrent_udp_receivers_get_every_datagram() {
    rt(2).block_on(watchdog(async {
        const RECEIVERS: usize = 4;
        const DATAGRAMS: usize = 200;
        let sock = Arc::new(gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        let got = Arc::new(AtomicUsize::new(0));
        let rs: Vec<_> = (0..RECEIVERS)
            .map(|_| {
                let (sock, got) = (sock.clone(), got.clone());
                gmp::spawn(async move {
                    let mut buf = [0u8; 16];
                    loop {
                        let (n, _) = sock.recv_from(&mut buf).await.unwrap();
                        if &buf[..n] == b"stop" {
                            return;
                        }
                        got.fetch_add(1, SeqCst);
                    }
                })
            })
            .collect();
        // Every receiver parks before the first datagram.
        for r in &rs {
            wait_for_reason(r.goid(), "IO wait", WATCHDOG).await;
        }
        let tx = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..DATAGRAMS {
            tx.send_to(b"data", addr).await.unwrap();
            if i % 50 == 49 {
                gmp::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Every data datagram is in before the stops go out.
        while got.load(SeqCst) < DATAGRAMS {
            gmp::time::sleep(Duration::from_millis(1)).await;
        }
        for _ in 0..RECEIVERS {
            tx.send_to(b"stop", addr).await.unwrap();
        }
        for r in rs {
            r.await.unwrap();
        }
        assert_eq!(got.load(SeqCst), DATAGRAMS);
    }));
}

/// UDP read deadline: recv fails with TimedOut, and works after clearing.
#[test]
fn udp_read_deadline() {
    rt(1).block_on(watchdog(async {
        let a = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)));
        let mut buf = [0u8; 8];
        assert_eq!(
            a.recv_from(&mut buf).await.unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        a.set_read_deadline(None);
        b.send_to(b"ok", a.local_addr().unwrap()).await.unwrap();
        let (n, from) = a.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"ok"[..], b.local_addr().unwrap()));
    }));
}

/// Listener deadline (Go's TCPListener.SetDeadline): accept times out, and
/// accepts again once cleared.
#[test]
fn accept_deadline() {
    rt(2).block_on(watchdog(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        ln.set_deadline(Some(Instant::now() + Duration::from_millis(20)));
        assert_eq!(ln.accept().await.unwrap_err().kind(), ErrorKind::TimedOut);
        ln.set_deadline(None);
        let c = gmp::spawn(async move { gmp::net::TcpStream::connect(addr).await.unwrap() });
        let (_s, peer) = ln.accept().await.unwrap();
        assert_eq!(peer, c.await.unwrap().local_addr().unwrap());
    }));
}

/// An accept cancelled by a timeout leaves nothing parked: a later accept
/// still gets the connection.
#[test]
fn cancelled_accept_then_accept_again() {
    rt(1).block_on(watchdog(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        assert!(gmp::time::timeout(Duration::from_millis(10), ln.accept())
            .await
            .is_err());
        let c = gmp::net::TcpStream::connect(addr).await.unwrap();
        let (_s, peer) = ln.accept().await.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
    }));
}

/// Split halves in different goroutines, full duplex through an echo peer:
/// 1 MiB written by one goroutine comes back byte-exact to the other.
#[test]
fn split_halves_full_duplex() {
    rt(2).block_on(watchdog(async {
        let (c, s) = pair().await;
        let (mut sr, mut sw) = s.into_split();
        gmp::go(async move {
            let mut buf = vec![0u8; 8192];
            loop {
                match sr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => sw.write_all(&buf[..n]).await.unwrap(),
                }
            }
        });
        let (mut r, mut w) = c.into_split();
        const LEN: usize = 1 << 20;
        let data: Vec<u8> = (0..LEN).map(|i| (i * 7 % 251) as u8).collect();
        let expect = data.clone();
        let writer = gmp::spawn(async move {
            for chunk in data.chunks(10_000) {
                w.write_all(chunk).await.unwrap();
            }
            // Dropping the write half sends FIN; the echo goroutine then
            // ends and closes its side.
        });
        let mut back = Vec::with_capacity(LEN);
        r.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        assert!(back == expect, "echoed bytes differ");
    }));
}

/// The peer closing gives EOF (Ok(0)), and writing to a connection the peer
/// closed ends in an error, not a hang or a signal.
#[test]
fn eof_and_write_after_peer_close() {
    rt(1).block_on(watchdog(async {
        let (mut c, s) = pair().await;
        drop(s);
        let mut buf = [0u8; 8];
        assert_eq!(c.read(&mut buf).await.unwrap(), 0);
        let mut failed = None;
        for _ in 0..1000 {
            if let Err(e) = c.write_all(&[0u8; 4096]).await {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("writes to a closed peer kept succeeding");
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "{e}"
        );
    }));
}

/// A goroutine parked in a read shows Go's wait reason "IO wait" in the
/// goroutine listing, also when the read has a deadline pending.
#[test]
fn parked_reader_is_in_io_wait() {
    rt(2).block_on(watchdog(async {
        let (c, _s) = pair().await;
        let c = Arc::new(c);
        c.set_read_deadline(Some(Instant::now() + Duration::from_secs(60)));
        let c2 = c.clone();
        let reader = gmp::spawn(async move {
            let mut buf = [0u8; 1];
            let mut r: &gmp::net::TcpStream = &c2;
            r.read(&mut buf).await
        });
        let mut seen = false;
        for _ in 0..1000 {
            gmp::time::sleep(Duration::from_millis(2)).await;
            if gmp::runtime::goroutines()
                .iter()
                .any(|g| g.wait_reason == Some("IO wait"))
            {
                seen = true;
                break;
            }
        }
        assert!(seen, "{:?}", gmp::runtime::goroutines());
        // A past deadline set from here unblocks it.
        c.set_read_deadline(Some(Instant::now()));
        assert_eq!(
            reader.await.unwrap().unwrap_err().kind(),
            ErrorKind::TimedOut
        );
    }));
}

/// With procs = 1, a goroutine reading a connection that always has data
/// still lets another goroutine run (the coop budget in every read).
#[test]
fn always_ready_reader_does_not_starve_others() {
    rt(1).block_on(watchdog(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        // A plain thread floods the connection.
        std::thread::spawn(move || {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let chunk = [5u8; 64 * 1024];
            while s.write_all(&chunk).is_ok() {}
        });
        let (mut c, _) = ln.accept().await.unwrap();
        let flag = Arc::new(AtomicUsize::new(0));
        let f2 = flag.clone();
        let other = gmp::spawn(async move { f2.store(1, SeqCst) });
        let mut buf = [0u8; 16];
        let mut reads = 0u64;
        while flag.load(SeqCst) == 0 {
            c.read_exact(&mut buf).await.unwrap();
            reads += 1;
        }
        other.await.unwrap();
        assert!(reads > 0);
    }));
}

/// A cancelled accept must not leave the runtime believing a goroutine
/// waits on I/O (Go's netpollWaiters), which would hide a real deadlock:
/// after it, main waiting on a silent channel is reported as a deadlock.
#[test]
fn cancelled_accept_does_not_hide_a_deadlock() {
    const NAME: &str = "cancelled_accept_does_not_hide_a_deadlock";
    if is_child(NAME) {
        let r = std::panic::catch_unwind(|| {
            rt(2).block_on(async {
                let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let r = gmp::time::timeout(Duration::from_millis(10), ln.accept()).await;
                assert!(r.is_err());
                let (_tx, rx) = gmp::chan::bounded::<u8>(0);
                let _ = rx.recv().await;
                drop(ln);
            })
        });
        let p = r.expect_err("block_on returned");
        let text = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(text.contains("deadlock"), "{text}");
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(support::CHILD_ENV, NAME)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > WATCHDOG {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the deadlock was not reported: a cancelled accept left a waiter");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
}

/// A deadline may be set from a plain thread (Go allows SetDeadline from
/// anywhere): it still fires and fails the parked read.
#[test]
fn deadline_set_from_a_plain_thread_fires() {
    rt(2).block_on(watchdog(async {
        let (c, _s) = pair().await;
        let c = Arc::new(c);
        let c2 = c.clone();
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            c2.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)));
        });
        let mut buf = [0u8; 1];
        let mut r: &gmp::net::TcpStream = &c;
        assert_eq!(
            r.read(&mut buf).await.unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        setter.join().unwrap();
    }));
}

/// Sockets adopted from std work on the netpoller; a vectored write sends
/// all its buffers in order, whatever their number and sizes.
#[test]
fn from_std_and_vectored_write() {
    rt(2).block_on(watchdog(async {
        let std_ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_ln.local_addr().unwrap();
        let ln = gmp::net::TcpListener::from_std(std_ln).unwrap();
        let std_c = std::net::TcpStream::connect(addr).unwrap();
        let mut c = gmp::net::TcpStream::from_std(std_c).unwrap();
        assert!(c.nodelay().unwrap());
        let (mut s, _) = ln.accept().await.unwrap();
        let bufs = [
            std::io::IoSlice::new(b"head|"),
            std::io::IoSlice::new(b"body"),
        ];
        let n = c.write_vectored(&bufs).await.unwrap();
        assert_eq!(n, 9);
        let mut got = [0u8; 9];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"head|body");
        // Every shape: one non-empty buffer among empty ones, small ones
        // gathered (up to 1 KiB in all, exactly at it), larger ones.
        let (a, b) = (vec![b'a'; 600], vec![b'b'; 1000]);
        for parts in [
            &[&b""[..], b"x", b""][..],
            &[&a[..424], &b[..600]],
            &[&a[..], &b[..], b"tail"],
            &[&b""[..]],
        ] {
            let bufs: Vec<_> = parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
            let want: Vec<u8> = parts.concat();
            let n = c.write_vectored(&bufs).await.unwrap();
            c.write_all(&want[n..]).await.unwrap();
            let mut got = vec![0u8; want.len()];
            s.read_exact(&mut got).await.unwrap();
            assert!(got == want, "{} bytes in {} parts", want.len(), parts.len());
        }

        let u = gmp::net::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .unwrap();
        u.send_to(b"self", u.local_addr().unwrap()).await.unwrap();
        let mut b = [0u8; 4];
        assert_eq!(u.recv_from(&mut b).await.unwrap().0, 4);
    }));
}

/// Off-runtime use says which call was made outside a runtime.
#[test]
fn connect_outside_a_runtime_names_the_call() {
    let e = futures::executor::block_on(gmp::net::TcpStream::connect("127.0.0.1:9")).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("gmp::net::TcpStream::connect called outside a gmp runtime"),
        "{text}"
    );
}

/// Deadlines churned by the reader (a fresh 1ms deadline before every
/// read) and by a plain thread (moving the write deadline back and forth)
/// race with readiness and with the deadline timers firing: every read
/// either times out or returns data, no byte is lost, nothing hangs.
#[test]
fn deadline_churn_loses_no_data() {
    rt(2).block_on(watchdog(async {
        let (c, mut s) = pair().await;
        let c = Arc::new(c);
        const TOTAL: usize = 200 * 1000;
        let writer = gmp::spawn(async move {
            let chunk = [3u8; 1000];
            for i in 0..200 {
                s.write_all(&chunk).await.unwrap();
                if i % 2 == 0 {
                    gmp::time::sleep(Duration::from_millis(1)).await;
                }
            }
            s
        });
        let stop = Arc::new(AtomicUsize::new(0));
        let (c2, stop2) = (c.clone(), stop.clone());
        let churner = std::thread::spawn(move || {
            let mut i = 0u32;
            while stop2.load(SeqCst) == 0 {
                let at = match i % 3 {
                    0 => Some(Instant::now() + Duration::from_micros(200)),
                    1 => Some(Instant::now() + Duration::from_secs(60)),
                    _ => None,
                };
                c2.set_write_deadline(at);
                i += 1;
                std::thread::yield_now();
            }
        });
        let mut got = 0usize;
        let mut timeouts = 0usize;
        let mut buf = [0u8; 700];
        let mut r: &gmp::net::TcpStream = &c;
        while got < TOTAL {
            c.set_read_deadline(Some(Instant::now() + Duration::from_millis(1)));
            match r.read(&mut buf).await {
                Ok(0) => panic!("EOF before all data"),
                Ok(n) => {
                    assert!(buf[..n].iter().all(|&b| b == 3));
                    got += n;
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                    timeouts += 1;
                }
            }
        }
        stop.store(1, SeqCst);
        churner.join().unwrap();
        let _s = writer.await.unwrap();
        assert_eq!(got, TOTAL);
        eprintln!("deadline churn: {timeouts} timeouts");
    }));
}

/// Each `block_on` has its own netpoller: a socket carried into a later
/// `block_on` reports an error when it would have to wait, instead of
/// parking on a poller nobody polls.
#[test]
fn socket_from_an_earlier_block_on_errors_instead_of_hanging() {
    let rt = rt(1);
    let ln = rt.block_on(async { gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap() });
    let e = rt
        .block_on(async { ln.accept().await.map(|_| ()) })
        .unwrap_err();
    assert!(e.to_string().contains("outside the gmp runtime"), "{e}");
}

/// Go's property: ready I/O is injected even when every P is busy (sysmon
/// polls the network when nobody did for 10ms). With procs = 1 and a
/// goroutine that never parks (it only yields), a reader still gets the
/// data a plain thread sends.
#[test]
fn ready_io_reaches_a_reader_while_every_p_is_busy() {
    rt(1).block_on(watchdog(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
        let (mut c, _) = ln.accept().await.unwrap();
        let mut peer = client.join().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let reader = gmp::spawn(async move {
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).await.unwrap();
            d.store(1, SeqCst);
            buf
        });
        let d = done.clone();
        let busy = gmp::spawn(async move {
            let mut spins = 0u64;
            while d.load(SeqCst) == 0 {
                gmp::runtime::gosched().await;
                spins += 1;
            }
            spins
        });
        std::thread::spawn(move || {
            use std::io::Write;
            std::thread::sleep(Duration::from_millis(20));
            peer.write_all(b"hello").unwrap();
            peer
        });
        assert_eq!(&reader.await.unwrap(), b"hello");
        assert!(busy.await.unwrap() > 0);
    }));
}
