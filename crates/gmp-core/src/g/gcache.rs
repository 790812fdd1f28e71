//! Go's `gFree` lists: finished goroutines' allocations kept for reuse, so
//! that a program that spawns in a loop stops paying malloc and free per
//! goroutine (they were a third of the instructions of spawn_many).
//!
//! Go recycles whole `g` structs; a stackless G is one allocation whose
//! size depends on its future's type, so blocks are kept by size class
//! (multiples of `GRAIN` up to `MAX_SIZE`, alignment up to `GRAIN`); a G
//! outside that range goes straight to the allocator. As in Go
//! (`gfput`/`gfget` with `sched.gFree`), each thread keeps a small list per
//! class and trades half of it with a global list when it grows past
//! `LOCAL_MAX` or runs empty: the goroutines a spawning M creates usually
//! finish on another M, so without the global list the spawner's cache
//! would always be empty and the other's always full. The global list is
//! capped (`GLOBAL_MAX` per class); beyond that, blocks go back to the
//! allocator. Per thread rather than per P, because the last reference to a
//! G can be dropped anywhere (a JoinHandle on a plain thread, say).

use std::alloc::Layout;
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Mutex;

/// 8, not 16: a G's size is a multiple of its alignment (8 for almost
/// every future), so 8-byte classes ask malloc for exactly what `Box`
/// would have (16-byte rounding cost 12-16 bytes per parked goroutine).
const GRAIN: usize = 8;
const CLASSES: usize = 64;
const MAX_SIZE: usize = GRAIN * CLASSES;
const LOCAL_MAX: usize = 64;
const GLOBAL_MAX: usize = 1024;

/// A block of class size and `GRAIN` alignment, not in use.
struct Block(NonNull<u8>);

// SAFETY: a free block is plain memory owned by whichever list holds it.
unsafe impl Send for Block {}

static GLOBAL: [Mutex<Vec<Block>>; CLASSES] = [const { Mutex::new(Vec::new()) }; CLASSES];

struct Local {
    classes: [Vec<Block>; CLASSES],
}

impl Drop for Local {
    /// Thread exit: hand the blocks to the global lists (or free them).
    fn drop(&mut self) {
        for (c, list) in self.classes.iter_mut().enumerate() {
            give_back(c, list.drain(..));
        }
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local {
            classes: [const { Vec::new() }; CLASSES],
        })
    };
}

#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() == 0 || layout.size() > MAX_SIZE || layout.align() > GRAIN {
        return None;
    }
    Some(layout.size().div_ceil(GRAIN) - 1)
}

#[inline]
fn class_layout(c: usize) -> Layout {
    // Cannot fail: a non-zero multiple of a power-of-two alignment.
    Layout::from_size_align(GRAIN * (c + 1), GRAIN).unwrap()
}

fn lock(c: usize) -> std::sync::MutexGuard<'static, Vec<Block>> {
    GLOBAL[c].lock().unwrap_or_else(|e| e.into_inner())
}

/// Blocks the calling thread does not keep: to the global list up to its
/// cap, the rest to the allocator.
fn give_back(c: usize, blocks: impl Iterator<Item = Block>) {
    let mut g = lock(c);
    for b in blocks {
        if g.len() < GLOBAL_MAX {
            g.push(b);
        } else {
            // SAFETY: every block of class `c` was allocated with
            // `class_layout(c)` and is not in use.
            unsafe { std::alloc::dealloc(b.0.as_ptr(), class_layout(c)) };
        }
    }
}

/// Memory for a G of `layout` (uninitialised).
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    let Some(c) = class_of(layout) else {
        return raw_alloc(layout);
    };
    let cached = LOCAL
        .try_with(|l| {
            let mut l = l.borrow_mut();
            let list = &mut l.classes[c];
            if list.is_empty() {
                // Go's gfget: refill half a local list from the global one.
                let mut g = lock(c);
                let take = g.len().min(LOCAL_MAX / 2);
                let at = g.len() - take;
                list.extend(g.drain(at..));
            }
            list.pop()
        })
        .ok()
        .flatten();
    match cached {
        Some(b) => b.0,
        None => raw_alloc(class_layout(c)),
    }
}

/// Return the memory of a G allocated by `alloc(layout)`; its contents
/// have been dropped.
///
/// # Safety
/// `p` came from `alloc(layout)` with this same `layout` and is no longer
/// used by anyone.
pub(crate) unsafe fn free(p: NonNull<u8>, layout: Layout) {
    let Some(c) = class_of(layout) else {
        // SAFETY: allocated by `raw_alloc(layout)` (caller contract).
        unsafe { std::alloc::dealloc(p.as_ptr(), layout) };
        return;
    };
    let kept = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        let list = &mut l.classes[c];
        list.push(Block(p));
        if list.len() > LOCAL_MAX {
            // Go's gfput: move half to the global list.
            let at = list.len() - LOCAL_MAX / 2;
            give_back(c, list.drain(at..));
        }
    });
    if kept.is_err() {
        // This thread's cache is gone (thread exit): share or free it.
        give_back(c, std::iter::once(Block(p)));
    }
}

fn raw_alloc(layout: Layout) -> NonNull<u8> {
    // SAFETY: every G layout has a non-zero size (it holds a header).
    let p = unsafe { std::alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_and_respect_alignment() {
        let class = |size, align| class_of(Layout::from_size_align(size, align).unwrap());
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(8, 8), Some(0));
        assert_eq!(class(9, 8), Some(1));
        assert_eq!(class(136, 8), Some(16));
        assert_eq!(class(512, 8), Some(63));
        assert_eq!(class(513, 8), None);
        assert_eq!(class(64, 16), None);
        for c in 0..CLASSES {
            let l = class_layout(c);
            assert_eq!(class_of(l), Some(c));
        }
    }

    /// A freed block is reused for the next G of its class, on this thread
    /// and, through the global list, on another.
    #[test]
    fn blocks_are_reused_across_threads() {
        let layout = Layout::from_size_align(200, 8).unwrap();
        let a = alloc(layout);
        // SAFETY: from `alloc(layout)`, unused.
        unsafe { free(a, layout) };
        assert_eq!(alloc(layout), a, "not reused on the same thread");
        // Another thread frees more than it keeps; this thread, with an
        // empty list, must then get some of those blocks.
        let before: Vec<usize> = std::thread::spawn(move || {
            let bs: Vec<_> = (0..3 * LOCAL_MAX).map(|_| alloc(layout)).collect();
            let addrs = bs.iter().map(|b| b.as_ptr() as usize).collect();
            for b in bs {
                // SAFETY: as above.
                unsafe { free(b, layout) };
            }
            addrs
        })
        .join()
        .unwrap();
        let mine: Vec<_> = (0..LOCAL_MAX / 2).map(|_| alloc(layout)).collect();
        assert!(
            mine.iter().any(|b| before.contains(&(b.as_ptr() as usize))),
            "no block came back through the global list"
        );
        for b in mine.into_iter().chain(std::iter::once(a)) {
            // SAFETY: as above.
            unsafe { free(b, layout) };
        }
    }
}
