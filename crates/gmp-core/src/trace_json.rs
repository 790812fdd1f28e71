//! The trace file's text: Chrome's trace-event JSON (object form), which
//! Perfetto and chrome://tracing open. Each runtime is a "process"
//! (`gmp runtime N`), each of its Ps a "thread" (`P0`, `P1`, ...), named
//! by metadata events the first time they appear.

use crate::trace::{Event, Kind};
use std::collections::HashSet;
use std::io::{self, Write};

#[derive(Default)]
pub(crate) struct Writer {
    /// (runtime, P) pairs whose names were written.
    named: HashSet<(u32, u32)>,
}

const HEAD: &str = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n\
{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{\"name\":\"gmp\"}}";
const TAIL: &[u8] = b"\n]}\n";

impl Writer {
    pub(crate) fn head(&mut self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(HEAD.as_bytes())
    }

    /// The text that closes the file (written at each checkpoint).
    pub(crate) fn tail(&self) -> &'static [u8] {
        TAIL
    }

    /// One event, preceded by the names of its runtime and P when new.
    pub(crate) fn event(&mut self, out: &mut impl Write, e: &Event) -> io::Result<()> {
        let (ts, pid, tid) = (e.ts_us, e.rt, e.p);
        if self.named.insert((pid, u32::MAX)) {
            write!(
                out,
                ",\n{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"gmp runtime {pid}\"}}}}"
            )?;
        }
        if self.named.insert((pid, tid)) {
            write!(
                out,
                ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":\"P{tid}\"}}}}"
            )?;
        }
        match e.kind {
            Kind::Run { goid, dur_us, end } => {
                write!(
                    out,
                    ",\n{{\"name\":\"G{goid}\",\"cat\":\"run\",\"ph\":\"X\",\"ts\":{ts},\"dur\":{},\"pid\":{pid},\"tid\":{tid},\"args\":{{\"goid\":{goid},\"end\":\"{end}\"}}}}",
                    dur_us.max(1)
                )?;
                if let Some(reason) = end.strip_prefix("park: ") {
                    write!(
                        out,
                        ",\n{{\"name\":\"park G{goid}\",\"cat\":\"park\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{},\"pid\":{pid},\"tid\":{tid},\"args\":{{\"reason\":\"{reason}\"}}}}",
                        ts + dur_us
                    )?;
                }
            }
            Kind::Spawn { parent, child } => write!(
                out,
                ",\n{{\"name\":\"spawn G{child}\",\"cat\":\"spawn\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{ts},\"pid\":{pid},\"tid\":{tid},\"args\":{{\"parent\":{parent},\"child\":{child}}}}}"
            )?,
            Kind::Ready { goid } => write!(
                out,
                ",\n{{\"name\":\"ready G{goid}\",\"cat\":\"ready\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{ts},\"pid\":{pid},\"tid\":{tid},\"args\":{{\"goid\":{goid}}}}}"
            )?,
            Kind::Steal { n, from } => write!(
                out,
                ",\n{{\"name\":\"steal {n} from P{from}\",\"cat\":\"steal\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{ts},\"pid\":{pid},\"tid\":{tid},\"args\":{{\"n\":{n},\"from\":{from}}}}}"
            )?,
        }
        Ok(())
    }
}
