//! TLS for [`Server`](super::Server): rustls (ring provider) through
//! tokio-rustls, with ALPN offering `h2` and `http/1.1`.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A certificate chain and private key to serve TLS with, for
/// [`Server::tls`](super::Server::tls) and [`serve_tls`](super::serve_tls).
///
/// Connections negotiate HTTP/2 or HTTP/1.1 by ALPN, and their requests get
/// `wsgi.url_scheme` `https` (see [`Https`](crate::environ::Https)).
/// The handshake runs in the connection's own task, within
/// [`handshake_timeout`](TlsConfig::handshake_timeout).
///
/// ```no_run
/// use tower_wsgi::server::{Server, TlsConfig};
/// use tower_wsgi::WsgiService;
/// # use tower_wsgi::{AppBody, BoxError, Environ, StartResponse};
/// # fn hello(_environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
/// #     start_response.start("200 OK", [("Content-Length", "2")])?;
/// #     Ok("hi".into())
/// # }
///
/// # async fn run() -> std::io::Result<()> {
/// let tls = TlsConfig::from_pem_files("cert.pem", "key.pem")?;
/// Server::bind("0.0.0.0:8443")
///     .await?
///     .tls(tls)
///     .serve(WsgiService::new(hello))
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
}

impl TlsConfig {
    /// From a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> io::Result<Self> {
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("reading the certificate chain: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("no certificate in the PEM certificate chain"));
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| invalid(format!("reading the private key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self::from_config(Arc::new(config)))
    }

    /// From PEM files: a certificate chain (leaf first) and a private key.
    pub fn from_pem_files(
        cert_chain_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> io::Result<Self> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        Self::from_pem(&read(cert_chain_path.as_ref())?, &read(key_path.as_ref())?)
    }

    /// From a rustls configuration built elsewhere, used as it is: set its
    /// `alpn_protocols` to `h2` and `http/1.1` to offer HTTP/2.
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        Self {
            acceptor: TlsAcceptor::from(config),
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// How long a client may take to complete the TLS handshake (default 10 s).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The TLS handshake on `stream`, within the handshake timeout.
    pub(crate) async fn accept<IO>(&self, stream: IO) -> io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no TLS handshake within the timeout",
            )),
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alpn: Vec<_> = self
            .acceptor
            .config()
            .alpn_protocols
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        f.debug_struct("TlsConfig")
            .field("alpn_protocols", &alpn)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}
