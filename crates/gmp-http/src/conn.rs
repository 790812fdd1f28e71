//! One connection's goroutine: sniff the protocol (`sniff.rs`), then drive
//! hyper's HTTP/1.1 or HTTP/2 connection to its end, with the two things
//! hyper leaves to the server around it: a deadline for the first request
//! (hyper's HTTP/1 header timeout starts only once its connection exists,
//! and HTTP/2 has none), and the drain signal of a graceful shutdown.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::{Future, Stream};
use gmp_chan::Receiver;
use gmp_core::timer::Sleep;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};

use crate::body::{Body, BoxError};
use crate::rt::{GmpExecutor, Transport};
use crate::service::Guarded;
use crate::sniff::{Protocol, Sniff, Sniffed};
use crate::{Request, Response};

/// What every connection of one server shares.
pub(crate) struct ConnConfig<S> {
    pub(crate) http1: http1::Builder,
    pub(crate) http2: http2::Builder<GmpExecutor>,
    pub(crate) service: S,
    pub(crate) header_read_timeout: Duration,
}

/// Serve one connection until the peer goes, an error ends it, the first
/// request is too slow to come, or (after `stop` closes) it has drained.
pub(crate) async fn serve_conn<S, I>(
    cfg: Arc<ConnConfig<S>>,
    io: I,
    peer: Option<SocketAddr>,
    mut stop: Receiver<()>,
) where
    I: Transport + Send + 'static,
    S: hyper::service::Service<Request, Response = Response> + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    let mut io = Sniffed::new(io);
    let mut first_request = gmp_core::timer::sleep(cfg.header_read_timeout);
    // A connection that has sent nothing yet is idle: a shutdown closes it.
    let sniffed = poll_fn(|cx| {
        if let Poll::Ready(r) = io.poll_sniff(cx) {
            return Poll::Ready(r.ok());
        }
        if Pin::new(&mut stop).poll_next(cx).is_ready()
            || Pin::new(&mut first_request).poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        gmp_core::park::set_wait_reason(gmp_core::WaitReason::IoWait);
        Poll::Pending
    })
    .await;
    let Some(Sniff::Speaks(protocol)) = sniffed else {
        return;
    };
    match protocol {
        Protocol::Http1 => {
            // hyper's header timeout covers every request head from here.
            drop(first_request);
            let service = ConnService {
                cfg: cfg.clone(),
                peer,
                started: None,
            };
            let conn = cfg.http1.serve_connection(io, service);
            drive(conn, stop, None).await;
        }
        Protocol::Http2 => {
            let started = Arc::new(AtomicBool::new(false));
            let service = ConnService {
                cfg: cfg.clone(),
                peer,
                started: Some(started.clone()),
            };
            // Boxed so that the HTTP/1 connections, the many, do not carry
            // the HTTP/2 state's size in their goroutines.
            let conn = Box::pin(cfg.http2.serve_connection(io, service));
            drive(conn, stop, Some((first_request, started))).await;
        }
    }
}

/// hyper's two connection futures, as `drive` sees them.
trait HttpConn: Future<Output = hyper::Result<()>> {
    /// Finish what is in flight, then end (hyper's `graceful_shutdown`).
    fn start_shutdown(self: Pin<&mut Self>);
}

impl<I, S> HttpConn for http1::Connection<Sniffed<I>, ConnService<S>>
where
    I: Transport,
    S: hyper::service::Service<Request, Response = Response>,
    S::Error: Into<BoxError>,
{
    fn start_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S> HttpConn for http2::Connection<Sniffed<I>, ConnService<S>, GmpExecutor>
where
    I: Transport + 'static,
    S: hyper::service::Service<Request, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    fn start_shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<C: HttpConn + ?Sized> HttpConn for Pin<Box<C>> {
    fn start_shutdown(self: Pin<&mut Self>) {
        self.get_mut().as_mut().start_shutdown();
    }
}

/// Run `conn` to its end; on `stop`, shut it down gracefully. With a
/// `first_request` deadline, the connection is dropped (the socket closed)
/// if no request has started by then.
async fn drive(
    conn: impl HttpConn,
    mut stop: Receiver<()>,
    mut first_request: Option<(Sleep, Arc<AtomicBool>)>,
) {
    let mut conn = pin!(conn);
    let mut draining = false;
    poll_fn(|cx| {
        if conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if !draining && Pin::new(&mut stop).poll_next(cx).is_ready() {
            draining = true;
            conn.as_mut().start_shutdown();
            if conn.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        if let Some((deadline, started)) = &mut first_request {
            if started.load(Relaxed) {
                first_request = None;
            } else if Pin::new(deadline).poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        // Parked on the socket (the drain channel and the timer are its
        // deadlines): what Go's dump shows for a connection, whichever of
        // them was polled last.
        gmp_core::park::set_wait_reason(gmp_core::WaitReason::IoWait);
        Poll::Pending
    })
    .await;
}

/// The service hyper calls: converts the body, notes that a request came
/// (for the HTTP/2 first-request deadline), and guards the handler
/// against panics.
struct ConnService<S> {
    cfg: Arc<ConnConfig<S>>,
    peer: Option<SocketAddr>,
    started: Option<Arc<AtomicBool>>,
}

impl<S> hyper::service::Service<http::Request<Incoming>> for ConnService<S>
where
    S: hyper::service::Service<Request, Response = Response>,
    S::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = BoxError;
    type Future = Guarded<S::Future>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        if let Some(started) = &self.started {
            started.store(true, Relaxed);
        }
        Guarded::new(self.cfg.service.call(req.map(Body::from)), self.peer)
    }
}
