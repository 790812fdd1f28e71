//! What the loom model tests (`tests/loom_*.rs`, built with `--cfg loom`)
//! reach inside gmp-core: the run queue and the G state word.

pub use crate::g::state::*;
pub use crate::runq::*;
