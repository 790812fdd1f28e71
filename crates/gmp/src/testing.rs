//! What `#[gmp::test]` runs around a test body: Go's goleak check.
//! (The other half, a goroutine's panic failing only its test, is the
//! runtime's `UnhandledPanic::Propagate`.)

use std::future::Future;
use std::time::{Duration, Instant};

/// How long leaked goroutines get to finish after the test returns.
const GRACE: Duration = Duration::from_secs(1);

/// A test's outcome: a failed one is reported as it is, without the leak
/// check piling a second failure on top.
pub trait TestOutcome {
    fn failed(&self) -> bool;
}

impl TestOutcome for () {
    fn failed(&self) -> bool {
        false
    }
}

impl<T, E> TestOutcome for Result<T, E> {
    fn failed(&self) -> bool {
        self.is_err()
    }
}

/// Run the body as main, then (unless `check_leaks` is false or the body
/// failed) wait up to `GRACE` for every other goroutine to end; panic with
/// the dump of those still alive.
pub async fn test_main<F>(body: F, check_leaks: bool) -> F::Output
where
    F: Future,
    F::Output: TestOutcome,
{
    let out = body.await;
    if check_leaks && !out.failed() {
        check_leaks_within(GRACE).await;
    }
    out
}

async fn check_leaks_within(grace: Duration) {
    let me = crate::runtime::goid();
    let deadline = Instant::now() + grace;
    let mut pause = Duration::from_millis(1);
    loop {
        let leaked: Vec<u64> = crate::runtime::goroutines()
            .iter()
            .filter(|g| g.id != me && g.status != crate::runtime::GStatus::Dead)
            .map(|g| g.id)
            .collect();
        if leaked.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "gmp::test: {} goroutine(s) leaked: still alive {grace:?} after the test \
                 returned (#[gmp::test(allow_leaks)] turns this check off)\n\n{}",
                leaked.len(),
                dump_of(&leaked)
            );
        }
        crate::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The goroutine dump's blocks for the goroutines in `ids`.
fn dump_of(ids: &[u64]) -> String {
    crate::runtime::dump()
        .split("\n\n")
        .filter(|block| {
            block
                .strip_prefix("goroutine ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|id| id.parse::<u64>().ok())
                .is_some_and(|id| ids.contains(&id))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}
