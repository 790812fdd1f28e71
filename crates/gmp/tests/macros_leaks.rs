//! `#[gmp::test]`: a goroutine's panic fails its own test and no other,
//! leaked goroutines fail the test with their dump, `allow_leaks`.
//! The passing tests in this file are the "others run on" half: they share
//! the binary with the failing (`should_panic`) ones.

use std::time::Duration;

#[gmp::test]
#[should_panic(expected = "boom in a go goroutine")]
async fn a_go_goroutines_panic_fails_this_test() {
    gmp::go(async {
        gmp::runtime::gosched().await;
        panic!("boom in a go goroutine");
    });
    // Main would wait an hour: the panic ends the runtime first.
    gmp::time::sleep(Duration::from_secs(3600)).await;
}

#[gmp::test(procs = 2)]
#[should_panic(expected = "created by goroutine 1")]
async fn the_panic_report_names_the_goroutine_and_its_creator() {
    let (tx, rx) = gmp::chan::bounded::<()>(0);
    gmp::go(async move {
        let _ = rx.recv().await;
        panic!("after a receive");
    });
    drop(tx);
    gmp::select! {}
}

#[gmp::test]
#[should_panic(expected = "1 goroutine(s) leaked")]
async fn a_leaked_goroutine_fails_the_test() {
    gmp::go(async {
        gmp::select! {}
    });
}

#[gmp::test]
#[should_panic(expected = "[chan receive")]
async fn the_leak_report_carries_the_dump() {
    let (tx, rx) = gmp::chan::bounded::<()>(0);
    gmp::go(async move {
        let _ = rx.recv().await;
    });
    std::mem::forget(tx);
}

#[gmp::test(allow_leaks)]
async fn allow_leaks_turns_the_check_off() {
    gmp::go(async {
        gmp::select! {}
    });
}

#[gmp::test(procs = 2, allow_leaks)]
async fn allow_leaks_with_procs() {
    assert_eq!(gmp::runtime::gomaxprocs(), 2);
}

/// Goroutines that end within the grace are not leaks.
#[gmp::test]
async fn goroutines_finishing_after_the_body_are_not_leaks() {
    for i in 0..10u64 {
        gmp::go(async move {
            gmp::time::sleep(Duration::from_millis(20 + i * 10)).await;
        });
    }
}

/// A goroutine's panic stays in its test: a plain test next to the
/// failing ones passes.
#[gmp::test]
async fn tests_next_to_failing_ones_pass() {
    let h = gmp::spawn(async { 2 + 2 });
    assert_eq!(h.await.unwrap(), 4);
}

/// A panic in a `spawn` goroutine is its JoinError, not a test failure.
#[gmp::test]
async fn a_spawned_goroutines_panic_is_its_join_error() {
    let h = gmp::spawn(async { panic!("caught") });
    assert!(h.await.is_err());
}

/// A test that already failed (returned `Err`) is reported as such; the
/// leak check does not replace its error with a panic.
#[test]
fn a_failed_result_is_reported_instead_of_the_leak() {
    let rt = gmp::Runtime::builder().procs(1).build().unwrap();
    let out = rt.block_on(gmp::__private::test_main(
        async {
            gmp::go(async {
                gmp::select! {}
            });
            Err::<(), _>("the test's own error")
        },
        true,
    ));
    assert_eq!(out, Err("the test's own error"));
}
