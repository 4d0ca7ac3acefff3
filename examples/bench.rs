//! The benchmark: tower-wsgi against bare hyper, side by side, in one run.
//!
//! ```text
//! cargo run --release --example bench            # every workload, prints a table
//! cargo run --release --example bench -- hello   # only the groups named
//! ```
//!
//! Groups: `hello nested headers stream upload slow idle`.
//!
//! Every server runs as users run `examples/hello.rs`: a
//! `tracing_subscriber::fmt` subscriber at `INFO`, the default blocking
//! dispatch unless the row says inline, and the system allocator; the same
//! rows run again on mimalloc (the `bench_mimalloc` example, built on first
//! use) beside them. Each server runs in a child process of its own (`serve
//! MODE ADDR`), so its peak RSS (`VmHWM`) and CPU time (user + system, from
//! `/proc`) are its own. Request rates and latencies come from `wrk`
//! (Debian's `wrk` package; `.ci/run` installs it); byte streams, uploads,
//! the slow reader and the 10,000 idle connections are driven by this
//! harness over plain sockets. Where `granian` is on the `PATH` (PyPI), a
//! row shows it serving the Python original of the hello app.
//!
//! The servers of a group run alternating, round after round, and each
//! ratio is the median of the per-round ratios against bare hyper on the
//! same allocator, with their range beside it: on a shared machine the CPU
//! time per request is the steadiest figure, throughput the noisiest.
//!
//! Environment: `BENCH_SECONDS` (each wrk run, default 5), `BENCH_ROUNDS`
//! (rounds of each group, default 3), `BENCH_SLOW_SECONDS` (slow-reader
//! length, default 20).
#![deny(warnings)]

#[path = "bench_servers/mod.rs"]
mod servers;
#[path = "bench_wrk/mod.rs"]
mod wrk_report;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use servers::{HELLO, STREAM_BYTES};
use tower_wsgi::BoxError;

const UPLOAD_BYTES: u64 = 256 << 20;
const IDLE_CONNECTIONS: usize = 10_000;
/// Headers of the many-headers request, `Host` and `Cookie` included.
const MANY_HEADERS: usize = 50;
const COOKIE_BYTES: usize = 4096;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let (Some(mode), Some(addr)) = (args.get(1), args.get(2)) else {
            return Err("usage: bench serve MODE ADDR".into());
        };
        return servers::serve(mode, addr);
    }
    let only: Vec<&str> = args.iter().map(String::as_str).collect();
    let wanted = |group: &str| only.is_empty() || only.contains(&group);
    let bench = Bench {
        seconds: env_u64("BENCH_SECONDS", 5),
        rounds: env_u64("BENCH_ROUNDS", 3).max(1) as usize,
        mimalloc: wrk_report::mimalloc_server(&[])?,
    };
    let mut table = Table::default();
    println!("{}", machine());
    println!(
        "each wrk run {} s (-t1 -c64), {} rounds alternating; ratios: median of the per-round ratios [range]",
        bench.seconds, bench.rounds
    );

    if wanted("hello") {
        let rows = [
            ("bare hyper", System, "bare-hello"),
            (
                "hyper + spawn_blocking per request (naive)",
                System,
                "spawn-blocking-hello",
            ),
            ("tower-wsgi, blocking dispatch", System, "wsgi-hello"),
            ("tower-wsgi, inline dispatch", System, "wsgi-inline-hello"),
            ("bare hyper", Mimalloc, "bare-hello"),
            ("tower-wsgi, blocking dispatch", Mimalloc, "wsgi-hello"),
            ("tower-wsgi, inline dispatch", Mimalloc, "wsgi-inline-hello"),
        ];
        let bare_rate = bench.load_rows(&mut table, &rows, &[])?;
        granian_row(&mut table, bare_rate, bench.seconds)?;
    }
    if wanted("nested") {
        let rows = [
            ("bare hyper", System, "bare-hello"),
            ("tower-wsgi, blocking dispatch", System, "wsgi-hello"),
            (
                "ported middleware in front of it, one edge",
                System,
                "wsgi-nested-hello",
            ),
            (
                "ported middleware in front of it, join_edge(false)",
                System,
                "wsgi-nested-own-pool-hello",
            ),
        ];
        bench.load_rows(&mut table, &rows, &[])?;
    }
    if wanted("headers") {
        let name = "50 headers + 4 KiB cookie";
        let rows = [
            (&*format!("bare hyper, {name}"), System, "bare-headers"),
            (&*format!("tower-wsgi, {name}"), System, "wsgi-headers"),
            (&*format!("bare hyper, {name}"), Mimalloc, "bare-headers"),
            (&*format!("tower-wsgi, {name}"), Mimalloc, "wsgi-headers"),
        ];
        bench.load_rows(&mut table, &rows, &many_headers())?;
    }
    if wanted("stream") {
        let rows = [
            ("bare hyper, 1 GiB stream", System, "bare-stream"),
            ("tower-wsgi, 1 GiB stream", System, "wsgi-stream"),
            ("bare hyper, 1 GiB stream", Mimalloc, "bare-stream"),
            ("tower-wsgi, 1 GiB stream", Mimalloc, "wsgi-stream"),
        ];
        bench.transfer_rows(&mut table, &rows, STREAM_BYTES, |addr| {
            Ok(fetch_stream(addr)?.1)
        })?;
    }
    if wanted("upload") {
        let rows = [
            ("bare hyper, 256 MiB upload", System, "bare-upload"),
            (
                "tower-wsgi, 256 MiB upload (wsgi.input)",
                System,
                "wsgi-upload",
            ),
            ("bare hyper, 256 MiB upload", Mimalloc, "bare-upload"),
            (
                "tower-wsgi, 256 MiB upload (wsgi.input)",
                Mimalloc,
                "wsgi-upload",
            ),
        ];
        bench.transfer_rows(&mut table, &rows, UPLOAD_BYTES, upload_once)?;
    }
    if wanted("slow") {
        let secs = env_u64("BENCH_SLOW_SECONDS", 20);
        for (name, mode) in [
            ("bare hyper, slow reader 1 MiB/s", "bare-stream"),
            ("tower-wsgi, slow reader 1 MiB/s", "wsgi-stream"),
        ] {
            slow_row(&mut table, name, &bench.start(System, mode)?, secs)?;
        }
    }
    if wanted("idle") {
        let seconds = bench.seconds.min(10);
        let bare = idle_row(
            &mut table,
            "bare hyper, 10k idle keep-alive + load",
            &bench.start(System, "bare-hello")?,
            None,
            seconds,
        )?;
        idle_row(
            &mut table,
            "tower-wsgi, 10k idle keep-alive + load",
            &bench.start(System, "wsgi-hello")?,
            Some(bare),
            seconds,
        )?;
    }
    table.print();
    Ok(())
}

// ---------------------------------------------------------------- servers

/// The allocator a server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alloc {
    System,
    Mimalloc,
}
use Alloc::{Mimalloc, System};

impl Alloc {
    fn name(self) -> &'static str {
        match self {
            System => "system",
            Mimalloc => "mimalloc",
        }
    }
}

struct Bench {
    seconds: u64,
    rounds: usize,
    mimalloc: PathBuf,
}

impl Bench {
    fn start(&self, alloc: Alloc, mode: &str) -> Result<ServerProcess, BoxError> {
        let exe = match alloc {
            System => std::env::current_exe()?,
            Mimalloc => self.mimalloc.clone(),
        };
        ServerProcess::start(&exe, mode)
    }

    /// wrk against every server of `rows`, alternating for `rounds`; each
    /// row's ratios are against the first row on the same allocator.
    /// Returns the system allocator's bare-hyper median rate.
    fn load_rows(
        &self,
        table: &mut Table,
        rows: &[(&str, Alloc, &str)],
        headers: &[String],
    ) -> Result<f64, BoxError> {
        let servers = rows
            .iter()
            .map(|&(_, alloc, mode)| self.start(alloc, mode))
            .collect::<Result<Vec<_>, _>>()?;
        for server in &servers {
            check_ok(server.addr, headers)?;
            wrk(server.addr, 64, 1, headers)?; // warm-up
        }
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); servers.len()];
        for round in 0..self.rounds {
            for (server, samples) in servers.iter().zip(&mut samples) {
                let cpu = server.cpu_seconds();
                let load = wrk(server.addr, 64, self.seconds, headers)?;
                let cpu = server.cpu_seconds() - cpu;
                samples.push(Sample {
                    rate: load.requests_per_sec,
                    p50_ms: load.p50_ms,
                    p99_ms: load.p99_ms,
                    cpu_us: cpu * 1e6 / load.requests.max(1) as f64,
                    errors: load.non_2xx,
                });
            }
            eprintln!("  round {} of {} done", round + 1, self.rounds);
        }
        let mut system_bare_rate = 0.0;
        for (i, (&(name, alloc, _), server)) in rows.iter().zip(&servers).enumerate() {
            let base = rows
                .iter()
                .position(|&(_, a, _)| a == alloc)
                .expect("the row itself");
            let mine = &samples[i];
            let errors: u64 = mine.iter().map(|s| s.errors).sum();
            let rate = median(mine.iter().map(|s| s.rate));
            if base == i && alloc == System {
                system_bare_rate = rate;
            }
            let ratios = (base != i).then(|| {
                let theirs = &samples[base];
                let per_round = |f: fn(&Sample) -> f64| {
                    Spread::of(mine.iter().zip(theirs).map(|(m, t)| f(m) / f(t)))
                };
                Ratios {
                    rate: per_round(|s| s.rate),
                    cpu: per_round(|s| s.cpu_us),
                    p99: per_round(|s| s.p99_ms),
                }
            });
            table.push(Row {
                workload: name.to_owned(),
                alloc,
                rate: format!("{rate:.0} req/s"),
                p50: format!("{:.2} ms", median(mine.iter().map(|s| s.p50_ms))),
                p99: format!("{:.2} ms", median(mine.iter().map(|s| s.p99_ms))),
                cpu: format!("{:.1} us", median(mine.iter().map(|s| s.cpu_us))),
                peak_rss: server.peak_rss(),
                ratios,
                note: errors_note(errors),
            });
        }
        Ok(system_bare_rate)
    }

    /// Times transfers of `bytes` against every server of `rows`,
    /// alternating, after a warm-up round; medians of `max(rounds, 5)`.
    fn transfer_rows(
        &self,
        table: &mut Table,
        rows: &[(&str, Alloc, &str)],
        bytes: u64,
        once: impl Fn(SocketAddr) -> Result<Duration, BoxError>,
    ) -> Result<(), BoxError> {
        let servers = rows
            .iter()
            .map(|&(_, alloc, mode)| self.start(alloc, mode))
            .collect::<Result<Vec<_>, _>>()?;
        let rounds = self.rounds.max(5);
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); servers.len()];
        for round in 0..=rounds {
            for (server, samples) in servers.iter().zip(&mut samples) {
                let cpu = server.cpu_seconds();
                let took = once(server.addr)?.as_secs_f64();
                let cpu = server.cpu_seconds() - cpu;
                // The first round warms up.
                if round > 0 {
                    samples.push(Sample {
                        rate: bytes as f64 / took,
                        cpu_us: cpu * 1e6,
                        ..Sample::default()
                    });
                }
            }
        }
        for (i, (&(name, alloc, _), server)) in rows.iter().zip(&servers).enumerate() {
            let base = rows
                .iter()
                .position(|&(_, a, _)| a == alloc)
                .expect("the row itself");
            let mine = &samples[i];
            let ratios = (base != i).then(|| {
                let theirs = &samples[base];
                let per_round = |f: fn(&Sample) -> f64| {
                    Spread::of(mine.iter().zip(theirs).map(|(m, t)| f(m) / f(t)))
                };
                Ratios {
                    rate: per_round(|s| s.rate),
                    cpu: per_round(|s| s.cpu_us),
                    p99: Spread::default(),
                }
            });
            table.push(Row {
                workload: name.to_owned(),
                alloc,
                rate: format!(
                    "{:.2} GiB/s",
                    median(mine.iter().map(|s| s.rate)) / (1u64 << 30) as f64
                ),
                p50: String::new(),
                p99: String::new(),
                cpu: format!("{:.0} ms", median(mine.iter().map(|s| s.cpu_us)) / 1000.0),
                peak_rss: server.peak_rss(),
                ratios,
                note: format!("median of {rounds}, per transfer"),
            });
        }
        Ok(())
    }
}

/// A server in a child process.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(exe: &PathBuf, mode: &str) -> Result<Self, BoxError> {
        let mut child = Command::new(exe)
            .args(["serve", mode, "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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

    /// User plus system time of every thread so far, in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime and
        // stime are the 12th and 13th, in clock ticks.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ticks: u64 = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|t| t.parse::<u64>().ok())
            .sum();
        ticks as f64 / wrk_report::clock_ticks()
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

// ---------------------------------------------------------------- load

/// One measurement of one server.
#[derive(Clone, Debug, Default)]
struct Sample {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Server CPU time per request (per transfer for streams), in µs.
    cpu_us: f64,
    errors: u64,
}

fn wrk(
    addr: SocketAddr,
    connections: usize,
    seconds: u64,
    headers: &[String],
) -> Result<wrk_report::Load, BoxError> {
    let mut command = Command::new("wrk");
    command.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command
        .arg(format!("http://{addr}/"))
        .output()
        .map_err(|e| format!("could not run wrk (apt-get install wrk): {e}"))?;
    let mut load = wrk_report::parse(&String::from_utf8_lossy(&output.stdout))?;
    // Either kind of error makes a row's note.
    load.non_2xx += std::mem::take(&mut load.socket_errors);
    Ok(load)
}

/// The many-headers request's headers besides `Host` (wrk adds it).
fn many_headers() -> Vec<String> {
    let mut headers: Vec<String> = (0..MANY_HEADERS - 2)
        .map(|i| format!("X-Bench-Header-{i}: value-{i}-of-a-realistic-length"))
        .collect();
    let cookie: String = (0..COOKIE_BYTES / 16)
        .map(|i| format!("c{i:04}=0123456789;"))
        .collect();
    headers.push(format!("Cookie: {}", &cookie[..COOKIE_BYTES]));
    headers
}

fn errors_note(errors: u64) -> String {
    if errors == 0 {
        String::new()
    } else {
        format!("{errors} failed requests")
    }
}

/// One request on a fresh connection: the server answers 200.
fn check_ok(addr: SocketAddr, headers: &[String]) -> Result<(), BoxError> {
    let mut conn = TcpStream::connect(addr)?;
    let mut request = String::from("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    conn.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)?;
    let expected = if headers.is_empty() {
        HELLO.to_vec()
    } else {
        COOKIE_BYTES.to_string().into_bytes()
    };
    if !response.starts_with(b"HTTP/1.1 200") || !response.ends_with(&expected) {
        return Err(format!("unexpected answer: {}", String::from_utf8_lossy(&response)).into());
    }
    Ok(())
}

fn granian_row(table: &mut Table, bare_rate: f64, seconds: u64) -> Result<(), BoxError> {
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
    check_ok(addr, &[])?;
    wrk(addr, 64, 1, &[])?;
    let load = wrk(addr, 64, seconds, &[])?;
    table.push(Row {
        workload: "Granian (Python WSGI, 1 worker)".to_owned(),
        alloc: System,
        rate: format!("{:.0} req/s", load.requests_per_sec),
        p50: format!("{:.2} ms", load.p50_ms),
        p99: format!("{:.2} ms", load.p99_ms),
        cpu: String::new(),
        peak_rss: server.peak_rss(),
        ratios: None,
        note: format!(
            "one run after the others: {:.2}x of bare hyper's median",
            load.requests_per_sec / bare_rate
        ),
    });
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

fn slow_row(
    table: &mut Table,
    name: &str,
    server: &ServerProcess,
    seconds: u64,
) -> Result<(), BoxError> {
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
        alloc: System,
        rate: "1.00 MiB/s".to_owned(),
        p50: String::new(),
        p99: String::new(),
        cpu: String::new(),
        peak_rss: server.peak_rss(),
        // Memory over time is the measure here, not speed.
        ratios: None,
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
    let (head, have) = read_head(&mut conn)?;
    let length = content_length(&head)?;
    let mut rest = vec![0; length.saturating_sub(have) as usize];
    conn.read_exact(&mut rest)?;
    let took = started.elapsed();
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("upload answered {head}").into());
    }
    Ok(took)
}

fn idle_row(
    table: &mut Table,
    name: &str,
    server: &ServerProcess,
    bare: Option<f64>,
    seconds: u64,
) -> Result<f64, BoxError> {
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
    let load = wrk(server.addr, 64, seconds, &[])?;
    let threads_loaded = server.threads();
    failed += round_trip_all(&mut idle, request);
    table.push(Row {
        workload: name.to_owned(),
        alloc: System,
        rate: format!("{:.0} req/s", load.requests_per_sec),
        p50: format!("{:.2} ms", load.p50_ms),
        p99: format!("{:.2} ms", load.p99_ms),
        cpu: String::new(),
        peak_rss: server.peak_rss(),
        ratios: None,
        note: format!(
            "{}{} connections, {} failed; threads {threads_idle} idle, {threads_loaded} under load",
            bare.map_or_else(String::new, |bare| format!(
                "one run: {:.2}x; ",
                load.requests_per_sec / bare
            )),
            idle.len(),
            failed + load.non_2xx
        ),
    });
    Ok(load.requests_per_sec)
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

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median of per-round ratios and their range.
#[derive(Clone, Copy, Debug, Default)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(ratios: impl Iterator<Item = f64>) -> Self {
        let ratios: Vec<f64> = ratios.collect();
        Self {
            median: median(ratios.iter().copied()),
            min: ratios.iter().copied().fold(f64::MAX, f64::min),
            max: ratios.iter().copied().fold(f64::MIN, f64::max),
        }
    }

    fn show(self) -> String {
        if self.median == 0.0 {
            return String::new();
        }
        if self.min == self.max {
            return format!("{:.2}x", self.median);
        }
        format!("{:.2}x [{:.2}-{:.2}]", self.median, self.min, self.max)
    }
}

struct Ratios {
    rate: Spread,
    cpu: Spread,
    p99: Spread,
}

struct Row {
    workload: String,
    alloc: Alloc,
    rate: String,
    p50: String,
    p99: String,
    /// Server CPU time per request (per transfer for streams).
    cpu: String,
    peak_rss: u64,
    ratios: Option<Ratios>,
    note: String,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn push(&mut self, row: Row) {
        eprintln!(
            "  {} ({}): {} {} {}",
            row.workload,
            row.alloc.name(),
            row.rate,
            row.ratios
                .as_ref()
                .map_or_else(String::new, |r| r.rate.show()),
            row.note
        );
        self.rows.push(row);
    }

    fn print(&self) {
        println!();
        println!("| workload | allocator | throughput | p50 | p99 | server CPU | peak RSS | throughput vs bare | CPU vs bare | p99 vs bare | notes |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for row in &self.rows {
            let (rate, cpu, p99) = row.ratios.as_ref().map_or_else(
                || ("baseline".to_owned(), String::new(), String::new()),
                |r| (r.rate.show(), r.cpu.show(), r.p99.show()),
            );
            let (rate, cpu, p99) = if row.cpu.is_empty() && row.ratios.is_none() {
                (String::new(), String::new(), String::new())
            } else {
                (rate, cpu, p99)
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.workload,
                row.alloc.name(),
                row.rate,
                row.p50,
                row.p99,
                row.cpu,
                mib(row.peak_rss),
                rate,
                cpu,
                p99,
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
    format!("machine: {cpu}, {cores} cores; servers and load generator share them")
}
