//! [`serve`]: Go's `http.Serve` on gmp. An accept loop hands each
//! connection to its own goroutine (`conn.rs`); [`Serve::with_shutdown`]
//! makes it Go's `Server.Shutdown`: when the signal fires, stop accepting,
//! close the listener, let every connection finish what it is doing, then
//! return.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use gmp_chan::{Receiver, Sender};
use hyper::server::conn::{http1, http2};

use crate::body::BoxError;
use crate::conn::{serve_conn, Conn, ConnConfig};
use crate::rt::{GmpExecutor, GmpTimer, Transport};
use crate::{Request, Response};

/// Go's `ReadHeaderTimeout` default here: a client has this long to send a
/// request's head (and an idle keep-alive connection this long to start
/// the next one) before its connection is closed.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds [`serve`] puts on a service, named once for the crate's
/// own functions (the public ones spell them out for the reader).
pub(crate) trait Handler:
    hyper::service::Service<
        Request,
        Response = Response,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Send
    + Sync
    + 'static
{
}

impl<S> Handler for S
where
    S: hyper::service::Service<Request, Response = Response> + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
}

/// What [`serve`] accepts connections from.
pub trait Listener: Send + Sync + 'static {
    /// The connection type.
    type Io: Transport + Send + 'static;

    /// Wait for the next connection; the peer's address if it has an IP one.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, Option<SocketAddr>)>> + Send;
}

impl Listener for gmp_io::TcpListener {
    type Io = gmp_io::TcpStream;

    async fn accept(&self) -> io::Result<(gmp_io::TcpStream, Option<SocketAddr>)> {
        let (s, peer) = gmp_io::TcpListener::accept(self).await?;
        Ok((s, Some(peer)))
    }
}

#[cfg(unix)]
impl Listener for gmp_io::UnixListener {
    type Io = gmp_io::UnixStream;

    async fn accept(&self) -> io::Result<(gmp_io::UnixStream, Option<SocketAddr>)> {
        let (s, _) = gmp_io::UnixListener::accept(self).await?;
        Ok((s, None))
    }
}

/// Something that says when to shut down: done once `done()`'s channel is
/// closed (or yields a value). `gmp::context::Context` is one; so is a
/// plain `Receiver<()>`.
pub trait ShutdownSignal: Send + Sync + 'static {
    /// The channel to watch.
    fn done(&self) -> Receiver<()>;
}

impl ShutdownSignal for Receiver<()> {
    fn done(&self) -> Receiver<()> {
        self.clone()
    }
}

/// Serve HTTP/1.1 (keep-alive) and HTTP/2 (prior knowledge) on `listener`,
/// one goroutine per connection, until the listener fails or the shutdown
/// signal given to [`Serve::with_shutdown`] fires. Await the result.
///
/// Unlike Go's `Serve`, a listener failure does not orphan the open
/// connections: they are drained as for a shutdown, then the error is
/// returned, so no connection goroutine outlives the returned future.
pub fn serve<L, S>(listener: L, service: S) -> Serve<L, S>
where
    L: Listener,
    S: hyper::service::Service<Request, Response = Response> + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    Serve {
        listener,
        service,
        shutdown: None,
        header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
    }
}

/// A server to configure, then `.await` (`io::Result<()>`).
#[must_use = "a server does nothing until awaited"]
pub struct Serve<L, S> {
    listener: L,
    service: S,
    shutdown: Option<Box<dyn ShutdownSignal>>,
    header_read_timeout: Duration,
}

impl<L, S> fmt::Debug for Serve<L, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("shutdown", &self.shutdown.is_some())
            .field("header_read_timeout", &self.header_read_timeout)
            .finish()
    }
}

impl<L, S> Serve<L, S>
where
    L: Listener,
    S: hyper::service::Service<Request, Response = Response> + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    /// Shut down gracefully once `signal` is done (a context's
    /// cancellation or deadline, a closed channel): stop accepting and
    /// close the listener, let requests in flight finish, close idle
    /// connections, then return `Ok(())`.
    pub fn with_shutdown(mut self, signal: impl ShutdownSignal) -> Self {
        self.shutdown = Some(Box::new(signal));
        self
    }

    /// How long a client may take to send a request's head (default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`]); also how long a connection may sit
    /// idle before its next request.
    ///
    /// # Panics
    /// If `d` is zero: a server that times out every request at once is a
    /// configuration mistake, not a setting.
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        assert!(
            !d.is_zero(),
            "gmp::http: header_read_timeout must be non-zero"
        );
        self.header_read_timeout = d;
        self
    }

    async fn run(self) -> io::Result<()> {
        let Serve {
            listener,
            service,
            shutdown,
            header_read_timeout,
        } = self;
        let shutdown_rx = shutdown.as_ref().map_or_else(gmp_chan::never, |s| s.done());
        // Closed to tell every connection to drain.
        let (stop_tx, stop_rx) = gmp_chan::bounded::<()>(0);
        // Each connection goroutine holds a sender: once all are dropped,
        // `recv` fails and every connection has ended.
        let (alive_tx, alive_rx) = gmp_chan::bounded::<()>(0);
        let cfg = Arc::new(conn_config(service, header_read_timeout));
        let result = accept_loop(&listener, &shutdown_rx, &cfg, &stop_rx, &alive_tx).await;
        // New connects are refused from here on.
        drop(listener);
        stop_tx.close();
        drop(alive_tx);
        let _ = alive_rx.recv().await;
        drop(shutdown);
        result
    }
}

impl<L, S> IntoFuture for Serve<L, S>
where
    L: Listener,
    S: hyper::service::Service<Request, Response = Response> + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// What every connection of one server shares: hyper's settings for
/// both protocols (gmp's timer and executor) and the service.
fn conn_config<S>(service: S, header_read_timeout: Duration) -> ConnConfig<S> {
    let mut http1 = http1::Builder::new();
    http1
        .timer(GmpTimer)
        .keep_alive(true)
        .header_read_timeout(header_read_timeout);
    let mut http2 = http2::Builder::new(GmpExecutor);
    http2.timer(GmpTimer);
    ConnConfig {
        http1,
        http2,
        service,
        header_read_timeout,
    }
}

/// Accept until the shutdown signal fires (`Ok`) or the listener fails
/// for good (`Err`).
async fn accept_loop<L, S>(
    listener: &L,
    shutdown: &Receiver<()>,
    cfg: &Arc<ConnConfig<S>>,
    stop: &Receiver<()>,
    alive: &Sender<()>,
) -> io::Result<()>
where
    L: Listener,
    S: Handler,
{
    loop {
        let accepted = {
            // The signal is polled first so that the accept's wait reason
            // ("IO wait", as Go's dump shows for a server) is the one kept.
            let done = pin!(shutdown.recv());
            let accept = pin!(listener.accept());
            match select(done, accept).await {
                Either::Left(_) => return Ok(()),
                Either::Right((r, _)) => r,
            }
        };
        match accepted {
            Ok((io, peer)) => {
                let conn = Conn {
                    cfg: cfg.clone(),
                    peer,
                    stop: stop.clone(),
                    _alive: alive.clone(),
                };
                gmp_core::go(serve_conn(conn, io));
            }
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Errors that belong to one connection that died before it was accepted.
/// (gmp's listeners already wait out EMFILE and the like, as Go's
/// `Serve` does, so everything else means the listener itself failed.)
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
