//! `bounded` (Go's `makechan`): capacities whose buffer cannot fit panic
//! with Go's message; the buffer is allocated as values arrive, so a huge
//! capacity costs nothing until it is used.

use gmp::chan::bounded;

#[test]
#[should_panic(expected = "makechan: size out of range")]
fn capacity_whose_bytes_overflow_panics() {
    let _ = bounded::<u64>(usize::MAX);
}

#[test]
#[should_panic(expected = "makechan: size out of range")]
fn capacity_past_max_alloc_panics() {
    // 2^49 bytes: no overflow, but past Go's maxAlloc (2^48).
    let _ = bounded::<[u8; 2]>(1 << 48);
}

#[test]
fn zero_sized_elements_take_any_capacity() {
    let (tx, rx) = bounded::<()>(usize::MAX);
    assert_eq!(tx.capacity(), usize::MAX);
    for _ in 0..1000 {
        tx.try_send(()).unwrap();
    }
    assert_eq!(rx.len(), 1000);
}

/// 1 TiB of buffer if it were reserved at `make`: it is not.
#[test]
fn huge_capacity_allocates_nothing_until_used() {
    let (tx, rx) = bounded::<[u8; 1 << 20]>(1 << 20);
    assert_eq!(tx.capacity(), 1 << 20);
    assert!(rx.is_empty());
    drop(tx);
    assert!(rx.is_closed());

    // 8 TiB of `u64` slots: the buffer grows with what is buffered.
    let (tx, rx) = bounded::<u64>(1 << 40);
    for i in 0..100_000 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(rx.len(), 100_000);
    for i in 0..100_000 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
}

/// Growth stops at the capacity: a full channel is full at exactly `cap`.
#[test]
fn growth_never_passes_capacity() {
    for cap in [1usize, 3, 5, 1000] {
        let (tx, rx) = bounded::<u32>(cap);
        for i in 0..cap as u32 {
            tx.try_send(i).unwrap();
        }
        assert!(tx.try_send(0).unwrap_err().is_full(), "cap {cap}");
        assert_eq!(rx.len(), cap);
        for i in 0..cap as u32 {
            assert_eq!(rx.try_recv(), Ok(i));
        }
    }
}
