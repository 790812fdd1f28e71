//! `serve` end to end on loopback: round trip, keep-alive under load,
//! graceful shutdown, panics, malformed input, HTTP/2 prior knowledge,
//! header timeout, the pprof endpoint.

mod common;

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures::{AsyncReadExt, AsyncWriteExt};
use gmp::http::{Body, Client, Method, Request, Response, StatusCode};

#[gmp::test(procs = 2)]
async fn round_trip_get_and_post() {
    watchdog(async {
        let srv = start(None).await;
        let resp = gmp::http::get(&format!("http://{}/", srv.addr))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(&resp.into_body().bytes().await.unwrap()[..], b"hello");

        let client = Client::new();
        let mut req = Request::new(Body::from(vec![7u8; 100_000]));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = format!("http://{}/echo", srv.addr).parse().unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().bytes().await.unwrap();
        assert_eq!(body.len(), 100_000);
        assert!(body.iter().all(|&b| b == 7));
        drop(client);
        srv.stop().await;
    })
    .await
}

/// Counts accepted connections, to see keep-alive at work.
struct CountingListener {
    inner: gmp::net::TcpListener,
    accepted: Arc<AtomicUsize>,
}

impl gmp::http::Listener for CountingListener {
    type Io = gmp::net::TcpStream;

    async fn accept(&self) -> io::Result<(gmp::net::TcpStream, Option<SocketAddr>)> {
        let (s, a) = self.inner.accept().await?;
        self.accepted.fetch_add(1, SeqCst);
        Ok((s, Some(a)))
    }
}

impl LocalAddr for CountingListener {
    fn addr(&self) -> SocketAddr {
        self.inner.local_addr().unwrap()
    }
}

#[gmp::test(procs = 2)]
async fn sixty_four_keep_alive_clients_two_hundred_requests_each() {
    const CLIENTS: usize = 64;
    const REQUESTS: usize = 200;
    watchdog(async {
        let accepted = Arc::new(AtomicUsize::new(0));
        let ln = CountingListener {
            inner: gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            accepted: accepted.clone(),
        };
        let srv = start_on(ln, gmp::http::service_fn(handler), None).await;
        let addr = srv.addr;
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            clients.push(gmp::spawn(async move {
                let client = Client::with_max_idle_per_host(1);
                for r in 0..REQUESTS {
                    let path = format!("/n/{c}/{r}");
                    let resp = client.get(&format!("http://{addr}{path}")).await.unwrap();
                    assert_eq!(resp.status(), StatusCode::OK);
                    let body = resp.into_body().bytes().await.unwrap();
                    assert_eq!(body, path.as_bytes(), "client {c} request {r}");
                }
                REQUESTS
            }));
        }
        let mut total = 0;
        for h in clients {
            total += h.await.unwrap();
        }
        assert_eq!(total, CLIENTS * REQUESTS);
        // Keep-alive: one connection per client, reused for all its requests.
        assert_eq!(accepted.load(SeqCst), CLIENTS);
        srv.stop().await;
    })
    .await
}

#[gmp::test(procs = 2)]
async fn graceful_shutdown_finishes_in_flight_request_and_closes_idle_ones() {
    watchdog(async {
        let (entered_tx, entered_rx) = gmp::chan::bounded::<()>(1);
        let (gate_tx, gate_rx) = gmp::chan::bounded::<()>(0);
        let svc = gmp::http::service_fn(move |req: Request| {
            let (entered_tx, gate_rx) = (entered_tx.clone(), gate_rx.clone());
            async move {
                if req.uri().path() == "/slow" {
                    entered_tx.send(()).await.unwrap();
                    let _ = gate_rx.recv().await;
                    return Ok::<_, std::convert::Infallible>(Response::new("slow done".into()));
                }
                Ok(Response::new("fast".into()))
            }
        });
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let srv = start_on(ln, svc, None).await;
        let addr = srv.addr;

        // An idle keep-alive connection: one request answered, then quiet.
        let mut idle = gmp::net::TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );

        // A connection that has sent nothing yet (the protocol unknown).
        let mut silent = gmp::net::TcpStream::connect(addr).await.unwrap();

        let in_flight = gmp::spawn(async move {
            let resp = gmp::http::get(&format!("http://{addr}/slow"))
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.into_body().bytes().await.unwrap())
        });
        entered_rx.recv().await.unwrap();

        let (served_tx, served_rx) = gmp::chan::bounded::<io::Result<()>>(1);
        let done = srv.done;
        gmp::go(async move {
            served_tx.send(done.await.unwrap()).await.unwrap();
        });
        (srv.cancel)();

        // New connects are refused once shutdown has begun.
        let mut refused = false;
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if gmp::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            gmp::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(refused, "the listener still accepts after shutdown began");
        // The idle connection is closed by the server.
        assert!(read_to_close(&mut idle).await.is_empty());
        // So is the silent one, well before the 30 s header timeout.
        let closed = gmp::time::timeout(Duration::from_secs(10), read_to_close(&mut silent)).await;
        assert!(
            closed.is_ok_and(|got| got.is_empty()),
            "a connection that sent nothing outlived the shutdown"
        );
        // serve waits for the request in flight.
        assert!(
            served_rx.try_recv().is_err(),
            "serve returned with a request in flight"
        );

        gate_tx.send(()).await.unwrap();
        let (status, body) = in_flight.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"slow done");
        served_rx.recv().await.unwrap().expect("serve failed");
    })
    .await
}

#[gmp::test(procs = 2)]
async fn handler_panic_fails_only_its_request() {
    watchdog(async {
        let srv = start(None).await;
        let base = format!("http://{}", srv.addr);
        // A neighbour connection, open across the panic.
        let neighbour = Client::new();
        let r = neighbour.get(&format!("{base}/")).await.unwrap();
        assert_eq!(r.into_body().bytes().await.unwrap(), "hello");

        let err = gmp::http::get(&format!("{base}/panic")).await;
        assert!(
            err.is_err(),
            "a panicking handler produced a response: {err:?}"
        );

        let r = neighbour.get(&format!("{base}/n/after")).await.unwrap();
        assert_eq!(r.into_body().bytes().await.unwrap(), "/n/after");
        let r = gmp::http::get(&format!("{base}/")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        drop(neighbour);
        srv.stop().await;
    })
    .await
}

#[gmp::test(procs = 2)]
async fn malformed_request_line_gets_400() {
    watchdog(async {
        let srv = start(None).await;
        let out = raw_exchange(srv.addr, b"GARBAGE\x01 NOT HTTP\r\n\r\n").await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 400"), "got {text:?}");
        srv.stop().await;
    })
    .await
}

#[gmp::test(procs = 2)]
async fn h2_prior_knowledge_gets_settings() {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    watchdog(async {
        let srv = start(None).await;
        let mut c = gmp::net::TcpStream::connect(srv.addr).await.unwrap();
        c.write_all(PREFACE).await.unwrap();
        c.write_all(&SETTINGS).await.unwrap();
        let mut head = [0u8; 9];
        c.read_exact(&mut head).await.unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]);
        assert_eq!(head[3], 4, "first frame is not SETTINGS: {head:?}");
        assert_eq!(head[4] & 1, 0, "first SETTINGS frame is an ACK");
        assert_eq!(&head[5..9], &[0, 0, 0, 0], "SETTINGS on a stream");
        assert_eq!(len % 6, 0, "SETTINGS payload is not whole settings");
        drop(c);
        srv.stop().await;
    })
    .await
}

/// The protocol is chosen from the first bytes; a request or preface that
/// arrives in pieces, split anywhere in or after those bytes, is served
/// whole.
#[gmp::test(procs = 2)]
async fn first_bytes_split_anywhere_still_choose_the_protocol() {
    const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    watchdog(async {
        let srv = start(None).await;
        for split in [1, 3, 10, 23, 24, 25, 40] {
            let mut c = gmp::net::TcpStream::connect(srv.addr).await.unwrap();
            c.write_all(&REQ[..split]).await.unwrap();
            // Separate segments: the server reads the first part alone.
            gmp::time::sleep(Duration::from_millis(20)).await;
            c.write_all(&REQ[split..]).await.unwrap();
            let text = String::from_utf8_lossy(&read_to_close(&mut c).await).into_owned();
            assert!(
                text.starts_with("HTTP/1.1 200"),
                "split {split}: got {text:?}"
            );
            assert!(text.ends_with("hello"), "split {split}: got {text:?}");
        }
        for split in [1, 4, 16, 23] {
            let mut c = gmp::net::TcpStream::connect(srv.addr).await.unwrap();
            c.write_all(&PREFACE[..split]).await.unwrap();
            gmp::time::sleep(Duration::from_millis(20)).await;
            c.write_all(&PREFACE[split..]).await.unwrap();
            c.write_all(&SETTINGS).await.unwrap();
            let mut head = [0u8; 9];
            c.read_exact(&mut head).await.unwrap();
            assert_eq!(
                head[3], 4,
                "split {split}: first frame is not SETTINGS: {head:?}"
            );
        }
        srv.stop().await;
    })
    .await
}

#[gmp::test(procs = 2)]
async fn slow_header_senders_are_dropped_after_header_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    watchdog(async {
        let srv = start(Some(TIMEOUT)).await;
        // Half a header; nothing at all; half an HTTP/2 preface.
        for sent in [&b"GET / HTTP/1.1\r\nHost: x\r\n"[..], b"", b"PRI * HT"] {
            let t0 = Instant::now();
            let out = raw_exchange(srv.addr, sent).await;
            let waited = t0.elapsed();
            assert!(
                waited >= TIMEOUT - Duration::from_millis(50),
                "closed after {waited:?}, before the header timeout"
            );
            let text = String::from_utf8_lossy(&out);
            assert!(
                out.is_empty() || text.starts_with("HTTP/1.1 408"),
                "sent {:?}, got {text:?}",
                String::from_utf8_lossy(sent)
            );
        }
        srv.stop().await;
    })
    .await
}

/// The header timeout restarts with every request head on a keep-alive
/// connection (the connection reuses one timer for them all): requests
/// spaced by less than the timeout, for longer than it in all, are all
/// answered; a half head afterwards is dropped after the timeout.
#[gmp::test(procs = 2)]
async fn header_timeout_restarts_for_each_keep_alive_request() {
    // Generous margins: a pause is a quarter of the timeout.
    const TIMEOUT: Duration = Duration::from_millis(600);
    const PAUSE: Duration = Duration::from_millis(150);
    watchdog(async {
        let srv = start(Some(TIMEOUT)).await;
        let mut c = gmp::net::TcpStream::connect(srv.addr).await.unwrap();
        let t0 = Instant::now();
        for i in 0..9 {
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"\r\n\r\nhello") {
                let n = c.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "request {i} ({:?} in): closed before its answer; got {:?}",
                    t0.elapsed(),
                    String::from_utf8_lossy(&got)
                );
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got.starts_with(b"HTTP/1.1 200"), "request {i}");
            gmp::time::sleep(PAUSE).await;
        }
        assert!(
            t0.elapsed() > 2 * TIMEOUT,
            "the requests did not outlast the timeout"
        );
        c.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        let half = Instant::now();
        let out = read_to_close(&mut c).await;
        let waited = half.elapsed();
        assert!(
            waited >= TIMEOUT - PAUSE - Duration::from_millis(50),
            "closed after {waited:?}, before the header timeout"
        );
        let text = String::from_utf8_lossy(&out);
        assert!(
            out.is_empty() || text.starts_with("HTTP/1.1 408"),
            "got {text:?}"
        );
        srv.stop().await;
    })
    .await
}

#[gmp::test(procs = 2)]
async fn pprof_goroutine_endpoint() {
    watchdog(async {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let srv = start_on(ln, gmp::http::pprof_handler(), None).await;
        let base = format!("http://{}/debug/pprof/goroutine", srv.addr);
        // An idle keep-alive connection, to find in the dump.
        let mut idle = gmp::net::TcpStream::connect(srv.addr).await.unwrap();
        idle.write_all(b"GET /debug/pprof/goroutine?debug=2 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        idle.read_exact(&mut buf[..12]).await.unwrap();
        assert_eq!(&buf[..12], b"HTTP/1.1 200");

        let mut text = String::new();
        let found = {
            let mut ok = false;
            let end = Instant::now() + Duration::from_secs(10);
            while !ok && Instant::now() < end {
                let r = gmp::http::get(&format!("{base}?debug=2")).await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                text = String::from_utf8_lossy(&r.into_body().bytes().await.unwrap()).into_owned();
                // The idle connection's goroutine waits on its socket and
                // names the accept loop as its creator.
                ok = text
                    .split("\n\n")
                    .any(|g| g.contains("[IO wait") && g.contains("gmp-http/src/serve.rs"));
            }
            ok
        };
        assert!(text.contains("goroutine 1 ["), "{text}");
        assert!(
            found,
            "no idle connection goroutine in IO wait created by serve:\n{text}"
        );
        drop(idle);

        // Go's text form counts every goroutine; debug=0 is gzipped
        // profile.proto (gzip's magic bytes first).
        let r = gmp::http::get(&format!("{base}?debug=1")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let text = String::from_utf8_lossy(&r.into_body().bytes().await.unwrap()).into_owned();
        assert!(text.starts_with("goroutine profile: total "), "{text}");
        let r = gmp::http::get(&base).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let gz = r.into_body().bytes().await.unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "not gzip");

        let r = gmp::http::get(&format!("{base}?debug=9")).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = gmp::http::get(&format!("http://{}/nope", srv.addr))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        srv.stop().await;
    })
    .await
}

#[gmp::test(procs = 2)]
async fn serves_over_unix_sockets() {
    watchdog(async {
        let path = std::env::temp_dir().join(format!("gmp-http-test-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let ln = gmp::net::UnixListener::bind(&path).await.unwrap();
        let (ctx, cancel) = gmp::context::with_cancel(&gmp::context::background());
        let done = gmp::spawn(
            gmp::http::serve(ln, gmp::http::service_fn(handler))
                .with_shutdown(ctx)
                .into_future(),
        );
        let mut c = gmp::net::UnixStream::connect(&path).await.unwrap();
        c.write_all(b"GET /n/unix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("/n/unix"), "{text}");
        cancel();
        done.await.unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
    })
    .await
}

#[gmp::test(procs = 2)]
async fn graceful_shutdown_sends_goaway_to_http2_connections() {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    const GOAWAY: u8 = 7;
    const PING: u8 = 6;
    watchdog(async {
        // A first-request deadline longer than the watchdog: the drain
        // itself must end the connection.
        let srv = start(Some(Duration::from_secs(120))).await;
        let mut c = gmp::net::TcpStream::connect(srv.addr).await.unwrap();
        c.write_all(PREFACE).await.unwrap();
        c.write_all(&SETTINGS).await.unwrap();
        let mut head = [0u8; 9];
        c.read_exact(&mut head).await.unwrap();
        assert_eq!(head[3], 4, "first frame is not SETTINGS");

        let done = srv.done;
        (srv.cancel)();
        // Act as a client would (acknowledge SETTINGS and PINGs) and
        // collect frames until the server closes: a GOAWAY must be among them.
        let mut frame_types = Vec::new();
        let mut payload = vec![0u8; 1 << 16];
        loop {
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            if c.read_exact(&mut payload[..len]).await.is_err() {
                break;
            }
            let (kind, ack) = (head[3], head[4] & 1 == 1);
            if kind == 4 && !ack {
                let _ = c.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).await;
            }
            if kind == PING && !ack {
                let mut pong = vec![0, 0, 8, PING, 1, 0, 0, 0, 0];
                pong.extend_from_slice(&payload[..8]);
                let _ = c.write_all(&pong).await;
            }
            if c.read_exact(&mut head).await.is_err() {
                break;
            }
            frame_types.push(head[3]);
        }
        assert!(
            frame_types.contains(&GOAWAY),
            "no GOAWAY before close: {frame_types:?}"
        );
        done.await.unwrap().unwrap();
    })
    .await
}

#[gmp::test(procs = 2)]
async fn http2_streams_run_and_a_panic_resets_only_its_stream() {
    use gmp::http::rt::{GmpExecutor, GmpIo};
    watchdog(async {
        let srv = start(None).await;
        let tcp = gmp::net::TcpStream::connect(srv.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(GmpExecutor, GmpIo::new(tcp))
                .await
                .unwrap();
        let driver = gmp::spawn(conn);
        let send = |sender: &mut hyper::client::conn::http2::SendRequest<Body>, path: &str| {
            let req = hyper::Request::builder()
                .uri(format!("http://{}{path}", srv.addr))
                .body(Body::empty())
                .unwrap();
            sender.send_request(req)
        };
        let panicked = send(&mut sender, "/panic").await;
        assert!(panicked.is_err(), "a panicking handler produced a response");
        // The same connection still serves other streams.
        for i in 0..3 {
            let resp = send(&mut sender, &format!("/n/h2/{i}")).await.unwrap();
            assert_eq!(resp.version(), gmp::http::Version::HTTP_2);
            let body = Body::from(resp.into_body()).bytes().await.unwrap();
            assert_eq!(body, format!("/n/h2/{i}").as_bytes());
        }
        drop(sender);
        driver.await.unwrap().unwrap();
        srv.stop().await;
    })
    .await
}
