//! A `#[gmp::main]` program that deadlocks: main receives on a channel
//! nobody will ever send to. It prints Go's fatal error and the goroutine
//! dump and exits with code 2 (used by tests/main_exit.rs).

#[gmp::main(procs = 2)]
async fn main() {
    let (_tx, rx) = gmp::chan::bounded::<u32>(0);
    let (tx2, rx2) = gmp::chan::bounded::<u32>(0);
    gmp::go(async move {
        // Waits for main, which waits for nobody.
        let _ = rx2.recv().await;
        drop(tx2);
    });
    let _ = rx.recv().await;
    println!("unreachable");
}
