//! Serves any Python WSGI application, in-process.
//!
//! ```text
//! cargo run --release --features python --example python_app -- MODULE:CALLABLE [ADDR]
//! PYTHONPATH=../shared/conformance cargo run --release --features python \
//!     --example python_app -- oracle_app:application 127.0.0.1:18001
//! ```
//!
//! `MODULE:CALLABLE` is gunicorn's syntax (`module:factory()` calls a
//! factory). Modules come from `PYTHONPATH`, the current directory and an
//! activated virtualenv (`VIRTUAL_ENV`). The address defaults to
//! 127.0.0.1:8000; `listening on ADDR` is printed once connections are
//! accepted. Ctrl-C or SIGTERM stops it gracefully.
#![deny(warnings)]

use tower_wsgi::python::PyApp;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let Some(spec) = args.next() else {
        eprintln!("usage: python_app MODULE:CALLABLE [ADDR]");
        std::process::exit(2);
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let app = match PyApp::import(&spec) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };
    let server = tower_wsgi::server::Server::bind(&addr).await?;
    println!("listening on {}", server.local_addr()?);
    server.serve(tower_wsgi::WsgiService::new(app)).await?;
    Ok(())
}
