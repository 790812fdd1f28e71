//! `allp`: every P the runtime has made, by id (Go's `allp` slice).
//!
//! Go's `procresize` reallocates `allp` while the world is stopped. We
//! cannot stop the world (a poll may run for as long as it likes), and Ms
//! keep `&P` references across polls, so Ps never move: they live in
//! segments of doubling size (1, 2, 4, ... Ps), each allocated once, when
//! GOMAXPROCS first reaches it, and kept until the runtime is dropped.
//! Finding P `i` is a leading-zero count and one load (the scheduler does
//! it several times per schedule, so the segment bases are plain pointers
//! rather than `OnceLock`s).
//!
//! Which Ps are in use is GOMAXPROCS's business (`procresize.rs`); a P
//! beyond it is retired (`_Pdead`) but stays addressable, so a timer or a
//! thief that still names it finds a valid, empty P.

use crate::p::P;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicPtr, AtomicUsize};

/// The largest GOMAXPROCS accepted (by `GMP_MAXPROCS`, the builder and
/// `set_gomaxprocs`).
pub const MAX_GOMAXPROCS: usize = 1 << 16;

/// Segment `k` holds Ps `2^k - 1 .. 2^(k+1) - 1`; 17 segments cover the
/// largest GOMAXPROCS accepted (`2^16`).
const SEGS: usize = 17;

/// The largest number of Ps a runtime can have.
pub(crate) const MAX_PROCS: usize = (1 << SEGS) - 1;

pub(crate) struct AllP {
    /// Segment `k`'s first P, null until allocated. Set once (under the
    /// caller's serialization of `grow`), freed only by `Drop`.
    segs: [AtomicPtr<P>; SEGS],
    /// Ps `0..len` exist (the high-water mark of GOMAXPROCS).
    len: AtomicUsize,
}

#[inline]
fn seg_of(i: usize) -> (usize, usize) {
    let k = (usize::BITS - 1 - (i + 1).leading_zeros()) as usize;
    (k, i + 1 - (1 << k))
}

impl AllP {
    pub(crate) fn new(n: usize) -> AllP {
        let a = AllP {
            segs: Default::default(),
            len: AtomicUsize::new(0),
        };
        a.grow(n);
        a
    }

    /// Make Ps `0..n` exist. Callers serialize (the sched lock, or
    /// construction).
    pub(crate) fn grow(&self, n: usize) {
        assert!(n <= MAX_PROCS, "gmp: GOMAXPROCS {n} exceeds {MAX_PROCS}");
        let have = self.len.load(Acquire);
        if n <= have {
            return;
        }
        for i in have..n {
            let (k, _) = seg_of(i);
            if self.segs[k].load(Relaxed).is_null() {
                let first = (1 << k) - 1;
                let seg: Box<[P]> = (first..first + (1 << k)).map(P::new).collect();
                // Release: a reader that sees the pointer sees the Ps.
                self.segs[k].store(Box::into_raw(seg).cast::<P>(), Release);
            }
        }
        self.len.store(n, Release);
    }

    /// How many Ps exist (live or retired).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Acquire)
    }

    /// Every P that exists, live or retired.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &P> {
        (0..self.len()).map(move |i| &self[i])
    }
}

impl std::ops::Index<usize> for AllP {
    type Output = P;

    #[inline]
    fn index(&self, i: usize) -> &P {
        let (k, off) = seg_of(i);
        let base = self.segs[k].load(Acquire);
        assert!(!base.is_null(), "gmp: P {i} does not exist");
        // SAFETY: a non-null base points to segment `k`'s `2^k` Ps, made
        // by `grow` and freed only when `self` drops; `off < 2^k`.
        unsafe { &*base.add(off) }
    }
}

impl Drop for AllP {
    fn drop(&mut self) {
        for (k, seg) in self.segs.iter_mut().enumerate() {
            let base = *seg.get_mut();
            if !base.is_null() {
                let len = 1usize << k;
                // SAFETY: `base` came from `Box::into_raw` of a boxed slice
                // of `len` Ps in `grow`, and is freed only here.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(base, len)) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_their_own_p() {
        let a = AllP::new(5);
        assert_eq!(a.len(), 5);
        for i in 0..5 {
            assert_eq!(a[i].id, i);
        }
        a.grow(40);
        for i in 0..40 {
            assert_eq!(a[i].id, i);
        }
        assert_eq!(a.iter().count(), 40);
    }

    #[test]
    fn growing_keeps_existing_ps_in_place() {
        let a = AllP::new(3);
        let p2 = &a[2] as *const P;
        a.grow(100);
        assert_eq!(&a[2] as *const P, p2);
    }
}
