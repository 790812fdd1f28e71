//! The trace file's text: Chrome's trace-event JSON (object form), which
//! Perfetto and chrome://tracing open. Each runtime is a "process"
//! (`gmp runtime N`), each of its Ps a "thread" (`P0`, `P1`, ...), named
//! by metadata events the first time they appear.
//!
//! Events are appended to a byte buffer by hand (static pieces and
//! integers) rather than through `write!`: with tracing on, formatting is
//! most of what an event costs, and `core::fmt` took four times as long.

use crate::diag::trace::{Event, Kind};
use crate::g::status::WaitReason;
use crate::sched::RunEnd;

#[derive(Default)]
pub(crate) struct Writer {
    /// Per runtime, per P: whether its name was written.
    named: Vec<Vec<bool>>,
}

pub(crate) const HEAD: &[u8] = b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n\
{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{\"name\":\"gmp\"}}";
pub(crate) const TAIL: &[u8] = b"\n]}\n";

/// Appends the decimal digits of `v`.
fn num(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `pieces`, alternating text and numbers: text, num, text, ...
macro_rules! put {
    ($out:expr; $($s:literal $(, $n:expr)?);* $(;)?) => {{
        $(
            $out.extend_from_slice($s.as_bytes());
            $( num($out, $n as u64); )?
        )*
    }};
}

impl Writer {
    /// One event, preceded by the names of its runtime and P when new.
    pub(crate) fn event(&mut self, out: &mut Vec<u8>, e: &Event) {
        let (ts, pid, tid) = (e.ts_us, e.rt, e.p);
        self.name_track(out, pid, tid);
        match e.kind {
            Kind::Run {
                goid,
                dur_us,
                end,
                reason,
            } => {
                let label = match end {
                    RunEnd::Done => "done",
                    RunEnd::Yield => "yield",
                    RunEnd::Park => reason.park_label(),
                };
                put!(out; ",\n{\"name\":\"G", goid; "\",\"cat\":\"run\",\"ph\":\"X\",\"ts\":", ts;
                     ",\"dur\":", dur_us.max(1); ",\"pid\":", pid; ",\"tid\":", tid;
                     ",\"args\":{\"goid\":", goid; ",\"end\":\"");
                out.extend_from_slice(label.as_bytes());
                out.extend_from_slice(b"\"}}");
                if end == RunEnd::Park {
                    let text = match reason {
                        WaitReason::None => "waiting",
                        r => r.as_str(),
                    };
                    put!(out; ",\n{\"name\":\"park G", goid;
                         "\",\"cat\":\"park\",\"ph\":\"i\",\"s\":\"t\",\"ts\":", ts + dur_us;
                         ",\"pid\":", pid; ",\"tid\":", tid; ",\"args\":{\"reason\":\"");
                    out.extend_from_slice(text.as_bytes());
                    out.extend_from_slice(b"\"}}");
                }
            }
            Kind::Spawn { parent, child } => {
                put!(out; ",\n{\"name\":\"spawn G", child;
                     "\",\"cat\":\"spawn\",\"ph\":\"i\",\"s\":\"t\",\"ts\":", ts;
                     ",\"pid\":", pid; ",\"tid\":", tid; ",\"args\":{\"parent\":", parent;
                     ",\"child\":", child; "}}");
            }
            Kind::Ready { goid } => {
                put!(out; ",\n{\"name\":\"ready G", goid;
                     "\",\"cat\":\"ready\",\"ph\":\"i\",\"s\":\"t\",\"ts\":", ts;
                     ",\"pid\":", pid; ",\"tid\":", tid; ",\"args\":{\"goid\":", goid; "}}");
            }
            Kind::Steal { n, from } => {
                put!(out; ",\n{\"name\":\"steal ", n; " from P", from;
                     "\",\"cat\":\"steal\",\"ph\":\"i\",\"s\":\"t\",\"ts\":", ts;
                     ",\"pid\":", pid; ",\"tid\":", tid; ",\"args\":{\"n\":", n;
                     ",\"from\":", from; "}}");
            }
        }
    }

    fn name_track(&mut self, out: &mut Vec<u8>, pid: u32, tid: u32) {
        let (r, p) = (pid as usize, tid as usize);
        if self.named.len() <= r {
            self.named.resize_with(r + 1, Vec::new);
        }
        let ps = &mut self.named[r];
        if ps.is_empty() {
            put!(out; ",\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":", pid;
                 ",\"tid\":0,\"args\":{\"name\":\"gmp runtime ", pid; "\"}}");
        }
        if ps.len() <= p {
            ps.resize(p + 1, false);
        }
        if !ps[p] {
            ps[p] = true;
            put!(out; ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":", pid; ",\"tid\":", tid;
                 ",\"args\":{\"name\":\"P", tid; "\"}}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_events() {
        let mut out = Vec::new();
        for v in [0, 7, 10, 1234567890123, u64::MAX] {
            num(&mut out, v);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0 7 10 1234567890123 18446744073709551615 "
        );
        let mut w = Writer::default();
        let mut out = Vec::new();
        let e = Event {
            ts_us: 5,
            rt: 1,
            p: 0,
            kind: Kind::Run {
                goid: 9,
                dur_us: 3,
                end: RunEnd::Park,
                reason: WaitReason::ChanReceive,
            },
        };
        w.event(&mut out, &e);
        w.event(&mut out, &e);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.matches("process_name").count(), 1, "{s}");
        assert_eq!(s.matches("thread_name").count(), 1, "{s}");
        assert!(s.contains(
            "{\"name\":\"G9\",\"cat\":\"run\",\"ph\":\"X\",\"ts\":5,\"dur\":3,\"pid\":1,\"tid\":0,\"args\":{\"goid\":9,\"end\":\"park: chan receive\"}}"
        ), "{s}");
        assert!(s.contains("\"name\":\"park G9\""), "{s}");
        assert!(s.contains("\"ts\":8,"), "{s}");
    }
}
