//! The server side of `benches/http.rs`: a hello-world HTTP server
//! (200, "Hello, World!", text/plain, keep-alive) on gmp (`gmp::http::serve`)
//! or on tokio + hyper (hyper-util's `TokioIo`, a task per connection),
//! with the same service function and hyper's same auto (HTTP/1.1 + h2)
//! connection builder and the same 30 s header-read timeout. Prints its address, serves until killed.
//!
//! `http_hello_server gmp|tokio <procs>`

use std::convert::Infallible;
use std::net::SocketAddr;

use gmp::http::{header, Request, Response};

/// The service both servers run.
async fn hello(_req: Request) -> Result<Response, Infallible> {
    let mut resp = Response::new("Hello, World!".into());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
    Ok(resp)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(rt), Some(procs)) = (args.next(), args.next().and_then(|p| p.parse().ok())) else {
        eprintln!("usage: http_hello_server gmp|tokio <procs>");
        std::process::exit(2);
    };
    match rt.as_str() {
        "gmp" => gmp_server(procs),
        "tokio" => tokio_server(procs),
        other => {
            eprintln!("unknown runtime {other:?}: want gmp or tokio");
            std::process::exit(2);
        }
    }
}

fn announce(addr: SocketAddr) {
    println!("{addr}");
}

fn gmp_server(procs: usize) {
    let rt = gmp::Runtime::builder().procs(procs).build().unwrap();
    rt.block_on(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        announce(ln.local_addr().unwrap());
        gmp::http::serve(ln, gmp::http::service_fn(hello))
            .await
            .unwrap();
    });
}

fn tokio_server(procs: usize) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(procs)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ln = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        announce(ln.local_addr().unwrap());
        // The same header-read timeout gmp's server runs (hyper's default
        // once a timer is set), so both arm a timer per request.
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(gmp::http::DEFAULT_HEADER_READ_TIMEOUT);
        builder.http2().timer(TokioTimer::new());
        let builder = std::sync::Arc::new(builder);
        loop {
            let (s, _) = ln.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let builder = builder.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| {
                        hello(req.map(gmp::http::Body::from))
                    });
                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
            });
        }
    });
}
