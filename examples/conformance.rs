//! The conformance app of `shared/conformance/CONFORMANCE.md`, ported route for
//! route from its WSGI original (`oracle_app.py`) onto tower-wsgi.
//!
//! ```text
//! cargo run --example conformance [ADDR]      # ADDR defaults to 127.0.0.1:8000
//! ```
//!
//! Tests, benchmarks and outside checks drive its routes: keep them exactly as
//! the table in CONFORMANCE.md says.
#![deny(warnings)]
// The test suite includes this file as a module: `app()`, `service()`, `query()` and `one()`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tower_wsgi::{app_fn, App, AppBody, BoxError, Environ, Iterable, StartResponse, WsgiService};

/// How many bodies this process has returned, and how many were closed.
#[derive(Default)]
struct Counters {
    started: AtomicUsize,
    closed: AtomicUsize,
}

/// `class Body`: an iterable body that counts its close() calls.
struct CountedBody {
    chunks: std::vec::IntoIter<Bytes>,
    index: usize,
    len: usize,
    fail_at: Option<usize>,
    fail_in_close: bool,
    counters: Arc<Counters>,
}

fn counted(
    counters: &Arc<Counters>,
    chunks: Vec<Bytes>,
    fail_at: Option<usize>,
    fail_in_close: bool,
) -> AppBody {
    counters.started.fetch_add(1, Ordering::SeqCst);
    AppBody::new(CountedBody {
        len: chunks.len(),
        chunks: chunks.into_iter(),
        index: 0,
        fail_at,
        fail_in_close,
        counters: counters.clone(),
    })
}

impl Iterable for CountedBody {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        if self.fail_at == Some(self.index) && self.index <= self.len {
            self.index += 1;
            return Some(Err("conformance: failure inside the body iterator".into()));
        }
        self.index += 1;
        self.chunks.next().map(Ok)
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.counters.closed.fetch_add(1, Ordering::SeqCst);
        if self.fail_in_close {
            return Err("conformance: failure inside close()".into());
        }
        Ok(())
    }
}

/// `parse_qs(QUERY_STRING, keep_blank_values=True)`, in order.
pub(crate) fn query(environ: &Environ) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let plus = s.replace('+', " ");
        percent_encoding::percent_decode_str(&plus)
            .decode_utf8_lossy()
            .into_owned()
    };
    environ
        .query_string()
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// `_one(q, key, default)`.
pub(crate) fn one<'q>(q: &'q [(String, String)], key: &str, default: &'q str) -> &'q str {
    q.iter()
        .find(|(k, _)| k == key)
        .map_or(default, |(_, v)| v.as_str())
}

/// `str.encode("latin-1")`.
fn latin1(text: &str) -> Result<Bytes, BoxError> {
    text.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| "'latin-1' codec can't encode character".into())
        })
        .collect::<Result<Vec<u8>, BoxError>>()
        .map(Bytes::from)
}

/// Python's `int()` for the plain forms used here.
fn int(text: &str) -> Result<i64, BoxError> {
    Ok(text.trim().parse::<i64>()?)
}

/// `json.dumps(value, sort_keys=True)`: Python's separators and ASCII escapes.
fn python_json(entries: &BTreeMap<String, Option<String>>) -> String {
    fn string(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e && (c as u32) != 0x7f => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    let mut out = String::from("{");
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        string(&mut out, key);
        out.push_str(": ");
        match value {
            Some(value) => string(&mut out, value),
            None => out.push_str("true"),
        }
    }
    out.push('}');
    out
}

const ENVIRON_KEYS: [&str; 11] = [
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_URI",
    "RAW_URI",
    "SERVER_PROTOCOL",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "REMOTE_ADDR",
    "wsgi.url_scheme",
];

fn environ_view(
    environ: Environ,
    start_response: StartResponse,
    counters: &Arc<Counters>,
) -> Result<AppBody, BoxError> {
    let mut keep: BTreeMap<String, Option<String>> = environ
        .iter()
        .filter(|(key, _)| key.starts_with("HTTP_") || ENVIRON_KEYS.contains(key))
        .map(|(key, value)| (key.to_owned(), Some(value.to_owned())))
        .collect();
    if environ.input_terminated() {
        keep.insert("wsgi.input_terminated".to_owned(), None);
    }
    let payload = python_json(&keep);
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", &payload.len().to_string()),
        ],
    )?;
    Ok(counted(counters, vec![Bytes::from(payload)], None, false))
}

fn respond(
    environ: Environ,
    start_response: StartResponse,
    counters: &Arc<Counters>,
) -> Result<AppBody, BoxError> {
    let q = query(&environ);
    let status = one(&q, "status", "200 OK");
    let chunk = latin1(one(&q, "body", "hello"))?;
    let count = usize::try_from(int(one(&q, "chunks", "1"))?).unwrap_or(0);
    let via = one(&q, "via", "iter");
    let cl = one(&q, "cl", "auto");
    let chunks = vec![chunk.clone(); count];
    let mut headers = vec![("Content-Type".to_owned(), "text/plain".to_owned())];
    match cl {
        "auto" => headers.push((
            "Content-Length".to_owned(),
            (chunk.len() * count).to_string(),
        )),
        "none" => {}
        literal => headers.push(("Content-Length".to_owned(), literal.to_owned())),
    }
    for (key, raw) in &q {
        if key == "header" {
            let (name, value) = raw.split_once(':').unwrap_or((raw, ""));
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    let write = start_response.start(status, headers)?;
    match via {
        "write" => {
            for c in chunks {
                write.write(c)?;
            }
            Ok(counted(counters, Vec::new(), None, false))
        }
        "mixed" => {
            let first = chunks.first().ok_or("list index out of range")?.clone();
            write.write(first)?;
            Ok(counted(counters, chunks[1..].to_vec(), None, false))
        }
        "empty-first" => {
            let mut with_empty = vec![Bytes::new()];
            with_empty.extend(chunks);
            Ok(counted(counters, with_empty, None, false))
        }
        _ => Ok(counted(counters, chunks, None, false)),
    }
}

fn stream(
    environ: Environ,
    start_response: StartResponse,
    counters: &Arc<Counters>,
) -> Result<AppBody, BoxError> {
    let q = query(&environ);
    let n = usize::try_from(int(one(&q, "n", "16"))?).unwrap_or(0);
    let size = usize::try_from(int(one(&q, "size", "65536"))?).unwrap_or(0);
    let mut headers = vec![("Content-Type", "application/octet-stream".to_owned())];
    if one(&q, "cl", "none") == "auto" {
        headers.push(("Content-Length", (n * size).to_string()));
    }
    start_response.start("200 OK", headers)?;
    let block = Bytes::from(vec![b'x'; size]);
    counters.started.fetch_add(1, Ordering::SeqCst);
    let closed = counters.clone();
    Ok(
        AppBody::from_chunks(std::iter::repeat_n(block, n)).on_close(move || {
            closed.closed.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }),
    )
}

fn read_input(
    mut environ: Environ,
    start_response: StartResponse,
    counters: &Arc<Counters>,
) -> Result<AppBody, BoxError> {
    let q = query(&environ);
    let mode = one(&q, "mode", "len").to_owned();
    let data = if mode == "none" {
        Vec::new()
    } else if let Some(n) = mode.strip_prefix("n=") {
        let n = usize::try_from(int(n)?).unwrap_or(0);
        environ.input().read_n(n)?
    } else if let Some(length) = environ.get("CONTENT_LENGTH").filter(|l| !l.is_empty()) {
        let length = usize::try_from(int(length)?).unwrap_or(0);
        environ.input().read_n(length)?
    } else if environ.input_terminated() {
        environ.input().read_all()?
    } else {
        Vec::new()
    };
    let out = if mode == "echo" {
        data
    } else {
        data.len().to_string().into_bytes()
    };
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", &out.len().to_string()),
        ],
    )?;
    Ok(counted(counters, vec![Bytes::from(out)], None, false))
}

fn error(
    environ: Environ,
    start_response: StartResponse,
    counters: &Arc<Counters>,
) -> Result<AppBody, BoxError> {
    let q = query(&environ);
    let when = one(&q, "when", "before");
    if when == "before" {
        return Err("conformance: failure before start_response".into());
    }
    start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    match when {
        "after-start" => Err("conformance: failure after start_response".into()),
        "mid-body" => Ok(counted(
            counters,
            vec![Bytes::from_static(b"first chunk")],
            Some(1),
            false,
        )),
        "in-close" => Ok(counted(
            counters,
            vec![Bytes::from_static(b"complete body")],
            None,
            true,
        )),
        _ => Err("conformance: unknown 'when'".into()),
    }
}

fn exc_info(
    environ: Environ,
    start_response: StartResponse,
    counters: &Arc<Counters>,
) -> Result<AppBody, BoxError> {
    let q = query(&environ);
    let when = one(&q, "when", "before-body");
    let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    if when == "after-body" {
        write.write("partial")?;
    }
    let failure: BoxError = "conformance: handled failure".into();
    start_response.start_with_exc_info(
        "503 Service Unavailable",
        [("Content-Type", "text/plain"), ("Content-Length", "7")],
        failure,
    )?;
    Ok(counted(
        counters,
        vec![Bytes::from_static(b"handled")],
        None,
        false,
    ))
}

fn start_twice(
    start_response: StartResponse,
    counters: &Arc<Counters>,
) -> Result<AppBody, BoxError> {
    start_response.start("200 OK", [("Content-Type", "text/plain")])?;
    start_response.start("201 Created", [("Content-Type", "text/plain")])?;
    Ok(counted(
        counters,
        vec![Bytes::from_static(b"unreachable")],
        None,
        false,
    ))
}

fn counters_view(start_response: StartResponse, counters: &Counters) -> Result<AppBody, BoxError> {
    let payload = format!(
        "{{\"closed\": {}, \"started\": {}}}",
        counters.closed.load(Ordering::SeqCst),
        counters.started.load(Ordering::SeqCst)
    );
    start_response.start(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", &payload.len().to_string()),
        ],
    )?;
    Ok(payload.into())
}

/// `application(environ, start_response)`: dispatch on PATH_INFO.
pub(crate) fn app() -> impl App {
    let counters = Arc::new(Counters::default());
    app_fn(move |environ, start_response| match environ.path_info() {
        "/environ" => environ_view(environ, start_response, &counters),
        "/respond" => respond(environ, start_response, &counters),
        "/stream" => stream(environ, start_response, &counters),
        "/input" => read_input(environ, start_response, &counters),
        "/error" => error(environ, start_response, &counters),
        "/exc-info" => exc_info(environ, start_response, &counters),
        "/start-twice" => start_twice(start_response, &counters),
        "/counters" => counters_view(start_response, &counters),
        _ => {
            start_response.start(
                "404 Not Found",
                [("Content-Type", "text/plain"), ("Content-Length", "9")],
            )?;
            Ok("not found".into())
        }
    })
}

/// The service the example serves: the app with the default options.
pub(crate) fn service() -> WsgiService<impl App> {
    WsgiService::new(app())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let server = tower_wsgi::server::Server::bind(addr.as_str()).await?;
    println!("listening on {}", server.local_addr()?);
    server.serve(service()).await
}
