//! [`ProxyFix`]: Werkzeug's `ProxyFix`, trusting proxy headers hop by hop.

mod grammar;

use grammar::{
    client_of, forwarded_element, host_of, parse_host, port_of, prefix_of, scheme_of, trusted,
    Client, X_FOR, X_HOST, X_PORT, X_PREFIX, X_PROTO,
};

use std::fmt;

use crate::app::App;
use crate::body::AppBody;
use crate::environ::Environ;
use crate::error::BoxError;
use crate::response::StartResponse;

/// The client's address, scheme, host and prefix from the
/// headers of trusted proxies, like Werkzeug's `ProxyFix`.
///
/// Behind a reverse proxy the connection comes from the proxy, so the
/// environ names the proxy as the client (`REMOTE_ADDR`), and the scheme, host
/// and mount point are those of the hop between proxy and application. Proxies
/// record the originals in headers, but a client can send the same headers
/// itself. `ProxyFix` believes a header only as far as it is told to: each
/// header has its own count of trusted hops, 0 (the default) ignores it, and
/// `n` takes the value the `n`th proxy from the application appended, i.e. the
/// `n`th value from the right. With fewer values than that, the header is
/// ignored. Values a client prepends are never read.
///
/// | header | count | sets |
/// |---|---|---|
/// | `X-Forwarded-For` | [`x_for`](ProxyFix::x_for) | `REMOTE_ADDR`, and `REMOTE_PORT` (the value's port, or removed) |
/// | `X-Forwarded-Proto` | [`x_proto`](ProxyFix::x_proto) | `wsgi.url_scheme` (`http` or `https`) |
/// | `X-Forwarded-Host` | [`x_host`](ProxyFix::x_host) | `HTTP_HOST`, `SERVER_NAME`, and `SERVER_PORT` when it has a port |
/// | `X-Forwarded-Port` | [`x_port`](ProxyFix::x_port) | the port of `HTTP_HOST`, and `SERVER_PORT` |
/// | `X-Forwarded-Prefix` | [`x_prefix`](ProxyFix::x_prefix) | `SCRIPT_NAME` (replaced, as Werkzeug does) |
/// | `Forwarded` (RFC 7239) | [`forwarded`](ProxyFix::forwarded) | `for=`, `proto=` and `host=` as the three above |
///
/// # `Forwarded` and `X-Forwarded-*` together
///
/// When both are trusted, each field is taken from the `Forwarded` element
/// (the standard) when it has a usable value there, and from the
/// `X-Forwarded-*` header otherwise: `for=unknown` or an obfuscated `for=_x`
/// falls back to `X-Forwarded-For`, an element without `proto=` to
/// `X-Forwarded-Proto`. `X-Forwarded-Port` then applies to whichever host was
/// chosen, and `X-Forwarded-Prefix` has no `Forwarded` counterpart.
///
/// # Differences from Werkzeug
///
/// - Every count defaults to 0 (Werkzeug trusts one `X-Forwarded-For` and
///   one `X-Forwarded-Proto` hop by default): nothing is believed unless asked.
/// - Values are checked: an address must be an IP address (with an optional
///   port, IPv6 in brackets), a scheme `http` or `https`, a host a host name
///   or IP literal with an optional port, a port digits up to 65535, a prefix
///   an absolute path. A value that fails is ignored with a log line naming
///   the header and the value; the request goes on.
/// - `REMOTE_PORT` follows the forwarded address: its port when it has one,
///   otherwise removed (the proxy's port next to the client's address would
///   be wrong).
/// - IPv6 hosts (`[::1]:8080`) are split at the right colon.
/// - Empty list elements (`a,,b`) are skipped, as RFC 9110 asks, so they do
///   not count as hops.
///
/// The original values are kept in a [`ProxyFixOrig`] extension
/// (Werkzeug's `werkzeug.proxy_fix.orig`); the headers stay in the environ.
///
/// # Example
///
/// ```
/// use tower_wsgi::test_client::TestClient;
/// use tower_wsgi::app_fn;
/// use tower_wsgi::middleware::{ProxyFix, ProxyFixOrig};
///
/// let app = app_fn(|environ, start_response| {
///     let before = environ.extensions().get::<ProxyFixOrig>().and_then(|o| o.remote_addr.clone());
///     let body = format!(
///         "{} {} (was {})",
///         environ.remote_addr().unwrap_or("-"),
///         environ.url_scheme(),
///         before.as_deref().unwrap_or("-"),
///     );
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(body.into())
/// });
/// // One proxy in front, which appends to X-Forwarded-For and sets X-Forwarded-Proto.
/// let client = TestClient::new(ProxyFix::new(app).x_for(1).x_proto(1));
/// let response = client
///     .get("/")
///     .header("X-Forwarded-For", "6.6.6.6, 203.0.113.7") // the client made up 6.6.6.6
///     .header("X-Forwarded-Proto", "https")
///     .send_blocking();
/// assert_eq!(response.text(), "203.0.113.7 https (was 127.0.0.1)");
/// ```
///
/// Every header is ignored until its hop count is set.
///
/// ```
/// use tower_wsgi::middleware::ProxyFix;
/// use tower_wsgi::{AppBody, BoxError, Environ, StartResponse, WsgiService};
///
/// fn app(environ: Environ, start_response: StartResponse) -> Result<AppBody, BoxError> {
///    start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///    Ok(environ.remote_addr().unwrap_or("").to_owned().into())
/// }
///
/// // app = ProxyFix(app, x_for=1, x_proto=1, x_host=1)
/// let service = WsgiService::new(ProxyFix::new(app).x_for(1).x_proto(1).x_host(1));
/// # drop(service);
/// ```
#[derive(Clone)]
pub struct ProxyFix<A> {
    app: A,
    trust: Trust,
}

#[derive(Clone, Copy, Debug, Default)]
struct Trust {
    x_for: usize,
    x_proto: usize,
    x_host: usize,
    x_port: usize,
    x_prefix: usize,
    forwarded: usize,
}

/// The environ values [`ProxyFix`] found before it changed anything, as a
/// request extension: Werkzeug's `werkzeug.proxy_fix.orig`.
///
/// Present whenever a `ProxyFix` ran, whether or not it changed anything;
/// `None` for a value the environ did not have.
///
/// ```
/// # use tower_wsgi::middleware::ProxyFixOrig;
/// # use tower_wsgi::Environ;
/// fn original_client(environ: &Environ) -> Option<&str> {
///    environ.extensions().get::<ProxyFixOrig>()?.remote_addr.as_deref()
/// }
/// # assert_eq!(original_client(&Environ::default()), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyFixOrig {
    /// `REMOTE_ADDR`: the proxy's address.
    pub remote_addr: Option<String>,
    /// `REMOTE_PORT`.
    pub remote_port: Option<String>,
    /// `wsgi.url_scheme`.
    pub url_scheme: Option<String>,
    /// `HTTP_HOST`.
    pub http_host: Option<String>,
    /// `SERVER_NAME`.
    pub server_name: Option<String>,
    /// `SERVER_PORT`.
    pub server_port: Option<String>,
    /// `SCRIPT_NAME`.
    pub script_name: Option<String>,
}

impl<A> ProxyFix<A> {
    /// Wraps `app`, trusting no header yet.
    pub fn new(app: A) -> Self {
        Self {
            app,
            trust: Trust::default(),
        }
    }

    /// How many proxies append to `X-Forwarded-For`, which sets `REMOTE_ADDR`.
    #[must_use]
    pub fn x_for(mut self, hops: usize) -> Self {
        self.trust.x_for = hops;
        self
    }

    /// How many proxies set `X-Forwarded-Proto`, which sets `wsgi.url_scheme`.
    #[must_use]
    pub fn x_proto(mut self, hops: usize) -> Self {
        self.trust.x_proto = hops;
        self
    }

    /// How many proxies set `X-Forwarded-Host`, which sets `HTTP_HOST`,
    /// `SERVER_NAME` and `SERVER_PORT`.
    #[must_use]
    pub fn x_host(mut self, hops: usize) -> Self {
        self.trust.x_host = hops;
        self
    }

    /// How many proxies set `X-Forwarded-Port`, which sets the port of
    /// `HTTP_HOST` and `SERVER_PORT`.
    #[must_use]
    pub fn x_port(mut self, hops: usize) -> Self {
        self.trust.x_port = hops;
        self
    }

    /// How many proxies set `X-Forwarded-Prefix`, which replaces `SCRIPT_NAME`.
    #[must_use]
    pub fn x_prefix(mut self, hops: usize) -> Self {
        self.trust.x_prefix = hops;
        self
    }

    /// How many proxies append an element to `Forwarded` (RFC 7239), whose
    /// `for=`, `proto=` and `host=` take precedence over `X-Forwarded-*`.
    #[must_use]
    pub fn forwarded(mut self, hops: usize) -> Self {
        self.trust.forwarded = hops;
        self
    }

    /// The wrapped application.
    pub fn get_ref(&self) -> &A {
        &self.app
    }

    /// The wrapped application, mutably.
    pub fn get_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// The wrapped application, unwrapped.
    pub fn into_inner(self) -> A {
        self.app
    }

    /// Rewrites `environ` as the wrapped application will see it; [`App::call`]
    /// does this before calling it.
    pub fn fix_environ(&self, environ: &mut Environ) {
        let trust = self.trust;
        let original = ProxyFixOrig {
            remote_addr: environ.get("REMOTE_ADDR").map(str::to_owned),
            remote_port: environ.get("REMOTE_PORT").map(str::to_owned),
            url_scheme: environ.get("wsgi.url_scheme").map(str::to_owned),
            http_host: environ.get("HTTP_HOST").map(str::to_owned),
            server_name: environ.get("SERVER_NAME").map(str::to_owned),
            server_port: environ.get("SERVER_PORT").map(str::to_owned),
            script_name: environ.get("SCRIPT_NAME").map(str::to_owned),
        };
        environ.extensions_mut().insert(original);

        let element = forwarded_element(environ, trust.forwarded);
        let element = element.as_ref();

        let client = element
            .and_then(|e| e.client)
            .or_else(|| trusted(environ, X_FOR, trust.x_for).and_then(|v| client_of(X_FOR, &v)));
        if let Some(Client { ip, port }) = client {
            environ.insert("REMOTE_ADDR", ip.to_string());
            match port {
                Some(port) => environ.insert("REMOTE_PORT", port.to_string()),
                None => environ.remove("REMOTE_PORT"),
            };
        }

        let scheme = element.and_then(|e| e.scheme).or_else(|| {
            trusted(environ, X_PROTO, trust.x_proto).and_then(|v| scheme_of(X_PROTO, &v))
        });
        if let Some(scheme) = scheme {
            environ.insert("wsgi.url_scheme", scheme);
        }

        let host = element
            .and_then(|e| e.host.clone())
            .or_else(|| trusted(environ, X_HOST, trust.x_host).and_then(|v| host_of(X_HOST, &v)));
        if let Some(host) = host {
            environ.insert("SERVER_NAME", host.name.clone());
            if let Some(port) = host.port {
                environ.insert("SERVER_PORT", port.to_string());
            }
            environ.insert("HTTP_HOST", host.value);
        }

        if let Some(port) = trusted(environ, X_PORT, trust.x_port).and_then(|v| port_of(X_PORT, &v))
        {
            if let Some(host) = environ.get("HTTP_HOST").and_then(parse_host) {
                environ.insert("HTTP_HOST", format!("{}:{port}", host.name));
            }
            environ.insert("SERVER_PORT", port.to_string());
        }

        if let Some(prefix) =
            trusted(environ, X_PREFIX, trust.x_prefix).and_then(|v| prefix_of(X_PREFIX, &v))
        {
            environ.insert("SCRIPT_NAME", prefix);
        }
    }
}

impl<A: App> App for ProxyFix<A> {
    fn call(
        &self,
        mut environ: Environ,
        start_response: StartResponse,
    ) -> Result<AppBody, BoxError> {
        self.fix_environ(&mut environ);
        self.app.call(environ, start_response)
    }

    fn allows_inline(&self) -> bool {
        self.app.allows_inline()
    }

    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        self.app.run_thread(thread)
    }

    fn parallelism(&self) -> Option<std::num::NonZeroUsize> {
        self.app.parallelism()
    }
}

impl<A> fmt::Debug for ProxyFix<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyFix")
            .field("app", &std::any::type_name::<A>())
            .field("x_for", &self.trust.x_for)
            .field("x_proto", &self.trust.x_proto)
            .field("x_host", &self.trust.x_host)
            .field("x_port", &self.trust.x_port)
            .field("x_prefix", &self.trust.x_prefix)
            .field("forwarded", &self.trust.forwarded)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::grammar::*;
    use super::*;

    fn fixed(fix: &ProxyFix<()>, headers: &[(&str, &str)]) -> Environ {
        let mut environ = Environ::default();
        environ.insert("REMOTE_ADDR", "10.0.0.1");
        environ.insert("REMOTE_PORT", "50000");
        environ.insert("HTTP_HOST", "backend:8000");
        environ.insert("SERVER_NAME", "backend");
        environ.insert("SERVER_PORT", "8000");
        for (key, value) in headers {
            environ.insert(*key, *value);
        }
        fix.fix_environ(&mut environ);
        environ
    }

    fn known(ip: &str, port: Option<u16>) -> Option<Node> {
        Some(Node::Known(Client {
            ip: ip.parse().unwrap(),
            port,
        }))
    }

    #[test]
    fn nodes() {
        assert_eq!(parse_node("192.0.2.43"), known("192.0.2.43", None));
        assert_eq!(
            parse_node("192.0.2.43:47011"),
            known("192.0.2.43", Some(47011))
        );
        assert_eq!(parse_node("2001:db8::1"), known("2001:db8::1", None));
        assert_eq!(parse_node("[2001:db8::1]"), known("2001:db8::1", None));
        assert_eq!(
            parse_node("[2001:db8::1]:4711"),
            known("2001:db8::1", Some(4711))
        );
        assert_eq!(parse_node("192.0.2.43:_p1"), known("192.0.2.43", None));
        assert_eq!(parse_node("unknown"), Some(Node::Hidden));
        assert_eq!(parse_node("_hidden.1"), Some(Node::Hidden));
        assert_eq!(parse_node("_x:_y"), Some(Node::Hidden));
        assert_eq!(parse_node("unknown:80"), Some(Node::Hidden));
        for bad in [
            "",
            "_",
            "evil.example",
            "1.2.3.4:",
            "1.2.3.4:99999",
            "[::1]x",
            "[::1",
            "[nope]:1",
            "1.2.3.4:80:80",
            "2001:db8::1:80x",
            "_x:",
            "unknown:http",
            "[1.2.3.4]",
        ] {
            assert_eq!(parse_node(bad), None, "{bad}");
        }
    }

    #[test]
    fn hosts() {
        let host = parse_host("Example.com:8443").unwrap();
        assert_eq!((host.name.as_str(), host.port), ("Example.com", Some(8443)));
        let host = parse_host("[::1]:8080").unwrap();
        assert_eq!((host.name.as_str(), host.port), ("[::1]", Some(8080)));
        assert_eq!(parse_host("[::1]").unwrap().port, None);
        for bad in [
            "",
            ":80",
            "a b",
            "user@host",
            "host/path",
            "host:",
            "host:http",
            "[::1]80",
            "a:1:2",
        ] {
            assert_eq!(parse_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(parse_prefix("/public/").as_deref(), Some("/public"));
        assert_eq!(parse_prefix("/").as_deref(), Some(""));
        assert_eq!(
            parse_prefix("/caf%C3%A9").as_deref(),
            Some("/caf\u{c3}\u{a9}")
        );
        for bad in [
            "public",
            "/a b",
            "/a?x",
            "/a/../b",
            "/%2e%2e/x",
            "/a%0Ab",
            "",
        ] {
            assert_eq!(parse_prefix(bad), None, "{bad}");
        }
    }

    #[test]
    fn lists_respect_quotes() {
        assert_eq!(
            split_outside_quotes(r#"for="a,b";proto=http, for=c"#, b','),
            Some(vec![r#"for="a,b";proto=http"#, "for=c"])
        );
        assert_eq!(
            split_outside_quotes(r#"for="a\"b,c""#, b','),
            Some(vec![r#"for="a\"b,c""#])
        );
        assert_eq!(split_outside_quotes(r#"for="open, for=c"#, b','), None);
        assert_eq!(unquote(r#""a\"b""#), r#"a"b"#);
        assert_eq!(unquote("plain"), "plain");
    }

    #[test]
    fn elements() {
        let pairs = parse_element(r#"For="[2001:db8::1]:80"; proto=https ;host=h"#).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("For", "[2001:db8::1]:80".to_owned()),
                ("proto", "https".to_owned()),
                ("host", "h".to_owned())
            ]
        );
        for bad in [
            "for",
            "for=a;for=b",
            "for=a b",
            "=a",
            "for=\"",
            "for=[::1]:80",
        ] {
            assert_eq!(parse_element(bad), None, "{bad}");
        }
    }

    #[test]
    fn nothing_changes_by_default() {
        let environ = fixed(
            &ProxyFix::new(()),
            &[
                ("HTTP_X_FORWARDED_FOR", "1.2.3.4"),
                ("HTTP_X_FORWARDED_PROTO", "https"),
                ("HTTP_FORWARDED", "for=1.2.3.4;proto=https;host=evil"),
            ],
        );
        assert_eq!(environ.remote_addr(), Some("10.0.0.1"));
        assert_eq!(environ.get("REMOTE_PORT"), Some("50000"));
        assert_eq!(environ.url_scheme(), "http");
        assert_eq!(environ.get("HTTP_HOST"), Some("backend:8000"));
        let orig = environ.extensions().get::<ProxyFixOrig>().unwrap();
        assert_eq!(orig.remote_addr.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn forwarded_wins_per_field_and_falls_back() {
        let fix = ProxyFix::new(()).forwarded(1).x_for(1).x_proto(1).x_host(1);
        let environ = fixed(
            &fix,
            &[
                ("HTTP_FORWARDED", "for=unknown;host=a.example"),
                ("HTTP_X_FORWARDED_FOR", "198.51.100.2"),
                ("HTTP_X_FORWARDED_PROTO", "https"),
                ("HTTP_X_FORWARDED_HOST", "b.example"),
            ],
        );
        assert_eq!(environ.remote_addr(), Some("198.51.100.2"));
        assert_eq!(environ.get("REMOTE_PORT"), None);
        assert_eq!(environ.url_scheme(), "https");
        assert_eq!(environ.get("HTTP_HOST"), Some("a.example"));
        assert_eq!(environ.get("SERVER_NAME"), Some("a.example"));
        assert_eq!(environ.get("SERVER_PORT"), Some("8000"));
    }

    #[test]
    fn port_rewrites_the_chosen_host() {
        let fix = ProxyFix::new(()).x_host(1).x_port(1);
        let environ = fixed(
            &fix,
            &[
                ("HTTP_X_FORWARDED_HOST", "[2001:db8::7]:1"),
                ("HTTP_X_FORWARDED_PORT", "8443"),
            ],
        );
        assert_eq!(environ.get("HTTP_HOST"), Some("[2001:db8::7]:8443"));
        assert_eq!(environ.get("SERVER_NAME"), Some("[2001:db8::7]"));
        assert_eq!(environ.get("SERVER_PORT"), Some("8443"));
    }
}
