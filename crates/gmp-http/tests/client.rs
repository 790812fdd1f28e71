//! The client's contract beyond the happy path: clear errors for bad
//! URLs, other schemes and refused connections; bodies convert from the
//! types users have; a pooled connection is reused, and `get` does not pool.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use gmp::http::{Body, Bytes, Client, Error, StatusCode};

#[gmp::test]
async fn bad_urls_and_schemes_are_clear_errors() {
    watchdog(async {
        match gmp::http::get("not a url").await {
            Err(Error::InvalidUrl(_)) => {}
            other => panic!("want InvalidUrl, got {other:?}"),
        }
        match gmp::http::get("/relative/path").await {
            Err(Error::InvalidUrl(why)) => assert!(why.contains("not absolute"), "{why}"),
            other => panic!("want InvalidUrl, got {other:?}"),
        }
        match gmp::http::get("http://user:pw@127.0.0.1/").await {
            Err(Error::InvalidUrl(why)) => assert!(why.contains("user info"), "{why}"),
            other => panic!("want InvalidUrl, got {other:?}"),
        }
        match gmp::http::get("https://127.0.0.1/").await {
            Err(e @ Error::UnsupportedScheme(_)) => {
                assert!(e.to_string().contains("https"), "{e}")
            }
            other => panic!("want UnsupportedScheme, got {other:?}"),
        }
    })
    .await
}

#[gmp::test]
async fn refused_connection_is_a_connect_error() {
    watchdog(async {
        // A port nobody listens on: bind, note it, close.
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = ln.local_addr().unwrap();
        drop(ln);
        match gmp::http::get(&format!("http://{addr}/")).await {
            Err(Error::Connect(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused)
            }
            other => panic!("want Connect, got {other:?}"),
        }
    })
    .await
}

#[gmp::test]
async fn bodies_convert_from_common_types() {
    for (body, want) in [
        (Body::from("static"), &b"static"[..]),
        (Body::from(String::from("string")), b"string"),
        (Body::from(vec![1u8, 2, 3]), &[1, 2, 3]),
        (Body::from(Bytes::from_static(b"bytes")), b"bytes"),
        (Body::empty(), b""),
    ] {
        assert_eq!(&body.bytes().await.unwrap()[..], want);
    }
}

/// Counts accepts, to tell a reused connection from a new one.
struct Counting(gmp::net::TcpListener, Arc<AtomicUsize>);

impl gmp::http::Listener for Counting {
    type Io = gmp::net::TcpStream;
    async fn accept(&self) -> std::io::Result<(gmp::net::TcpStream, Option<SocketAddr>)> {
        let (s, a) = self.0.accept().await?;
        self.1.fetch_add(1, SeqCst);
        Ok((s, Some(a)))
    }
}

impl LocalAddr for Counting {
    fn addr(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }
}

#[gmp::test(procs = 2)]
async fn client_reuses_connections_and_get_does_not() {
    watchdog(async {
        let n = Arc::new(AtomicUsize::new(0));
        let ln = Counting(
            gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            n.clone(),
        );
        let srv = start_on(ln, gmp::http::service_fn(handler), None).await;
        let url = format!("http://{}/", srv.addr);

        let client = Client::new();
        for _ in 0..5 {
            let r = client.get(&url).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.into_body().bytes().await.unwrap(), "hello");
        }
        assert_eq!(n.load(SeqCst), 1, "a Client made more than one connection");

        for _ in 0..3 {
            let r = gmp::http::get(&url).await.unwrap();
            assert_eq!(r.into_body().bytes().await.unwrap(), "hello");
        }
        assert_eq!(n.load(SeqCst), 4, "get reused a connection");

        // Idle connections go when asked; the next request dials again.
        client.close_idle_connections();
        let r = client.get(&url).await.unwrap();
        r.into_body().bytes().await.unwrap();
        assert!(eventually(Duration::from_secs(5), || n.load(SeqCst) == 5).await);
        drop(client);
        srv.stop().await;
    })
    .await
}
