//! loom models of the P run queue (`src/runq.rs`): the owner's `put`/`get`
//! against thieves' `steal`, `runnext` against a last-pass thief, the
//! overflow batch (`put_slow`) against a steal, two thieves on one victim,
//! and a steal from a queue that is itself being filled by a steal.
//!
//! Every model checks conservation: each item put is taken exactly once,
//! whether by the owner, a thief, the overflow batch, or the final drain.
//! Items are `Box<usize>` leaked to raw pointers (`Items`) and reclaimed
//! when the run ends, so a stale slot read is a clean assertion failure.
//!
//! Under `--cfg loom` `RUNQ_SIZE` is 4, so overflow and ring wrap-around
//! are reachable with a handful of items.
//!
//! Run (CI does, with `LOOM_MAX_PREEMPTIONS=2`):
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p gmp-core --release --test loom_runq`
#![cfg(loom)]

use gmp_core::loom_api::{Local, RunQ, RUNQ_SIZE};
use loom::sync::Arc;
use loom::thread;
use std::cell::RefCell;
use std::collections::BTreeSet;

const N: usize = RUNQ_SIZE as usize;

/// The items of one model run: boxes leaked to raw pointers, all freed
/// together when the run ends, after the checks. Keeping them alive until
/// then makes a stale or duplicated pointer read out of the ring a clean
/// assertion failure rather than a use-after-free.
struct Items(RefCell<Vec<*mut usize>>);

impl Items {
    fn new() -> Items {
        Items(RefCell::new(Vec::new()))
    }

    fn item(&self, v: usize) -> *mut usize {
        let p = Box::into_raw(Box::new(v));
        self.0.borrow_mut().push(p);
        p
    }
}

impl Drop for Items {
    fn drop(&mut self) {
        for p in self.0.get_mut().drain(..) {
            // SAFETY: made by `Box::into_raw` in `item`, freed only here.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// The value of an item taken from a queue.
fn take(p: *mut usize) -> usize {
    assert!(!p.is_null(), "null G taken from a run queue");
    // SAFETY: non-null pointers in the queues come from `Items::item`, and
    // every item lives until the model run ends.
    unsafe { *p }
}

/// A run queue that can cross loom threads (it holds raw pointers).
struct Q(RunQ<usize>);
// SAFETY: the queue only moves raw pointers to boxed usizes, each owned by
// whoever takes it.
unsafe impl Send for Q {}
// SAFETY: as above; every shared field of RunQ is an atomic.
unsafe impl Sync for Q {}

impl Q {
    /// The owner's handle, for the thread that produces into this queue.
    fn own(&self) -> Local<'_, usize> {
        // SAFETY: in every model one thread at a time produces into a
        // given queue (puts, or is the thief stealing into it); the others
        // only steal from it, or drain it after joining that thread.
        unsafe { self.0.local() }
    }
}

fn new_q() -> Arc<Q> {
    Arc::new(Q(RunQ::new()))
}

/// Take everything left in `q` (the caller is its owner, all else joined).
fn drain(q: &Q) -> Vec<usize> {
    q.own().drain().into_iter().map(take).collect()
}

/// Thief side of `findrunnable`: steal from `victim` into `mine`, run the
/// returned G, then run whatever the batch left in our own queue.
fn steal_all(mine: &Q, victim: &Q, steal_runnext: bool, victim_running: bool) -> Vec<usize> {
    let mut got = Vec::new();
    if let Some((g, n)) = mine.own().steal(&victim.0, steal_runnext, victim_running) {
        assert!((1..=RUNQ_SIZE / 2).contains(&n), "steal of {n}");
        got.push(take(g));
        // n - 1 Gs went to our ring; we are its owner.
        for _ in 1..n {
            let (g, inherit) = mine.own().get().expect("stolen batch in the thief's ring");
            assert!(!inherit, "a stolen batch never lands in runnext");
            got.push(take(g));
        }
        assert!(
            mine.own().get().is_none(),
            "more in the thief's ring than stolen"
        );
    }
    got
}

/// Each of `0..n` exactly once.
fn assert_each_once(all: &[usize], n: usize) {
    let set: BTreeSet<usize> = all.iter().copied().collect();
    assert_eq!(all.len(), set.len(), "duplicated: {all:?}");
    assert_eq!(set, (0..n).collect(), "lost: {all:?}");
}

/// Runs a model and reports how many interleavings it explored.
fn model<F: Fn() + Sync + Send + 'static>(name: &str, f: F) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let iters = std::sync::Arc::new(AtomicUsize::new(0));
    let i2 = iters.clone();
    loom::model(move || {
        i2.fetch_add(1, Relaxed);
        f()
    });
    eprintln!("{name}: {} interleavings", iters.load(Relaxed));
}

/// The owner puts and gets (across the ring's wrap-around) while a thief
/// steals half: nothing lost, nothing duplicated, and the owner's own takes
/// stay FIFO.
#[test]
fn put_get_vs_steal() {
    model("put_get_vs_steal", || {
        let items = Items::new();
        let victim = new_q();
        let thief_q = new_q();
        // Move head/tail to 3 so the items below wrap the 4-slot ring.
        for i in 0..3 {
            victim.own().put(items.item(100 + i), false);
            assert_eq!(take(victim.own().get().unwrap().0), 100 + i);
        }
        victim.own().put(items.item(0), false);
        victim.own().put(items.item(1), false);

        let (v2, t2) = (victim.clone(), thief_q.clone());
        let thief = thread::spawn(move || steal_all(&t2, &v2, false, false));

        assert!(victim.own().put(items.item(2), false).is_none());
        let mut owner = Vec::new();
        if let Some((g, inherit)) = victim.own().get() {
            assert!(!inherit);
            owner.push(take(g));
        }
        assert!(victim.own().put(items.item(3), false).is_none());

        let stolen = thief.join().unwrap();
        owner.extend(drain(&victim));
        // The owner consumes from head in order, whatever a thief took.
        assert!(
            owner.windows(2).all(|w| w[0] < w[1]),
            "owner order {owner:?}"
        );
        // A steal takes a run from head: consecutive items (steal returns
        // the last of them to run first, so compare sorted).
        let mut run = stolen.clone();
        run.sort();
        assert!(
            run.windows(2).all(|w| w[0] + 1 == w[1]),
            "stolen {stolen:?}"
        );
        let mut all = owner;
        all.extend(stolen);
        assert_each_once(&all, 4);
    });
}

/// `put(next = true)` races a thief on its last pass, which may take
/// `runnext`: the G that was in runnext is displaced to the ring while the
/// thief goes for it. Each G ends up with exactly one of them.
#[test]
fn runnext_put_vs_last_pass_steal() {
    model("runnext_put_vs_last_pass_steal", || {
        let items = Items::new();
        let victim = new_q();
        let thief_q = new_q();
        assert!(victim.own().put(items.item(0), true).is_none());

        let (v2, t2) = (victim.clone(), thief_q.clone());
        // victim_running: exercise the back-off before taking runnext.
        let thief = thread::spawn(move || steal_all(&t2, &v2, true, true));

        // Displaces 0 into the ring (unless the thief took it already).
        assert!(victim.own().put(items.item(1), true).is_none());
        let mut owner = Vec::new();
        if let Some((g, inherit)) = victim.own().get() {
            let v = take(g);
            // runnext holds the newest G, unless the thief took it.
            assert_eq!(inherit, v == 1, "got {v} inherit={inherit}");
            owner.push(v);
        }

        let stolen = thief.join().unwrap();
        assert!(stolen.len() <= 1, "runnext steal takes one: {stolen:?}");
        owner.extend(drain(&victim));
        let mut all = owner;
        all.extend(stolen);
        assert_each_once(&all, 2);
    });
}

/// The owner's `get` of runnext races a last-pass thief's CAS on it, with
/// nothing in the ring: exactly one of them gets the G, with inheritTime
/// for the owner.
#[test]
fn runnext_get_vs_last_pass_steal() {
    model("runnext_get_vs_last_pass_steal", || {
        let items = Items::new();
        let victim = new_q();
        let thief_q = new_q();
        let (v2, t2) = (victim.clone(), thief_q.clone());
        let thief = thread::spawn(move || steal_all(&t2, &v2, true, false));
        assert!(victim.own().put(items.item(0), true).is_none());
        let owner = victim.own().get().map(|(g, inherit)| {
            assert!(inherit, "runnext comes back with inheritTime");
            take(g)
        });
        let stolen = thief.join().unwrap();
        let mut all: Vec<usize> = owner.into_iter().collect();
        all.extend(stolen);
        all.extend(drain(&victim));
        assert_each_once(&all, 1);
    });
}

/// The owner, its ring full, puts one more (overflow: half the ring plus
/// the new G go to a batch) while a thief steals. The thief's head CAS may
/// land between `put_slow` reading the slots and its own CAS, which must
/// then fail and retry the fast path. Batch + stolen + left == all, once.
#[test]
fn overflow_vs_steal() {
    model("overflow_vs_steal", || {
        let items = Items::new();
        let victim = new_q();
        let thief_q = new_q();
        for i in 0..N {
            assert!(victim.own().put(items.item(i), false).is_none());
        }
        let (v2, t2) = (victim.clone(), thief_q.clone());
        let thief = thread::spawn(move || steal_all(&t2, &v2, false, false));

        let mut all = Vec::new();
        if let Some(batch) = victim.own().put(items.item(N), false) {
            // Go's runqputslow: the oldest half in order, then the new G.
            let batch: Vec<usize> = batch.into_iter().map(take).collect();
            assert_eq!(batch.len(), N / 2 + 1, "batch {batch:?}");
            assert_eq!(*batch.last().unwrap(), N, "new G last: {batch:?}");
            assert!(batch.windows(2).all(|w| w[0] < w[1]), "batch {batch:?}");
            all.extend(batch);
        }
        all.extend(thief.join().unwrap());
        all.extend(drain(&victim));
        assert_each_once(&all, N + 1);
    });
}

/// The owner fills its ring from empty and past RUNQ_SIZE while a thief
/// steals concurrently: whether or not an overflow happens, every item is
/// accounted for exactly once.
#[test]
fn fill_past_size_vs_steal() {
    model("fill_past_size_vs_steal", || {
        let items = Items::new();
        let victim = new_q();
        let thief_q = new_q();
        let (v2, t2) = (victim.clone(), thief_q.clone());
        let thief = thread::spawn(move || steal_all(&t2, &v2, false, false));
        let mut all = Vec::new();
        for i in 0..=N {
            if let Some(batch) = victim.own().put(items.item(i), false) {
                assert_eq!(batch.len(), N / 2 + 1);
                all.extend(batch.into_iter().map(take));
            }
        }
        all.extend(thief.join().unwrap());
        all.extend(drain(&victim));
        assert_each_once(&all, N + 1);
    });
}

/// Two thieves steal from one victim whose owner also takes one: every G
/// goes to exactly one of the three.
#[test]
fn two_thieves_one_victim() {
    model("two_thieves_one_victim", || {
        let items = Items::new();
        let victim = new_q();
        for i in 0..3 {
            assert!(victim.own().put(items.item(i), false).is_none());
        }
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let (v2, t2) = (victim.clone(), new_q());
                thread::spawn(move || steal_all(&t2, &v2, false, false))
            })
            .collect();
        let mut all: Vec<usize> = victim
            .own()
            .get()
            .map(|(g, _)| take(g))
            .into_iter()
            .collect();
        for t in thieves {
            all.extend(t.join().unwrap());
        }
        all.extend(drain(&victim));
        assert_each_once(&all, 3);
    });
}

/// Two thieves (one on its last pass, taking runnext) steal while the
/// owner keeps producing into the ring and runnext and consuming: every G
/// goes to exactly one of the three.
#[test]
fn two_thieves_vs_owner_put_get() {
    model("two_thieves_vs_owner_put_get", || {
        let items = Items::new();
        let victim = new_q();
        for i in 0..2 {
            assert!(victim.own().put(items.item(i), false).is_none());
        }
        let thieves: Vec<_> = [false, true]
            .into_iter()
            .map(|last_pass| {
                let (v2, t2) = (victim.clone(), new_q());
                thread::spawn(move || steal_all(&t2, &v2, last_pass, false))
            })
            .collect();
        assert!(victim.own().put(items.item(2), true).is_none());
        assert!(victim.own().put(items.item(3), false).is_none());
        let mut all: Vec<usize> = victim
            .own()
            .get()
            .map(|(g, _)| take(g))
            .into_iter()
            .collect();
        for t in thieves {
            all.extend(t.join().unwrap());
        }
        all.extend(drain(&victim));
        assert_each_once(&all, 4);
    });
}

/// Thief A steals a batch of two from V into its own ring (publishing it
/// with a Release tail store) while thief B steals from A: B must see the
/// slots A wrote, never a stale or null pointer.
#[test]
fn steal_from_a_thief() {
    model("steal_from_a_thief", || {
        let items = Items::new();
        let v = new_q();
        let a = new_q();
        for i in 0..4 {
            assert!(v.own().put(items.item(i), false).is_none());
        }
        let (v2, a2) = (v.clone(), a.clone());
        // A keeps the G that steal returns and leaves the rest in its ring.
        let ta = thread::spawn(move || {
            let (g, n) = a2.own().steal(&v2.0, false, false).expect("V has 4");
            assert_eq!(n, 2);
            take(g)
        });
        let (a3, b) = (a.clone(), new_q());
        let tb = thread::spawn(move || steal_all(&b, &a3, false, false));
        let mut all = vec![ta.join().unwrap()];
        all.extend(tb.join().unwrap());
        all.extend(drain(&a));
        all.extend(drain(&v));
        assert_each_once(&all, 4);
    });
}

/// GOMAXPROCS shrinks (`retire_locked`): the retired P's owner drains its
/// queue, runnext included, into the global queue while a thief steals
/// from it on its last pass. Every G ends up exactly once in the global
/// queue or with the thief.
#[test]
fn retire_drain_vs_steal() {
    model("retire_drain_vs_steal", || {
        let items = Items::new();
        let victim = new_q();
        let thief_q = new_q();
        victim.own().put(items.item(0), false);
        victim.own().put(items.item(1), false);
        victim.own().put(items.item(2), true);

        let (v2, t2) = (victim.clone(), thief_q.clone());
        let thief = thread::spawn(move || steal_all(&t2, &v2, true, false));

        let mut all: Vec<usize> = victim.own().drain().into_iter().map(take).collect();
        all.extend(thief.join().unwrap());
        all.extend(drain(&victim));
        assert_each_once(&all, 3);
    });
}
