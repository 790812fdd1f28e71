//! GMP_TRACE writes a Chrome trace-event file: valid JSON, one track per
//! P, run slices and spawn/ready/park events.

use std::time::Duration;

mod support;
use support::{is_child, run_child};

/// A small JSON parser: enough to prove the file is valid JSON.
mod json {
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

#[test]
fn trace_file_is_valid_json_with_events_for_every_p() {
    const NAME: &str = "trace_file_is_valid_json_with_events_for_every_p";
    if is_child(NAME) {
        let rt = gmp::Runtime::builder().procs(2).build().unwrap();
        rt.block_on(async {
            let hs: Vec<_> = (0..2000u64)
                .map(|i| {
                    gmp::spawn(async move {
                        let t = std::time::Instant::now();
                        while t.elapsed() < Duration::from_micros(20) {}
                        gmp::time::sleep(Duration::from_micros(i % 300)).await;
                        i
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
        return;
    }
    let path = std::env::temp_dir().join(format!("gmp-trace-{}.json", std::process::id()));
    let out = run_child(NAME, &[("GMP_TRACE", path.to_str().unwrap())]);
    assert!(out.success(), "{}", out.stderr);
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let v = json::parse(&text).unwrap_or_else(|e| panic!("invalid JSON: {e}"));
    let json::V::Obj(top) = v else {
        panic!("not an object")
    };
    let (_, json::V::Arr(events)) = top.iter().find(|(k, _)| k == "traceEvents").unwrap() else {
        panic!("traceEvents is not an array")
    };
    let (mut spawns, mut parks, mut readies) = (0, 0, 0);
    for e in events {
        let json::V::Obj(kv) = e else {
            panic!("event not an object")
        };
        let get = |k: &str| kv.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        let Some(json::V::Str(ph)) = get("ph") else {
            panic!("no ph")
        };
        let name = match get("name") {
            Some(json::V::Str(n)) => n.clone(),
            _ => String::new(),
        };
        assert!(
            matches!(get("ts"), Some(json::V::Num)) || ph == "M",
            "event without ts"
        );
        if name.starts_with("spawn G") {
            spawns += 1;
        }
        if name.starts_with("park G") {
            parks += 1;
        }
        if name.starts_with("ready G") {
            readies += 1;
        }
    }
    assert!(spawns >= 2000, "spawn events: {spawns}");
    assert!(parks > 0, "no park events");
    // Every JoinHandle wake and timer wake-up is a ready: while tracing,
    // each one is recorded, not one in 256.
    assert!(readies >= 1000, "ready events: {readies}");
    // Every P has a track name and at least one run slice.
    for p in 0..2 {
        assert!(
            text.contains(&format!("\"args\":{{\"name\":\"P{p}\"}}")),
            "no track for P{p}"
        );
        assert!(
            text.contains(&format!("\"tid\":{p},\"args\":{{\"goid\"")),
            "no run slice on P{p}"
        );
    }
}
