//! The public surface as a user writes it through the facade
//! (`gmp::http`): a server with graceful shutdown on a context, `get`
//! with `?`, the pprof service and hyper's runtime traits by name.

mod common;

use common::watchdog;

async fn server_and_client() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = ln.local_addr()?;
    let (ctx, cancel) = gmp::context::with_cancel(&gmp::context::background());
    let srv_ctx = ctx.clone();
    let server = gmp::spawn(async move {
        gmp::http::serve(
            ln,
            gmp::http::service_fn(|_req: gmp::http::Request| async move {
                Ok::<_, std::convert::Infallible>(gmp::http::Response::new("hello".into()))
            }),
        )
        .with_shutdown(srv_ctx)
        .await
    });
    let resp = gmp::http::get(&format!("http://{addr}/")).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.into_body().bytes().await?, "hello");
    cancel();
    server.await??;
    assert!(ctx.err().is_some());
    Ok(())
}

#[gmp::test(procs = 2)]
async fn facade_surface_round_trip() {
    watchdog(server_and_client()).await.unwrap();
}

#[test]
fn runtime_trait_types_are_named() {
    fn executor<
        E: hyper::rt::Executor<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
    >(
        _: E,
    ) {
    }
    fn timer<T: hyper::rt::Timer>(_: T) {}
    fn io<I: hyper::rt::Read + hyper::rt::Write>(_: Option<I>) {}
    executor(gmp::http::rt::GmpExecutor);
    timer(gmp::http::rt::GmpTimer);
    io::<gmp::http::rt::GmpIo<gmp::net::TcpStream>>(None);
    let _ = gmp::http::pprof_handler();
}
