//! `#[gmp::main]` (no `procs`, so `GMP_MAXPROCS` applies) returning `Err`:
//! exits with code 1 after printing `Error: {e:?}`; with a malformed
//! `GMP_MAXPROCS` it exits with code 2 before main runs. Used by
//! `tests/main_exit.rs`.

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Failed {
    procs: usize,
}

#[gmp::main]
async fn main() -> Result<(), Failed> {
    let procs = gmp::spawn(async { gmp::runtime::gomaxprocs() })
        .await
        .unwrap();
    println!("main ran with procs={procs}");
    Err(Failed { procs })
}
