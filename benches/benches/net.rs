//! Netpoller and timer benchmarks (issue 4), side by side at procs 1 and 2.
//!
//! - tcp_echo: one shared client (plain std threads, blocking sockets, so
//!   every server faces the same client) opens 64 connections and does
//!   sequential 64-byte round trips on each against a gmp, a tokio and a
//!   Go echo server; round trips per second. `BENCH_TCP_ROUNDS` sets the
//!   round trips per connection (the size is 20,000).
//! - timers: 100,000 goroutines each sleep a seeded random 1..=50ms;
//!   p50 and p99 lateness of the wake-ups (µs).
//! - accept_burst: 1,000 simultaneous connects (one tokio client thread,
//!   the same for every server) to a server that starts accepting 100 ms
//!   after it listens; each connection then sends a byte and waits for the
//!   server's reply. Reports when the last connect completed and when the
//!   last reply came (ms from the burst), and the kernel's listen
//!   overflows plus SYN retransmits during the run (0 = the backlog held
//!   the whole burst).
//!
//! `cargo bench -p gmp-benches --bench net`

use futures::{AsyncReadExt, AsyncWriteExt};
use gmp_benches::{build_go, print_table, Row};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CONNS: usize = 64;
const BURST: usize = 1000;
/// How long the accept_burst servers wait before accepting.
const ACCEPT_DELAY: Duration = Duration::from_millis(100);
const TIMERS: usize = 100_000;

fn rounds() -> usize {
    std::env::var("BENCH_TCP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// The shared client: CONNS std threads, blocking sockets.
fn client(addr: SocketAddr, rounds: usize) -> f64 {
    let t = Instant::now();
    let hs: Vec<_> = (0..CONNS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let msg = [7u8; 64];
                let mut back = [0u8; 64];
                for _ in 0..rounds {
                    s.write_all(&msg).unwrap();
                    s.read_exact(&mut back).unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    (CONNS * rounds) as f64 / t.elapsed().as_secs_f64()
}

fn gmp_server(procs: usize, ready: mpsc::Sender<SocketAddr>, stop: mpsc::Receiver<()>) {
    let rt = gmp::Runtime::builder().procs(procs).build().unwrap();
    rt.block_on(async move {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ready.send(ln.local_addr().unwrap()).unwrap();
        gmp::go(async move {
            loop {
                let Ok((mut c, _)) = ln.accept().await else {
                    return;
                };
                gmp::go(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match c.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if c.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        // Wait for the stop signal from a plain thread.
        let (tx, rx) = gmp::chan::bounded::<()>(1);
        std::thread::spawn(move || {
            let _ = stop.recv();
            let _ = tx.send_blocking(());
        });
        let _ = rx.recv().await;
    });
}

fn tokio_server(procs: usize, ready: mpsc::Sender<SocketAddr>, stop: mpsc::Receiver<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(procs)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let ln = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ready.send(ln.local_addr().unwrap()).unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut c, _)) = ln.accept().await else {
                    return;
                };
                let _ = c.set_nodelay(true);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match c.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if c.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        let _ = tokio::task::spawn_blocking(move || stop.recv()).await;
    });
}

fn run_rust_server(
    procs: usize,
    server: fn(usize, mpsc::Sender<SocketAddr>, mpsc::Receiver<()>),
) -> f64 {
    let (rtx, rrx) = mpsc::channel();
    let (stx, srx) = mpsc::channel();
    let h = std::thread::spawn(move || server(procs, rtx, srx));
    let addr = rrx.recv().unwrap();
    let rps = client(addr, rounds());
    stx.send(()).unwrap();
    h.join().unwrap();
    rps
}

fn run_go_server(bin: Option<&std::path::Path>, procs: usize) -> Option<f64> {
    let mut child = Command::new(bin?)
        .args(["-bench", "tcp_echo_server", "-procs", &procs.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).ok()? == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let addr: SocketAddr = String::from_utf8_lossy(&line).trim().parse().ok()?;
    let rps = client(addr, rounds());
    let _ = child.kill();
    let _ = child.wait();
    Some(rps)
}

/// Deterministic 1..=50ms sleeps.
fn sleeps() -> Vec<u64> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..TIMERS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + x % 50
        })
        .collect()
}

fn percentiles(mut v: Vec<u64>) -> (f64, f64) {
    v.sort_unstable();
    (v[v.len() / 2] as f64, v[v.len() * 99 / 100] as f64)
}

fn gmp_timers(procs: usize) -> (f64, f64) {
    let rt = gmp::Runtime::builder().procs(procs).build().unwrap();
    let late = rt.block_on(async {
        let hs: Vec<_> = sleeps()
            .into_iter()
            .map(|ms| {
                gmp::spawn(async move {
                    let d = Duration::from_millis(ms);
                    let t = Instant::now();
                    gmp::time::sleep(d).await;
                    (t.elapsed() - d).as_micros() as u64
                })
            })
            .collect();
        let mut v = Vec::with_capacity(TIMERS);
        for h in hs {
            v.push(h.await.unwrap());
        }
        v
    });
    percentiles(late)
}

fn tokio_timers(procs: usize) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(procs)
        .enable_all()
        .build()
        .unwrap();
    let late = rt.block_on(async {
        let hs: Vec<_> = sleeps()
            .into_iter()
            .map(|ms| {
                tokio::spawn(async move {
                    let d = Duration::from_millis(ms);
                    let t = Instant::now();
                    tokio::time::sleep(d).await;
                    (t.elapsed().saturating_sub(d)).as_micros() as u64
                })
            })
            .collect();
        let mut v = Vec::with_capacity(TIMERS);
        for h in hs {
            v.push(h.await.unwrap());
        }
        v
    });
    percentiles(late)
}

fn go_timers(bin: Option<&std::path::Path>, procs: usize) -> Option<(f64, f64)> {
    let out = Command::new(bin?)
        .args(["-bench", "timers", "-procs", &procs.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let l = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT timers "))?;
    let f: Vec<f64> = l
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    Some((f[0], f[1]))
}

/// One accept_burst run against `addr`: (last connect ms, last reply
/// ms, listen overflows + SYN retransmits meanwhile).
fn burst_client(addr: SocketAddr) -> (f64, f64, f64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let before = kernel_drops();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (connected, served) = rt.block_on(async move {
        let t = Instant::now();
        let hs: Vec<_> = (0..BURST)
            .map(|_| {
                tokio::spawn(async move {
                    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let connected = t.elapsed();
                    c.write_all(b"?").await.unwrap();
                    let mut b = [0u8; 1];
                    c.read_exact(&mut b).await.unwrap();
                    (connected, t.elapsed(), c)
                })
            })
            .collect();
        let mut conns = Vec::with_capacity(BURST);
        let (mut connected, mut served) = (Duration::ZERO, Duration::ZERO);
        for h in hs {
            let (c, s, conn) = h.await.unwrap();
            connected = connected.max(c);
            served = served.max(s);
            conns.push(conn);
        }
        (connected, served)
    });
    let drops = kernel_drops() - before;
    (
        connected.as_secs_f64() * 1e3,
        served.as_secs_f64() * 1e3,
        drops as f64,
    )
}

/// TcpExt ListenOverflows + ListenDrops + TCPSynRetrans, machine-wide.
fn kernel_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut total = 0;
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        if !names.starts_with("TcpExt:") {
            continue;
        }
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if matches!(n, "ListenOverflows" | "ListenDrops" | "TCPSynRetrans") {
                total += v.parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}

fn gmp_burst_server(procs: usize, ready: mpsc::Sender<SocketAddr>, stop: mpsc::Receiver<()>) {
    let rt = gmp::Runtime::builder().procs(procs).build().unwrap();
    rt.block_on(async move {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ready.send(ln.local_addr().unwrap()).unwrap();
        gmp::go(async move {
            gmp::time::sleep(ACCEPT_DELAY).await;
            loop {
                let Ok((mut c, _)) = ln.accept().await else {
                    return;
                };
                gmp::go(async move {
                    let mut b = [0u8; 1];
                    if c.read_exact(&mut b).await.is_ok() {
                        let _ = c.write_all(b"!").await;
                        let _ = c.read(&mut b).await;
                    }
                });
            }
        });
        let (tx, rx) = gmp::chan::bounded::<()>(1);
        std::thread::spawn(move || {
            let _ = stop.recv();
            let _ = tx.send_blocking(());
        });
        let _ = rx.recv().await;
    });
}

fn tokio_burst_server(procs: usize, ready: mpsc::Sender<SocketAddr>, stop: mpsc::Receiver<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(procs)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let ln = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ready.send(ln.local_addr().unwrap()).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(ACCEPT_DELAY).await;
            loop {
                let Ok((mut c, _)) = ln.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut b = [0u8; 1];
                    if c.read_exact(&mut b).await.is_ok() {
                        let _ = c.write_all(b"!").await;
                        let _ = c.read(&mut b).await;
                    }
                });
            }
        });
        let _ = tokio::task::spawn_blocking(move || stop.recv()).await;
    });
}

fn run_rust_burst(
    procs: usize,
    server: fn(usize, mpsc::Sender<SocketAddr>, mpsc::Receiver<()>),
) -> (f64, f64, f64) {
    let (rtx, rrx) = mpsc::channel();
    let (stx, srx) = mpsc::channel();
    let h = std::thread::spawn(move || server(procs, rtx, srx));
    let addr = rrx.recv().unwrap();
    let r = burst_client(addr);
    stx.send(()).unwrap();
    h.join().unwrap();
    r
}

fn run_go_burst(bin: Option<&std::path::Path>, procs: usize) -> Option<(f64, f64, f64)> {
    let mut child = Command::new(bin?)
        .args([
            "-bench",
            "accept_burst_server",
            "-procs",
            &procs.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).ok()? == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let addr: SocketAddr = String::from_utf8_lossy(&line).trim().parse().ok()?;
    let r = burst_client(addr);
    let _ = child.kill();
    let _ = child.wait();
    Some(r)
}

/// Median of three accept_burst runs per server, per metric.
fn accept_burst_rows(go: Option<&std::path::Path>, procs: usize) -> Vec<Row> {
    let median = |mut v: Vec<(f64, f64, f64)>| -> (f64, f64, f64) {
        let pick = |f: fn(&(f64, f64, f64)) -> f64, v: &mut Vec<(f64, f64, f64)>| {
            v.sort_by(|a, b| f(a).partial_cmp(&f(b)).unwrap());
            f(&v[v.len() / 2])
        };
        (
            pick(|x| x.0, &mut v),
            pick(|x| x.1, &mut v),
            pick(|x| x.2, &mut v),
        )
    };
    let runs = |f: &dyn Fn() -> Option<(f64, f64, f64)>| -> Option<(f64, f64, f64)> {
        let v: Option<Vec<_>> = (0..3).map(|_| f()).collect();
        v.map(median)
    };
    let g = runs(&|| Some(run_rust_burst(procs, gmp_burst_server)));
    let t = runs(&|| Some(run_rust_burst(procs, tokio_burst_server)));
    let o = runs(&|| run_go_burst(go, procs));
    let row = |name: &str, f: fn(&(f64, f64, f64)) -> f64| Row {
        workload: name.into(),
        procs,
        cells: vec![g.as_ref().map(f), t.as_ref().map(f), o.as_ref().map(f)],
        mins: None,
    };
    vec![
        row("accept_burst: last connect (ms)", |x| x.0),
        row("accept_burst: last reply (ms)", |x| x.1),
        row("accept_burst: overflows+SYN retrans", |x| x.2),
    ]
}

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    raise_nofile();
    println!("machine: {}", gmp_benches::machine());
    println!(
        "tcp_echo: {CONNS} connections x {} round trips of 64 bytes\n",
        rounds()
    );
    let go = build_go("net_bench");
    let mut tcp = Vec::new();
    let mut tim50 = Vec::new();
    let mut tim99 = Vec::new();
    let mut burst = Vec::new();
    for procs in [1, 2] {
        if gmp_benches::selected("accept_burst") {
            burst.extend(accept_burst_rows(go.as_deref(), procs));
        }
        if gmp_benches::selected("tcp_echo") {
            let g = run_rust_server(procs, gmp_server);
            let t = run_rust_server(procs, tokio_server);
            let go_rps = run_go_server(go.as_deref(), procs);
            tcp.push(Row {
                workload: "tcp_echo (round trips/s)".into(),
                procs,
                cells: vec![Some(g), Some(t), go_rps],
                mins: None,
            });
        }
        if gmp_benches::selected("timers") {
            let g = gmp_timers(procs);
            let t = tokio_timers(procs);
            let gt = go_timers(go.as_deref(), procs);
            tim50.push(Row {
                workload: "timers p50 lateness (µs)".into(),
                procs,
                cells: vec![Some(g.0), Some(t.0), gt.map(|x| x.0)],
                mins: None,
            });
            tim99.push(Row {
                workload: "timers p99 lateness (µs)".into(),
                procs,
                cells: vec![Some(g.1), Some(t.1), gt.map(|x| x.1)],
                mins: None,
            });
        }
    }
    tcp.extend(tim50);
    tcp.extend(tim99);
    tcp.extend(burst);
    print_table("see name", &["gmp", "tokio", "go"], &tcp);
}
