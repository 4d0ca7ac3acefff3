//! The benchmark: tower-wsgi against bare hyper, side by side, in one run.
//!
//! ```text
//! cargo run --release --example bench            # every workload, prints a table
//! cargo run --release --example bench -- hello   # only the rows named
//! ```
//!
//! Each server runs in a child process of its own (this binary with
//! `serve MODE ADDR`), so its peak RSS (`VmHWM`) and thread count are its
//! own. Request rates and latencies come from `wrk` (Debian's `wrk` package;
//! `.ci/run` installs it); byte streams, uploads, the slow reader and the
//! 10,000 idle connections are driven by this harness over plain sockets.
//! Where `granian` is on the `PATH` (PyPI), a row shows it serving the
//! Python original of the hello app.
//!
//! Environment: `BENCH_SECONDS` (wrk run length, default 10),
//! `BENCH_SLOW_SECONDS` (slow-reader length, default 20).
#![deny(warnings)]

// Every server runs on mimalloc, as production Rust servers commonly do:
// with blocking dispatch each request's memory is allocated on one thread
// and freed on another, and glibc's malloc serialises that on its arena
// locks (measured here: blocking dispatch 0.71x to 0.80x of bare hyper on
// glibc, 0.93x to 1.01x on mimalloc; bare hyper itself gains nothing).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::convert::Infallible;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use tower_wsgi::{AppBody, BoxError, Builder, Environ, StartResponse, WsgiService};

const HELLO: &[u8] = b"Hello world";
const CHUNK: usize = 64 * 1024;
static CHUNK_BYTES: [u8; CHUNK] = [b'x'; CHUNK];
const STREAM_BYTES: u64 = 1 << 30;
const UPLOAD_BYTES: u64 = 256 << 20;
const IDLE_CONNECTIONS: usize = 10_000;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let (Some(mode), Some(addr)) = (args.get(1), args.get(2)) else {
            return Err("usage: bench serve MODE ADDR".into());
        };
        return serve(mode, addr);
    }
    let only: Vec<&str> = args.iter().map(String::as_str).collect();
    let wanted = |group: &str| only.is_empty() || only.contains(&group);
    let seconds = env_u64("BENCH_SECONDS", 10);
    let mut table = Table::default();
    println!("{}", machine());

    if wanted("hello") {
        let bare = hello_row(&mut table, "bare hyper", "bare-hello", None, seconds)?;
        hello_row(
            &mut table,
            "hyper + spawn_blocking per request (naive)",
            "spawn-blocking-hello",
            Some(&bare),
            seconds,
        )?;
        hello_row(
            &mut table,
            "tower-wsgi, blocking dispatch",
            "wsgi-hello",
            Some(&bare),
            seconds,
        )?;
        hello_row(
            &mut table,
            "tower-wsgi, inline dispatch",
            "wsgi-inline-hello",
            Some(&bare),
            seconds,
        )?;
        granian_row(&mut table, &bare, seconds)?;
    }
    if wanted("stream") {
        transfer_rows(
            &mut table,
            ("bare hyper, 1 GiB stream", "bare-stream"),
            ("tower-wsgi, 1 GiB stream", "wsgi-stream"),
            STREAM_BYTES,
            |addr| Ok(fetch_stream(addr)?.1),
        )?;
    }
    if wanted("slow") {
        let secs = env_u64("BENCH_SLOW_SECONDS", 20);
        slow_row(
            &mut table,
            "bare hyper, slow reader 1 MiB/s",
            "bare-stream",
            secs,
        )?;
        slow_row(
            &mut table,
            "tower-wsgi, slow reader 1 MiB/s",
            "wsgi-stream",
            secs,
        )?;
    }
    if wanted("upload") {
        transfer_rows(
            &mut table,
            ("bare hyper, 256 MiB upload", "bare-upload"),
            ("tower-wsgi, 256 MiB upload (wsgi.input)", "wsgi-upload"),
            UPLOAD_BYTES,
            upload_once,
        )?;
    }
    if wanted("idle") {
        let seconds = seconds.min(10);
        let bare = idle_row(
            &mut table,
            "bare hyper, 10k idle keep-alive + load",
            "bare-hello",
            None,
            seconds,
        )?;
        idle_row(
            &mut table,
            "tower-wsgi, 10k idle keep-alive + load",
            "wsgi-hello",
            Some(&bare),
            seconds,
        )?;
    }
    table.print();
    Ok(())
}

// ---------------------------------------------------------------- servers

fn serve(mode: &str, addr: &str) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The idle row holds 10,000 connections open, some silent for long on
        // a loaded machine: past the default connection limit and idle timeout.
        let server = tower_wsgi::server::Server::bind(addr)
            .await?
            .max_connections(2 * IDLE_CONNECTIONS)
            .idle_timeout(Duration::from_secs(3600));
        let addr = server.local_addr()?;
        println!("listening on {addr}");
        match mode {
            "bare-hello" => server.serve(tower::service_fn(bare_hello)).await?,
            "spawn-blocking-hello" => {
                server
                    .serve(tower::service_fn(spawn_blocking_hello))
                    .await?
            }
            "wsgi-hello" => server.serve(WsgiService::new(hello)).await?,
            "wsgi-inline-hello" => {
                server
                    .serve(Builder::new().inline(true).build(hello))
                    .await?
            }
            "bare-stream" => server.serve(tower::service_fn(bare_stream)).await?,
            "wsgi-stream" => server.serve(WsgiService::new(stream)).await?,
            "bare-upload" => server.serve(tower::service_fn(bare_upload)).await?,
            "wsgi-upload" => server.serve(WsgiService::new(upload)).await?,
            other => return Err(format!("unknown mode {other}").into()),
        }
        Ok(())
    })
}

fn hello_response() -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(HELLO)))
        .expect("static response")
}

async fn bare_hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(hello_response())
}

async fn spawn_blocking_hello(
    _req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(tokio::task::spawn_blocking(hello_response)
        .await
        .expect("the closure does not panic"))
}

// def hello(environ, start_response):
//     start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
//     return [b"Hello world"]
fn hello(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", "11")],
    )?;
    Ok(AppBody::from(Bytes::from_static(HELLO)))
}

fn chunks() -> impl Iterator<Item = Bytes> {
    (0..STREAM_BYTES / CHUNK as u64).map(|_| Bytes::from_static(&CHUNK_BYTES))
}

async fn bare_stream(_req: Request<Incoming>) -> Result<Response<Chunks>, Infallible> {
    Ok(Response::builder()
        .header("content-length", STREAM_BYTES)
        .body(Chunks {
            left: STREAM_BYTES / CHUNK as u64,
        })
        .expect("static response"))
}

/// The bare hyper side of the stream: the same chunks, as an `http_body::Body`.
struct Chunks {
    left: u64,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK_BYTES)))))
    }
}

fn stream(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "application/octet-stream".to_owned()),
            ("Content-Length", STREAM_BYTES.to_string()),
        ],
    )?;
    Ok(AppBody::from_chunks(chunks()))
}

async fn bare_upload(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut body = req.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => received += frame.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => break,
        }
    }
    Ok(Response::new(Full::new(Bytes::from(received.to_string()))))
}

fn upload(mut environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    let mut buf = vec![0; CHUNK];
    let mut received = 0u64;
    loop {
        match environ.input().read(&mut buf)? {
            0 => break,
            n => received += n as u64,
        }
    }
    let body = received.to_string();
    start_response.start("200 OK", [("Content-Length", body.len().to_string())])?;
    Ok(body.into())
}

// ---------------------------------------------------------------- harness

/// A server in a child process.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(mode: &str) -> Result<Self, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", mode, "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("server said {line:?}"))?
            .parse()?;
        Ok(Self { child, addr })
    }

    fn status_field(&self, field: &str) -> u64 {
        proc_status_field(self.child.id(), field)
    }

    /// Peak resident set size, in bytes.
    fn peak_rss(&self) -> u64 {
        self.status_field("VmHWM:") * 1024
    }

    fn rss(&self) -> u64 {
        self.status_field("VmRSS:") * 1024
    }

    fn threads(&self) -> u64 {
        self.status_field("Threads:")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// One wrk run.
#[derive(Clone, Debug, Default)]
struct Load {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn wrk(addr: SocketAddr, connections: usize, seconds: u64) -> Result<Load, BoxError> {
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            &format!("http://{addr}/"),
        ])
        .output()
        .map_err(|e| format!("could not run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut load = Load::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            load.requests_per_sec = rate.trim().parse()?;
        } else if let Some(p) = line.strip_prefix("50%") {
            load.p50_ms = parse_duration_ms(p.trim())?;
        } else if let Some(p) = line.strip_prefix("99%") {
            load.p99_ms = parse_duration_ms(p.trim())?;
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.errors += n.trim().parse::<u64>()?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            load.errors += errors
                .split(',')
                .filter_map(|e| e.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    if load.requests_per_sec == 0.0 {
        return Err(format!("wrk printed no rate:\n{text}").into());
    }
    Ok(load)
}

fn parse_duration_ms(text: &str) -> Result<f64, BoxError> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or("no unit")?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    Ok(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => return Err(format!("unknown unit {unit}").into()),
    })
}

fn hello_row(
    table: &mut Table,
    name: &str,
    mode: &str,
    bare: Option<&Load>,
    seconds: u64,
) -> Result<Load, BoxError> {
    let server = ServerProcess::start(mode)?;
    hello_load_row(table, name, &server, bare, seconds)
}

fn hello_load_row(
    table: &mut Table,
    name: &str,
    server: &ServerProcess,
    bare: Option<&Load>,
    seconds: u64,
) -> Result<Load, BoxError> {
    check_hello(server.addr)?;
    wrk(server.addr, 64, 2)?; // warm-up
    let load = wrk(server.addr, 64, seconds)?;
    table.push(Row {
        workload: name.to_owned(),
        rate: format!("{:.0} req/s", load.requests_per_sec),
        p50: format!("{:.2} ms", load.p50_ms),
        p99: format!("{:.2} ms", load.p99_ms),
        peak_rss: server.peak_rss(),
        ratio: bare.map(|bare| {
            format!(
                "{:.2}x (p99 {:.2}x)",
                load.requests_per_sec / bare.requests_per_sec,
                load.p99_ms / bare.p99_ms
            )
        }),
        note: errors_note(load.errors),
    });
    Ok(load)
}

fn errors_note(errors: u64) -> String {
    if errors == 0 {
        String::new()
    } else {
        format!("{errors} failed requests")
    }
}

/// One request on a fresh connection: the server answers the hello.
fn check_hello(addr: SocketAddr) -> Result<(), BoxError> {
    let mut conn = TcpStream::connect(addr)?;
    conn.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)?;
    if !response.starts_with(b"HTTP/1.1 200") || !response.ends_with(HELLO) {
        return Err(format!("unexpected answer: {}", String::from_utf8_lossy(&response)).into());
    }
    Ok(())
}

fn granian_row(table: &mut Table, bare: &Load, seconds: u64) -> Result<(), BoxError> {
    let dir = std::env::temp_dir().join("tower-wsgi-bench-granian");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("hello_app.py"),
        "def app(environ, start_response):\n    \
         start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '11')])\n    \
         return [b'Hello world']\n",
    )?;
    let port = free_port()?;
    let spawned = Command::new("granian")
        .args([
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--workers",
            "1",
        ])
        .args(["--port", &port.to_string(), "hello_app:app"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = spawned else {
        println!("(granian is not on the PATH: no Granian row; `pip install granian` adds one)");
        return Ok(());
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = ServerProcess { child, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            return Err("granian did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    hello_load_row(
        table,
        "Granian (Python WSGI, 1 worker)",
        &server,
        Some(bare),
        seconds,
    )?;
    Ok(())
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Sends a GET and reads the whole response, throwing the body away;
/// returns the body length and the time it took.
fn fetch_stream(addr: SocketAddr) -> Result<(u64, Duration), BoxError> {
    let started = Instant::now();
    let mut conn = TcpStream::connect(addr)?;
    conn.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")?;
    let (head, mut body) = read_head(&mut conn)?;
    let length = content_length(&head)?;
    let mut buf = vec![0; 256 * 1024];
    while body < length {
        match conn.read(&mut buf)? {
            0 => return Err(format!("stream ended after {body} of {length} bytes").into()),
            n => body += n as u64,
        }
    }
    Ok((body, started.elapsed()))
}

/// Reads up to the end of the head: the head, and how many body bytes came with it.
fn read_head(conn: &mut TcpStream) -> Result<(String, u64), BoxError> {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Err("connection closed before the head ended".into());
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            return Ok((head, (seen.len() - end - 4) as u64));
        }
    }
}

fn content_length(head: &str) -> Result<u64, BoxError> {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| format!("no Content-Length in {head}").into())
}

/// Times one transfer of `bytes` against bare hyper and against tower-wsgi,
/// alternating between the two servers so both see the same machine, and
/// keeps the best of five each.
fn transfer_rows(
    table: &mut Table,
    (bare_name, bare_mode): (&str, &str),
    (wsgi_name, wsgi_mode): (&str, &str),
    bytes: u64,
    once: impl Fn(SocketAddr) -> Result<Duration, BoxError>,
) -> Result<(), BoxError> {
    let servers = [
        ServerProcess::start(bare_mode)?,
        ServerProcess::start(wsgi_mode)?,
    ];
    let mut best = [f64::MAX; 2];
    for round in 0..6 {
        for (server, best) in servers.iter().zip(&mut best) {
            let took = once(server.addr)?.as_secs_f64();
            // The first round warms up.
            if round > 0 {
                *best = best.min(took);
            }
        }
    }
    let rates = best.map(|took| bytes as f64 / took);
    for (i, (server, name)) in servers.iter().zip([bare_name, wsgi_name]).enumerate() {
        let rate = rates[i];
        let ratio = match i {
            0 => "baseline".to_owned(),
            _ => format!("{:.2}x", rate / rates[0]),
        };
        table.push(Row {
            workload: name.to_owned(),
            rate: format!("{:.2} GiB/s", rate / (1u64 << 30) as f64),
            p50: String::new(),
            p99: String::new(),
            peak_rss: server.peak_rss(),
            ratio: Some(ratio),
            note: "best of 5, runs alternating with the other server".to_owned(),
        });
    }
    Ok(())
}

fn slow_row(table: &mut Table, name: &str, mode: &str, seconds: u64) -> Result<(), BoxError> {
    let server = ServerProcess::start(mode)?;
    let mut conn = TcpStream::connect(server.addr)?;
    conn.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")?;
    read_head(&mut conn)?;
    let mut buf = vec![0; 64 * 1024];
    let mut samples = Vec::new();
    let started = Instant::now();
    for second in 1..=seconds {
        let mut this_second = 0;
        while this_second < 1 << 20 {
            let want = (1 << 20) - this_second;
            let take = want.min(buf.len());
            let n = conn.read(&mut buf[..take])?;
            if n == 0 {
                return Err("the stream ended early".into());
            }
            this_second += n;
        }
        samples.push(server.rss());
        let next = started + Duration::from_secs(second);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let first = samples[samples.len().min(2) - 1];
    let last = *samples.last().unwrap_or(&0);
    let max = samples.iter().copied().max().unwrap_or(0);
    table.push(Row {
        workload: name.to_owned(),
        rate: "1.00 MiB/s".to_owned(),
        p50: String::new(),
        p99: String::new(),
        peak_rss: server.peak_rss(),
        // Memory over time is the measure here, not speed.
        ratio: Some("n/a".to_owned()),
        note: format!(
            "RSS {} after 2 s, {} after {seconds} s (max {})",
            mib(first),
            mib(last),
            mib(max)
        ),
    });
    Ok(())
}

fn upload_once(addr: SocketAddr) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let mut conn = TcpStream::connect(addr)?;
    write!(
        conn,
        "POST / HTTP/1.1\r\nHost: bench\r\nContent-Length: {UPLOAD_BYTES}\r\n\r\n"
    )?;
    let block = vec![b'u'; 1 << 20];
    for _ in 0..UPLOAD_BYTES / block.len() as u64 {
        conn.write_all(&block)?;
    }
    let (head, mut have) = read_head(&mut conn)?;
    let length = content_length(&head)?;
    let mut rest = vec![0; (length - have) as usize];
    conn.read_exact(&mut rest)?;
    have += rest.len() as u64;
    let _ = have;
    let took = started.elapsed();
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("upload answered {head}").into());
    }
    Ok(took)
}

fn idle_row(
    table: &mut Table,
    name: &str,
    mode: &str,
    bare: Option<&Load>,
    seconds: u64,
) -> Result<Load, BoxError> {
    let server = ServerProcess::start(mode)?;
    let request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    let mut failed = 0u64;
    for _ in 0..IDLE_CONNECTIONS {
        match TcpStream::connect(server.addr) {
            Ok(conn) => idle.push(conn),
            Err(_) => failed += 1,
        }
    }
    // One request on each, so every connection is a served keep-alive one.
    failed += round_trip_all(&mut idle, request);
    let threads_idle = server.threads();
    let load = wrk(server.addr, 64, seconds)?;
    let threads_loaded = server.threads();
    failed += round_trip_all(&mut idle, request);
    table.push(Row {
        workload: name.to_owned(),
        rate: format!("{:.0} req/s", load.requests_per_sec),
        p50: format!("{:.2} ms", load.p50_ms),
        p99: format!("{:.2} ms", load.p99_ms),
        peak_rss: server.peak_rss(),
        ratio: Some(bare.map_or_else(
            || "baseline".to_owned(),
            |bare| format!("{:.2}x", load.requests_per_sec / bare.requests_per_sec),
        )),
        note: format!(
            "{} connections, {} failed; threads {threads_idle} idle, {threads_loaded} under load",
            idle.len(),
            failed + load.errors
        ),
    });
    Ok(load)
}

/// Sends `request` on every connection and reads the answer, 64 connections
/// at a time (as many as the load generator uses: a flood of 10,000 at once
/// would be answered 503 by design); returns the failures.
fn round_trip_all(conns: &mut [TcpStream], request: &[u8]) -> u64 {
    let mut failed = 0;
    for batch in conns.chunks_mut(64) {
        let mut ok = vec![true; batch.len()];
        for (conn, ok) in batch.iter_mut().zip(&mut ok) {
            if conn.write_all(request).is_err() {
                *ok = false;
            }
        }
        for (conn, ok) in batch.iter_mut().zip(&ok) {
            let answered = *ok
                && read_head(conn).is_ok_and(|(head, have)| {
                    let length = content_length(&head).unwrap_or(0);
                    let mut rest = vec![0; length.saturating_sub(have) as usize];
                    head.starts_with("HTTP/1.1 200") && conn.read_exact(&mut rest).is_ok()
                });
            if !answered {
                failed += 1;
            }
        }
    }
    failed
}

// ---------------------------------------------------------------- table

struct Row {
    workload: String,
    rate: String,
    p50: String,
    p99: String,
    peak_rss: u64,
    ratio: Option<String>,
    note: String,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn push(&mut self, row: Row) {
        eprintln!(
            "  {}: {} {} {}",
            row.workload,
            row.rate,
            row.ratio.as_deref().unwrap_or(""),
            row.note
        );
        self.rows.push(row);
    }

    fn print(&self) {
        println!();
        println!("| workload | throughput | p50 | p99 | peak RSS | vs bare hyper | notes |");
        println!("|---|---:|---:|---:|---:|---:|---|");
        for row in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.workload,
                row.rate,
                row.p50,
                row.p99,
                mib(row.peak_rss),
                row.ratio.as_deref().unwrap_or("baseline"),
                row.note
            );
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("machine: {cpu}, {cores} cores; servers (mimalloc) and load generator share them")
}
