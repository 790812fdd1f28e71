//! The coarse clock: a cheap way to learn that a deadline is certainly
//! still ahead, without the precise clock read.
//!
//! The scheduler looks at the earliest timer on every `schedule`, and a
//! `Sleep` checks its deadline when first polled. A server arms a
//! header-read timer per request, 30 s out, so nearly all of those looks
//! end in "not yet", each after a precise read (`Instant::now`: the TSC,
//! scaled). Linux's `CLOCK_MONOTONIC_COARSE` is the same monotonic clock
//! as of the last timer tick, read from the vDSO page without touching
//! the TSC; it is never ahead of the precise clock and behind it by about
//! a tick (more only when the kernel's timekeeping stalls, as a VM whose
//! timekeeping vCPU is descheduled can). So a deadline more than `slack`
//! past the coarse reading is certainly ahead, and the precise read can be
//! skipped.
//!
//! The coarse clock only ever answers "certainly ahead"; "due" is always
//! decided by the precise clock, so no timer fires early. If the kernel's
//! coarse clock fell further behind than `slack`, a timer on a busy P
//! would be found due a little late (the M that blocks in the netpoller
//! always computes its timeout from the precise clock). Other Unixes
//! answer "don't know" and every check reads the precise clock, as before.

use std::sync::OnceLock;
use std::time::Instant;

/// A reading of the raw monotonic clock paired with the `Instant` taken
/// just after it, so that an `Instant` can be placed on the raw scale.
struct Base {
    instant: Instant,
    /// The raw clock (ns) read before `instant` was taken: at or below
    /// `instant`'s own raw value, so deadlines placed from it are placed
    /// early, the safe direction for "certainly ahead".
    raw: u64,
    /// How far the coarse clock may trail the precise one: two ticks.
    /// `u64::MAX` where there is no coarse clock (nothing is ever certain).
    slack: u64,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let raw = sys::precise_ns();
        let instant = Instant::now();
        Base {
            instant,
            raw,
            slack: sys::coarse_resolution_ns()
                .filter(|&r| r > 0 && r <= MAX_TICK_NS)
                .map_or(u64::MAX, |r| 2 * r),
        }
    })
}

/// A coarse clock whose resolution is coarser than this is not worth
/// consulting (deadlines within two of its ticks would all need the
/// precise read anyway).
const MAX_TICK_NS: u64 = 50_000_000;

/// `t` on the raw clock's scale, placed no later than its true value.
/// `None` for an instant before the base was taken (it is not ahead).
fn raw_lower_bound(b: &Base, t: Instant) -> Option<u64> {
    let since = t.checked_duration_since(b.instant)?;
    Some(
        b.raw
            .saturating_add(since.as_nanos().min(u64::MAX as u128) as u64),
    )
}

/// Now, as an `Instant` (a runtime's start) and its place on the raw
/// clock (at or below its true value), for [`certainly_ahead`].
pub(crate) fn now_anchored() -> (Instant, u64) {
    let b = base();
    let now = Instant::now();
    (now, raw_lower_bound(b, now).unwrap_or(0))
}

/// Whether `deadline` is certainly still ahead, judged from the coarse
/// clock alone. `false` means "maybe not": read the precise clock.
#[inline]
pub(crate) fn certainly_before(deadline: Instant) -> bool {
    let b = base();
    raw_lower_bound(b, deadline).is_some_and(|d| left(b, d).is_some())
}

/// For a deadline given as `anchor + ns` (`anchor` from [`now_anchored`]: a
/// runtime's `nanotime` scale): if it is certainly ahead, a duration (ns,
/// at least 1) that certainly passes before it; `None` means "maybe due":
/// read the precise clock.
#[inline]
pub(crate) fn certainly_ahead(anchor: u64, ns: u64) -> Option<u64> {
    left(base(), anchor.saturating_add(ns))
}

/// Nanoseconds from `anchor` to the coarse clock's reading: a runtime's
/// `nanotime`, up to a couple of ticks behind, for bookkeeping that needs
/// no more (when the network was last polled). `None` without a coarse
/// clock.
#[inline]
pub(crate) fn coarse_nanotime(anchor: u64) -> Option<u64> {
    sys::coarse_ns().map(|now| now.saturating_sub(anchor))
}

/// `deadline_raw` minus the latest the precise clock can read now, if
/// positive.
#[inline]
fn left(b: &Base, deadline_raw: u64) -> Option<u64> {
    if b.slack == u64::MAX {
        return None;
    }
    let latest_now = sys::coarse_ns()?.saturating_add(b.slack);
    deadline_raw.checked_sub(latest_now).filter(|&d| d > 0)
}

#[cfg(target_os = "linux")]
mod sys {
    use std::mem::MaybeUninit;

    /// `f` (clock_gettime or clock_getres) on `clock`, in ns. Inlined, so
    /// that the call is a direct one (coarse reads are on `schedule`).
    #[inline(always)]
    fn call(
        f: unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int,
        clock: libc::clockid_t,
    ) -> Option<u64> {
        let mut ts = MaybeUninit::<libc::timespec>::uninit();
        // SAFETY: `ts` is a valid place for one timespec, which the call
        // fills when it returns 0 (read only then).
        let ts = unsafe {
            if f(clock, ts.as_mut_ptr()) != 0 {
                return None;
            }
            ts.assume_init()
        };
        Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }

    /// The clock `Instant` reads.
    pub(super) fn precise_ns() -> u64 {
        call(libc::clock_gettime, libc::CLOCK_MONOTONIC).unwrap_or(0)
    }

    #[inline]
    pub(super) fn coarse_ns() -> Option<u64> {
        call(libc::clock_gettime, libc::CLOCK_MONOTONIC_COARSE)
    }

    pub(super) fn coarse_resolution_ns() -> Option<u64> {
        call(libc::clock_getres, libc::CLOCK_MONOTONIC_COARSE)
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    pub(super) fn precise_ns() -> u64 {
        0
    }

    #[inline]
    pub(super) fn coarse_ns() -> Option<u64> {
        None
    }

    pub(super) fn coarse_resolution_ns() -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn never_certain_about_the_past_or_the_present() {
        let now = Instant::now();
        assert!(!certainly_before(now));
        assert!(!certainly_before(now - Duration::from_millis(1)));
        let (_, anchor) = now_anchored();
        assert_eq!(certainly_ahead(anchor, 0), None);
    }

    #[test]
    fn a_far_deadline_is_certainly_ahead_where_a_coarse_clock_exists() {
        let far = Instant::now() + Duration::from_secs(30);
        // Linux's coarse clock ticks at 1/HZ (1-10 ms): usable.
        #[cfg(target_os = "linux")]
        assert!(base().slack != u64::MAX, "no usable CLOCK_MONOTONIC_COARSE");
        assert_eq!(certainly_before(far), base().slack != u64::MAX);
        let (_, anchor) = now_anchored();
        assert!(anchor > 0);
        match certainly_ahead(anchor, 30_000_000_000) {
            // At most the 30 s, less the slack and the time since `anchor`.
            Some(left) => assert!(left > 0 && left < 30_000_000_000),
            None => assert!(
                base().slack == u64::MAX,
                "a coarse clock exists but a deadline 30 s out was not certain"
            ),
        }
    }

    #[test]
    fn the_coarse_clock_never_runs_ahead_of_the_precise_one() {
        // What "certainly ahead" rests on: a coarse reading is at or below
        // a precise reading taken after it (and an anchor at or below the
        // instant it anchors).
        for _ in 0..10_000 {
            if let Some(c) = sys::coarse_ns() {
                let p = sys::precise_ns();
                assert!(c <= p, "coarse {c} ahead of precise {p}");
            }
        }
        let (_, anchor) = now_anchored();
        assert!(anchor <= sys::precise_ns());
        assert!(anchor >= base().raw);
    }
}
