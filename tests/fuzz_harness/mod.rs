//! Fuzz harness shared by the cargo-fuzz targets (`fuzz/`) and the proptest
//! fallback (`tests/fuzz_properties.rs`). Each entry point turns arbitrary
//! bytes into a request or an application's behaviour, runs it through the
//! crate, and panics when an invariant of RULES.md breaks.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http::{header, Request, Response, Version};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_wsgi::{
    app_fn, AppBody, BoxError, Builder, Environ, HopByHop, ResponseBody, StartResponse,
};

/// The scripted app panics on purpose and the crate catches those panics;
/// libFuzzer's hook would abort on them. Panics anywhere else (a broken
/// invariant in the harness) still reach the previous hook.
fn allow_app_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some("tower-wsgi-app") {
                previous(info);
            }
        }));
    });
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Reads the whole body frame by frame: the bytes, and whether it ended cleanly.
async fn drain(response: Response<ResponseBody>) -> (http::response::Parts, Vec<u8>, bool) {
    let (parts, mut body) = response.into_parts();
    let mut data = Vec::new();
    loop {
        match body.frame().await {
            None => return (parts, data, true),
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    data.extend_from_slice(&chunk);
                }
            }
            Some(Err(_)) => return (parts, data, false),
        }
    }
}

/// Runs one request and checks the answer: its head, its body, and whether
/// the body ended cleanly.
fn answer(
    service: Service,
    request: Request<Full<Bytes>>,
    head: bool,
    version: Version,
) -> (http::response::Parts, Vec<u8>, bool) {
    runtime().block_on(async move {
        let response = service
            .oneshot(request)
            .await
            .unwrap_or_else(|e: Infallible| match e {});
        let (parts, body, ended) = drain(response).await;
        check_response(&parts, &body, ended, head, version);
        (parts, body, ended)
    })
}

/// Invariants every response of the crate keeps, whatever the app did.
fn check_response(
    parts: &http::response::Parts,
    body: &[u8],
    ended: bool,
    head: bool,
    version: Version,
) {
    let status = parts.status.as_u16();
    assert!(status >= 200, "a {status} final status reached hyper");
    if head || status == 204 || status == 304 {
        assert!(
            body.is_empty(),
            "{status} (HEAD: {head}) carried {} body bytes",
            body.len()
        );
    }
    if status == 204 {
        assert!(
            !parts.headers.contains_key(header::CONTENT_LENGTH),
            "204 with Content-Length"
        );
    }
    let lengths: Vec<_> = parts
        .headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .collect();
    assert!(lengths.len() <= 1, "several Content-Length headers");
    if let Some(length) = lengths.first() {
        let length: usize = length
            .to_str()
            .unwrap()
            .parse()
            .expect("Content-Length is a number");
        if !(head || status == 304) {
            assert!(
                body.len() <= length,
                "{} bytes past Content-Length {length}",
                body.len() - length
            );
            assert!(
                !ended || body.len() == length,
                "a clean end at {} of {length} bytes",
                body.len()
            );
        }
    }
    for name in [
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
    ] {
        assert!(
            !parts.headers.contains_key(name),
            "hop-by-hop {name} reached hyper"
        );
    }
    if let Some(connection) = parts.headers.get(header::CONNECTION) {
        assert_eq!(connection, "close");
        assert_ne!(version, Version::HTTP_2, "Connection header on HTTP/2");
    }
    assert_eq!(
        parts.headers.get_all(header::DATE).iter().count(),
        1,
        "one Date"
    );
}

/// `start_response(status, headers)` with arbitrary text: the status up to
/// the first NUL, then `name:value` pairs separated by 0x01 bytes.
pub fn status_and_headers(data: &[u8]) {
    static SERVICE: OnceLock<tower_wsgi::WsgiService<tower_wsgi::AppFn<AppFnType>>> =
        OnceLock::new();
    type AppFnType = fn(Environ, StartResponse) -> Result<AppBody, BoxError>;
    fn app(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
        let input = environ
            .extensions()
            .get::<Bytes>()
            .cloned()
            .unwrap_or_default();
        let (status, headers) = match input.iter().position(|&b| b == 0) {
            Some(at) => (&input[..at], &input[at + 1..]),
            None => (&input[..], &[][..]),
        };
        let headers: Vec<(String, String)> = headers
            .split(|&b| b == 1)
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.iter().position(|&b| b == b':') {
                Some(at) => (latin1(&pair[..at]), latin1(&pair[at + 1..])),
                None => (latin1(pair), String::new()),
            })
            .collect();
        start_response.start(latin1(status), headers)?;
        Ok(AppBody::from("body"))
    }
    let service = SERVICE.get_or_init(|| {
        Builder::new()
            .max_threads(2)
            .build(tower_wsgi::app_fn(app as AppFnType))
    });
    let mut request = Request::get("/").body(Full::new(Bytes::new())).unwrap();
    request
        .extensions_mut()
        .insert(Bytes::copy_from_slice(data));
    answer(service.clone(), request, false, Version::HTTP_11);
}

/// The app's behaviour, decoded from fuzz bytes.
#[derive(Clone, Debug)]
struct Script {
    status: &'static str,
    length: Length,
    via: Via,
    fault: Fault,
    extra_header: Option<(&'static str, &'static str)>,
    chunks: Vec<usize>,
}

#[derive(Clone, Copy, Debug)]
enum Length {
    None,
    Exact,
    Less(usize),
    More(usize),
    Literal(&'static str),
    Twice,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Iter,
    Write,
    Mixed,
    EmptyFirst,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    ErrorAt(usize),
    PanicAt(usize),
    ErrorInClose,
    PanicBeforeStart,
    ExcInfoBefore,
    ExcInfoAfterWrite,
    StartTwice,
}

const STATUSES: [&str; 14] = [
    "200 OK",
    "201 Created",
    "204 No Content",
    "304 Not Modified",
    "404 NOT FOUND",
    "500 Oops",
    "599",
    "100 Continue",
    "103 Early Hints",
    "abc",
    "1000 X",
    "200 OK\r\nX: y",
    "",
    "299 Caf\u{e9}",
];

const HEADERS: [(&str, &str); 6] = [
    ("X-Fine", "1"),
    ("Transfer-Encoding", "chunked"),
    ("Connection", "keep-alive"),
    ("X-Inject", "a\r\nSet-Cookie: x"),
    ("Bad Name", "v"),
    ("Content-Type", "text/plain"),
];

fn script(data: &[u8]) -> (Script, bool, Version, bool) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let head = byte(0) & 1 == 1;
    let version =
        [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2][usize::from(byte(0) >> 1) % 3];
    let drop_hop = byte(0) & 0x80 != 0;
    let status = STATUSES[usize::from(byte(1)) % STATUSES.len()];
    let length = match byte(2) % 8 {
        0 => Length::None,
        1 | 2 => Length::Exact,
        3 => Length::Less(usize::from(byte(2) >> 3) + 1),
        4 => Length::More(usize::from(byte(2) >> 3) + 1),
        5 => Length::Literal("abc"),
        6 => Length::Twice,
        _ => Length::Literal("0"),
    };
    let via = [Via::Iter, Via::Write, Via::Mixed, Via::EmptyFirst][usize::from(byte(3)) % 4];
    let at = usize::from(byte(4) >> 4);
    let fault = match byte(4) % 12 {
        0 => Fault::ErrorAt(at),
        1 => Fault::PanicAt(at),
        2 => Fault::ErrorInClose,
        3 => Fault::PanicBeforeStart,
        4 => Fault::ExcInfoBefore,
        5 => Fault::ExcInfoAfterWrite,
        6 => Fault::StartTwice,
        _ => Fault::None,
    };
    let extra_header =
        (byte(5) % 3 == 0).then(|| HEADERS[usize::from(byte(5) / 3) % HEADERS.len()]);
    let chunks = data
        .iter()
        .skip(6)
        .take(8)
        .map(|&b| usize::from(b) * 3)
        .collect();
    (
        Script {
            status,
            length,
            via,
            fault,
            extra_header,
            chunks,
        },
        head,
        version,
        drop_hop,
    )
}

fn run_script(
    script: &Script,
    start_response: &StartResponse,
    closes: &Arc<AtomicUsize>,
) -> Result<AppBody, BoxError> {
    if script.fault == Fault::PanicBeforeStart {
        panic!("scripted panic before start_response");
    }
    let total: usize = script.chunks.iter().sum();
    let mut headers = vec![("Content-Type".to_owned(), "text/plain".to_owned())];
    let length = match script.length {
        Length::None => None,
        Length::Exact => Some(total.to_string()),
        Length::Less(n) => Some(total.saturating_sub(n).to_string()),
        Length::More(n) => Some((total + n).to_string()),
        Length::Literal(text) => Some(text.to_owned()),
        Length::Twice => {
            headers.push(("Content-Length".to_owned(), total.to_string()));
            Some((total + 1).to_string())
        }
    };
    if let Some(length) = length {
        headers.push(("Content-Length".to_owned(), length));
    }
    if let Some((name, value)) = script.extra_header {
        headers.push((name.to_owned(), value.to_owned()));
    }
    let write = start_response.start(script.status, headers)?;
    if script.fault == Fault::StartTwice {
        start_response.start("200 OK", [("X", "y")])?;
    }
    if script.fault == Fault::ExcInfoBefore {
        start_response.start_with_exc_info(
            "503 Service Unavailable",
            [("Content-Length", "7")],
            "scripted",
        )?;
    }
    let mut chunks: Vec<Bytes> = script
        .chunks
        .iter()
        .map(|&n| Bytes::from(vec![b'x'; n]))
        .collect();
    match script.via {
        Via::Write => {
            for chunk in chunks.drain(..) {
                write.write(chunk)?;
            }
        }
        Via::Mixed if !chunks.is_empty() => write.write(chunks.remove(0))?,
        Via::EmptyFirst => chunks.insert(0, Bytes::new()),
        _ => {}
    }
    if script.fault == Fault::ExcInfoAfterWrite {
        write.write("w")?;
        start_response.start_with_exc_info("500 Oops", [("Content-Length", "1")], "scripted")?;
    }
    let fault = script.fault;
    let items = chunks
        .into_iter()
        .enumerate()
        .map(move |(i, chunk)| match fault {
            Fault::ErrorAt(at) if at == i => Err::<Bytes, BoxError>("scripted error".into()),
            Fault::PanicAt(at) if at == i => panic!("scripted panic mid-body"),
            _ => Ok(chunk),
        });
    let closes = closes.clone();
    let fail_close = fault == Fault::ErrorInClose;
    Ok(AppBody::from_results(items).on_close(move || {
        closes.fetch_add(1, Ordering::SeqCst);
        if fail_close {
            return Err("scripted close failure".into());
        }
        Ok(())
    }))
}

/// One scripted request: its script and what its app did.
struct Case {
    script: Script,
    started: AtomicUsize,
    closes: Arc<AtomicUsize>,
    returned: Arc<AtomicUsize>,
}

type Service = tower_wsgi::WsgiService<
    tower_wsgi::AppFn<fn(Environ, StartResponse) -> Result<AppBody, BoxError>>,
>;

fn scripted_app(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
    let case = environ
        .extensions()
        .get::<Arc<Case>>()
        .cloned()
        .ok_or("no case")?;
    let _returned = CountOnDrop(case.returned.clone()); // counts a scripted panic too
    let result = run_script(&case.script, &start_response, &case.closes);
    case.started
        .fetch_add(usize::from(result.is_ok()), Ordering::SeqCst);
    result
}

/// One service per hop-by-hop policy for the whole process: no thread churn.
fn scripted_service(drop_hop: bool) -> Service {
    static SERVICES: OnceLock<[Service; 2]> = OnceLock::new();
    let services = SERVICES.get_or_init(|| {
        let build = |policy| {
            Builder::new()
                .max_threads(4)
                .hop_by_hop(policy)
                .build(app_fn(scripted_app as _))
        };
        [build(HopByHop::Reject), build(HopByHop::Drop)]
    });
    services[usize::from(drop_hop)].clone()
}

/// The response rule engine under a scripted application: any status,
/// length, delivery, failure and header; checks every response invariant and
/// that each body is closed exactly once.
pub fn response_rules(data: &[u8]) {
    allow_app_panics();
    let (script, head, version, drop_hop) = script(data);
    let total: usize = script.chunks.iter().sum();
    let clean = script.fault == Fault::None;
    let case = Arc::new(Case {
        script,
        started: AtomicUsize::new(0),
        closes: Arc::default(),
        returned: Arc::default(),
    });
    let mut request = Request::get("/").body(Full::new(Bytes::new())).unwrap();
    *request.version_mut() = version;
    if head {
        *request.method_mut() = http::Method::HEAD;
    }
    request.extensions_mut().insert(case.clone());
    let (parts, body, ended) = answer(scripted_service(drop_hop), request, head, version);
    if parts.status.is_success() && !head && ended && clean {
        assert!(body.len() <= total, "more bytes than the app produced");
    }
    // With `write`, a head (HEAD, 204, 304) can go out while the app still
    // runs; its body is closed once it returns. Otherwise close() came first.
    let settled = || {
        case.returned.load(Ordering::SeqCst) == 1
            && case.started.load(Ordering::SeqCst) == case.closes.load(Ordering::SeqCst)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !settled() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    assert_eq!(
        case.returned.load(Ordering::SeqCst),
        1,
        "the app never returned: {:?}",
        case.script
    );
    assert_eq!(
        case.started.load(Ordering::SeqCst),
        case.closes.load(Ordering::SeqCst),
        "close() exactly once per body: {:?}",
        case.script
    );
}

struct CountOnDrop(Arc<AtomicUsize>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

type Violation = Arc<Mutex<Option<String>>>;

fn environ_checker(
    mut environ: Environ,
    start_response: StartResponse,
) -> Result<AppBody, BoxError> {
    let mut problems = Vec::new();
    for (key, value) in environ.iter() {
        if key == "HTTP_CONTENT_TYPE" || key == "HTTP_CONTENT_LENGTH" {
            problems.push(format!("{key} present"));
        }
        if value.chars().any(|c| u32::from(c) > 0xff) {
            problems.push(format!("{key} holds a char past latin-1: {value:?}"));
        }
    }
    for key in [
        "REQUEST_METHOD",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "wsgi.url_scheme",
    ] {
        if environ.get(key).is_none_or(str::is_empty) {
            problems.push(format!("{key} missing"));
        }
    }
    if !problems.is_empty() {
        if let Some(slot) = environ.extensions().get::<Violation>() {
            *slot.lock().unwrap() = Some(problems.join("; "));
        }
    }
    let _ = environ.input().read_n(4096);
    start_response.start("200 OK", [("Content-Length", "2")])?;
    Ok("ok".into())
}

/// Arbitrary bytes as an HTTP/1 connection to a real hyper server hosting
/// the crate; the app checks its environ, and nothing may panic or hang.
pub fn request_to_environ(data: &[u8]) {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    let service = SERVICE
        .get_or_init(|| {
            Builder::new()
                .max_threads(4)
                .build(app_fn(environ_checker as _))
        })
        .clone();
    let violation: Violation = Arc::default();
    let slot = violation.clone();
    let service = service.map_request(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(slot.clone());
        request
    });
    let data = data.to_vec();
    runtime().block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let conn = hyper::server::conn::http1::Builder::new().serve_connection(
            hyper_util::rt::TokioIo::new(server),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let serving = tokio::spawn(conn);
        let _ = client.write_all(&data).await;
        let _ = client.shutdown().await;
        let mut out = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.read_to_end(&mut out),
        )
        .await;
        assert!(
            read.is_ok(),
            "the server hung on {:?}",
            String::from_utf8_lossy(&data)
        );
        let _ = serving.await;
        assert!(
            out.is_empty() || out.starts_with(b"HTTP/1."),
            "not an HTTP response: {:?}",
            String::from_utf8_lossy(&out)
        );
    });
    let problem = violation.lock().unwrap().take();
    if let Some(problem) = problem {
        panic!("environ invariant broken: {problem}");
    }
}

/// A request that looks like HTTP, built from fuzz bytes, for a useful start.
pub fn request_bytes(data: &[u8]) -> Vec<u8> {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let methods = ["GET", "HEAD", "POST", "PUT", "OPTIONS"];
    let method = methods[usize::from(byte(0)) % methods.len()];
    let version = if byte(1) & 1 == 1 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let rest = data.get(2..).unwrap_or_default();
    let split = rest.len() / 2;
    let mut request = format!("{method} /").into_bytes();
    request.extend(
        rest[..split]
            .iter()
            .copied()
            .filter(|b| !b" \r\n".contains(b)),
    );
    request.extend_from_slice(format!(" {version}\r\nHost: f\r\n").as_bytes());
    request.extend_from_slice(&rest[split..]);
    request.extend_from_slice(b"\r\n\r\n");
    request
}
