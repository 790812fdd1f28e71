//! Handlers: [`service_fn`] turns an async function into a service, and
//! [`Guarded`] is the wrapper `serve` puts around every request so that a
//! handler's panic fails that request alone (Go's `net/http` recovers a
//! handler's panic the same way).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::body::BoxError;
use crate::{Request, Response};

/// A service made of a function: `hyper::service::Service<Request>` for any
/// `Fn(Request) -> impl Future<Output = Result<Response, E>>`.
pub fn service_fn<F, Fut, E>(f: F) -> ServiceFn<F>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Result<Response, E>>,
{
    ServiceFn { f }
}

/// The service [`service_fn`] returns.
#[derive(Clone, Copy)]
pub struct ServiceFn<F> {
    f: F,
}

impl<F> fmt::Debug for ServiceFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceFn")
    }
}

impl<F, Fut, E> hyper::service::Service<Request> for ServiceFn<F>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Result<Response, E>>,
{
    type Response = Response;
    type Error = E;
    type Future = Fut;

    fn call(&self, req: Request) -> Fut {
        (self.f)(req)
    }
}

/// The error a request fails with when its handler panicked: hyper closes
/// the connection (HTTP/1) or resets the stream (HTTP/2).
#[derive(Debug)]
pub struct HandlerPanicked;

impl fmt::Display for HandlerPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("http handler panicked")
    }
}

impl std::error::Error for HandlerPanicked {}

pin_project_lite::pin_project! {
    /// A handler's future with its panics caught: a panic becomes
    /// [`HandlerPanicked`] and a line on stderr naming the peer, as Go's
    /// `http: panic serving ADDR: MSG`.
    pub(crate) struct Guarded<F> {
        #[pin]
        fut: F,
        peer: Option<SocketAddr>,
        panicked: bool,
    }
}

impl<F> Guarded<F> {
    pub(crate) fn new(fut: F, peer: Option<SocketAddr>) -> Guarded<F> {
        Guarded {
            fut,
            peer,
            panicked: false,
        }
    }
}

impl<F, E> Future for Guarded<F>
where
    F: Future<Output = Result<Response, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if *this.panicked {
            return Poll::Ready(Err(Box::new(HandlerPanicked)));
        }
        match catch_unwind(AssertUnwindSafe(|| this.fut.as_mut().poll(cx))) {
            Ok(p) => p.map_err(Into::into),
            Err(payload) => {
                *this.panicked = true;
                let peer = this
                    .peer
                    .map_or_else(|| "peer".to_string(), |a| a.to_string());
                eprintln!("http: panic serving {peer}: {}", panic_message(&*payload));
                Poll::Ready(Err(Box::new(HandlerPanicked)))
            }
        }
    }
}

fn panic_message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| p.downcast_ref::<&str>().copied())
        .unwrap_or("Box<dyn Any>")
}
