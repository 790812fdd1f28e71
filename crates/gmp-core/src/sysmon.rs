//! sysmon: the runtime's watchdog thread (Go's `sysmon`/`retake`).
//!
//! It runs without a P, sleeping 20us and doubling up to 10ms while it
//! finds nothing to do, and not at all while every P is idle. Each round it:
//! - retakes a P whose M has sat in `gmp::syscall` across a whole round
//!   (>= 20us) and hands it to another M (`handoffp`);
//! - retakes a P whose M has been inside one poll for >= 10ms (Go would
//!   preempt the goroutine; a stackless G cannot be interrupted, so the M
//!   keeps its poll and loses its P);
//! - sets the preempt flag of a P whose time slice passed 10ms, which the
//!   goroutine's next gmp yield point honours;
//! - advances the coarse clock used to stamp parked goroutines.

use crate::p::{self, status_of, status_word};
use crate::sched::Sched;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Go's `forcePreemptNS`.
pub(crate) const FORCE_PREEMPT: Duration = Duration::from_millis(10);
const MIN_DELAY: Duration = Duration::from_micros(20);
const MAX_DELAY: Duration = Duration::from_millis(10);

#[derive(Default)]
pub(crate) struct SysmonCtl {
    lock: Mutex<bool>,
    cv: Condvar,
    sleeping: AtomicBool,
    /// sysmon sleeps longer than `MIN_DELAY` between rounds (or deeply).
    slow: AtomicBool,
    /// A syscall began while sysmon was slow: back to `MIN_DELAY` rounds,
    /// so the syscall's P is handed off after ~20us (Go's `syscallWake`).
    syscall_wake: AtomicBool,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

impl SysmonCtl {
    /// Called when a P leaves the idle list: sysmon may be in deep sleep.
    #[inline]
    pub(crate) fn wake_if_sleeping(&self) {
        if self.sleeping.load(SeqCst) {
            let _g = self.lock.lock().unwrap();
            self.cv.notify_one();
        }
    }

    /// Called as a goroutine enters `gmp::syscall`: one relaxed load while
    /// sysmon already polls fast.
    #[inline]
    pub(crate) fn wake_for_syscall(&self) {
        if self.slow.load(Relaxed) {
            self.syscall_wake.store(true, Relaxed);
            let _g = self.lock.lock().unwrap();
            self.cv.notify_one();
        }
    }

    pub(crate) fn is_sleeping(&self) -> bool {
        self.sleeping.load(SeqCst)
    }

    pub(crate) fn stop(&self) {
        *self.lock.lock().unwrap() = true;
        self.cv.notify_all();
    }

    pub(crate) fn join(&self) {
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn start(sched: &Arc<Sched>) {
    let s = Arc::clone(sched);
    let t = thread::Builder::new()
        .name("gmp-sysmon".into())
        .spawn(move || sysmon(s))
        .expect("gmp: failed to start the sysmon thread");
    *sched.sysmon.thread.lock().unwrap() = Some(t);
}

#[derive(Clone, Copy)]
struct PObs {
    schedtick: u32,
    schedwhen: Instant,
    polltick: u32,
    pollwhen: Instant,
    syscalltick: u32,
    syscallwhen: Instant,
}

impl PObs {
    /// A P first seen at `now`.
    fn new(now: Instant) -> PObs {
        PObs {
            schedtick: 0,
            schedwhen: now,
            polltick: 0,
            pollwhen: now,
            syscalltick: 0,
            syscallwhen: now,
        }
    }
}

fn sysmon(sched: Arc<Sched>) {
    let mut obs = vec![PObs::new(Instant::now()); sched.allp.len()];
    let ctl = &sched.sysmon;
    let mut delay = MIN_DELAY;
    let mut idle = 0u32;
    let trace = sched.config.debug.schedtrace;
    let detail = sched.config.debug.scheddetail;
    let mut next_trace = sched.start;
    let mut next_load_sample = sched.start;
    let schedtrace = |next_trace: &mut Instant, now: Instant| {
        if let Some(period) = trace {
            if now >= *next_trace {
                eprint!("{}", sched.schedtrace_text(now, detail));
                *next_trace = now + period;
            }
        }
    };
    loop {
        if ctl.syscall_wake.swap(false, Relaxed) {
            idle = 0;
        }
        if idle == 0 {
            delay = MIN_DELAY;
        } else if idle > 50 {
            delay = (delay * 2).min(MAX_DELAY);
        }
        ctl.slow.store(delay > MIN_DELAY, Relaxed);
        {
            let g = ctl.lock.lock().unwrap();
            if *g {
                return;
            }
            let (g, _) = ctl.cv.wait_timeout(g, delay).unwrap();
            if *g {
                return;
            }
        }
        let now = Instant::now();
        sched.set_coarse_now(now);
        schedtrace(&mut next_trace, now);
        if obs.len() < sched.allp.len() {
            // GOMAXPROCS grew.
            obs.resize(sched.allp.len(), PObs::new(now));
        }
        if sched.npidle.load(SeqCst) == sched.gomaxprocs() {
            // Every P idle: nothing to retake, sleep until one is taken
            // (or the next SCHED line is due).
            let mut g = ctl.lock.lock().unwrap();
            ctl.slow.store(true, Relaxed);
            ctl.sleeping.store(true, SeqCst);
            while !*g && sched.npidle.load(SeqCst) == sched.gomaxprocs() {
                match trace {
                    None => g = ctl.cv.wait(g).unwrap(),
                    Some(_) => {
                        let wait = next_trace.saturating_duration_since(Instant::now());
                        g = ctl.cv.wait_timeout(g, wait).unwrap().0;
                        if Instant::now() >= next_trace {
                            drop(g);
                            schedtrace(&mut next_trace, Instant::now());
                            g = ctl.lock.lock().unwrap();
                        }
                    }
                }
            }
            ctl.sleeping.store(false, SeqCst);
            if *g {
                return;
            }
            drop(g);
            sched.set_coarse_now(Instant::now());
            // Not back to 20us rounds just because a P got busy again (a
            // server whose P idles between requests would keep sysmon
            // spinning); a syscall asks for that (`wake_for_syscall`).
            continue;
        }
        if now >= next_load_sample {
            next_load_sample = now + crate::cpuload::SAMPLE_EVERY;
            let procs = sched.gomaxprocs();
            let busy = procs.saturating_sub(sched.npidle.load(Relaxed));
            sched.cpuload.sample(busy as u32 + 1, procs as u32);
        }
        // Go: poll the network if nobody has for 10ms, so ready I/O is
        // not stuck behind busy Ps.
        if let Some(np) = &sched.netpoll {
            let now_ns = sched.nanotime_of(now);
            let last = sched.lastpoll.load(Relaxed);
            if !sched.netpoll_is_blocked()
                && np.has_waiters()
                && now_ns.saturating_sub(last) > FORCE_PREEMPT.as_nanos() as u64
            {
                sched.lastpoll.store(now_ns.max(1), Relaxed);
                if np.netpoll(Some(Duration::ZERO)) > 0 {
                    idle = 0;
                }
            }
        }
        // Go: timers that should have run already (their P is stuck in
        // a long poll, or was retired) get an M started for them.
        let next = sched.earliest_timer();
        if next != crate::timer::NO_TIMER
            && next < sched.nanotime_of(now)
            && !sched.netpoll_is_blocked()
        {
            sched.startm(None, false);
        }
        if retake(&sched, &mut obs, now) > 0 {
            idle = 0;
        } else {
            idle += 1;
        }
    }
}

fn retake(sched: &Sched, obs: &mut [PObs], now: Instant) -> usize {
    let mut n = 0;
    // Ps made since the caller sized `obs` are looked at next round.
    for (i, pp) in sched.allp.iter().enumerate().take(obs.len()) {
        let w = pp.status.load(SeqCst);
        let st = status_of(w);
        let o = &mut obs[i];
        if st == p::PIDLE || st == p::PDEAD {
            continue;
        }
        let t = pp.schedtick.load(Relaxed);
        if o.schedtick != t {
            o.schedtick = t;
            o.schedwhen = now;
        } else if now.duration_since(o.schedwhen) >= FORCE_PREEMPT {
            pp.preempt.store(true, Relaxed);
        }
        match st {
            p::PSYSCALL => {
                let t = pp.syscalltick.load(Relaxed);
                if o.syscalltick != t {
                    o.syscalltick = t;
                    o.syscallwhen = now;
                    continue;
                }
                // Go: leave it if it has nothing queued, others can pick up
                // new work, and it has not been long.
                if pp.runq.is_empty()
                    && sched.nmspinning.load(SeqCst) + sched.npidle.load(SeqCst) > 0
                    && now.duration_since(o.syscallwhen) < FORCE_PREEMPT
                {
                    continue;
                }
                if pp
                    .status
                    .compare_exchange(w, status_word(0, p::PIDLE), AcqRel, Relaxed)
                    .is_ok()
                {
                    n += 1;
                    sched.handoffp(i);
                }
            }
            p::PPOLLING => {
                let t = pp.polltick.load(Relaxed);
                if o.polltick != t {
                    o.polltick = t;
                    o.pollwhen = now;
                    continue;
                }
                if now.duration_since(o.pollwhen) >= FORCE_PREEMPT
                    && pp
                        .status
                        .compare_exchange(w, status_word(0, p::PIDLE), AcqRel, Relaxed)
                        .is_ok()
                {
                    n += 1;
                    sched.handoffp(i);
                }
            }
            _ => {}
        }
    }
    n
}
