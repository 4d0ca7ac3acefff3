//! Soak test: the conformance app under a long run of random requests, with
//! clients that abort mid-response and requests that make the app fail.
//!
//! ```text
//! cargo run --release --example soak                        # full size: 200000 requests
//! cargo run --example soak -- --requests 20000               # the size .ci/run uses
//! ```
//!
//! Checks, and exits non-zero if any fails: no failure beyond the injected
//! ones; every body the app returned was closed (`/counters`); the live heap
//! (counted exactly by a wrapping allocator) grew by less than 16 KiB after a
//! warm-up of 40% of the requests; the thread count went back to its baseline
//! once the load stopped. Resident memory is reported against a 10% target
//! and fails the run at 25%: unlike the heap count, RSS also moves with the
//! allocator's fragmentation.
#![deny(warnings)]

#[path = "conformance.rs"]
#[allow(unreachable_pub)]
mod conformance;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::net::TcpStream;

// Counts live heap bytes exactly: a leak shows there, whatever the
// allocator's fragmentation does to the resident set size.
#[global_allocator]
static HEAP: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed, by anyone in this process.
fn live_heap() -> i64 {
    let stats = HEAP.stats();
    // Reallocations are booked in both counters already.
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

/// What a request is expected to do.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 200 with exactly this many body bytes.
    Body(usize),
    /// A HEAD answer: 200, no body.
    Head,
    /// 500 before anything was sent (injected fault).
    Status500,
    /// 200 whose body ends in an error (injected fault after the headers).
    Truncated,
    /// The client hangs up after the first body frame.
    Abort,
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    faults: AtomicU64,
    aborts: AtomicU64,
    unexpected: AtomicU64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pick(rng: &mut Rng) -> (Method, String, Bytes, Expect) {
    let roll = rng.below(100);
    if roll < 10 {
        return (
            Method::GET,
            "/stream?n=64&size=16384".into(),
            Bytes::new(),
            Expect::Abort,
        );
    }
    if roll < 15 {
        return match rng.below(5) {
            0 => (
                Method::GET,
                "/error?when=before".into(),
                Bytes::new(),
                Expect::Status500,
            ),
            1 => (
                Method::GET,
                "/error?when=after-start".into(),
                Bytes::new(),
                Expect::Status500,
            ),
            2 => (
                Method::GET,
                "/error?when=mid-body".into(),
                Bytes::new(),
                Expect::Truncated,
            ),
            3 => (
                Method::GET,
                "/respond?status=abc".into(),
                Bytes::new(),
                Expect::Status500,
            ),
            _ => (
                Method::GET,
                "/start-twice".into(),
                Bytes::new(),
                Expect::Status500,
            ),
        };
    }
    match rng.below(6) {
        0 => {
            let chunks = 1 + rng.below(8) as usize;
            let via = ["iter", "write", "mixed", "empty-first"][rng.below(4) as usize];
            (
                Method::GET,
                format!("/respond?chunks={chunks}&via={via}&body=soak"),
                Bytes::new(),
                Expect::Body(chunks * 4),
            )
        }
        1 => {
            let n = 1 + rng.below(16) as usize;
            (
                Method::GET,
                format!("/stream?n={n}&size=4096&cl=auto"),
                Bytes::new(),
                Expect::Body(n * 4096),
            )
        }
        2 => {
            let size = rng.below(20_000) as usize;
            let body = Bytes::from(vec![b'u'; size]);
            (
                Method::POST,
                "/input?mode=echo".into(),
                body,
                Expect::Body(size),
            )
        }
        3 => (
            Method::HEAD,
            "/respond?chunks=3".into(),
            Bytes::new(),
            Expect::Head,
        ),
        4 => (
            Method::GET,
            "/error?when=in-close".into(),
            Bytes::new(),
            Expect::Body(13),
        ),
        _ => (
            Method::GET,
            "/respond?cl=none&body=unframed".into(),
            Bytes::new(),
            Expect::Body(8),
        ),
    }
}

/// One client: a keep-alive connection, reopened whenever it ends.
async fn client(addr: SocketAddr, requests: u64, seed: u64, tally: Arc<Tally>) {
    let mut rng = Rng(seed | 1);
    let mut sender = None;
    for _ in 0..requests {
        let (method, target, upload, expect) = pick(&mut rng);
        if sender
            .as_ref()
            .is_none_or(|s: &hyper::client::conn::http1::SendRequest<Full<Bytes>>| s.is_closed())
        {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            sender = Some(s);
        }
        let s = sender.as_mut().unwrap();
        if s.ready().await.is_err() {
            sender = None;
            continue;
        }
        let request = Request::builder()
            .method(method)
            .uri(target)
            .header("host", "soak")
            .body(Full::new(upload))
            .unwrap();
        let outcome = match s.send_request(request).await {
            Ok(response) => judge(response, expect).await,
            Err(_) => false,
        };
        let counter = match (outcome, expect) {
            (false, _) => &tally.unexpected,
            (true, Expect::Abort) => {
                sender = None; // hung up mid-response
                &tally.aborts
            }
            (true, Expect::Status500 | Expect::Truncated) => &tally.faults,
            (true, _) => &tally.ok,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

async fn judge(response: http::Response<hyper::body::Incoming>, expect: Expect) -> bool {
    let status = response.status();
    let mut body = response.into_body();
    match expect {
        Expect::Abort => status == StatusCode::OK && matches!(body.frame().await, Some(Ok(_))),
        Expect::Status500 => status == 500 && body.collect().await.is_ok(),
        Expect::Truncated => status == 200 && body.collect().await.is_err(),
        Expect::Head => {
            status == 200 && body.collect().await.is_ok_and(|b| b.to_bytes().is_empty())
        }
        Expect::Body(n) => {
            status == 200 && body.collect().await.is_ok_and(|b| b.to_bytes().len() == n)
        }
    }
}

/// `VmRSS` (KiB) and `Threads` of this process.
fn rss_and_threads() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

async fn counters(addr: SocketAddr) -> (u64, u64) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let request = Request::get("/counters")
        .header("host", "soak")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let body = sender
        .send_request(request)
        .await
        .expect("counters")
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    (
        json["started"].as_u64().unwrap_or(0),
        json["closed"].as_u64().unwrap_or(0),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut total: u64 = 200_000;
    let mut clients: u64 = 32;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--requests" => {
                total = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--requests N")
            }
            "--clients" => {
                clients = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--clients N")
            }
            other => panic!("unknown argument {other}"),
        }
    }

    let (_, baseline_threads) = rss_and_threads();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = server_rt
        .block_on(tower_wsgi::server::Server::bind("127.0.0.1:0"))
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        // A pool smaller than the client count: it is full from the warm-up
        // on (so memory is compared at the same thread count) and requests
        // also queue for a thread.
        let service = tower_wsgi::Builder::new()
            .max_threads(16)
            .build(conformance::app());
        server_rt.block_on(server.serve_with_shutdown(service, async {
            let _ = stop_rx.await;
        }))
    });
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let idle_threads = rss_and_threads().1;

    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let run = |requests: u64, seed: u64| {
        let tally = tally.clone();
        client_rt.block_on(async move {
            let per_client = requests / clients;
            let tasks: Vec<_> = (0..clients)
                .map(|i| tokio::spawn(client(addr, per_client, seed * 1000 + i, tally.clone())))
                .collect();
            for task in tasks {
                task.await.expect("client task");
            }
        });
    };
    // Warm-up: the pool's threads, their allocator arenas and the buffers
    // reach their working size. Measured at 200,000 requests: RSS still
    // settles until about 40% (glibc arena fragmentation, about 1 MiB), then
    // stays flat; a leak would keep growing with the requests, as the trend
    // line shows.
    run(total / 10 * 4, 1);
    // Connections the clients closed finish closing on the server's side.
    std::thread::sleep(Duration::from_millis(200));
    let (warm_rss, busy_threads) = rss_and_threads();
    let warm_heap = live_heap();
    let mut samples = Vec::new();
    for step in 0..6 {
        run(total / 10, 2 + step);
        std::thread::sleep(Duration::from_millis(200));
        samples.push((rss_and_threads(), live_heap()));
    }
    let elapsed = started.elapsed();
    let (end_rss, _) = rss_and_threads();
    let end_heap = live_heap();

    // Every response ended, but a close() can trail an aborted client slightly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut opened, mut closed) = client_rt.block_on(counters(addr));
    while opened != closed && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        (opened, closed) = client_rt.block_on(counters(addr));
    }
    // Idle application threads end after 10 s without work.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut threads = rss_and_threads().1;
    while threads > idle_threads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        threads = rss_and_threads().1;
    }
    let _ = stop_tx.send(());
    serving.join().expect("server thread").expect("server");

    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let done = get(&tally.ok) + get(&tally.faults) + get(&tally.aborts) + get(&tally.unexpected);
    let growth = (end_rss as f64 - warm_rss as f64) / warm_rss as f64 * 100.0;
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| requests | {done} in {:.1} s ({:.0}/s), {clients} clients |",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
    println!(
        "| answered as expected | {} ok, {} injected faults, {} client aborts |",
        get(&tally.ok),
        get(&tally.faults),
        get(&tally.aborts)
    );
    println!("| unexpected failures | {} |", get(&tally.unexpected));
    println!("| bodies started / closed | {opened} / {closed} |");
    println!("| RSS warmed up / end | {warm_rss} KiB / {end_rss} KiB ({growth:+.1}%) |");
    println!("| threads before / idle server / busy / after | {baseline_threads} / {idle_threads} / {busy_threads} / {threads} |");
    let trend: Vec<String> = samples
        .iter()
        .map(|((rss, threads), heap)| {
            format!("{rss} KiB RSS / {} KiB heap ({threads} thr)", heap / 1024)
        })
        .collect();
    println!(
        "| after each further 10% of the requests | {} |",
        trend.join(", ")
    );
    println!(
        "| live heap warmed up / end | {} KiB / {} KiB ({:+} bytes) |",
        warm_heap / 1024,
        end_heap / 1024,
        end_heap - warm_heap
    );

    let mut failed = Vec::new();
    if get(&tally.unexpected) > 0 {
        failed.push("unexpected failures");
    }
    if opened != closed {
        failed.push("bodies left unclosed");
    }
    // The exact leak gate. Observed noise: under 1 KiB.
    if end_heap - warm_heap >= 16 * 1024 {
        failed.push("the live heap grew by 16 KiB or more: a leak");
    }
    // RSS also moves with the allocator's fragmentation (measured up to +9.1%
    // at full size with a flat live heap), so it fails only on gross growth.
    if growth >= 25.0 {
        failed.push("RSS grew 25% or more");
    } else if growth >= 10.0 {
        println!("note: RSS grew {growth:.1}%, above the 10% target, with the live heap flat");
    }
    if threads > idle_threads {
        failed.push("threads did not return to the baseline");
    }
    if failed.is_empty() {
        println!("soak: PASS");
    } else {
        println!("soak: FAIL ({})", failed.join(", "));
        std::process::exit(1);
    }
}
