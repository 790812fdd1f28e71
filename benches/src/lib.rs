//! The benchmark harness shared by `benches/sched.rs` and `benches/chan.rs`:
//! run each workload several times, keep the median, print one markdown
//! table with gmp, tokio (and other Rust channels) and Go side by side.
//!
//! Go's numbers come from the programs in `benches/go/`, built and run when
//! `go` is on PATH (Debian's golang-1.19-go puts it in /usr/lib/go-1.19/bin,
//! which is searched too); without Go that column says `-`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub mod chan_workloads;
pub mod procstat;

/// Runs per measurement (env `BENCH_RUNS`, default 5).
pub fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5)
}

/// Whether workload `name` is selected by env `BENCH_FILTER` (a
/// substring; unset runs everything).
pub fn selected(name: &str) -> bool {
    std::env::var("BENCH_FILTER").map_or(true, |f| name.contains(&f))
}

/// Median and min of `runs()` measurements of `f`, which returns the
/// per-operation time in ns.
pub fn measure(mut f: impl FnMut() -> f64) -> Stat {
    let mut v: Vec<f64> = (0..runs()).map(|_| f()).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stat {
        median: v[v.len() / 2],
        min: v[0],
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
}

/// Nanoseconds per op for `n` ops taking `d`.
pub fn per_op(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

/// One row: a workload at a procs count, one value per column (None: not
/// run). `cells` are medians; `mins`, when given, the fastest run of each
/// column (printed as a second table).
pub struct Row {
    pub workload: String,
    pub procs: usize,
    pub cells: Vec<Option<f64>>,
    pub mins: Option<Vec<Option<f64>>>,
}

impl Row {
    /// A row from one `Stat` per column: medians in `cells`, mins in `mins`.
    pub fn from_stats(workload: impl Into<String>, procs: usize, stats: &[Option<Stat>]) -> Row {
        Row {
            workload: workload.into(),
            procs,
            cells: stats.iter().map(|s| s.map(|s| s.median)).collect(),
            mins: Some(stats.iter().map(|s| s.map(|s| s.min)).collect()),
        }
    }
}

/// A single measurement as a `Stat` (median = min).
pub fn once(v: Option<f64>) -> Option<Stat> {
    v.map(|v| Stat { median: v, min: v })
}

/// Print the table of medians: the columns, then `gmp/<col>` ratios for
/// each other column (below 1.0 means gmp is faster/smaller). When rows
/// carry mins, a second table of the fastest runs follows.
pub fn print_table(unit: &str, columns: &[&str], rows: &[Row]) {
    let with_mins = rows.iter().any(|r| r.mins.is_some());
    if with_mins {
        println!("median of {} runs:\n", runs());
    }
    print_cells(unit, columns, rows.iter().map(|r| (r, &r.cells)));
    if with_mins {
        println!("\nmin of {} runs:\n", runs());
        print_cells(
            unit,
            columns,
            rows.iter().filter_map(|r| r.mins.as_ref().map(|m| (r, m))),
        );
    }
}

fn print_cells<'a>(
    unit: &str,
    columns: &[&str],
    rows: impl Iterator<Item = (&'a Row, &'a Vec<Option<f64>>)>,
) {
    let mut head = format!("| workload ({unit}) | procs |");
    let mut sep = String::from("|---|---|");
    for c in columns {
        head.push_str(&format!(" {c} |"));
        sep.push_str("---|");
    }
    for c in &columns[1..] {
        head.push_str(&format!(" gmp/{c} |"));
        sep.push_str("---|");
    }
    println!("{head}\n{sep}");
    for (r, cells) in rows {
        let mut line = format!("| {} | {} |", r.workload, r.procs);
        for c in cells {
            line.push_str(&match c {
                Some(v) => format!(" {v:.1} |"),
                None => " - |".to_string(),
            });
        }
        for c in &cells[1..] {
            line.push_str(&match (cells[0], c) {
                (Some(g), Some(o)) if *o > 0.0 => format!(" {:.2} |", g / o),
                _ => " - |".to_string(),
            });
        }
        println!("{line}");
    }
}

/// The `go` binary, if any.
pub fn go_bin() -> Option<PathBuf> {
    let candidates = [
        PathBuf::from("go"),
        PathBuf::from("/usr/lib/go-1.19/bin/go"),
    ];
    candidates.into_iter().find(|g| {
        Command::new(g)
            .arg("version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

/// A built Go benchmark binary, deleted from the temp dir when dropped.
pub struct GoBin(PathBuf);

impl std::ops::Deref for GoBin {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for GoBin {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Build `benches/go/<name>.go` into the temp dir (removed again when the
/// returned `GoBin` drops); None without Go.
pub fn build_go(name: &str) -> Option<GoBin> {
    let Some(go) = go_bin() else {
        eprintln!("go not found on PATH: skipping the Go column");
        return None;
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("go")
        .join(format!("{name}.go"));
    let out = std::env::temp_dir().join(format!("gmp-bench-{name}-{}", std::process::id()));
    let st = Command::new(&go)
        .args(["build", "-o"])
        .arg(&out)
        .arg(&src)
        .env("GOCACHE", std::env::temp_dir().join("gmp-bench-gocache"))
        .env("GOFLAGS", "-mod=mod")
        .env("GO111MODULE", "off")
        .status();
    match st {
        Ok(s) if s.success() => Some(GoBin(out)),
        _ => {
            eprintln!("could not build {}: skipping the Go column", src.display());
            None
        }
    }
}

/// Run a Go benchmark binary: `-bench <w> -procs <p> -runs <n>`; it prints
/// `RESULT <workload> <procs> <median> [<min>]`. Returns the median.
pub fn run_go(bin: Option<&Path>, workload: &str, procs: usize) -> Option<f64> {
    run_go_stat(bin, workload, procs).map(|s| s.median)
}

/// As [`run_go`], with the min of the runs too (= median if not printed).
pub fn run_go_stat(bin: Option<&Path>, workload: &str, procs: usize) -> Option<Stat> {
    let bin = bin?;
    let out = Command::new(bin)
        .args([
            "-bench",
            workload,
            "-procs",
            &procs.to_string(),
            "-runs",
            &runs().to_string(),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))?
        .split_whitespace()
        .skip(2)
        .map_while(|v| v.parse().ok())
        .collect();
    let median = *f.first()?;
    Some(Stat {
        median,
        min: f.get(1).copied().unwrap_or(median),
    })
}

/// Resident set size of this process in bytes (Linux).
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The machine, for the record.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} CPUs")
}
