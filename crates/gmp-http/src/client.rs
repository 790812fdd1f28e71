//! The client: [`get`] (Go's `http.Get`) and [`Client`] for any method,
//! HTTP/1.1 over gmp's `TcpStream`. Each connection is driven by its own
//! goroutine (Go's transport has a read and a write loop per connection);
//! a `Client` keeps a few idle keep-alive connections per host and reuses
//! one once the previous response's body has been read to its end.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, Weak};

use http::header::{HeaderValue, HOST};
use http::Uri;
use hyper::body::Body as _;
use hyper::client::conn::http1::{self, SendRequest};

use crate::body::Body;
use crate::rt::GmpIo;
use crate::{Request, Response};

/// Go's `DefaultMaxIdleConnsPerHost`.
const DEFAULT_MAX_IDLE_PER_HOST: usize = 2;

/// Why a client request failed.
#[derive(Debug)]
pub enum Error {
    /// The URL does not parse, or has no host.
    InvalidUrl(String),
    /// Only `http://` is spoken (no TLS here).
    UnsupportedScheme(String),
    /// The TCP connection could not be made.
    Connect(io::Error),
    /// The exchange failed (connection reset, malformed response, ...).
    Http(hyper::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            Error::UnsupportedScheme(s) => write!(f, "unsupported protocol scheme {s:?}"),
            Error::Connect(e) => write!(f, "dial: {e}"),
            Error::Http(e) => write!(f, "http: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) => Some(e),
            Error::Http(e) => Some(e),
            _ => None,
        }
    }
}

/// `GET url` on a connection of its own, closed once the response body
/// has been read or dropped (a `Client` reuses connections instead).
pub async fn get(url: &str) -> Result<Response, Error> {
    Client::with_max_idle_per_host(0).get(url).await
}

/// An HTTP/1.1 client with a keep-alive pool. Cheap to clone (clones share
/// the pool); dropping the last clone closes the idle connections.
#[derive(Clone, Debug)]
pub struct Client {
    pool: Arc<Pool>,
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    /// A client keeping up to 2 idle connections per host, as Go's default.
    pub fn new() -> Client {
        Client::with_max_idle_per_host(DEFAULT_MAX_IDLE_PER_HOST)
    }

    /// A client keeping up to `n` idle connections per host (0: none).
    pub fn with_max_idle_per_host(n: usize) -> Client {
        Client {
            pool: Arc::new(Pool {
                idle: Mutex::new(HashMap::new()),
                max_idle_per_host: n,
            }),
        }
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Response, Error> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::InvalidUrl(format!("{url:?}: {e}")))?;
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = uri;
        self.request(req).await
    }

    /// Send `req`, whose URI must be absolute (`http://host[:port]/path`).
    /// The response's body streams from the connection.
    pub async fn request(&self, mut req: Request) -> Result<Response, Error> {
        let target = Target::of(req.uri())?;
        if !req.headers().contains_key(HOST) {
            let host = HeaderValue::from_str(&target.authority)
                .map_err(|e| Error::InvalidUrl(format!("host: {e}")))?;
            req.headers_mut().insert(HOST, host);
        }
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<Uri>()
            .map_err(|e| Error::InvalidUrl(e.to_string()))?;
        *req.uri_mut() = path;

        let resp = loop {
            let (mut sender, reused) = self.checkout(&target).await?;
            match sender.try_send_request(req).await {
                Ok(resp) => break (resp, sender),
                // A pooled connection the server closed meanwhile, before
                // the request went out: try again on a new one (Go's
                // transport retries the same way).
                Err(mut e) if reused && e.message().is_some() => {
                    req = e.take_message().expect("checked just above");
                }
                Err(e) => return Err(Error::Http(e.into_error())),
            }
        };
        let (resp, sender) = resp;
        let checkout = Checkout {
            pool: Arc::downgrade(&self.pool),
            key: target.authority,
            sender,
        };
        let (parts, incoming) = resp.into_parts();
        let body = if incoming.is_end_stream() {
            checkout.release();
            Body::from(incoming)
        } else {
            Body::pooled(incoming, checkout)
        };
        Ok(Response::from_parts(parts, body))
    }

    /// Go's `CloseIdleConnections`: drop every pooled connection.
    pub fn close_idle_connections(&self) {
        self.pool.idle.lock().unwrap().clear();
    }

    /// An idle connection to `target` if one is still usable, else a new one.
    async fn checkout(&self, target: &Target) -> Result<(SendRequest<Body>, bool), Error> {
        loop {
            let idle = self
                .pool
                .idle
                .lock()
                .unwrap()
                .get_mut(&target.authority)
                .and_then(Vec::pop);
            let Some(mut sender) = idle else { break };
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok((sender, true));
            }
        }
        Ok((connect(target).await?, false))
    }
}

/// Dial, handshake, and give the connection its goroutine.
async fn connect(target: &Target) -> Result<SendRequest<Body>, Error> {
    let tcp = gmp_io::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(Error::Connect)?;
    let (sender, conn) = http1::handshake(GmpIo::new(tcp))
        .await
        .map_err(Error::Http)?;
    gmp_core::go(async move {
        // Its errors reach the caller through the request's own future.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Where a request goes.
struct Target {
    /// `host[:port]` as written: the `Host` header and the pool key.
    authority: String,
    host: String,
    port: u16,
}

impl Target {
    fn of(uri: &Uri) -> Result<Target, Error> {
        match uri.scheme_str() {
            Some("http") => {}
            Some(s) => return Err(Error::UnsupportedScheme(s.to_string())),
            None => return Err(Error::InvalidUrl(format!("{uri}: not absolute"))),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| Error::InvalidUrl(format!("{uri}: no host")))?;
        if authority.as_str().contains('@') {
            // Go turns userinfo into basic auth; say so rather than send it
            // in the Host header.
            return Err(Error::InvalidUrl(format!(
                "{uri}: user info in the URL is not supported; set an Authorization header"
            )));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(Error::InvalidUrl(format!("{uri}: no host")));
        }
        Ok(Target {
            authority: authority.as_str().to_string(),
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(80),
        })
    }
}

/// Idle connections by `host[:port]`.
struct Pool {
    idle: Mutex<HashMap<String, Vec<SendRequest<Body>>>>,
    max_idle_per_host: usize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idle: usize = self.idle.lock().unwrap().values().map(Vec::len).sum();
        f.debug_struct("Pool")
            .field("idle", &idle)
            .field("max_idle_per_host", &self.max_idle_per_host)
            .finish()
    }
}

/// A connection lent to one response: back to the pool when its body ends
/// ([`Checkout::release`]); dropped (and the connection closed) otherwise.
pub(crate) struct Checkout {
    pool: Weak<Pool>,
    key: String,
    sender: SendRequest<Body>,
}

impl Checkout {
    pub(crate) fn release(self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut idle = pool.idle.lock().unwrap();
        let list = idle.entry(self.key).or_default();
        if list.len() < pool.max_idle_per_host {
            list.push(self.sender);
        }
    }
}
