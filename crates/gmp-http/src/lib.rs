//! gmp-http: HTTP on gmp, re-exported as `gmp::http` (facade feature
//! `http`). hyper 1 does the protocol work; this crate runs it Go's way:
//! [`serve`] gives every connection its own goroutine, shuts down as Go's
//! `Server.Shutdown` does, and isolates a handler's panic to its request;
//! [`get`] and [`Client`] are a small HTTP/1.1 client over gmp's
//! `TcpStream`; [`pprof_handler`] serves the goroutine profile; [`rt`] has
//! hyper's runtime traits for custom setups.
//!
//! ```
//! # async fn run() -> std::io::Result<()> {
//! let ln = gmp_io::TcpListener::bind("127.0.0.1:8080").await?;
//! gmp_http::serve(ln, gmp_http::service_fn(|_req: gmp_http::Request| async move {
//!     Ok::<_, std::convert::Infallible>(gmp_http::Response::new("hello".into()))
//! }))
//! .await
//! # }
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations, missing_docs)]

mod body;
mod client;
mod conn;
mod conn_timer;
mod pprof;
pub mod rt;
mod serve;
mod service;
mod sniff;

pub use body::{Body, BoxError};
pub use client::{get, Client, Error};
pub use pprof::pprof_handler;
pub use serve::{serve, Listener, Serve, ShutdownSignal, DEFAULT_HEADER_READ_TIMEOUT};
pub use service::{service_fn, HandlerPanicked, ServiceFn};

pub use bytes::Bytes;
pub use http::{header, Method, StatusCode, Uri, Version};
/// The trait a handler implements (hyper's): `service_fn` makes one from a function.
pub use hyper::service::Service;

/// A request as a handler sees it (and as the client sends it).
pub type Request = http::Request<Body>;

/// A response as a handler returns it (and as the client receives it).
pub type Response = http::Response<Body>;
