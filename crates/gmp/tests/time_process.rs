//! Timer checks that measure the whole process (open descriptors, CPU
//! time), so they run one at a time in a test binary of their own.

use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes the struct we pass and nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A runtime that ends with timers pending (a sleeping goroutine, an
/// unfired `after`, a Ticker, a `timeout`, a context deadline, a socket
/// deadline) is freed with its netpoller: the descriptor count is back
/// where it started after 200 of them.
#[test]
fn runtimes_ending_with_pending_timers_leak_no_fds() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !std::path::Path::new("/proc/self/fd").exists() {
        println!("skipped: no /proc/self/fd");
        return;
    }
    let run = || {
        let rt = gmp::Runtime::builder().procs(2).build().unwrap();
        rt.block_on(async {
            gmp::go(async { gmp::time::sleep(Duration::from_secs(3600)).await });
            gmp::go(async {
                let _ = gmp::time::timeout(Duration::from_secs(3600), std::future::pending::<()>())
                    .await;
            });
            let (ctx, _cancel) =
                gmp::context::with_timeout(&gmp::context::background(), Duration::from_secs(3600));
            gmp::go(async move {
                let _ = ctx.done().recv().await;
            });
            let _ticker = gmp::time::Ticker::new(Duration::from_secs(3600));
            let _after = gmp::time::after(Duration::from_secs(3600));
            let _f = gmp::time::after_func(Duration::from_secs(3600), || {});
            let sock = gmp::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            sock.set_read_deadline(Some(std::time::Instant::now() + Duration::from_secs(3600)));
            gmp::go(async move {
                let mut buf = [0u8; 8];
                let _ = sock.recv_from(&mut buf).await;
            });
            gmp::time::sleep(Duration::from_millis(1)).await;
        });
    };
    run(); // process-wide lazy set-up (signal pipes) happens here
    let before = open_fds();
    for _ in 0..200 {
        run();
    }
    // `block_on` returns without waiting for the runtime's Ms to leave;
    // the last one out drops the runtime and its netpoller, so the count
    // settles a moment later.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut after = open_fds();
    while after > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        after = open_fds();
    }
    assert!(
        after <= before,
        "open fds went from {before} to {after} over 200 runtimes"
    );
}

/// A sleep past 2^64 ns does not wrap into a short one that re-arms
/// forever (which burned CPU): the process stays idle while it waits.
#[test]
fn a_sleep_past_u64_nanoseconds_burns_no_cpu() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rt = gmp::Runtime::builder().procs(2).build().unwrap();
    let used = rt.block_on(async {
        let d = Duration::from_nanos(u64::MAX) + Duration::from_millis(50);
        gmp::go(async move { gmp::time::sleep(d).await });
        gmp::go(async move {
            let _ = gmp::time::after(d).recv().await;
        });
        gmp::time::sleep(Duration::from_millis(20)).await;
        let c0 = cpu_time();
        gmp::time::sleep(Duration::from_millis(500)).await;
        cpu_time() - c0
    });
    // Idle waiting costs microseconds; the wrapped timer spun two cores.
    assert!(
        used < Duration::from_millis(250),
        "{used:?} of CPU in 500 ms of waiting"
    );
}
