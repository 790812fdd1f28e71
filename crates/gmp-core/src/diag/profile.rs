//! The goroutine profile, Go's `pprof.Lookup("goroutine").WriteTo(w,
//! debug)`: goroutines grouped by status, wait reason and creation chain.
//!
//! A goroutine has no call stack to sample, so a group's "stack" is what
//! identifies it: the innermost frame is what it waits on (the wait reason,
//! or its status when not waiting), then where it was created, then where
//! each ancestor was created (`ancestry.rs`). `debug = 0` writes that as a
//! gzipped `profile.proto` for `go tool pprof`; `debug = 1` as Go's text
//! form; `debug >= 2` is the goroutine dump.

use crate::diag::protobuf::Message;
use crate::g::ancestry;
use crate::g::status::{GStatus, WaitReason};
use crate::sched::{expect_current, Sched};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::Location;

/// What a group of goroutines shares: the wait reason (or the status
/// when not waiting) and the creation chain, own site first.
type Key = (&'static str, Vec<Site>);

/// A creation site, compared by address (each `#[track_caller]` site is
/// one static `Location`).
#[derive(Clone, Copy)]
struct Site(&'static Location<'static>);

impl PartialEq for Site {
    fn eq(&self, o: &Site) -> bool {
        std::ptr::eq(self.0, o.0)
    }
}
impl Eq for Site {}
impl std::hash::Hash for Site {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        std::ptr::hash(self.0, h)
    }
}

/// One frame of a group's pseudo-stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Frame {
    State(&'static str),
    Site(&'static Location<'static>),
}

impl Frame {
    fn name(self) -> String {
        match self {
            Frame::State(s) => s.to_string(),
            Frame::Site(l) => format!("created at {}:{}", l.file(), l.line()),
        }
    }

    fn file_line(self) -> (&'static str, u32) {
        match self {
            Frame::State(_) => ("", 0),
            Frame::Site(l) => (l.file(), l.line()),
        }
    }
}

struct Group {
    count: u64,
    frames: Vec<Frame>,
}

impl Sched {
    /// The groups, largest first (ties in a stable order).
    fn profile_groups(&self) -> Vec<Group> {
        // Chains resolved once per distinct (chain word, site).
        let mut chains: HashMap<(u32, Site), Vec<Site>> = HashMap::new();
        let mut counts: HashMap<Key, u64> = HashMap::new();
        self.allgs.for_each(|h| {
            let state = match h.status() {
                GStatus::Waiting => match h.wait_reason() {
                    WaitReason::None => "waiting",
                    r => r.as_str(),
                },
                other => other.as_str(),
            };
            let word = h.chain.load(std::sync::atomic::Ordering::Relaxed);
            let sites = chains.entry((word, Site(h.created_at))).or_insert_with(|| {
                ancestry::sites_of(word, h.created_at)
                    .into_iter()
                    .map(Site)
                    .collect()
            });
            *counts.entry((state, sites.clone())).or_insert(0) += 1;
        });
        let mut groups: Vec<_> = counts
            .into_iter()
            .map(|((state, sites), count)| Group {
                count,
                frames: std::iter::once(Frame::State(state))
                    .chain(sites.into_iter().map(|s| Frame::Site(s.0)))
                    .collect(),
            })
            .collect();
        groups.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| frame_names(a).cmp(&frame_names(b)))
        });
        groups
    }
}

fn frame_names(g: &Group) -> Vec<String> {
    g.frames.iter().map(|f| f.name()).collect()
}

/// Frames numbered in order of first appearance (pprof's location and
/// function ids, and the text form's pseudo addresses), from 1.
struct Frames {
    ids: HashMap<Frame, u64>,
    order: Vec<Frame>,
}

impl Frames {
    fn of(groups: &[Group]) -> Frames {
        let mut f = Frames {
            ids: HashMap::new(),
            order: Vec::new(),
        };
        for g in groups {
            for &fr in &g.frames {
                if !f.ids.contains_key(&fr) {
                    f.order.push(fr);
                    f.ids.insert(fr, f.order.len() as u64);
                }
            }
        }
        f
    }
}

/// Go's `debug = 1` text.
fn text(groups: &[Group]) -> String {
    let frames = Frames::of(groups);
    let total: u64 = groups.iter().map(|g| g.count).sum();
    let mut s = format!("goroutine profile: total {total}\n");
    for g in groups {
        let _ = write!(s, "{} @", g.count);
        for fr in &g.frames {
            let _ = write!(s, " {:#x}", frames.ids[fr]);
        }
        s.push('\n');
        for fr in &g.frames {
            let id = frames.ids[fr];
            match fr {
                Frame::State(st) => {
                    let _ = writeln!(s, "#\t{id:#x}\t{st}");
                }
                Frame::Site(l) => {
                    let _ = writeln!(s, "#\t{id:#x}\tcreated at\t{}:{}", l.file(), l.line());
                }
            }
        }
        s.push('\n');
    }
    s
}

/// `profile.proto` (github.com/google/pprof/proto/profile.proto) field
/// numbers.
mod pb {
    pub const SAMPLE_TYPE: u32 = 1;
    pub const SAMPLE: u32 = 2;
    pub const LOCATION: u32 = 4;
    pub const FUNCTION: u32 = 5;
    pub const STRING_TABLE: u32 = 6;
    pub const TIME_NANOS: u32 = 9;
    pub const PERIOD_TYPE: u32 = 11;
    pub const PERIOD: u32 = 12;
    // ValueType
    pub const VT_TYPE: u32 = 1;
    pub const VT_UNIT: u32 = 2;
    // Sample
    pub const S_LOCATION_ID: u32 = 1;
    pub const S_VALUE: u32 = 2;
    // Location
    pub const L_ID: u32 = 1;
    pub const L_ADDRESS: u32 = 3;
    pub const L_LINE: u32 = 4;
    // Line
    pub const LN_FUNCTION_ID: u32 = 1;
    pub const LN_LINE: u32 = 2;
    // Function
    pub const F_ID: u32 = 1;
    pub const F_NAME: u32 = 2;
    pub const F_SYSTEM_NAME: u32 = 3;
    pub const F_FILENAME: u32 = 4;
}

/// The string table: index 0 is "", as the format requires.
struct Strings {
    ids: HashMap<String, u64>,
    all: Vec<String>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            ids: HashMap::from([(String::new(), 0)]),
            all: vec![String::new()],
        }
    }

    fn id(&mut self, s: &str) -> u64 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.all.len() as u64;
        self.all.push(s.to_string());
        self.ids.insert(s.to_string(), i);
        i
    }
}

/// `debug = 0`: the uncompressed `profile.proto` bytes.
fn proto(groups: &[Group], time_nanos: i64) -> Vec<u8> {
    let frames = Frames::of(groups);
    let mut st = Strings::new();
    let mut m = Message::new();
    let (goroutine, count) = (st.id("goroutine"), st.id("count"));
    m.message(pb::SAMPLE_TYPE, |v| {
        v.uint(pb::VT_TYPE, goroutine);
        v.uint(pb::VT_UNIT, count);
    });
    for g in groups {
        m.message(pb::SAMPLE, |s| {
            s.packed(pb::S_LOCATION_ID, g.frames.iter().map(|f| frames.ids[f]));
            s.packed(pb::S_VALUE, [g.count]);
        });
    }
    // One location and one function per frame, sharing its id.
    for (i, fr) in frames.order.iter().enumerate() {
        let id = i as u64 + 1;
        let (file, line) = fr.file_line();
        m.message(pb::LOCATION, |l| {
            l.uint(pb::L_ID, id);
            l.uint(pb::L_ADDRESS, id);
            l.message(pb::L_LINE, |ln| {
                ln.uint(pb::LN_FUNCTION_ID, id);
                ln.int(pb::LN_LINE, i64::from(line));
            });
        });
        let (name, file) = (st.id(&fr.name()), st.id(file));
        m.message(pb::FUNCTION, |f| {
            f.uint(pb::F_ID, id);
            f.uint(pb::F_NAME, name);
            f.uint(pb::F_SYSTEM_NAME, name);
            f.uint(pb::F_FILENAME, file);
        });
    }
    for s in &st.all {
        m.bytes(pb::STRING_TABLE, s.as_bytes());
    }
    m.int(pb::TIME_NANOS, time_nanos);
    m.message(pb::PERIOD_TYPE, |v| {
        v.uint(pb::VT_TYPE, goroutine);
        v.uint(pb::VT_UNIT, count);
    });
    m.int(pb::PERIOD, 1);
    m.into_bytes()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b)
        .and_then(|_| e.finish())
        .expect("gzip into memory cannot fail")
}

/// Go's `pprof.Lookup("goroutine").WriteTo(w, debug)` for the current
/// runtime: `debug = 0` a gzipped `profile.proto` (`go tool pprof` reads
/// it), `debug = 1` the text form (`goroutine profile: total N`, then one
/// `count @ addresses` block per group), `debug >= 2` the goroutine dump.
/// Panics outside a runtime.
#[track_caller]
pub fn goroutine_profile(debug: u8) -> Vec<u8> {
    expect_current("gmp::runtime::goroutine_profile", |ctx| {
        let sched = &ctx.sched;
        match debug {
            0 => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as i64);
                gzip(&proto(&sched.profile_groups(), now))
            }
            1 => text(&sched.profile_groups()).into_bytes(),
            _ => crate::diag::dump::format_dump(&sched.goroutines()).into_bytes(),
        }
    })
}
