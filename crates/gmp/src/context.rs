//! Go's `context` package: cancellation trees with deadlines and values.
//!
//! A context's `done()` is a channel receiver that is closed when the
//! context is cancelled or its deadline passes, so it works in `select!`
//! like Go's `<-ctx.Done()`. Cancelling a parent cancels every descendant;
//! a child's deadline is never later than its parent's; cancel functions
//! are idempotent.

use crate::chan::{self, Receiver, Sender};
use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Why a context is done (Go's `context.Canceled` and
/// `context.DeadlineExceeded`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    Canceled,
    DeadlineExceeded,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Canceled => "context canceled",
            Error::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for Error {}

/// A context: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

struct Node {
    parent: Option<Arc<Node>>,
    deadline: Option<Instant>,
    value: Option<(&'static str, Arc<dyn Any + Send + Sync>)>,
    /// `None` for contexts that can never be cancelled (background, and
    /// value contexts inherit their parent's).
    cancel: Option<CancelState>,
}

struct CancelState {
    done_rx: Receiver<()>,
    inner: Mutex<CancelInner>,
}

struct CancelInner {
    err: Option<Error>,
    done_tx: Option<Sender<()>>,
    children: Vec<Weak<Node>>,
    timer: Option<gmp_core::timer::Timer>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("deadline", &self.deadline())
            .field("err", &self.err())
            .finish()
    }
}

/// The root context: never cancelled, no deadline, no values.
pub fn background() -> Context {
    Context {
        node: Arc::new(Node {
            parent: None,
            deadline: None,
            value: None,
            cancel: None,
        }),
    }
}

/// Go's `context.TODO`: the same as [`background`].
pub fn todo() -> Context {
    background()
}

fn cancel_node(node: &Arc<Node>, err: Error) {
    cancel_node_from(node, err, false)
}

/// `from_own_timer`: called by this node's deadline timer, which holds its
/// own lock while firing, so it must not be stopped from here.
fn cancel_node_from(node: &Arc<Node>, err: Error, from_own_timer: bool) {
    let Some(c) = &node.cancel else { return };
    let (tx, children, timer) = {
        let mut g = c.inner.lock().unwrap();
        if g.err.is_some() {
            return;
        }
        g.err = Some(err);
        (
            g.done_tx.take(),
            std::mem::take(&mut g.children),
            g.timer.take(),
        )
    };
    if let Some(t) = timer {
        if !from_own_timer {
            t.stop();
        }
    }
    if let Some(tx) = tx {
        tx.close();
    }
    for child in children.into_iter().filter_map(|w| w.upgrade()) {
        cancel_node(&child, err);
    }
}

/// The nearest cancellable ancestor (or self).
fn cancellable(node: &Arc<Node>) -> Option<&Arc<Node>> {
    let mut n = node;
    loop {
        if n.cancel.is_some() {
            return Some(n);
        }
        n = n.parent.as_ref()?;
    }
}

fn new_cancel_ctx(parent: &Context, deadline: Option<Instant>) -> (Context, Arc<Node>) {
    let (tx, rx) = chan::bounded::<()>(0);
    let deadline = match (parent.deadline(), deadline) {
        (Some(p), Some(d)) => Some(p.min(d)),
        (p, d) => p.or(d),
    };
    let node = Arc::new(Node {
        parent: Some(parent.node.clone()),
        deadline,
        value: None,
        cancel: Some(CancelState {
            done_rx: rx,
            inner: Mutex::new(CancelInner {
                err: None,
                done_tx: Some(tx),
                children: Vec::new(),
                timer: None,
            }),
        }),
    });
    // Hook into the parent's tree, or inherit its state if already done.
    if let Some(anc) = cancellable(&parent.node) {
        let c = anc.cancel.as_ref().unwrap();
        let mut g = c.inner.lock().unwrap();
        match g.err {
            Some(e) => {
                drop(g);
                cancel_node(&node, e);
            }
            None => {
                g.children.retain(|w| w.strong_count() > 0);
                g.children.push(Arc::downgrade(&node));
            }
        }
    }
    (Context { node: node.clone() }, node)
}

/// The cancel function handed out with a cancellable context: callable,
/// idempotent, `Clone`, `Send + Sync`.
fn cancel_fn(node: Arc<Node>) -> impl Fn() + Clone + Send + Sync + 'static {
    move || cancel_node(&node, Error::Canceled)
}

/// A child of `parent` with its own cancel function.
pub fn with_cancel(parent: &Context) -> (Context, impl Fn() + Clone + Send + Sync + 'static) {
    let (ctx, node) = new_cancel_ctx(parent, None);
    (ctx, cancel_fn(node))
}

/// A child that is cancelled with `DeadlineExceeded` at `at` (or at the
/// parent's deadline, if earlier). Needs a runtime for its timer.
#[track_caller]
pub fn with_deadline(
    parent: &Context,
    at: Instant,
) -> (Context, impl Fn() + Clone + Send + Sync + 'static) {
    let (ctx, node) = deadline_ctx(parent, Some(at));
    (ctx, cancel_fn(node))
}

/// `with_deadline(parent, now + d)`; a `d` too long for `Instant` is no
/// deadline of its own (Go's maxWhen), as `with_cancel`.
#[track_caller]
pub fn with_timeout(
    parent: &Context,
    d: Duration,
) -> (Context, impl Fn() + Clone + Send + Sync + 'static) {
    let (ctx, node) = deadline_ctx(parent, gmp_core::timer::deadline_after(d));
    (ctx, cancel_fn(node))
}

/// A cancellable child with deadline `at` (`None`: the parent's only),
/// its timer armed.
#[track_caller]
fn deadline_ctx(parent: &Context, at: Option<Instant>) -> (Context, Arc<Node>) {
    let (ctx, node) = new_cancel_ctx(parent, at);
    let Some(d) = ctx.node.deadline else {
        return (ctx, node);
    };
    if ctx.err().is_none() {
        if Instant::now() >= d {
            cancel_node(&ctx.node, Error::DeadlineExceeded);
        } else {
            let weak = Arc::downgrade(&ctx.node);
            let timer = gmp_core::timer::Timer::new(move |_| {
                if let Some(n) = weak.upgrade() {
                    cancel_node_from(&n, Error::DeadlineExceeded, true);
                }
            });
            timer.start(d, None);
            let c = ctx.node.cancel.as_ref().unwrap();
            let mut g = c.inner.lock().unwrap();
            if g.err.is_none() {
                g.timer = Some(timer);
            } else {
                drop(g);
                timer.stop();
            }
        }
    }
    (ctx, node)
}

/// A child carrying `key -> value`.
pub fn with_value<V: Any + Send + Sync>(parent: &Context, key: &'static str, value: V) -> Context {
    Context {
        node: Arc::new(Node {
            parent: Some(parent.node.clone()),
            deadline: parent.deadline(),
            value: Some((key, Arc::new(value))),
            cancel: None,
        }),
    }
}

impl Context {
    /// A receiver closed when the context is done; never ready for a
    /// context that cannot be cancelled (`background()`).
    pub fn done(&self) -> Receiver<()> {
        match cancellable(&self.node) {
            Some(n) => n.cancel.as_ref().unwrap().done_rx.clone(),
            None => chan::never(),
        }
    }

    /// `None` while live; why it ended once done.
    pub fn err(&self) -> Option<Error> {
        let n = cancellable(&self.node)?;
        n.cancel.as_ref().unwrap().inner.lock().unwrap().err
    }

    /// The deadline, if any (never later than the parent's).
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// The value stored under `key` by the nearest `with_value` ancestor.
    pub fn value<V: Any + Send + Sync>(&self, key: &str) -> Option<Arc<V>> {
        let mut n = Some(&self.node);
        while let Some(node) = n {
            if let Some((k, v)) = &node.value {
                if *k == key {
                    return v.clone().downcast::<V>().ok();
                }
            }
            n = node.parent.as_ref();
        }
        None
    }
}
