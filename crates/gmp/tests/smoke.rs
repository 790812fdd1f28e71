use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn spawn_join_many() {
    for procs in [1, 2, 4] {
        let rt = gmp::Runtime::builder().procs(procs).build().unwrap();
        let sum = rt.block_on(async {
            let mut hs = Vec::new();
            for i in 0..10_000u64 {
                hs.push(gmp::spawn(async move { i }));
            }
            let mut s = 0;
            for h in hs {
                s += h.await.unwrap();
            }
            s
        });
        assert_eq!(sum, (0..10_000u64).sum::<u64>());
    }
}

#[test]
fn go_counts() {
    let rt = gmp::Runtime::builder().procs(2).build().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    rt.block_on(async move {
        let hs: Vec<_> = (0..1000)
            .map(|_| {
                let n = n2.clone();
                gmp::spawn(async move {
                    for _ in 0..10 {
                        gmp::runtime::gosched().await;
                    }
                    n.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    assert_eq!(n.load(Ordering::SeqCst), 1000);
}
