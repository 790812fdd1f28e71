//! HTTP benchmarks, gmp against tokio + hyper and Go's net/http, each
//! server in its own process (so its CPU, RSS and syscalls are its own):
//!
//! - http_hello: `wrk -t1 -c64 -d8s --latency` after a 2 s warm-up against
//!   a hello-world server (benches/src/bin/http_hello_server.rs for gmp and
//!   tokio, benches/go/http_bench.go for Go), procs = 1 and 2, runs
//!   interleaved server by server. Requests/s, p50, p99, the server's CPU
//!   (cores busy, from /proc/<pid>/stat; and per request, the figure that
//!   matters most on a shared machine) and the CPU everything else on the
//!   machine used during the run (busy time minus server and wrk: a
//!   disturbed run shows here). Then, per server, a separate short run
//!   under `strace -c -f` for syscalls per request.
//! - http_conns: 10,000 idle keep-alive connections (each has made one
//!   request) held open; the server's RSS growth per connection.
//!
//! `cargo bench -p gmp-benches --bench http`. Env: `BENCH_HTTP_RUNS`
//! (default 3), `BENCH_HTTP_SECS` (8), `BENCH_HTTP_CONNS` (10000),
//! `BENCH_FILTER` (`http_hello` or `http_conns`). Needs `wrk` for
//! http_hello (skipped with a message without it), `strace` for the
//! syscall counts, Go for the Go column.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gmp_benches::procstat::{children_cpu_time, cpu_time, machine_busy_time, raise_nofile, rss};
use gmp_benches::{build_go, machine, selected, GoBin};

const WARMUP: Duration = Duration::from_secs(2);
const STRACE_SECS: u64 = 3;
const SERVERS: [&str; 3] = ["gmp", "tokio", "go"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(kind: &str, procs: usize, go: Option<&GoBin>) -> Option<Server> {
        let mut cmd = match kind {
            "go" => {
                let mut c = Command::new(go?.as_os_str());
                c.args(["-procs", &procs.to_string()]);
                c
            }
            _ => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_http_hello_server"));
                c.args([kind, &procs.to_string()]);
                c
            }
        };
        let mut child = cmd.stdout(Stdio::piped()).spawn().ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        let addr = line.trim().parse().ok()?;
        Some(Server { child, addr })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What wrk reported.
struct Wrk {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    requests: f64,
}

fn run_wrk(url: &str, d: Duration) -> Option<Wrk> {
    let out = Command::new("wrk")
        .args([
            "-t1",
            "-c64",
            &format!("-d{}s", d.as_secs()),
            "--latency",
            url,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(Wrk {
        rps: field("Requests/sec:")?.parse().ok()?,
        p50_us: duration_us(field("50%")?)?,
        p99_us: duration_us(field("99%")?)?,
        requests,
    })
}

/// wrk's `512.00us`, `1.23ms`, `2.01s` in µs.
fn duration_us(s: &str) -> Option<f64> {
    let (num, scale) = if let Some(v) = s.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1e6)
    } else {
        return None;
    };
    Some(num.parse::<f64>().ok()? * scale)
}

/// One measured run: wrk's numbers, the server's CPU (cores) and the CPU
/// (cores) used by everything but the server and wrk meanwhile.
struct Run {
    wrk: Wrk,
    server_cores: f64,
    other_cores: f64,
}

fn hello_run(kind: &str, procs: usize, secs: u64, go: Option<&GoBin>) -> Option<Run> {
    let srv = Server::start(kind, procs, go)?;
    run_wrk(&srv.url(), WARMUP)?;
    let (cpu0, busy0, kids0, t0) = (
        cpu_time(srv.pid())?,
        machine_busy_time(),
        children_cpu_time(),
        Instant::now(),
    );
    let wrk = run_wrk(&srv.url(), Duration::from_secs(secs))?;
    let wall = t0.elapsed().as_secs_f64();
    let server = (cpu_time(srv.pid())? - cpu0).as_secs_f64();
    let wrk_cpu = (children_cpu_time() - kids0).as_secs_f64();
    let busy = (machine_busy_time() - busy0).as_secs_f64();
    Some(Run {
        wrk,
        server_cores: server / wall,
        other_cores: ((busy - server - wrk_cpu) / wall).max(0.0),
    })
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.prec$}"))
}

fn http_hello(go: Option<&GoBin>) {
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("wrk not found (apt-get install -y wrk): skipping http_hello");
        return;
    }
    let runs: usize = env_or("BENCH_HTTP_RUNS", 3);
    let secs: u64 = env_or("BENCH_HTTP_SECS", 8);
    println!(
        "## http_hello: wrk -t1 -c64 -d{secs}s --latency after a {}s warm-up, median of {runs} interleaved runs\n",
        WARMUP.as_secs()
    );
    println!("| procs | server | req/s | p50 (µs) | p99 (µs) | server CPU (cores) | server CPU per request (µs) | others' CPU (cores, max) | runs |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for procs in [1, 2] {
        let mut all: Vec<Vec<Run>> = SERVERS.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            for (i, kind) in SERVERS.iter().enumerate() {
                match hello_run(kind, procs, secs, go) {
                    Some(r) => {
                        // Each run, for the spread (the table has medians).
                        eprintln!(
                            "http_hello run: procs={procs} {kind}: {:.0} req/s, p99 {:.0} µs, {:.1} µs CPU per request, others {:.2} cores",
                            r.wrk.rps,
                            r.wrk.p99_us,
                            r.server_cores * 1e6 / r.wrk.rps,
                            r.other_cores
                        );
                        all[i].push(r)
                    }
                    None => eprintln!("http_hello: {kind} procs={procs}: run failed or skipped"),
                }
            }
        }
        let mut rps_med = Vec::new();
        for (kind, rs) in SERVERS.iter().zip(&all) {
            let rps = median(rs.iter().map(|r| r.wrk.rps).collect());
            rps_med.push(rps);
            println!(
                "| {procs} | {kind} | {} | {} | {} | {} | {} | {} | {} |",
                fmt_opt(rps, 0),
                fmt_opt(median(rs.iter().map(|r| r.wrk.p50_us).collect()), 0),
                fmt_opt(median(rs.iter().map(|r| r.wrk.p99_us).collect()), 0),
                fmt_opt(median(rs.iter().map(|r| r.server_cores).collect()), 2),
                fmt_opt(
                    median(
                        rs.iter()
                            .map(|r| r.server_cores * 1e6 / r.wrk.rps)
                            .collect()
                    ),
                    1
                ),
                fmt_opt(rs.iter().map(|r| r.other_cores).reduce(f64::max), 2),
                rs.len(),
            );
        }
        if let Some(g) = rps_med[0] {
            for (kind, o) in SERVERS.iter().zip(&rps_med).skip(1) {
                if let Some(o) = o {
                    println!("| {procs} | gmp/{kind} req/s | {:.2} | | | | | | |", g / o);
                }
            }
        }
    }
    println!();
    syscalls_per_request(go);
}

/// Attach `strace -c -f` to a warmed-up server for a short wrk run;
/// syscalls per request, in total and for the busiest calls.
fn syscalls_per_request(go: Option<&GoBin>) {
    if Command::new("strace").arg("-V").output().is_err() {
        println!("strace not found: skipping syscalls per request");
        return;
    }
    println!("## http_hello syscalls per request (strace -c -f, wrk -t1 -c64 -d{STRACE_SECS}s, procs = 1)\n");
    println!("| server | total | top calls per request |");
    println!("|---|---|---|");
    for kind in SERVERS {
        let Some(srv) = Server::start(kind, 1, go) else {
            continue;
        };
        if run_wrk(&srv.url(), Duration::from_secs(1)).is_none() {
            continue;
        }
        let out =
            std::env::temp_dir().join(format!("gmp-bench-strace-{kind}-{}", std::process::id()));
        let Ok(mut strace) = Command::new("strace")
            .args(["-c", "-f", "-p", &srv.pid().to_string(), "-o"])
            .arg(&out)
            .stderr(Stdio::null())
            .spawn()
        else {
            continue;
        };
        std::thread::sleep(Duration::from_millis(500));
        let wrk = run_wrk(&srv.url(), Duration::from_secs(STRACE_SECS));
        // SAFETY: kill has no memory-safety preconditions; SIGINT makes
        // strace detach and write its summary.
        unsafe { libc::kill(strace.id() as libc::pid_t, libc::SIGINT) };
        let _ = strace.wait();
        let summary = std::fs::read_to_string(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        let (Some(wrk), Some((total, calls))) = (wrk, parse_strace(&summary)) else {
            println!("| {kind} | - | strace run failed |");
            continue;
        };
        let n = wrk.requests.max(1.0);
        let top: Vec<String> = calls
            .iter()
            .take(5)
            .map(|(name, c)| format!("{name} {:.2}", *c as f64 / n))
            .collect();
        println!("| {kind} | {:.2} | {} |", total as f64 / n, top.join(", "));
    }
    println!();
}

/// strace -c's table: total calls, and (syscall, calls) by calls.
fn parse_strace(s: &str) -> Option<(u64, Vec<(String, u64)>)> {
    let mut total = None;
    let mut calls = Vec::new();
    for line in s.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 || f[0].parse::<f64>().is_err() {
            continue;
        }
        let (name, n) = (f[f.len() - 1], f[3].parse::<u64>().ok()?);
        if name == "total" {
            total = Some(n);
        } else {
            calls.push((name.to_string(), n));
        }
    }
    calls.sort_by_key(|c| std::cmp::Reverse(c.1));
    Some((total?, calls))
}

/// One keep-alive request on `c`; true once the whole response is in.
fn one_request(c: &mut std::net::TcpStream) -> bool {
    if c.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"Hello, World!") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

fn http_conns(go: Option<&GoBin>) {
    let n: usize = env_or("BENCH_HTTP_CONNS", 10_000);
    println!("## http_conns: {n} idle keep-alive connections (one request each), procs = 1\n");
    println!("| server | RSS before (MiB) | RSS with conns (MiB) | bytes per connection |");
    println!("|---|---|---|---|");
    for kind in SERVERS {
        let Some(srv) = Server::start(kind, 1, go) else {
            continue;
        };
        // Let the server settle (and hyper/Go allocate their first buffers).
        let mut warm = std::net::TcpStream::connect(srv.addr).unwrap();
        one_request(&mut warm);
        drop(warm);
        std::thread::sleep(Duration::from_millis(300));
        let before = rss(srv.pid()).unwrap_or(0);
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let Ok(mut c) = std::net::TcpStream::connect(srv.addr) else {
                break;
            };
            if !one_request(&mut c) {
                break;
            }
            conns.push(c);
        }
        if conns.len() < n {
            println!("| {kind} | - | - | only {} connections made |", conns.len());
            continue;
        }
        std::thread::sleep(Duration::from_millis(500));
        let after = rss(srv.pid()).unwrap_or(0);
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        println!(
            "| {kind} | {:.1} | {:.1} | {:.0} |",
            mib(before),
            mib(after),
            after.saturating_sub(before) as f64 / n as f64
        );
        drop(conns);
    }
    println!();
}

fn main() {
    // `cargo bench` passes --bench; only the filter env selects.
    let nofile = raise_nofile();
    println!("machine: {}; RLIMIT_NOFILE {nofile}\n", machine());
    let go = build_go("http_bench");
    if selected("http_hello") {
        http_hello(go.as_ref());
    }
    if selected("http_conns") {
        http_conns(go.as_ref());
    }
}
