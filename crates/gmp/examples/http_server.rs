//! An HTTP server in Go's `net/http` shape: hello, a JSON echo, a slow
//! endpoint, the goroutine profile, and graceful shutdown with a 5 s limit.
//!
//! `cargo run --release -p gmp --features http --example http_server [addr]`
//! (default 127.0.0.1:8080), then for instance
//! `curl localhost:8080/`, `curl -d 'hi "there"' localhost:8080/echo`,
//! `curl 'localhost:8080/slow?ms=3000'`,
//! `curl 'localhost:8080/debug/pprof/goroutine?debug=2'`.
//! Ctrl-C (or SIGTERM, or `curl -X POST localhost:8080/shutdown`) stops it
//! gracefully: no new connections, requests in flight get 5 s to finish.

use std::convert::Infallible;
use std::future::IntoFuture;
use std::time::Duration;

use gmp::http::{header, Body, Method, Request, Response, Service, StatusCode};

/// The longest `/slow` will sleep.
const MAX_SLOW: Duration = Duration::from_secs(30);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[gmp::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let ln = gmp::net::TcpListener::bind(addr.as_str()).await?;
    println!("listening on http://{}", ln.local_addr()?);

    let (ctx, stop) = gmp::context::with_cancel(&gmp::context::background());
    let (quit_tx, quit_rx) = gmp::chan::bounded::<()>(1);
    let service = gmp::http::service_fn(move |req| route(req, quit_tx.clone()));
    let (served_tx, served_rx) = gmp::chan::bounded(1);
    let server = gmp::http::serve(ln, service).with_shutdown(ctx);
    gmp::go(async move {
        let _ = served_tx.send(server.into_future().await).await;
    });

    let sigs = gmp::signal::notify(&[
        gmp::signal::Signal::Interrupt,
        gmp::signal::Signal::Terminate,
    ]);
    gmp::select! {
        recv(sigs) -> s => println!("got {s:?}"),
        recv(quit_rx) -> _ => println!("asked to quit"),
    }
    println!("shutting down: no new connections, {SHUTDOWN_GRACE:?} for requests in flight");
    stop();
    let (grace, _cancel) = gmp::context::with_timeout(&gmp::context::background(), SHUTDOWN_GRACE);
    gmp::select! {
        recv(served_rx) -> r => {
            r.expect("the server goroutine sends its result")?;
            println!("all connections closed");
        },
        recv(grace.done()) -> _ => println!("gave up waiting for requests in flight"),
    }
    Ok(())
}

async fn route(req: Request, quit: gmp::chan::Sender<()>) -> Result<Response, Infallible> {
    let path = req.uri().path().to_string();
    Ok(match (req.method().clone(), path.as_str()) {
        (Method::GET, "/") => text(StatusCode::OK, "Hello, World!\n"),
        (Method::POST, "/echo") => echo(req).await,
        (Method::GET, "/slow") => {
            let d = slow_duration(req.uri().query()).min(MAX_SLOW);
            gmp::time::sleep(d).await;
            text(StatusCode::OK, format!("slept {d:?}\n"))
        }
        (_, p) if p.starts_with("/debug/pprof/") => gmp::http::pprof_handler().call(req).await?,
        (Method::POST, "/shutdown") => {
            let _ = quit.try_send(());
            text(StatusCode::OK, "shutting down\n")
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    })
}

/// `{"method":..., "path":..., "length":..., "body":...}`, built by hand.
async fn echo(req: Request) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let body = match req.into_body().bytes().await {
        Ok(b) => b,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading body: {e}\n")),
    };
    let json = format!(
        "{{\"method\":{},\"path\":{},\"length\":{},\"body\":{}}}\n",
        json_string(&method),
        json_string(&path),
        body.len(),
        json_string(&String::from_utf8_lossy(&body)),
    );
    let mut resp = Response::new(json.into());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    resp
}

/// A JSON string literal for `s`.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `ms=N` from the query, 1 s if absent or malformed.
fn slow_duration(query: Option<&str>) -> Duration {
    query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis)
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8".parse().unwrap(),
    );
    resp
}
