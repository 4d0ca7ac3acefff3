//! What the benchmarks read from `wrk --latency`, the clock they read
//! server CPU time with, and the mimalloc build of their servers: shared by
//! `bench` and `bench_python`.

use std::path::PathBuf;
use std::process::Command;

use tower_wsgi::BoxError;

/// One wrk run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Load {
    pub(crate) requests_per_sec: f64,
    pub(crate) requests: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Responses with a status other than 2xx or 3xx.
    pub(crate) non_2xx: u64,
    /// Connect, read, write and timeout errors.
    pub(crate) socket_errors: u64,
}

/// Reads wrk's report; an error when it printed no rate.
pub(crate) fn parse(text: &str) -> Result<Load, BoxError> {
    let mut load = Load::default();
    for line in text.lines().map(str::trim) {
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            load.requests_per_sec = rate.trim().parse()?;
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            load.requests = n.trim().parse()?;
        } else if let Some(p) = line.strip_prefix("50%") {
            load.p50_ms = duration_ms(p.trim())?;
        } else if let Some(p) = line.strip_prefix("99%") {
            load.p99_ms = duration_ms(p.trim())?;
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.non_2xx += n.trim().parse::<u64>()?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            load.socket_errors += errors
                .split(',')
                .filter_map(|e| e.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    if load.requests_per_sec == 0.0 || load.requests == 0 {
        return Err(format!("wrk printed no rate:\n{text}").into());
    }
    Ok(load)
}

/// `12.3us`, `4.5ms`, `1.2s`, `1.0m` in milliseconds.
pub(crate) fn duration_ms(text: &str) -> Result<f64, BoxError> {
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

/// `sysconf(_SC_CLK_TCK)`, from `getconf` (100 on Linux).
pub(crate) fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The `bench_mimalloc` example beside the running bench, built with
/// `features` (or found fresh) by cargo when the bench runs under cargo.
pub(crate) fn mimalloc_server(features: &[&str]) -> Result<PathBuf, BoxError> {
    let this = std::env::current_exe()?;
    let path = this.with_file_name(format!("bench_mimalloc{}", std::env::consts::EXE_SUFFIX));
    if let Ok(cargo) = std::env::var("CARGO") {
        let profile: &[&str] = if cfg!(debug_assertions) {
            &[]
        } else {
            &["--release"]
        };
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--example", "bench_mimalloc"]);
        if !features.is_empty() {
            build.args(["--features", &features.join(",")]);
        }
        let built = build
            .args(profile)
            .status()
            .map_err(|e| format!("could not build the bench_mimalloc example: {e}"))?;
        if !built.success() {
            return Err("could not build the bench_mimalloc example".into());
        }
    }
    if !path.exists() {
        let features = if features.is_empty() {
            String::new()
        } else {
            format!(" --features {}", features.join(","))
        };
        return Err(format!(
            "{} is missing: cargo build --release{features} --example bench_mimalloc",
            path.display()
        )
        .into());
    }
    Ok(path)
}
