//! GMP_TRACE writes a Chrome trace-event file: valid JSON, one track per
//! P, run slices and spawn/ready/park events.

use std::time::Duration;

mod support;
use support::json;

fn run_child(name: &str, env: &[(&str, &str)]) -> std::process::Output {
    let env: Vec<_> = env.iter().map(|(k, v)| (*k, Some(*v))).collect();
    support::run_child_output(name, &env, Duration::from_secs(120))
}

#[test]
fn trace_file_is_valid_json_with_events_for_every_p() {
    const NAME: &str = "trace_file_is_valid_json_with_events_for_every_p";
    if std::env::var("GMP_CHILD").as_deref() == Ok(NAME) {
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    // While tracing every ready is recorded, not one in 256 as the
    // latency sampler does (which would give about 2000 / 256 here). How
    // many wake-ups there are depends on timing: a short sleep whose
    // deadline has passed by the time it is polled returns without one,
    // and a JoinHandle done before main awaits it wakes nobody; runs here
    // see 600-2000.
    assert!(readies >= 200, "ready events: {readies}");
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
