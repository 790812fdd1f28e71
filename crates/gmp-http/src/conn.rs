//! One connection's goroutine: sniff the protocol (`sniff.rs`), then drive
//! hyper's HTTP/1.1 or HTTP/2 connection to its end, with the two things
//! hyper leaves to the server around it: a deadline for the first request
//! (hyper's HTTP/1 header timeout starts only once its connection exists,
//! and HTTP/2 has none), and the drain signal of a graceful shutdown.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Future, Stream};
use gmp_chan::{Receiver, Sender};
use gmp_core::timer::Sleep;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};

use crate::body::{Body, BoxError};
use crate::conn_timer::ConnTimer;
use crate::rt::{GmpExecutor, Transport};
use crate::serve::Handler;
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

/// What a connection's goroutine holds besides its socket.
pub(crate) struct Conn<S> {
    pub(crate) cfg: Arc<ConnConfig<S>>,
    pub(crate) peer: Option<SocketAddr>,
    /// Closed when the server drains.
    pub(crate) stop: Receiver<()>,
    /// Dropped when this goroutine ends: the server waits for every
    /// connection's to go.
    pub(crate) _alive: Sender<()>,
}

/// Serve one connection until the peer goes, an error ends it, the first
/// request is too slow to come, or (after `stop` closes) it has drained.
/// `conn` is used in place, not split into locals (which this future would
/// store a second time); its `_alive` goes when the future ends.
pub(crate) async fn serve_conn<S, I>(mut conn: Conn<S>, io: I)
where
    I: Transport + Send + 'static,
    S: Handler,
{
    let Some((io, protocol, first_request)) = sniff(
        Sniffed::new(io),
        &mut conn.stop,
        conn.cfg.header_read_timeout,
    )
    .await
    else {
        return;
    };
    match protocol {
        Protocol::Http1 => {
            // hyper's header timeout covers every request head from here.
            drop(first_request);
            let service = ConnService {
                cfg: conn.cfg.clone(),
                peer: conn.peer,
                started: None,
            };
            Drive::new(
                http1_connection(&conn.cfg.http1, io, service),
                conn.stop,
                None,
            )
            .await;
        }
        Protocol::Http2 => {
            let started = Arc::new(AtomicBool::new(false));
            let service = ConnService {
                cfg: conn.cfg.clone(),
                peer: conn.peer,
                started: Some(started.clone()),
            };
            // Boxed so that the HTTP/1 connections, the many, do not carry
            // the HTTP/2 state's size in their goroutines.
            let h2 = Box::pin(conn.cfg.http2.serve_connection(io, service));
            Drive::new(h2, conn.stop, Some((first_request, started))).await;
        }
    }
}

/// hyper's HTTP/1 connection with its own timer, which reuses one
/// header-read sleep for all its requests (`conn_timer.rs`). A function,
/// not inline in `serve_conn`, so that the builder's copy is not kept in
/// the connection's future.
fn http1_connection<S: Handler, I: Transport + Send + 'static>(
    builder: &http1::Builder,
    io: Sniffed<I>,
    service: ConnService<S>,
) -> http1::Connection<Sniffed<I>, ConnService<S>> {
    let mut builder = builder.clone();
    builder.timer(ConnTimer::new());
    builder.serve_connection(io, service)
}

/// Wait for the first bytes to choose the protocol, at most `timeout`;
/// the socket, the protocol and what is left of the deadline. `None` if
/// the peer closed or failed, the deadline passed, or `stop` closed (a
/// connection that has sent nothing yet is idle: a shutdown closes it).
/// A function of its own so that the socket and the timer, borrowed while
/// it waits, are not also kept in the connection's future.
async fn sniff<I: Transport>(
    mut io: Sniffed<I>,
    stop: &mut Receiver<()>,
    timeout: Duration,
) -> Option<(Sniffed<I>, Protocol, Sleep)> {
    let mut deadline = gmp_core::timer::sleep(timeout);
    let sniffed = poll_fn(|cx| {
        if let Poll::Ready(r) = io.poll_sniff(cx) {
            return Poll::Ready(r.ok());
        }
        if Pin::new(&mut *stop).poll_next(cx).is_ready()
            || Pin::new(&mut deadline).poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        gmp_core::park::set_wait_reason(gmp_core::WaitReason::IoWait);
        Poll::Pending
    })
    .await;
    match sniffed {
        Some(Sniff::Speaks(protocol)) => Some((io, protocol, deadline)),
        Some(Sniff::Closed) | None => None,
    }
}

/// hyper's two connection futures, as `Drive` sees them.
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

pin_project_lite::pin_project! {
    /// Runs `conn` to its end; on `stop`, shuts it down gracefully. With a
    /// `first_request` deadline, the connection is dropped (the socket
    /// closed) if no request has started by then. A hand-written future so
    /// the connection is stored once, in place (an `async fn` keeps its
    /// argument and its pinned copy apart, doubling hyper's state).
    struct Drive<C> {
        #[pin]
        conn: C,
        stop: Receiver<()>,
        first_request: Option<(Sleep, Arc<AtomicBool>)>,
        draining: bool,
    }
}

impl<C: HttpConn> Drive<C> {
    fn new(conn: C, stop: Receiver<()>, first_request: Option<(Sleep, Arc<AtomicBool>)>) -> Self {
        Drive {
            conn,
            stop,
            first_request,
            draining: false,
        }
    }
}

impl<C: HttpConn> Future for Drive<C> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if !*this.draining && Pin::new(&mut *this.stop).poll_next(cx).is_ready() {
            *this.draining = true;
            this.conn.as_mut().start_shutdown();
            if this.conn.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        if let Some((deadline, started)) = this.first_request {
            if started.load(Relaxed) {
                *this.first_request = None;
            } else if Pin::new(deadline).poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        // Parked on the socket (the drain channel and the timer are its
        // deadlines): what Go's dump shows for a connection, whichever of
        // them was polled last.
        gmp_core::park::set_wait_reason(gmp_core::WaitReason::IoWait);
        Poll::Pending
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    type Handler =
        fn(Request) -> Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;
    type Svc = crate::ServiceFn<Handler>;

    fn output_size<A, B, R>(_f: fn(A, B) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every idle connection keeps its goroutine's future: hyper's HTTP/1
    /// state must be in it once (not again as a moved-from copy), and the
    /// HTTP/2 state, boxed, not at all.
    #[test]
    fn connection_future_holds_hyper_http1_state_once() {
        let conn = output_size(serve_conn::<Svc, gmp_io::TcpStream>);
        let h1 =
            std::mem::size_of::<http1::Connection<Sniffed<gmp_io::TcpStream>, ConnService<Svc>>>();
        let h2 = std::mem::size_of::<
            http2::Connection<Sniffed<gmp_io::TcpStream>, ConnService<Svc>, GmpExecutor>,
        >();
        assert!(
            conn < h1 + 256,
            "serve_conn's future is {conn} bytes for hyper's {h1}-byte HTTP/1 connection"
        );
        assert!(
            conn < h1 + h2,
            "serve_conn's future ({conn} bytes) holds HTTP/2's state ({h2})"
        );
    }
}
