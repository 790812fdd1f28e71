//! A TCP echo server: one goroutine per connection, as in Go.
//!
//! `cargo run --release --example echo_server [addr]` (default
//! 127.0.0.1:7007); drive it with the `echo_client` example.

use futures::{AsyncReadExt, AsyncWriteExt};

#[gmp::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7007".into());
    let ln = gmp::net::TcpListener::bind(addr.as_str()).await?;
    println!("echo server listening on {}", ln.local_addr()?);
    loop {
        let (mut conn, _peer) = ln.accept().await?;
        gmp::go(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}
