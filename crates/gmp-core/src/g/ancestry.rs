//! Creation chains: where a goroutine was created, where its parent was
//! created, and so on up to main (Go's `tracebackancestors`), kept after
//! the ancestors exit, for the goroutine profile.
//!
//! A chain is interned once per process in an append-only table and named
//! by a `Chain` id. The G header's four spare bytes (`Header::chain`) hold
//! the chain of the goroutine's *ancestors* (its creator's own chain) until
//! the goroutine itself first spawns; then they hold its own chain, marked
//! by `OWN`, so that its children find their ancestors in one load. Only a
//! goroutine's first spawn interns (a lookup in a small per-thread cache
//! keyed by site and ancestors, and on a miss one hash lookup under a
//! lock); a loop of spawns pays a load and a branch each. Chains are at
//! most `MAX_DEPTH` sites long (the nearest ancestors are kept) and the
//! table holds at most `MAX_CHAINS` of them; past that a goroutine's chain
//! is just its own site, or unknown.

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

/// Creation sites kept per chain: the goroutine's own and its nearest
/// ancestors'.
pub(crate) const MAX_DEPTH: usize = 8;
/// Distinct chains kept per process.
const MAX_CHAINS: usize = 1 << 16;

/// In `Header::chain`: the value is the goroutine's own chain, not its
/// ancestors'.
const OWN: u32 = 1 << 31;

/// An interned creation chain; `Chain::NONE` means unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Chain(u32);

impl Chain {
    pub(crate) const NONE: Chain = Chain(0);

    pub(crate) fn raw(self) -> u32 {
        self.0
    }
}

struct Node {
    site: &'static Location<'static>,
    parent: Chain,
    depth: u8,
}

struct Table {
    /// Index 0 stands for `Chain::NONE` and is never read.
    nodes: Vec<Node>,
    index: HashMap<(usize, Chain), Chain>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

const CACHE_SLOTS: usize = 16;

thread_local! {
    /// (site address, parent chain, result): a direct-mapped cache, so a
    /// loop spawning from one site finds its chain without the lock.
    static CACHE: [Cell<(usize, Chain, Chain)>; CACHE_SLOTS] =
        const { [const { Cell::new((0, Chain::NONE, Chain::NONE)) }; CACHE_SLOTS] };
}

/// Who creates a goroutine: the creating goroutine's id (0: none) and its
/// own chain, the new goroutine's ancestors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spawner {
    pub(crate) goid: u64,
    pub(crate) chain: Chain,
}

impl Spawner {
    /// Main's: nobody.
    pub(crate) const NONE: Spawner = Spawner {
        goid: 0,
        chain: Chain::NONE,
    };
}

impl crate::sched::MCtx {
    /// Who creates a goroutine now: the current goroutine (nobody outside
    /// a poll). The chain is compiled out with the other observability
    /// hooks by `without-observability`.
    #[inline]
    pub(crate) fn spawner(&self) -> Spawner {
        let Some(h) = self.curg_header() else {
            return Spawner::NONE;
        };
        let chain = if cfg!(feature = "without-observability") {
            Chain::NONE
        } else {
            let w = h.chain.load(Relaxed);
            if w & OWN != 0 {
                Chain(w & !OWN)
            } else {
                own_chain_first_spawn(h, Chain(w))
            }
        };
        Spawner {
            goid: h.goid,
            chain,
        }
    }
}

/// The spawner's first spawn: intern its own chain and keep it in its
/// header (only the G's poller writes the word; readers take either form).
#[cold]
fn own_chain_first_spawn(h: &crate::g::Header, ancestors: Chain) -> Chain {
    let own = child_of(ancestors, h.created_at);
    if own != Chain::NONE {
        h.chain.store(own.0 | OWN, Relaxed);
    }
    own
}

/// A header's chain word read back: the sites of the goroutine's own
/// chain, its own site first.
pub(crate) fn sites_of(
    word: u32,
    created_at: &'static Location<'static>,
) -> Vec<&'static Location<'static>> {
    if word & OWN != 0 {
        return sites(Chain(word & !OWN));
    }
    let mut v = vec![created_at];
    v.extend(sites(Chain(word)).into_iter().take(MAX_DEPTH - 1));
    v
}

/// The chain of a goroutine created at `site` by a goroutine whose chain
/// is `parent`.
#[inline]
pub(crate) fn child_of(parent: Chain, site: &'static Location<'static>) -> Chain {
    let key = site as *const Location<'static> as usize;
    let slot = (key >> 4 ^ parent.0 as usize) % CACHE_SLOTS;
    let hit = CACHE.with(|c| {
        let (k, p, r) = c[slot].get();
        (k == key && p == parent).then_some(r)
    });
    match hit {
        Some(r) => r,
        None => {
            let r = intern_slow(parent, site);
            CACHE.with(|c| c[slot].set((key, parent, r)));
            r
        }
    }
}

#[cold]
fn intern_slow(parent: Chain, site: &'static Location<'static>) -> Chain {
    let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let t = t.get_or_insert_with(|| Table {
        nodes: vec![Node {
            site: Location::caller(),
            parent: Chain::NONE,
            depth: 0,
        }],
        index: HashMap::new(),
    });
    let parent = t.truncate(parent, MAX_DEPTH - 1);
    t.intern(site, parent)
}

impl Table {
    fn intern(&mut self, site: &'static Location<'static>, parent: Chain) -> Chain {
        let key = (site as *const Location<'static> as usize, parent);
        if let Some(&c) = self.index.get(&key) {
            return c;
        }
        if self.nodes.len() >= MAX_CHAINS {
            // Full: keep the site alone if that chain exists already.
            return match self.index.get(&(key.0, Chain::NONE)) {
                Some(&c) => c,
                None => Chain::NONE,
            };
        }
        let depth = if parent == Chain::NONE {
            1
        } else {
            self.nodes[parent.0 as usize].depth + 1
        };
        let c = Chain(self.nodes.len() as u32);
        self.nodes.push(Node {
            site,
            parent,
            depth,
        });
        self.index.insert(key, c);
        c
    }

    /// `c` cut to its nearest `n` sites (re-interned when cut).
    fn truncate(&mut self, c: Chain, n: usize) -> Chain {
        if c == Chain::NONE || n == 0 {
            return Chain::NONE;
        }
        let node = &self.nodes[c.0 as usize];
        if (node.depth as usize) <= n {
            return c;
        }
        let (site, parent) = (node.site, node.parent);
        let parent = self.truncate(parent, n - 1);
        self.intern(site, parent)
    }
}

/// The creation sites of `c`, the goroutine's own first.
pub(crate) fn sites(c: Chain) -> Vec<&'static Location<'static>> {
    let t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    let Some(t) = t.as_ref() else { return out };
    let mut c = c;
    while c != Chain::NONE && out.len() < MAX_DEPTH {
        let n = &t.nodes[c.0 as usize];
        out.push(n.site);
        c = n.parent;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    #[test]
    fn chains_keep_the_nearest_ancestors() {
        let (a, b) = (here(), here());
        let root = child_of(Chain::NONE, a);
        assert_eq!(sites(root), vec![a]);
        let child = child_of(root, b);
        assert_eq!(sites(child), vec![b, a]);
        // Interned: the same key gives the same chain, cached or not.
        assert_eq!(child_of(root, b), child);
        assert_eq!(intern_slow(root, b), child);
        // A recursion deeper than MAX_DEPTH keeps the nearest sites.
        let mut c = child;
        for _ in 0..3 * MAX_DEPTH {
            c = child_of(c, b);
        }
        let s = sites(c);
        assert_eq!(s.len(), MAX_DEPTH);
        assert!(s.iter().all(|l| std::ptr::eq(*l, b)), "{s:?}");
        // ... and is a fixed point: no new chain per level.
        assert_eq!(child_of(c, b), c);
    }
}
