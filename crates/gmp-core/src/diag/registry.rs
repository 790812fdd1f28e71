//! A process-wide list of weak references to live objects (runtimes, M
//! trace buffers), for the paths that must reach all of them: SIGQUIT's
//! dump, `trace::start`, the trace's exit drain.

use std::sync::{Arc, Mutex, Weak};

pub(crate) struct Registry<T>(Mutex<Vec<Weak<T>>>);

impl<T> Registry<T> {
    pub(crate) const fn new() -> Registry<T> {
        Registry(Mutex::new(Vec::new()))
    }

    /// Add `x`, forgetting the entries whose object is gone.
    pub(crate) fn add(&self, x: &Arc<T>) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(x));
    }

    /// The objects still alive, in the order they were added.
    pub(crate) fn live(&self) -> Vec<Arc<T>> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().filter_map(Weak::upgrade).collect()
    }
}
