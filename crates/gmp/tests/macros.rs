//! `#[gmp::test]` expansions: plain, `procs = N`, `Result`-returning,
//! `should_panic`, `ignore`, and goroutines/channels inside.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[gmp::test]
async fn plain_test_runs_as_main_goroutine() {
    assert_eq!(gmp::runtime::goid(), 1);
    let h = gmp::spawn(async { 6 * 7 });
    assert_eq!(h.await.unwrap(), 42);
}

#[gmp::test(procs = 2)]
async fn procs_attribute_sets_gomaxprocs() {
    assert_eq!(gmp::runtime::gomaxprocs(), 2);
}

#[gmp::test(procs = 1)]
async fn procs_one() {
    assert_eq!(gmp::runtime::gomaxprocs(), 1);
    // With one P, goroutines still interleave through gosched.
    let n = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let n = n.clone();
            gmp::spawn(async move {
                gmp::runtime::gosched().await;
                n.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for h in hs {
        h.await.unwrap();
    }
    assert_eq!(n.load(Ordering::SeqCst), 8);
}

#[gmp::test(procs = 4)]
async fn trailing_comma_in_attribute() {
    assert_eq!(gmp::runtime::gomaxprocs(), 4);
}

#[derive(Debug)]
struct MyErr;

fn fallible(ok: bool) -> Result<u32, MyErr> {
    if ok {
        Ok(7)
    } else {
        Err(MyErr)
    }
}

#[gmp::test]
async fn result_returning_test_with_question_mark() -> Result<(), MyErr> {
    let v = fallible(true)?;
    assert_eq!(v, 7);
    let h = gmp::spawn(async { fallible(true) });
    let w = h.await.unwrap()?;
    if w != 7 {
        return Err(MyErr);
    }
    Ok(())
}

#[gmp::test]
async fn result_returning_test_with_boxed_error() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = "12".parse()?;
    assert_eq!(n, 12);
    Ok(())
}

/// `#[should_panic]` stays on the generated `#[test]` fn; the panic in the
/// main goroutine reaches the harness through `block_on`.
#[gmp::test(procs = 2)]
#[should_panic(expected = "boom in main goroutine")]
async fn should_panic_is_kept() {
    gmp::runtime::gosched().await;
    panic!("boom in main goroutine");
}

#[gmp::test]
#[should_panic]
async fn panic_propagated_through_join_handle_unwrap() {
    let h = gmp::spawn(async { panic!("child") });
    // JoinError for a panicked goroutine; unwrap panics the main goroutine.
    let _: () = h.await.unwrap();
}

#[gmp::test]
#[ignore = "checks that #[ignore] is kept; never run"]
async fn ignore_is_kept() {
    panic!("an #[ignore]d test must not run");
}

#[gmp::test]
async fn early_return_in_unit_test() {
    let x = gmp::spawn(async { 1 }).await.unwrap();
    if x == 1 {
        return;
    }
    unreachable!();
}

mod nested {
    fn helper() -> usize {
        3
    }

    // The body resolves names from the enclosing module.
    #[gmp::test(procs = 3)]
    async fn test_in_module_uses_module_items() {
        assert_eq!(gmp::runtime::gomaxprocs(), helper());
    }
}
