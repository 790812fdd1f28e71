//! Publish/subscribe with channels of channels: a broker goroutine owns
//! the subscriber list; subscribing sends the broker a channel to deliver
//! on, and a reply channel to learn the subscription id. A `Cond` lets the
//! publisher wait until every subscriber is registered.
//!
//! Run: `cargo run --release --example pubsub`

use gmp::chan::{bounded, Receiver, Sender};
use gmp::sync::{Cond, Mutex, WaitGroup};
use std::sync::Arc;

#[derive(Debug)]
enum Request {
    /// Deliver to this channel; reply with the subscription id.
    Subscribe(Sender<String>, Sender<usize>),
    Publish(String),
}

/// The broker: the only goroutine that touches the subscriber list.
async fn broker(requests: Receiver<Request>) {
    let mut subs: Vec<Sender<String>> = Vec::new();
    while let Ok(req) = requests.recv().await {
        match req {
            Request::Subscribe(deliver, reply) => {
                subs.push(deliver);
                let _ = reply.send(subs.len() - 1).await;
            }
            Request::Publish(msg) => {
                for s in &subs {
                    let _ = s.send(msg.clone()).await;
                }
            }
        }
    }
    // Requests closed: closing every delivery channel ends the subscribers.
}

#[gmp::main]
async fn main() {
    const SUBSCRIBERS: usize = 3;
    const TOPICS: [&str; 4] = ["weather", "news", "sports", "markets"];

    let (req_tx, req_rx) = bounded::<Request>(0);
    gmp::go(broker(req_rx));

    let ready = Arc::new((Mutex::new(0usize), Cond::new()));
    let wg = WaitGroup::new();
    for name in ["alice", "bob", "carol"] {
        let (req_tx, ready, wg) = (req_tx.clone(), ready.clone(), wg.clone());
        wg.add(1);
        gmp::go(async move {
            let (deliver_tx, deliver_rx) = bounded::<String>(4);
            let (reply_tx, reply_rx) = bounded::<usize>(0);
            let _ = req_tx.send(Request::Subscribe(deliver_tx, reply_tx)).await;
            let id = reply_rx.recv().await.unwrap();
            drop(req_tx);
            {
                let (count, cond) = &*ready;
                *count.lock().await += 1;
                cond.broadcast();
            }
            let mut got = Vec::new();
            while let Ok(msg) = deliver_rx.recv().await {
                got.push(msg);
            }
            println!("  {name} (subscription {id}) received {got:?}");
            wg.done();
        });
    }

    // Wait for every subscriber before publishing (Cond in a loop, as Go).
    {
        let (count, cond) = &*ready;
        let mut n = count.lock().await;
        while *n < SUBSCRIBERS {
            n = cond.wait(n).await;
        }
        println!("pubsub: {} subscribers registered", *n);
    }
    for t in TOPICS {
        req_tx.send(Request::Publish(t.to_string())).await.unwrap();
    }
    println!("pubsub: published {} messages", TOPICS.len());
    drop(req_tx); // the broker ends and closes the delivery channels
    wg.wait().await;
    println!("pubsub: every subscriber got every message");
}
