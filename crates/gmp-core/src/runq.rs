//! The P's local run queue: Go's `runq [256]guintptr` ring plus the
//! `runnext` slot (runtime/proc.go `runqput`, `runqget`, `runqgrab`,
//! `runqsteal`).
//!
//! One producer (the M that owns the P) pushes at `tail`; any M may consume
//! at `head` with a CAS, the owner through `runqget`, thieves through
//! `runqgrab`. `runnext` is a single slot the owner fills on `ready`/`newproc`
//! so a freshly woken or spawned G runs next and inherits the time slice.
//!
//! The single-producer rule is a type: `RunQ` itself, shared by every M,
//! offers only what any M may do (`len`, `is_empty`, and being the victim
//! of a steal); `put`, `get`, `steal` and `drain` live on `Local`, the
//! owner's handle, which is neither `Send` nor `Sync`, takes `&mut self`,
//! and comes from `RunQ::local`, whose caller vouches that it owns the P
//! (`POwner`, the proof of owning a P, does so once for all its users).
//!
//! Slots are atomics (relaxed) rather than plain cells: a thief may read a
//! slot the owner is overwriting; its head CAS then fails and the value is
//! discarded, but in Rust even that read must not be a data race.

use crate::sync::{spin, AtomicPtr, AtomicU32};
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// Go's `len(p.runq)`. Smaller under loom so overflow is reachable.
#[cfg(not(loom))]
pub const RUNQ_SIZE: u32 = 256;
#[cfg(loom)]
pub const RUNQ_SIZE: u32 = 4;

pub struct RunQ<T> {
    head: AtomicU32,
    tail: AtomicU32,
    buf: Box<[AtomicPtr<T>]>,
    runnext: AtomicPtr<T>,
    /// How many times the owner took its own `runnext` (only the owner
    /// writes it). A thief that waited for the owner compares it to tell
    /// "the owner is busy elsewhere" from "the owner keeps handing its P
    /// down a runnext chain", and leaves a chain alone.
    runnext_taken: AtomicU32,
}

// SAFETY: the queue only moves raw pointers between threads; the items
// themselves are `Send` by contract of the caller (G pointers).
unsafe impl<T> Send for RunQ<T> {}
// SAFETY: every shared field is an atomic.
unsafe impl<T> Sync for RunQ<T> {}

/// What `put` could not keep locally: half the ring plus the new item, in
/// FIFO order, for the global queue (`runqputslow`).
pub type Overflow<T> = Vec<*mut T>;

impl<T> std::fmt::Debug for RunQ<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunQ").field("len", &self.len()).finish()
    }
}

impl<T> Default for RunQ<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The owner's handle on a `RunQ` (tokio's `Local`): the only way to
/// write the ring's `tail`. Not `Send` or `Sync`, so it stays on the
/// thread that proved ownership when it made it.
pub struct Local<'a, T> {
    q: &'a RunQ<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> std::fmt::Debug for Local<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Local").field(self.q).finish()
    }
}

impl<T> std::ops::Deref for Local<'_, T> {
    type Target = RunQ<T>;
    #[inline]
    fn deref(&self) -> &RunQ<T> {
        self.q
    }
}

impl<T> RunQ<T> {
    /// The owner's handle.
    ///
    /// # Safety
    /// While the handle lives no other thread writes this queue's `tail`:
    /// the calling thread's M owns the P, or the runtime has shut down and
    /// no M produces any more (then several handles that only take are
    /// fine: taking is a CAS on `head`).
    #[inline]
    pub unsafe fn local(&self) -> Local<'_, T> {
        Local {
            q: self,
            _not_send: PhantomData,
        }
    }

    /// The owner's handle from an exclusive borrow: nothing else can reach
    /// the queue meanwhile, so no proof is needed.
    #[cfg(test)]
    pub fn exclusive(&mut self) -> Local<'_, T> {
        Local {
            q: self,
            _not_send: PhantomData,
        }
    }

    pub fn new() -> Self {
        RunQ {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            buf: (0..RUNQ_SIZE)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            runnext: AtomicPtr::new(ptr::null_mut()),
            runnext_taken: AtomicU32::new(0),
        }
    }

    #[inline]
    fn slot(&self, i: u32) -> &AtomicPtr<T> {
        &self.buf[(i % RUNQ_SIZE) as usize]
    }

    // The owner's operations, reached only through `Local`. They take the
    // queue itself so that the hot calls pass one pointer, as before the
    // handle existed.

    /// `Local::put`.
    fn owner_put(&self, mut g: *mut T, next: bool) -> Option<Overflow<T>> {
        if next {
            // AcqRel: publishes `g` to a thief that takes runnext, and
            // acquires the displaced G someone else may have published.
            let old = self.runnext.swap(g, AcqRel);
            if old.is_null() {
                return None;
            }
            g = old;
        }
        loop {
            // Acquire pairs with consumers' head CAS (Release): the slot we
            // are about to overwrite has been read by them.
            let h = self.head.load(Acquire);
            // Only the owner writes tail.
            let t = self.tail.load(Relaxed);
            if t.wrapping_sub(h) < RUNQ_SIZE {
                self.slot(t).store(g, Relaxed);
                // Release: a consumer that sees the new tail sees the slot.
                self.tail.store(t.wrapping_add(1), Release);
                return None;
            }
            if let Some(batch) = self.put_slow(g, h, t) {
                return Some(batch);
            }
            // A consumer moved head meanwhile: there is room now.
        }
    }

    /// Go's `runqputslow`: move half the ring plus `g` out in one batch.
    fn put_slow(&self, g: *mut T, h: u32, t: u32) -> Option<Overflow<T>> {
        let n = t.wrapping_sub(h) / 2;
        debug_assert_eq!(n, RUNQ_SIZE / 2);
        let mut batch = Vec::with_capacity(n as usize + 1);
        for i in 0..n {
            batch.push(self.slot(h.wrapping_add(i)).load(Relaxed));
        }
        // Release/Acquire as in runqget: we consumed those slots.
        if self
            .head
            .compare_exchange(h, h.wrapping_add(n), AcqRel, Relaxed)
            .is_err()
        {
            return None;
        }
        batch.push(g);
        Some(batch)
    }

    /// `Local::get`.
    fn owner_get(&self) -> Option<(*mut T, bool)> {
        let mut next = self.runnext.load(Acquire);
        while !next.is_null() {
            match self
                .runnext
                .compare_exchange(next, ptr::null_mut(), AcqRel, Acquire)
            {
                Ok(_) => {
                    let n = self.runnext_taken.load(Relaxed);
                    self.runnext_taken.store(n.wrapping_add(1), Relaxed);
                    return Some((next, true));
                }
                Err(cur) => next = cur,
            }
        }
        loop {
            let h = self.head.load(Acquire);
            let t = self.tail.load(Relaxed);
            if t == h {
                return None;
            }
            let g = self.slot(h).load(Relaxed);
            // Release: tells the producer the slot is free to reuse.
            if self
                .head
                .compare_exchange(h, h.wrapping_add(1), Release, Relaxed)
                .is_ok()
            {
                return Some((g, false));
            }
        }
    }

    /// `Local::steal`: `grab` into our ring, then publish all but the G
    /// returned to run.
    fn owner_steal(
        &self,
        victim: &RunQ<T>,
        steal_runnext: bool,
        victim_running: bool,
    ) -> Option<(*mut T, u32)> {
        let t = self.tail.load(Relaxed);
        let n = victim.grab(self, t, steal_runnext, victim_running);
        if n == 0 {
            return None;
        }
        let n = n - 1;
        let g = self.slot(t.wrapping_add(n)).load(Relaxed);
        if n > 0 {
            debug_assert!(
                t.wrapping_sub(self.head.load(Acquire)).wrapping_add(n) < RUNQ_SIZE,
                "runqsteal: runq overflow"
            );
            // Release: our own consumers (thieves of us) see the slots.
            self.tail.store(t.wrapping_add(n), Release);
        }
        Some((g, n + 1))
    }

    /// Go's `runqgrab`: copy ceil(n/2) Gs from `self` into `dst`'s ring
    /// starting at `dst_tail` (slots only the thief, the owner of `dst`,
    /// writes), then commit with a head CAS. Returns how many were grabbed.
    fn grab(&self, dst: &RunQ<T>, dst_tail: u32, steal_runnext: bool, victim_running: bool) -> u32 {
        loop {
            let h = self.head.load(Acquire);
            // Acquire: pairs with the owner's Release tail store.
            let t = self.tail.load(Acquire);
            let n = t.wrapping_sub(h);
            let n = n - n / 2;
            if n == 0 {
                if steal_runnext {
                    let next = self.runnext.load(Acquire);
                    if !next.is_null() {
                        if victim_running {
                            // The victim is likely about to schedule its
                            // runnext (it was just readied); taking it now
                            // would bounce a producer/consumer pair across
                            // threads. Give it ~3us first (Go's usleep(3)),
                            // and if it took its runnext meanwhile, it is
                            // running a chain (a ping-pong pair) whose next
                            // G may be back in the slot: leave it, where Go
                            // could steal that G and split the pair.
                            let taken = self.runnext_taken.load(Relaxed);
                            backoff_3us();
                            if self.runnext_taken.load(Relaxed) != taken {
                                return 0;
                            }
                        }
                        if self
                            .runnext
                            .compare_exchange(next, ptr::null_mut(), AcqRel, Acquire)
                            .is_err()
                        {
                            continue;
                        }
                        dst.slot(dst_tail).store(next, Relaxed);
                        return 1;
                    }
                }
                return 0;
            }
            if n > RUNQ_SIZE / 2 {
                // h and t read at different times and are inconsistent.
                continue;
            }
            for i in 0..n {
                let g = self.slot(h.wrapping_add(i)).load(Relaxed);
                dst.slot(dst_tail.wrapping_add(i)).store(g, Relaxed);
            }
            // AcqRel: Release frees the slots for the owner's producer;
            // Acquire orders our slot reads before a retry's reads.
            if self
                .head
                .compare_exchange(h, h.wrapping_add(n), AcqRel, Relaxed)
                .is_ok()
            {
                return n;
            }
        }
    }

    /// Number of Gs in the ring plus runnext (approximate under concurrency).
    pub fn len(&self) -> usize {
        loop {
            let h = self.head.load(Acquire);
            let t = self.tail.load(Acquire);
            if self.head.load(Acquire) == h {
                let n = t.wrapping_sub(h) as usize;
                return n + usize::from(!self.runnext.load(Relaxed).is_null());
            }
            spin();
        }
    }

    /// Gs a thief could take now, `runnext` aside (it is the owner's
    /// for a grace period). Approximate, for a spinning M's polling.
    #[inline]
    pub fn ring_nonempty(&self) -> bool {
        self.tail.load(Relaxed) != self.head.load(Relaxed)
    }

    /// Go's `runqempty`.
    pub fn is_empty(&self) -> bool {
        loop {
            let h = self.head.load(Acquire);
            let t = self.tail.load(Acquire);
            let next = self.runnext.load(Acquire);
            if self.tail.load(Acquire) == t {
                return h == t && next.is_null();
            }
        }
    }
}

impl<T> Local<'_, T> {
    /// Go's `runqput`. With `next`, `g` takes `runnext` and the G it
    /// displaces goes to the tail. Returns the batch for the global queue
    /// when the ring was full.
    #[inline(always)]
    pub fn put(&mut self, g: *mut T, next: bool) -> Option<Overflow<T>> {
        self.q.owner_put(g, next)
    }

    /// Go's `runqget`. The bool is `inheritTime`: true when the G came
    /// from `runnext`.
    #[inline(always)]
    pub fn get(&mut self) -> Option<(*mut T, bool)> {
        self.q.owner_get()
    }

    /// Go's `runqsteal`: move about half of `victim`'s queue into ours and
    /// return one G to run with the number taken. `steal_runnext` is set
    /// only on the last stealing pass; `victim_running` says whether the
    /// victim's M is running a G, in which case we give it a few
    /// microseconds to take its own runnext first (Go's `usleep(3)`).
    #[inline(always)]
    pub fn steal(
        &mut self,
        victim: &RunQ<T>,
        steal_runnext: bool,
        victim_running: bool,
    ) -> Option<(*mut T, u32)> {
        self.q.owner_steal(victim, steal_runnext, victim_running)
    }

    /// Take everything (teardown, or a retired P).
    pub fn drain(&mut self) -> Vec<*mut T> {
        let mut out = Vec::new();
        while let Some((g, _)) = self.get() {
            out.push(g);
        }
        out
    }
}

/// Go's `usleep(3)`: a real sleep, not a spin. The kernel rounds it up
/// (tens of microseconds here), and that is the point: the thief leaves
/// the victim's cache lines alone meanwhile, and, still counted as
/// spinning, makes the victim's wake-ups skip `startm`.
#[cfg(not(loom))]
fn backoff_3us() {
    std::thread::sleep(std::time::Duration::from_micros(3));
}

#[cfg(loom)]
fn backoff_3us() {
    loom::thread::yield_now();
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn item(v: usize) -> *mut usize {
        Box::into_raw(Box::new(v))
    }

    fn take(p: *mut usize) -> usize {
        // SAFETY: pointers come from `item` and are taken once.
        *unsafe { Box::from_raw(p) }
    }

    fn drain(q: &mut Local<'_, usize>) -> Vec<usize> {
        q.drain().into_iter().map(take).collect()
    }

    #[test]
    fn fifo() {
        let mut ring = RunQ::new();
        let mut q = ring.exclusive();
        for i in 0..10 {
            assert!(q.put(item(i), false).is_none());
        }
        assert_eq!(q.len(), 10);
        assert_eq!(drain(&mut q), (0..10).collect::<Vec<_>>());
        assert!(q.is_empty());
    }

    /// Go's runnext order: `go f(0..=5)` on one P runs 5, then 0..4.
    #[test]
    fn runnext_displacement_order() {
        let mut ring = RunQ::new();
        let mut q = ring.exclusive();
        for i in 0..=5 {
            assert!(q.put(item(i), true).is_none());
        }
        let (first, inherit) = q.get().unwrap();
        assert!(inherit);
        assert_eq!(take(first), 5);
        assert_eq!(drain(&mut q), vec![0, 1, 2, 3, 4]);
    }

    /// Go's runqputslow: a full ring spills half of it plus the new G (129).
    #[test]
    fn overflow_moves_half_plus_one() {
        let mut ring = RunQ::new();
        let mut q = ring.exclusive();
        for i in 0..RUNQ_SIZE as usize {
            assert!(q.put(item(i), false).is_none());
        }
        let batch = q.put(item(999), false).expect("overflow");
        assert_eq!(batch.len(), RUNQ_SIZE as usize / 2 + 1);
        let spilled: Vec<usize> = batch.into_iter().map(take).collect();
        assert_eq!(&spilled[..128], &(0..128).collect::<Vec<_>>()[..]);
        assert_eq!(spilled[128], 999);
        assert_eq!(drain(&mut q), (128..256).collect::<Vec<_>>());
    }

    /// ceil(n/2) for every ring length, up to a full ring (128 of 256).
    #[test]
    fn steal_takes_ceil_half_for_each_len() {
        for n in (1..=10).chain([RUNQ_SIZE as usize - 1, RUNQ_SIZE as usize]) {
            let mut victim_ring = RunQ::new();
            let mut victim = victim_ring.exclusive();
            let mut thief_ring = RunQ::new();
            let mut thief = thief_ring.exclusive();
            for i in 0..n {
                assert!(victim.put(item(i), false).is_none());
            }
            let (g, got) = thief.steal(&victim, false, false).unwrap();
            assert_eq!(got as usize, n.div_ceil(2), "n={n}");
            let mut stolen = drain(&mut thief);
            stolen.push(take(g));
            stolen.sort();
            // The oldest half, from the head.
            assert_eq!(stolen, (0..n.div_ceil(2)).collect::<Vec<_>>(), "n={n}");
            assert_eq!(drain(&mut victim), (n.div_ceil(2)..n).collect::<Vec<_>>());
        }
    }

    /// Go's runqgrab: a steal takes ceil(n/2); runnext only when asked.
    #[test]
    fn steal_takes_half_rounded_up() {
        let mut victim_ring = RunQ::new();
        let mut victim = victim_ring.exclusive();
        let mut thief_ring = RunQ::new();
        let mut thief = thief_ring.exclusive();
        for i in 0..7 {
            victim.put(item(i), false);
        }
        victim.put(item(100), true);
        let (g, n) = thief.steal(&victim, false, false).unwrap();
        assert_eq!(n, 4);
        let mut got = vec![take(g)];
        got.extend(drain(&mut thief));
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 3]);
        let rest = drain(&mut victim);
        assert_eq!(rest, vec![100, 4, 5, 6]);
        // Only runnext left: taken only on a last pass.
        victim.put(item(200), true);
        assert!(thief.steal(&victim, false, false).is_none());
        let (g, n) = thief.steal(&victim, true, false).unwrap();
        assert_eq!((take(g), n), (200, 1));
    }
}
