//! `#[gmp::main(procs = 3)]` returning `Ok(())`: prints GOMAXPROCS, main's
//! goroutine id and a sum computed by goroutines. Used by
//! `tests/main_exit.rs`.

/// Doc comments and other attributes on `main` are kept.
#[gmp::main(procs = 3)]
async fn main() -> Result<(), String> {
    let hs: Vec<_> = (0..20u64)
        .map(|i| gmp::spawn(async move { i * i }))
        .collect();
    let mut sum = 0;
    for h in hs {
        sum += h.await.map_err(|e| format!("{e:?}"))?;
    }
    println!(
        "procs={} goid={} sum={sum}",
        gmp::runtime::gomaxprocs(),
        gmp::runtime::goid()
    );
    Ok(())
}
