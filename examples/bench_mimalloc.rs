//! The benchmark's servers on mimalloc, for the rows beside the system
//! allocator's: `bench` starts this binary as `bench_mimalloc serve MODE ADDR`.
#![deny(warnings)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "bench_servers/mod.rs"]
mod servers;

fn main() -> Result<(), tower_wsgi::BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.get(1), args.get(2)) {
        (Some("serve"), Some(mode), Some(addr)) => servers::serve(mode, addr),
        _ => Err("usage: bench_mimalloc serve MODE ADDR (started by the bench example)".into()),
    }
}
