//! Shared pieces of the HTTP tests: a server started in a goroutine with a
//! cancel function, a watchdog, raw-socket helpers.

#![allow(dead_code)]

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use gmp::http::{Body, Request, Response};

pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Fail the test instead of hanging it.
pub async fn watchdog<F: Future>(f: F) -> F::Output {
    gmp::time::timeout(WATCHDOG, f)
        .await
        .expect("watchdog: the operation never completed")
}

/// A running server: its address, how to stop it, its result.
pub struct Server {
    pub addr: SocketAddr,
    pub cancel: Box<dyn Fn() + Send + Sync>,
    pub done: gmp::JoinHandle<io::Result<()>>,
}

impl Server {
    /// Shut down and wait for `serve` to return.
    pub async fn stop(self) {
        (self.cancel)();
        self.done
            .await
            .expect("serve panicked")
            .expect("serve failed");
    }
}

/// The test handler: `/` says hello, `/echo` returns the request body,
/// `/n/...` returns its own path, `/panic` panics.
pub async fn handler(req: Request) -> Result<Response, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let resp = match path.as_str() {
        "/" => Response::new("hello".into()),
        "/echo" => Response::new(Body::from(req.into_body().bytes().await.unwrap())),
        "/panic" => panic!("handler asked to panic"),
        p if p.starts_with("/n/") => Response::new(p.to_string().into()),
        _ => {
            let mut r = Response::new("not found".into());
            *r.status_mut() = gmp::http::StatusCode::NOT_FOUND;
            r
        }
    };
    Ok(resp)
}

/// Start `serve` on a fresh loopback port with `handler`.
pub async fn start(header_timeout: Option<Duration>) -> Server {
    let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(ln, gmp::http::service_fn(handler), header_timeout).await
}

pub async fn start_on<L, S>(ln: L, svc: S, header_timeout: Option<Duration>) -> Server
where
    L: gmp::http::Listener + LocalAddr,
    S: gmp::http::Service<Request, Response = Response> + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<gmp::http::BoxError>,
{
    let addr = ln.addr();
    let (ctx, cancel) = gmp::context::with_cancel(&gmp::context::background());
    let mut srv = gmp::http::serve(ln, svc).with_shutdown(ctx);
    if let Some(d) = header_timeout {
        srv = srv.header_read_timeout(d);
    }
    let done = gmp::spawn(srv.into_future());
    Server {
        addr,
        cancel: Box::new(cancel),
        done,
    }
}

/// Listeners whose address the tests need.
pub trait LocalAddr {
    fn addr(&self) -> SocketAddr;
}

impl LocalAddr for gmp::net::TcpListener {
    fn addr(&self) -> SocketAddr {
        self.local_addr().unwrap()
    }
}

/// Write `bytes` on a fresh connection and read until EOF or `limit` bytes.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut c = gmp::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(bytes).await.unwrap();
    read_to_close(&mut c).await
}

/// Read until the peer closes (EOF or reset); what arrived.
pub async fn read_to_close(c: &mut gmp::net::TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Poll `f` until it returns true or `within` passes; whether it did.
pub async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        gmp::time::sleep(Duration::from_millis(5)).await;
    }
    f()
}
