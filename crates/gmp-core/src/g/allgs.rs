//! allgs: the registry of live goroutines (Go's `allgs`).
//!
//! Sharded by goroutine id (a power-of-two count, several per P) so that
//! registration and removal rarely meet on one lock.
//!
//! The registry owns one reference to each G until it completes; teardown
//! walks it to drop the futures of goroutines that never finished, and the
//! goroutine dump walks it for a snapshot.

use crate::g::{GPtr, Header, NewG};
use crate::rawlock::RawLock;
use std::cell::UnsafeCell;
use std::ptr::NonNull;

pub(crate) struct AllGs {
    shards: Box<[Padded]>,
}

/// One shard per 128 bytes: the spawning M and the M where goroutines exit
/// walk the shards at different places, and two shards sharing a line
/// would make each one's lock traffic the other's cache miss (128, not
/// 64: adjacent-line prefetch pairs lines on x86). The lock is the
/// runtime's `RawLock` rather than `std::sync::Mutex`: its unlock is a
/// plain store, and a spawn and an exit each take a shard lock, so the
/// swap in std's unlock was a tenth of chained_spawn.
#[repr(align(128))]
struct Padded {
    lock: RawLock,
    shard: UnsafeCell<Shard>,
}

// SAFETY: `shard` is only touched with `lock` held.
unsafe impl Sync for Padded {}

impl Padded {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        struct Unlock<'a>(&'a RawLock);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                // SAFETY: locked below, by this thread.
                unsafe { self.0.unlock() };
            }
        }
        self.lock.lock();
        let _unlock = Unlock(&self.lock);
        // SAFETY: the lock gives exclusive access until `_unlock` drops.
        f(unsafe { &mut *self.shard.get() })
    }
}

impl AllGs {
    pub(crate) fn new(n: usize) -> AllGs {
        AllGs {
            shards: (0..n.max(1))
                .map(|_| Padded {
                    lock: RawLock::new(),
                    shard: UnsafeCell::new(Shard::default()),
                })
                .collect(),
        }
    }

    /// Register a G that is not yet shared with anyone, keeping its
    /// registry reference; returns the runnable's.
    pub(crate) fn insert(&self, shard: usize, g: NewG) -> GPtr {
        let shard = shard & (self.shards.len() - 1);
        let idx = self.shards[shard].with(|s| s.0.insert(g.as_ptr())) as u32;
        let (registry, runnable) = g.register(shard as u16, idx);
        // The slab's entry is the registry's reference from now on.
        let _ = registry.into_raw();
        runnable
    }

    /// Unregister a finished G, dropping the registry's reference.
    /// A G that teardown already took out is left alone: the slot may
    /// hold another G by now.
    pub(crate) fn remove(&self, h: &Header) {
        let me = NonNull::from(h);
        let p = self.shards[h.reg_shard as usize].with(|s| {
            let idx = h.reg_idx as usize;
            (s.0.get(idx) == Some(&me)).then(|| s.0.remove(idx))
        });
        if let Some(p) = p {
            // SAFETY: the registry owned this reference.
            drop(unsafe { GPtr::from_raw(p) });
        }
    }

    /// Number of live goroutines.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.with(|s| s.0.len())).sum()
    }

    /// Visit each live G under its shard's lock.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Header)) {
        for s in self.shards.iter() {
            s.with(|s| {
                for (_, p) in s.0.iter() {
                    // SAFETY: registered Gs are alive (the registry holds a
                    // ref).
                    f(unsafe { p.as_ref() });
                }
            });
        }
    }

    /// Teardown: take every registered G out (with its reference).
    pub(crate) fn take_all(&self) -> Vec<GPtr> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            let taken = s.with(std::mem::take);
            // SAFETY: the registry owned one reference per entry.
            out.extend(
                taken
                    .0
                    .into_iter()
                    .map(|(_, p)| unsafe { GPtr::from_raw(p) }),
            );
        }
        out
    }
}

impl Drop for AllGs {
    fn drop(&mut self) {
        for g in self.take_all() {
            g.close();
        }
    }
}

/// The shard's slab of G pointers.
#[derive(Default)]
struct Shard(slab::Slab<NonNull<Header>>);

// SAFETY: entries are G pointers, only touched under the shard's mutex.
unsafe impl Send for Shard {}
