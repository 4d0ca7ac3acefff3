//! TLS (`tls` feature): a self-signed certificate made here, rustls clients
//! trusting it, HTTP/1.1 and HTTP/2 chosen by ALPN, `wsgi.url_scheme`
//! `https`, and handshakes that fail or stall without holding up anyone else.
#![cfg(feature = "tls")]
#![deny(warnings)]

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use support::client;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tower_service::Service;
use tower_wsgi::server::TlsConfig;
use tower_wsgi::{app_fn, BoxError, WsgiService};

/// A self-signed certificate for `localhost`: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

/// A TLS server on 127.0.0.1, stopped on drop.
struct TlsServer {
    addr: SocketAddr,
    /// The certificate clients trust.
    cert: CertificateDer<'static>,
    _server: support::TestServer,
}

fn serve_tls<S, B>(service: S, configure: impl FnOnce(TlsConfig) -> TlsConfig) -> TlsServer
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (cert_pem, key_pem) = self_signed();
    let tls = configure(TlsConfig::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap());
    serve_with(service, tls, &cert_pem)
}

fn serve_with<S, B>(service: S, tls: TlsConfig, cert_pem: &str) -> TlsServer
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = support::serve_with(runtime, service, move |server| server.tls(tls));
    TlsServer {
        addr: server.addr,
        cert,
        _server: server,
    }
}

/// A TLS connection trusting only `server`'s certificate, offering `alpn`.
async fn connect_tls(server: &TlsServer, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

fn get(path: &str, addr: SocketAddr) -> Request<Empty<Bytes>> {
    Request::get(format!("https://localhost:{}{path}", addr.port()))
        .header("host", format!("localhost:{}", addr.port()))
        .body(Empty::new())
        .unwrap()
}

async fn body_of(response: Response<Incoming>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

/// A request over HTTP/1.1 on a TLS connection that negotiated `alpn`.
async fn get_http1(server: &TlsServer, alpn: &[&[u8]], path: &str) -> (Vec<u8>, Bytes) {
    let tls = connect_tls(server, alpn).await;
    let negotiated = tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(get(path, server.addr)).await.unwrap();
    assert_eq!(response.status(), 200);
    (negotiated, body_of(response).await)
}

fn environ_json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[test]
fn http1_over_tls_sees_the_https_scheme() {
    let server = serve_tls(support::conformance::service(), |tls| tls);
    client(async {
        let (alpn, body) = get_http1(&server, &[b"http/1.1"], "/environ").await;
        assert_eq!(alpn, b"http/1.1");
        let environ = environ_json(&body);
        assert_eq!(environ["wsgi.url_scheme"], "https");
        assert_eq!(environ["SERVER_PROTOCOL"], "HTTP/1.1");

        // A client that offers no ALPN at all gets HTTP/1.1 too.
        let (alpn, body) = get_http1(&server, &[], "/environ").await;
        assert_eq!(alpn, b"");
        assert_eq!(environ_json(&body)["wsgi.url_scheme"], "https");
    });
}

#[test]
fn alpn_negotiates_http2_over_tls() {
    let server = serve_tls(support::conformance::service(), |tls| tls);
    client(async {
        let tls = connect_tls(&server, &[b"h2", b"http/1.1"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut requests = Vec::new();
        for _ in 0..3 {
            let mut sender = sender.clone();
            let req = get("/environ", server.addr);
            requests.push(tokio::spawn(async move {
                body_of(sender.send_request(req).await.unwrap()).await
            }));
        }
        for request in requests {
            let environ = environ_json(&request.await.unwrap());
            assert_eq!(environ["SERVER_PROTOCOL"], "HTTP/2");
            assert_eq!(environ["wsgi.url_scheme"], "https");
            assert_eq!(
                environ["HTTP_HOST"],
                format!("localhost:{}", server.addr.port())
            );
        }
        let head = sender
            .send_request(
                Request::head(format!("https://localhost:{}/respond", server.addr.port()))
                    .body(Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(head.headers().get("connection").is_none());
        assert_eq!(body_of(head).await, "");
    });
}

#[test]
fn server_port_and_scheme_agree_without_builder_https() {
    let service = WsgiService::new(app_fn(|environ, start_response| {
        let body = format!(
            "{} {} {}",
            environ.url_scheme(),
            environ.get("SERVER_PORT").unwrap_or("-"),
            environ
                .extensions()
                .get::<tower_wsgi::environ::Https>()
                .is_some()
        );
        start_response.start("200 OK", [("Content-Length", body.len().to_string())])?;
        Ok(body.into())
    }));
    let server = serve_tls(service, |tls| tls);
    client(async {
        let (_, body) = get_http1(&server, &[b"http/1.1"], "/").await;
        assert_eq!(body, format!("https {} true", server.addr.port()));
    });
}

/// Reads until the peer closes; `true` if it did within ten seconds.
fn closed_by_peer(stream: &mut std::net::TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = Vec::new();
    stream.read_to_end(&mut sink).is_ok()
}

#[test]
fn a_plain_text_client_fails_and_tls_clients_go_on_being_served() {
    let server = serve_tls(support::conformance::service(), |tls| tls);
    let mut plain = std::net::TcpStream::connect(server.addr).unwrap();
    let plain_addr = plain.local_addr().unwrap();
    plain
        .write_all(b"GET /environ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "no HTTP answer in plain text: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let line = support::log_line_with(&["TLS handshake failed", &plain_addr.to_string()]);
    assert!(
        line.is_some(),
        "the failure is logged with the peer address"
    );
    client(async {
        let (_, body) = get_http1(&server, &[b"http/1.1"], "/environ").await;
        assert_eq!(environ_json(&body)["wsgi.url_scheme"], "https");
    });
}

#[test]
fn clients_that_never_handshake_hold_up_no_one() {
    // A handshake timeout far past the clients' own bound: only handshakes
    // in their own tasks let the others through.
    let server = serve_tls(support::conformance::service(), |tls| {
        tls.handshake_timeout(Duration::from_secs(60))
    });
    // Connected, and silent.
    let _silent = std::net::TcpStream::connect(server.addr).unwrap();
    // Half a ClientHello: a handshake that starts and stalls.
    let mut stalled = std::net::TcpStream::connect(server.addr).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    client(async {
        for _ in 0..3 {
            let (_, body) = get_http1(&server, &[b"http/1.1"], "/environ").await;
            assert_eq!(environ_json(&body)["wsgi.url_scheme"], "https");
        }
    });
    let started = Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown abandons handshakes under way"
    );
}

#[test]
fn a_stalled_handshake_times_out_and_is_logged() {
    let server = serve_tls(support::conformance::service(), |tls| {
        tls.handshake_timeout(Duration::from_millis(300))
    });
    let mut silent = std::net::TcpStream::connect(server.addr).unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let started = Instant::now();
    assert!(closed_by_peer(&mut silent), "the silent client is dropped");
    assert!(started.elapsed() < Duration::from_secs(5));
    let line = support::log_line_with(&["TLS handshake failed", &silent_addr.to_string()]);
    assert!(
        line.as_deref().is_some_and(|l| l.contains("timeout")),
        "{line:?}"
    );
}

#[test]
fn pem_files_load_and_bad_pem_is_an_error_not_a_panic() {
    let (cert_pem, key_pem) = self_signed();
    let dir = std::env::temp_dir().join(format!("tower-wsgi-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, &key_pem).unwrap();

    let missing = TlsConfig::from_pem_files(dir.join("absent.pem"), &key_path).unwrap_err();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    assert!(missing.to_string().contains("absent.pem"), "{missing}");
    let no_cert = TlsConfig::from_pem(key_pem.as_bytes(), key_pem.as_bytes()).unwrap_err();
    assert_eq!(no_cert.kind(), std::io::ErrorKind::InvalidInput);
    let no_key = TlsConfig::from_pem(cert_pem.as_bytes(), b"not a key").unwrap_err();
    assert_eq!(no_key.kind(), std::io::ErrorKind::InvalidInput);
    let (_, other_key) = self_signed();
    let mismatched = TlsConfig::from_pem(cert_pem.as_bytes(), other_key.as_bytes()).unwrap_err();
    assert_eq!(mismatched.kind(), std::io::ErrorKind::InvalidInput);

    let tls = TlsConfig::from_pem_files(&cert_path, &key_path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let server = serve_with(support::conformance::service(), tls, &cert_pem);
    client(async {
        let (_, body) = get_http1(&server, &[b"h2", b"http/1.1"], "/respond").await;
        assert_eq!(body, "hello");
    });
}

#[test]
fn a_rustls_config_built_elsewhere_is_used_as_it_is() {
    use rustls::pki_types::pem::PemObject;
    let (cert_pem, key_pem) = self_signed();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()],
            rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    // No ALPN configured: clients offering h2 fall back to HTTP/1.1.
    let tls = TlsConfig::from_config(Arc::new(config));
    let server = serve_with(support::conformance::service(), tls, &cert_pem);
    client(async {
        let (alpn, body) = get_http1(&server, &[b"h2", b"http/1.1"], "/environ").await;
        assert_eq!(alpn, b"");
        assert_eq!(environ_json(&body)["wsgi.url_scheme"], "https");
    });
}
