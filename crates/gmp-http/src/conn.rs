//! One connection's goroutine: hyper's auto connection (HTTP/1.1 or
//! HTTP/2, decided by the first bytes) driven to its end, with the two
//! things hyper leaves to the server around it: a deadline for the first
//! request to arrive (hyper's own header timeout starts only once it knows
//! the protocol), and the drain signal of a graceful shutdown.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::{Future, Stream};
use gmp_chan::Receiver;
use hyper::body::Incoming;
use hyper_util::server::conn::auto;

use crate::body::{Body, BoxError};
use crate::rt::{GmpExecutor, GmpIo, Transport};
use crate::service::Guarded;
use crate::{Request, Response};

/// What every connection of one server shares.
pub(crate) struct ConnConfig<S> {
    pub(crate) builder: auto::Builder<GmpExecutor>,
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
    let started = Arc::new(AtomicBool::new(false));
    let service = ConnService {
        cfg: cfg.clone(),
        peer,
        started: started.clone(),
    };
    let mut conn = pin!(cfg.builder.serve_connection(GmpIo::new(io), service));
    let mut first_request = Some(gmp_core::timer::sleep(cfg.header_read_timeout));
    let mut draining = false;
    poll_fn(|cx| {
        if conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if !draining && Pin::new(&mut stop).poll_next(cx).is_ready() {
            draining = true;
            conn.as_mut().graceful_shutdown();
            if conn.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        if let Some(deadline) = &mut first_request {
            if started.load(Relaxed) {
                first_request = None;
            } else if Pin::new(deadline).poll(cx).is_ready() {
                // Dropping the connection closes the socket.
                return Poll::Ready(());
            }
        }
        // Parked on the socket (the drain channel and the timers are its
        // deadlines): what Go's dump shows for a connection, whichever of
        // them was polled last.
        gmp_core::park::set_wait_reason(gmp_core::WaitReason::IoWait);
        Poll::Pending
    })
    .await;
}

/// The service hyper calls: converts the body, notes that a request came,
/// and guards the handler against panics.
struct ConnService<S> {
    cfg: Arc<ConnConfig<S>>,
    peer: Option<SocketAddr>,
    started: Arc<AtomicBool>,
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
        self.started.store(true, Relaxed);
        Guarded::new(self.cfg.service.call(req.map(Body::from)), self.peer)
    }
}
