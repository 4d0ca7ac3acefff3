//! Measures `AppBody::from_file` throughput by block size: a 200 MiB file
//! streamed through `Server` to a local client, the sizes alternating
//! round by round; prints the median of each. This is how
//! `AppBody::DEFAULT_BLOCK_SIZE` was chosen.
//!
//! `cargo run --release --example file_blocks [ROUNDS]` (default 11).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use tower_wsgi::server::Server;
use tower_wsgi::{app_fn, AppBody, WsgiService};

const MIB: usize = 1 << 20;
const FILE_MIB: usize = 200;

fn main() -> std::io::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(11);
    let path = std::env::temp_dir().join("tower-wsgi-file-blocks.bin");
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some((FILE_MIB * MIB) as u64) {
        let mut file = std::fs::File::create(&path)?;
        let block = vec![7u8; MIB];
        for _ in 0..FILE_MIB {
            file.write_all(&block)?;
        }
    }
    let served = path.clone();
    let app = app_fn(move |environ, start_response| {
        let block: usize = environ.query_string().parse()?;
        let body = AppBody::from_file_with_block_size(std::fs::File::open(&served)?, block)?;
        let length = body.content_length().unwrap_or(0).to_string();
        start_response.start("200 OK", [("Content-Length", length.as_str())])?;
        Ok(body)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server = runtime.block_on(Server::bind("127.0.0.1:0"))?;
    let addr = server.local_addr()?;
    runtime.spawn(server.serve(WsgiService::new(app)));

    let sizes = [8 << 10, 64 << 10, 128 << 10, 256 << 10, MIB];
    let mut results = vec![Vec::new(); sizes.len()];
    let mut buf = vec![0u8; MIB];
    for _ in 0..rounds {
        for (i, &block) in sizes.iter().enumerate() {
            let mut stream = TcpStream::connect(addr)?;
            write!(
                stream,
                "GET /?{block} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )?;
            let started = Instant::now();
            let mut total = 0;
            loop {
                match stream.read(&mut buf)? {
                    0 => break,
                    n => total += n,
                }
            }
            assert!(total > FILE_MIB * MIB, "short response: {total} bytes");
            results[i].push(FILE_MIB as f64 / 1024.0 / started.elapsed().as_secs_f64());
        }
    }
    for (block, mut runs) in sizes.iter().zip(results) {
        runs.sort_by(f64::total_cmp);
        println!(
            "block {:>4} KiB: median {:.2} GiB/s (min {:.2}, max {:.2})",
            block / 1024,
            runs[runs.len() / 2],
            runs[0],
            runs[runs.len() - 1]
        );
    }
    std::fs::remove_file(&path)
}
