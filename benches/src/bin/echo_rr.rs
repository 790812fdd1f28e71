//! Syscalls per request/response on a gmp connection, for `strace -c -f`:
//! a gmp server goroutine reads a request into an 8 KiB buffer and answers
//! with a vectored write (header + body); a plain-thread std client makes
//! `N` blocking round trips. Ideal: per round trip, the server makes one
//! `recvfrom` and one `sendmsg`, the client one `sendto` and one
//! `recvfrom`.
//!
//! `strace -c -f -e trace=recvfrom,sendto,sendmsg,writev,read,write,epoll_wait \
//!   target/release/echo_rr 10000`

use futures::{AsyncReadExt, AsyncWriteExt};
use std::io::{IoSlice, Read, Write};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("round trips: a number"))
        .unwrap_or(10_000);
    let rt = gmp::Runtime::builder().procs(1).build().unwrap();
    rt.block_on(async move {
        let ln = gmp::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = ln.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            let mut buf = [0u8; 64];
            for _ in 0..n {
                c.write_all(b"ping").unwrap();
                let mut got = 0;
                while got < 9 {
                    got += c.read(&mut buf[got..]).unwrap();
                }
            }
        });
        // The server is an ordinary goroutine (not main), as in a server.
        let server = gmp::spawn(async move {
            let (mut s, _) = ln.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let parts = [IoSlice::new(b"pong:"), IoSlice::new(b"body")];
                        let w = s.write_vectored(&parts).await.unwrap();
                        assert_eq!(w, 9);
                    }
                }
            }
        });
        server.await.unwrap();
        gmp::syscall(|| client.join().unwrap());
    });
}
