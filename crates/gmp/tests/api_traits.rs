//! API shape checks: the public handles are Send + Sync (and Clone
//! where promised); error types work with `?` into `Box<dyn Error + Send + Sync>`.

fn is_send_sync<T: Send + Sync>() {}
fn is_clone<T: Clone>() {}
#[test]
fn traits() {
    is_send_sync::<gmp::context::Context>();
    is_clone::<gmp::context::Context>();
    is_send_sync::<gmp::chan::Sender<u8>>();
    is_send_sync::<gmp::chan::Receiver<u8>>();
    is_send_sync::<gmp::sync::WaitGroup>();
    is_send_sync::<gmp::sync::Mutex<u8>>();
    is_send_sync::<gmp::JoinHandle<u8>>();
    is_send_sync::<gmp::net::TcpStream>();
    fn err<E: std::error::Error + Send + Sync + 'static>() {}
    err::<gmp::JoinError>();
    err::<gmp::chan::SendError<u8>>();
    err::<gmp::chan::RecvError>();
    err::<gmp::chan::TrySendError<u8>>();
    err::<gmp::chan::TryRecvError>();
    err::<gmp::time::Elapsed>();
    err::<gmp::context::Error>();
}
