//! Unix domain sockets on gmp::net: echo, read deadline, halves, close
//! from another goroutine, the socket file's life, `from_std`.
#![cfg(unix)]

use futures::{AsyncReadExt, AsyncWriteExt};
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rt(procs: usize) -> gmp::Runtime {
    gmp::Runtime::builder().procs(procs).build().unwrap()
}

const WATCHDOG: Duration = Duration::from_secs(20);

async fn watchdog<F: std::future::Future>(f: F) -> F::Output {
    gmp::time::timeout(WATCHDOG, f)
        .await
        .expect("watchdog: the operation never completed (lost wake-up?)")
}

/// A socket path unique to this test and process, removed if left over.
fn sock_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("gmp-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn unix_echo_with_halves() {
    let path = sock_path("echo");
    rt(2).block_on(watchdog(async {
        let ln = gmp::net::UnixListener::bind(&path).await.unwrap();
        gmp::go(async move {
            loop {
                let Ok((s, _)) = ln.accept().await else {
                    return;
                };
                gmp::go(async move {
                    let (mut r, mut w) = s.into_split();
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => w.write_all(&buf[..n]).await.unwrap(),
                        }
                    }
                });
            }
        });
        let wg = gmp::sync::WaitGroup::new();
        for i in 0..8u8 {
            let path = path.clone();
            wg.go(async move {
                let mut c = gmp::net::UnixStream::connect(&path).await.unwrap();
                for j in 0..100u8 {
                    let msg = [i, j, 0xAB];
                    c.write_all(&msg).await.unwrap();
                    let mut back = [0u8; 3];
                    c.read_exact(&mut back).await.unwrap();
                    assert_eq!(back, msg);
                }
            });
        }
        wg.wait().await;
    }));
}

#[test]
fn unix_read_deadline_fires_and_can_be_cleared() {
    let path = sock_path("deadline");
    rt(1).block_on(watchdog(async {
        let ln = gmp::net::UnixListener::bind(&path).await.unwrap();
        let c = gmp::net::UnixStream::connect(&path).await.unwrap();
        let (mut s, _) = ln.accept().await.unwrap();
        s.set_read_deadline(Some(Instant::now() + Duration::from_millis(30)));
        let mut buf = [0u8; 8];
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        s.set_read_deadline(None);
        (&c).write_all(b"late").await.unwrap();
        s.read_exact(&mut buf[..4]).await.unwrap();
        assert_eq!(&buf[..4], b"late");
    }));
}

#[test]
fn unix_close_wakes_accept_and_removes_the_file() {
    let path = sock_path("close");
    rt(2).block_on(watchdog(async {
        let ln = Arc::new(gmp::net::UnixListener::bind(&path).await.unwrap());
        assert!(path.exists());
        let l2 = ln.clone();
        let acc = gmp::spawn(async move { l2.accept().await.map(|_| ()) });
        let t = Instant::now();
        while !gmp::runtime::goroutines()
            .iter()
            .any(|g| g.wait_reason == Some("IO wait"))
        {
            assert!(t.elapsed() < WATCHDOG);
            gmp::time::sleep(Duration::from_millis(1)).await;
        }
        ln.close().unwrap();
        let e = acc.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConnected);
        assert_eq!(e.to_string(), "use of closed network connection");
        assert!(!path.exists(), "the socket file outlived close");
        assert!(gmp::net::UnixStream::connect(&path).await.is_err());
    }));
}

#[test]
fn unix_stream_close_wakes_a_blocked_read() {
    rt(2).block_on(watchdog(async {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = Arc::new(gmp::net::UnixStream::from_std(a).unwrap());
        let mut b = gmp::net::UnixStream::from_std(b).unwrap();
        let a2 = a.clone();
        let reader = gmp::spawn(async move {
            let mut buf = [0u8; 8];
            (&*a2).read(&mut buf).await
        });
        gmp::time::sleep(Duration::from_millis(20)).await;
        a.close().unwrap();
        let e = reader.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotConnected);
        // The peer sees the close at once.
        let mut buf = [0u8; 1];
        assert_eq!(b.read(&mut buf).await.unwrap(), 0);
    }));
}

#[test]
fn unix_from_std_into_std_and_drop_removes_file() {
    let path = sock_path("std");
    rt(1).block_on(watchdog(async {
        let ln = gmp::net::UnixListener::bind(&path).await.unwrap();
        let std_c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (s, _) = ln.accept().await.unwrap();
        let mut c = gmp::net::UnixStream::from_std(std_c).unwrap();
        c.write_all(b"hi").await.unwrap();
        let s = s.into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 2];
        std::io::Read::read_exact(&mut &s, &mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        drop(ln);
    }));
    assert!(
        !path.exists(),
        "dropping the listener leaves no socket file"
    );
}
