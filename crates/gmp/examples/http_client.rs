//! An HTTP client: `gmp::http::get` as Go's `http.Get`, and a `Client`
//! (keep-alive pool) for a POST and a few concurrent GETs.
//!
//! Start the `http_server` example, then
//! `cargo run --release -p gmp --features http --example http_client [base-url]`
//! (default http://127.0.0.1:8080).

use gmp::http::{Body, Client, Method, Request};

#[gmp::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());

    let resp = gmp::http::get(&format!("{base}/")).await?;
    println!("GET / -> {}", resp.status());
    print!(
        "{}",
        String::from_utf8_lossy(&resp.into_body().bytes().await?)
    );

    let client = Client::new();
    let mut req = Request::new(Body::from("hello from gmp"));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = format!("{base}/echo").parse()?;
    let resp = client.request(req).await?;
    println!("POST /echo -> {}", resp.status());
    print!(
        "{}",
        String::from_utf8_lossy(&resp.into_body().bytes().await?)
    );

    // Ten GETs at once, each in its own goroutine, sharing the pool.
    let mut handles = Vec::new();
    for i in 0..10 {
        let (client, url) = (client.clone(), format!("{base}/slow?ms=100"));
        handles.push(gmp::spawn(async move {
            let resp = client.get(&url).await?;
            let status = resp.status();
            resp.into_body().bytes().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((i, status))
        }));
    }
    for h in handles {
        let (i, status) = h.await??;
        println!("slow #{i} -> {status}");
    }
    Ok(())
}
