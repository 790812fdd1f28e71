//! Shared by the observability tests: re-running this test binary as a
//! child process (with a watchdog) and a small JSON parser for trace files.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs this test binary's test `name` alone in a child process, with
/// `GMP_CHILD=name` and `env` set (a `None` value removes the variable),
/// killing it after `limit`.
pub fn run_child(name: &str, env: &[(&str, Option<&str>)], limit: Duration) -> Output {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        name,
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ])
    .env("GMP_CHILD", name)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let child = c.spawn().unwrap();
    wait_with_watchdog(child, name, limit)
}

/// Waits for `child`, killing it (and failing) after `limit`.
pub fn wait_with_watchdog(mut child: std::process::Child, what: &str, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{what}: child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// True in the child process that runs test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var("GMP_CHILD").as_deref() == Ok(name)
}

/// A fresh path in the temp directory.
pub fn temp_path(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "gmp-{tag}-{}-{}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Parses a trace file and returns its events, each as (name, ph, fields).
pub fn trace_events(path: &std::path::Path) -> Vec<json::V> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let v = json::parse(&text).unwrap_or_else(|e| {
        let tail = &text[text.len().saturating_sub(200)..];
        panic!(
            "{} is not valid JSON: {e}; it ends with:\n{tail}",
            path.display()
        )
    });
    let json::V::Obj(top) = v else {
        panic!("not an object")
    };
    let Some((_, json::V::Arr(events))) = top.into_iter().find(|(k, _)| k == "traceEvents") else {
        panic!("no traceEvents array")
    };
    events
}

/// An event's string field.
pub fn field<'a>(e: &'a json::V, k: &str) -> Option<&'a str> {
    let json::V::Obj(kv) = e else { return None };
    kv.iter().find(|(n, _)| n == k).and_then(|(_, v)| match v {
        json::V::Str(s) => Some(s.as_str()),
        _ => None,
    })
}

/// A small JSON parser: enough to prove the file is valid JSON.
pub mod json {
    #[derive(Debug)]
    pub enum V {
        Null,
        Bool,
        Num,
        Str(String),
        Arr(Vec<V>),
        Obj(Vec<(String, V)>),
    }
    pub fn parse(s: &str) -> Result<V, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let v = value(b, &mut i)?;
        ws(b, &mut i);
        if i != b.len() {
            return Err(format!("trailing data at {i}"));
        }
        Ok(v)
    }
    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn value(b: &[u8], i: &mut usize) -> Result<V, String> {
        ws(b, i);
        match b.get(*i) {
            Some(b'{') => {
                *i += 1;
                let mut kv = Vec::new();
                ws(b, i);
                if b.get(*i) == Some(&b'}') {
                    *i += 1;
                    return Ok(V::Obj(kv));
                }
                loop {
                    ws(b, i);
                    let V::Str(k) = value(b, i)? else {
                        return Err("key".into());
                    };
                    ws(b, i);
                    if b.get(*i) != Some(&b':') {
                        return Err(format!("':' expected at {i}"));
                    }
                    *i += 1;
                    kv.push((k, value(b, i)?));
                    ws(b, i);
                    match b.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b'}') => {
                            *i += 1;
                            return Ok(V::Obj(kv));
                        }
                        _ => return Err(format!("',' or '}}' expected at {i}")),
                    }
                }
            }
            Some(b'[') => {
                *i += 1;
                let mut a = Vec::new();
                ws(b, i);
                if b.get(*i) == Some(&b']') {
                    *i += 1;
                    return Ok(V::Arr(a));
                }
                loop {
                    a.push(value(b, i)?);
                    ws(b, i);
                    match b.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b']') => {
                            *i += 1;
                            return Ok(V::Arr(a));
                        }
                        _ => return Err(format!("',' or ']' expected at {i}")),
                    }
                }
            }
            Some(b'"') => {
                *i += 1;
                let start = *i;
                while *i < b.len() && b[*i] != b'"' {
                    if b[*i] == b'\\' {
                        *i += 1;
                    }
                    *i += 1;
                }
                let s = String::from_utf8(b[start..*i].to_vec()).map_err(|e| e.to_string())?;
                *i += 1;
                Ok(V::Str(s))
            }
            Some(b't') if b[*i..].starts_with(b"true") => {
                *i += 4;
                Ok(V::Bool)
            }
            Some(b'f') if b[*i..].starts_with(b"false") => {
                *i += 5;
                Ok(V::Bool)
            }
            Some(b'n') if b[*i..].starts_with(b"null") => {
                *i += 4;
                Ok(V::Null)
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                *i += 1;
                while *i < b.len() && (b[*i].is_ascii_digit() || b".eE+-".contains(&b[*i])) {
                    *i += 1;
                }
                Ok(V::Num)
            }
            _ => Err(format!("unexpected byte at {i}")),
        }
    }
}
