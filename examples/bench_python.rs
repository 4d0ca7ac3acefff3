//! Python apps: `PyApp` against Granian on Granian's own benchmark app
//! (tests/python/bench_app.py), in the same run, alternating.
//!
//! ```text
//! python3 -m venv .venv && .venv/bin/pip install 'granian==2.8.7'
//! cargo run --release --features python --example bench_python            # every route
//! cargo run --release --features python --example bench_python -- b1k echo # only these
//! cargo run --release --features python --example bench_python -- slow     # slow readers only
//! ```
//!
//! Each server is a child process pinned to CPU 0 (`taskset`), started fresh
//! for every row so its peak RSS (`VmHWM`, summed over its processes) is the
//! row's own; wrk (`-t1 -c64`) runs pinned to CPU 1. Granian runs as in its
//! benchmark (1 worker, 1 runtime thread), with its default blocking threads
//! and with `--blocking-threads 1`; `PyApp` as users run it (the system
//! allocator, a `tracing_subscriber::fmt` subscriber at INFO), and beside it
//! on mimalloc (`bench_mimalloc`, built on first use), with the crate's defaults but
//! [`ConnectionPolicy::ComputeLength`](tower_wsgi::ConnectionPolicy), since
//! Granian keeps connections alive after a body without `Content-Length`
//! (the app sets none) where the crate's default closes them, and sends a
//! returned list with its length, as that policy does for a list of one. Server
//! CPU per request is the processes' user + system time over the measured
//! run, divided by the requests served. Each row is the median of
//! `BENCH_ROUNDS` rounds (default 3), the servers' order rotating per round.
//! Then slow readers: RSS while 64 connections leave `/b100k` responses unread.
//!
//! Environment: `BENCH_SECONDS` (measured run, default 8), `BENCH_ROUNDS`,
//! `BENCH_PIN=0` (no pinning: servers and wrk share both CPUs),
//! `BENCH_GRANIAN` (the granian binary, default `.venv/bin/granian`).
#![deny(warnings)]

#[path = "bench_wrk/mod.rs"]
mod wrk_report;

#[path = "bench_servers/mod.rs"]
mod servers;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tower_wsgi::BoxError;

const ROUTES: [(&str, Option<usize>); 7] = [
    ("b10", None),
    ("b1k", None),
    ("b10k", None),
    ("b100k", None),
    ("echo", Some(1024)),
    ("echoi", Some(10 * 1024)),
    ("io10", None),
];

const SERVERS: [&str; 4] = ["granian", "granian-bt1", "pyapp", "pyapp-mimalloc"];

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return servers::serve("python", args.get(1).ok_or("serve ADDR")?);
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = env("BENCH_SECONDS", 8);
    let rounds = env("BENCH_ROUNDS", 3) as usize;
    let programs = Programs {
        granian: std::env::var_os("BENCH_GRANIAN")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest().join(".venv/bin/granian")),
        mimalloc: wrk_report::mimalloc_server(&["python"])?,
    };
    let routes: Vec<_> = ROUTES
        .iter()
        .filter(|(name, _)| args.is_empty() || args.iter().any(|a| a == name))
        .collect();
    let slow = args.is_empty() || args.iter().any(|a| a == "slow");
    let scratch = std::env::temp_dir().join(format!("bench-python-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;

    let placement = if pinned() {
        "wrk on CPU 1, servers on CPU 0"
    } else {
        "unpinned"
    };
    println!("{seconds} s runs, {rounds} rounds, wrk -t1 -c64, {placement}");
    let mut rows = Vec::new();
    for (route, post) in routes {
        let script = post.map(|size| post_script(&scratch, size)).transpose()?;
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); SERVERS.len()];
        for round in 0..rounds {
            for i in 0..SERVERS.len() {
                let which = (i + round) % SERVERS.len();
                let server = Server::start(SERVERS[which], &programs)?;
                let url = format!("http://{}/{route}", server.addr);
                wrk(&url, script.as_deref(), 2)?; // warm-up
                let before = server.cpu_ticks();
                let load = wrk(&url, script.as_deref(), seconds)?;
                let ticks = server.cpu_ticks() - before;
                let run = Run {
                    load: load.clone(),
                    rss_kib: server.peak_rss_kib(),
                    cpu_us_per_request: ticks as f64 * 1e6
                        / wrk_report::clock_ticks()
                        / load.requests as f64,
                };
                eprintln!("{route:6} {:12} round {round}: {run:?}", SERVERS[which]);
                runs[which].push(run);
            }
        }
        rows.push((route, runs));
    }
    std::fs::remove_dir_all(&scratch)?;

    let mut slow_rows = Vec::new();
    if slow {
        for which in SERVERS {
            let server = Server::start(which, &programs)?;
            slow_rows.push((which, slow_reader(&server)?));
        }
    }

    println!();
    println!("| route | server | req/s (median, min-max) | p50 ms | p99 ms | peak RSS MiB | server CPU µs/req | vs Granian default | vs Granian bt1 |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (route, runs) in &rows {
        let medians: Vec<Run> = runs.iter().map(|r| median_run(r)).collect();
        for (i, name) in SERVERS.iter().enumerate() {
            let m = &medians[i];
            let (lo, hi) = runs[i].iter().fold((f64::MAX, 0.0f64), |(lo, hi), r| {
                (
                    lo.min(r.load.requests_per_sec),
                    hi.max(r.load.requests_per_sec),
                )
            });
            let label = match *name {
                "granian" => "Granian 2.8.7 (default threads)",
                "granian-bt1" => "Granian 2.8.7 `--blocking-threads 1`",
                "pyapp" => "tower-wsgi `PyApp`",
                _ => "tower-wsgi `PyApp`, mimalloc",
            };
            println!(
                "| /{route} | {label} | {:.0} ({lo:.0}-{hi:.0}) | {:.2} | {:.2} | {:.1} | {:.1} | {:.2}x | {:.2}x |",
                m.load.requests_per_sec,
                m.load.p50_ms,
                m.load.p99_ms,
                m.rss_kib as f64 / 1024.0,
                m.cpu_us_per_request,
                m.load.requests_per_sec / medians[0].load.requests_per_sec,
                m.load.requests_per_sec / medians[1].load.requests_per_sec,
            );
        }
    }
    if !slow_rows.is_empty() {
        println!();
        println!("Slow readers: {SLOW_CONNECTIONS} connections each send {SLOW_REQUESTS} pipelined `GET /b100k` and read nothing for 3 s, then everything.");
        println!();
        println!("| server | RSS idle MiB | after 0.5 s | after 1.5 s | after 3 s | all read |");
        println!("|---|---:|---:|---:|---:|---|");
        for (which, (samples, complete)) in &slow_rows {
            let mib: Vec<String> = samples
                .iter()
                .map(|kib| format!("{:.1}", *kib as f64 / 1024.0))
                .collect();
            println!("| {which} | {} | {complete} |", mib.join(" | "));
        }
    }
    Ok(())
}

const SLOW_CONNECTIONS: usize = 64;
const SLOW_REQUESTS: usize = 16;

/// RSS (idle, then while nobody reads) and whether every response came whole.
fn slow_reader(server: &Server) -> Result<(Vec<u64>, bool), BoxError> {
    let mut samples = vec![server.rss_kib()];
    let request = b"GET /b100k HTTP/1.1\r\nHost: b\r\n\r\n".repeat(SLOW_REQUESTS);
    let mut conns = Vec::new();
    for _ in 0..SLOW_CONNECTIONS {
        let mut conn = TcpStream::connect(server.addr)?;
        conn.write_all(&request)?;
        conns.push(conn);
    }
    let started = Instant::now();
    for at in [500, 1500, 3000] {
        std::thread::sleep(Duration::from_millis(at).saturating_sub(started.elapsed()));
        samples.push(server.rss_kib());
    }
    let mut complete = true;
    for mut conn in conns {
        conn.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut total = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        while total < SLOW_REQUESTS * 102_400 {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        complete &= total >= SLOW_REQUESTS * 102_400;
    }
    Ok((samples, complete))
}

#[derive(Clone, Debug)]
struct Run {
    load: wrk_report::Load,
    rss_kib: u64,
    cpu_us_per_request: f64,
}

fn median_run(runs: &[Run]) -> Run {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.load.requests_per_sec.total_cmp(&b.load.requests_per_sec));
    let mut median = sorted[sorted.len() / 2].clone();
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    median.load.p50_ms = mid(runs.iter().map(|r| r.load.p50_ms).collect());
    median.load.p99_ms = mid(runs.iter().map(|r| r.load.p99_ms).collect());
    median.rss_kib = mid(runs.iter().map(|r| r.rss_kib as f64).collect()) as u64;
    median.cpu_us_per_request = mid(runs.iter().map(|r| r.cpu_us_per_request).collect());
    median
}

/// The servers' programs besides this one (which hosts `PyApp` on the
/// system allocator).
struct Programs {
    granian: PathBuf,
    /// `bench_mimalloc` built with the `python` feature: `PyApp` on mimalloc.
    mimalloc: PathBuf,
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(which: &str, programs: &Programs) -> Result<Self, BoxError> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut command = Command::new("taskset");
        command.args(["-c", if pinned() { "0" } else { "0,1" }]);
        match which {
            "pyapp" => {
                command
                    .arg(std::env::current_exe()?)
                    .arg("serve")
                    .arg(addr.to_string());
            }
            "pyapp-mimalloc" => {
                command
                    .arg(&programs.mimalloc)
                    .args(["serve", "python"])
                    .arg(addr.to_string());
            }
            _ => {
                command.arg(&programs.granian).args([
                    "--interface",
                    "wsgi",
                    "--log-level",
                    "warning",
                    "--backlog",
                    "2048",
                    "--no-ws",
                    "--http",
                    "1",
                    "--workers",
                    "1",
                    "--runtime-threads",
                    "1",
                    "--runtime-mode",
                    "auto",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                ]);
                if which == "granian-bt1" {
                    command.args(["--blocking-threads", "1"]);
                }
                command
                    .arg("bench_app:app")
                    .current_dir(manifest().join("tests/python"));
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {which}: {e}"))?;
        let server = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut conn) = TcpStream::connect(addr) {
                conn.write_all(b"GET /b10 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")?;
                let mut reply = Vec::new();
                conn.read_to_end(&mut reply)?;
                if reply.starts_with(b"HTTP/1.1 200") {
                    return Ok(server);
                }
                return Err(
                    format!("{which} answered {:?}", String::from_utf8_lossy(&reply)).into(),
                );
            }
            if Instant::now() > deadline {
                return Err(format!("{which} did not start listening").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's processes: taskset execs into the server, Granian forks
    /// its worker.
    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.child.id()];
        let mut i = 0;
        while i < pids.len() {
            let pid = pids[i];
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
            i += 1;
        }
        pids
    }

    fn cpu_ticks(&self) -> u64 {
        self.pids()
            .iter()
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
                Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
            })
            .sum()
    }

    fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        self.pids()
            .iter()
            .filter_map(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let line = status.lines().find(|l| l.starts_with(field))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pids = self.pids();
        for pid in pids.iter().rev() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.child.wait();
    }
}

/// `BENCH_PIN=0` lets the servers and wrk run on either CPU.
fn pinned() -> bool {
    std::env::var("BENCH_PIN").as_deref() != Ok("0")
}

fn post_script(dir: &Path, size: usize) -> Result<PathBuf, BoxError> {
    let path = dir.join(format!("post{size}.lua"));
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", {size})\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n"
        ),
    )?;
    Ok(path)
}

fn wrk(url: &str, script: Option<&Path>, seconds: u64) -> Result<wrk_report::Load, BoxError> {
    let mut command = Command::new("taskset");
    command.args([
        "-c",
        if pinned() { "1" } else { "0,1" },
        "wrk",
        "-t1",
        "-c64",
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command
        .arg(url)
        .output()
        .map_err(|e| format!("could not run wrk (apt-get install wrk): {e}"))?;
    let load = wrk_report::parse(&String::from_utf8_lossy(&output.stdout))?;
    if load.non_2xx > 0 {
        return Err(format!("{} error responses from {url}", load.non_2xx).into());
    }
    Ok(load)
}
