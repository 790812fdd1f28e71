//! `Sender<T>` as a `futures::Sink<T>` (error `SendError<T>`).

use futures::{Sink, SinkExt, StreamExt};
use gmp::chan::{bounded, SendError, Sender};
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

fn rt(procs: usize) -> gmp::Runtime {
    gmp::Runtime::builder().procs(procs).build().unwrap()
}

async fn watchdog<F: std::future::Future>(f: F) -> F::Output {
    gmp::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("watchdog: the sink never finished")
}

/// `Stream::forward` into a sender: every item, in order, then the
/// channel is closed by `poll_close`.
#[test]
fn forward_stream_into_sender() {
    for (procs, cap) in [(1, 0), (2, 0), (2, 3)] {
        rt(procs).block_on(watchdog(async move {
            const N: u64 = 10_000;
            let (tx, rx) = bounded::<u64>(cap);
            gmp::go(async move {
                futures::stream::iter(0..N)
                    .map(Ok)
                    .forward(tx)
                    .await
                    .unwrap();
            });
            let got: Vec<u64> = rx.clone().collect().await;
            assert_eq!(got, (0..N).collect::<Vec<_>>());
            assert!(rx.is_closed());
        }));
    }
}

/// Unbuffered: `SinkExt::send` (start_send + flush) completes only once a
/// receiver has taken the value.
#[test]
fn unbuffered_sink_send_waits_for_the_receiver() {
    rt(2).block_on(watchdog(async {
        let (mut tx, rx) = bounded::<u32>(0);
        let (dtx, drx) = bounded::<()>(1);
        gmp::go(async move {
            // `SinkExt::send`, not the inherent `Sender::send`.
            SinkExt::send(&mut tx, 7).await.unwrap();
            dtx.try_send(()).unwrap();
            // Keep the channel open: this test is about the hand-off.
            std::future::pending::<()>().await;
        });
        // No receiver yet: the sink's send has not completed. (An absence
        // check: a slow machine can only make it pass for the right reason,
        // never fail it.)
        gmp::time::sleep(Duration::from_millis(50)).await;
        assert!(drx.try_recv().is_err());
        assert_eq!(rx.recv().await, Ok(7));
        drx.recv().await.unwrap();
    }));
}

/// A closed channel: `start_send` hands the value back in the error, and a
/// value held by a full sink comes back from `poll_flush` when the channel
/// closes under it.
#[test]
fn closed_channel_returns_the_value() {
    rt(1).block_on(watchdog(async {
        let (mut tx, rx) = bounded::<String>(1);
        rx.close();
        assert_eq!(
            SinkExt::send(&mut tx, "a".to_string()).await,
            Err(SendError("a".to_string()))
        );

        let (mut tx, rx) = bounded::<String>(1);
        tx.feed("first".to_string()).await.unwrap();
        // Full: the sink accepts and holds the second value.
        tx.feed("second".to_string()).await.unwrap();
        let closer = gmp::spawn(async move {
            gmp::time::sleep(Duration::from_millis(20)).await;
            rx.close();
            rx
        });
        assert_eq!(tx.flush().await, Err(SendError("second".to_string())));
        let rx = closer.await.unwrap();
        assert_eq!(rx.recv().await.as_deref(), Ok("first"));
        assert!(rx.recv().await.is_err());
    }));
}

/// Senders queued on a full channel keep FIFO order whether they send
/// through `send().await` or through the sink.
#[test]
fn sink_keeps_its_fifo_place() {
    rt(1).block_on(watchdog(async {
        let (tx, rx) = bounded::<u32>(1);
        tx.send(0).await.unwrap();
        let mut sink = tx.clone();
        let a = gmp::spawn(async move {
            SinkExt::send(&mut sink, 1).await.unwrap();
            sink
        });
        gmp::runtime::gosched().await;
        let tx2 = tx.clone();
        let b = gmp::spawn(async move { tx2.send(2).await.unwrap() });
        gmp::runtime::gosched().await;
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(rx.recv().await.unwrap());
        }
        assert_eq!(got, [0, 1, 2]);
        drop(a.await.unwrap());
        b.await.unwrap();
    }));
}

/// The `Sink` contract: `start_send` before `poll_ready` is ready is a
/// clear panic, not a silently dropped value.
#[test]
fn start_send_without_ready_panics() {
    let (mut tx, rx) = bounded::<u8>(0);
    // No receiver: the first value is held.
    Pin::new(&mut tx).start_send(1).unwrap();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut tx).poll_ready(&mut cx).is_pending());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = Pin::new(&mut tx).start_send(2);
    }));
    let e = r.expect_err("start_send on a busy sink must panic");
    let msg = e
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("poll_ready"), "{msg}");
    // Dropping the sender withdraws the held value.
    drop::<Sender<u8>>(tx);
    assert!(matches!(
        rx.try_recv(),
        Err(gmp::chan::TryRecvError::Closed)
    ));
}
