//! [`ProxyFix`]: the client's address, scheme, host and prefix from the
//! headers of trusted proxies, like Werkzeug's `ProxyFix`.
//!
//! Behind a reverse proxy the connection comes from the proxy, so the
//! environ names the proxy as the client (`REMOTE_ADDR`), and the scheme, host
//! and mount point are those of the hop between proxy and application. Proxies
//! record the originals in headers, but a client can send the same headers
//! itself. `ProxyFix` believes a header only as far as it is told to: each
//! header has its own count of trusted hops, 0 (the default) ignores it, and
//! `n` takes the value the `n`th proxy from the application appended, i.e. the
//! `n`th value from the right. With fewer values than that, the header is
//! ignored. Values a client prepends are never read.
//!
//! | header | count | sets |
//! |---|---|---|
//! | `X-Forwarded-For` | [`x_for`](ProxyFix::x_for) | `REMOTE_ADDR`, and `REMOTE_PORT` (the value's port, or removed) |
//! | `X-Forwarded-Proto` | [`x_proto`](ProxyFix::x_proto) | `wsgi.url_scheme` (`http` or `https`) |
//! | `X-Forwarded-Host` | [`x_host`](ProxyFix::x_host) | `HTTP_HOST`, `SERVER_NAME`, and `SERVER_PORT` when it has a port |
//! | `X-Forwarded-Port` | [`x_port`](ProxyFix::x_port) | the port of `HTTP_HOST`, and `SERVER_PORT` |
//! | `X-Forwarded-Prefix` | [`x_prefix`](ProxyFix::x_prefix) | `SCRIPT_NAME` (replaced, as Werkzeug does) |
//! | `Forwarded` (RFC 7239) | [`forwarded`](ProxyFix::forwarded) | `for=`, `proto=` and `host=` as the three above |
//!
//! # `Forwarded` and `X-Forwarded-*` together
//!
//! When both are trusted, each field is taken from the `Forwarded` element
//! (the standard) when it has a usable value there, and from the
//! `X-Forwarded-*` header otherwise: `for=unknown` or an obfuscated `for=_x`
//! falls back to `X-Forwarded-For`, an element without `proto=` to
//! `X-Forwarded-Proto`. `X-Forwarded-Port` then applies to whichever host was
//! chosen, and `X-Forwarded-Prefix` has no `Forwarded` counterpart.
//!
//! # Differences from Werkzeug
//!
//! - Every count defaults to 0 (Werkzeug trusts one `X-Forwarded-For` and
//!   one `X-Forwarded-Proto` hop by default): nothing is believed unless asked.
//! - Values are checked: an address must be an IP address (with an optional
//!   port, IPv6 in brackets), a scheme `http` or `https`, a host a host name
//!   or IP literal with an optional port, a port digits up to 65535, a prefix
//!   an absolute path. A value that fails is ignored with a log line naming
//!   the header and the value; the request goes on.
//! - `REMOTE_PORT` follows the forwarded address: its port when it has one,
//!   otherwise removed (the proxy's port next to the client's address would
//!   be wrong).
//! - IPv6 hosts (`[::1]:8080`) are split at the right colon.
//! - Empty list elements (`a,,b`) are skipped, as RFC 9110 asks, so they do
//!   not count as hops.
//!
//! The original values are kept in a [`ProxyFixOrig`] extension
//! (Werkzeug's `werkzeug.proxy_fix.orig`); the headers stay in the environ.
//!
//! # Example
//!
//! ```
//! use tower_wsgi::test_client::TestClient;
//! use tower_wsgi::{app_fn, ProxyFix, ProxyFixOrig};
//!
//! let app = app_fn(|environ, start_response| {
//!     let before = environ.extensions().get::<ProxyFixOrig>().and_then(|o| o.remote_addr.clone());
//!     let body = format!(
//!         "{} {} (was {})",
//!         environ.remote_addr().unwrap_or("-"),
//!         environ.url_scheme(),
//!         before.as_deref().unwrap_or("-"),
//!     );
//!     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(body.into())
//! });
//! // One proxy in front, which appends to X-Forwarded-For and sets X-Forwarded-Proto.
//! let client = TestClient::new(ProxyFix::new(app).x_for(1).x_proto(1));
//! let response = client
//!     .get("/")
//!     .header("X-Forwarded-For", "6.6.6.6, 203.0.113.7") // the client made up 6.6.6.6
//!     .header("X-Forwarded-Proto", "https")
//!     .send_blocking();
//! assert_eq!(response.text(), "203.0.113.7 https (was 127.0.0.1)");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::app::App;
use crate::body::Body;
use crate::environ::{latin1, Environ};
use crate::error::BoxError;
use crate::start_response::StartResponse;

/// Legacy middleware that rewrites the environ from trusted proxy headers,
/// then calls the application it wraps.
///
/// Every header is ignored until its hop count is set. See the
/// [module docs](crate::proxy_fix) for what each header sets, how
/// `Forwarded` and `X-Forwarded-*` combine, and an example.
///
/// ```
/// use tower_wsgi::{Body, BoxError, Environ, ProxyFix, StartResponse, WsgiService};
///
/// fn app(environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
///     start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(environ.remote_addr().unwrap_or("").to_owned().into())
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
/// # use tower_wsgi::{Environ, ProxyFixOrig};
/// fn original_client(environ: &Environ) -> Option<&str> {
///     environ.extensions().get::<ProxyFixOrig>()?.remote_addr.as_deref()
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
    fn call(&self, mut environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
        self.fix_environ(&mut environ);
        self.app.call(environ, start_response)
    }

    fn allows_inline(&self) -> bool {
        self.app.allows_inline()
    }

    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        self.app.run_thread(thread)
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

/// A header and its environ key.
#[derive(Clone, Copy)]
struct Header {
    name: &'static str,
    key: &'static str,
}

const X_FOR: Header = Header {
    name: "X-Forwarded-For",
    key: "HTTP_X_FORWARDED_FOR",
};
const X_PROTO: Header = Header {
    name: "X-Forwarded-Proto",
    key: "HTTP_X_FORWARDED_PROTO",
};
const X_HOST: Header = Header {
    name: "X-Forwarded-Host",
    key: "HTTP_X_FORWARDED_HOST",
};
const X_PORT: Header = Header {
    name: "X-Forwarded-Port",
    key: "HTTP_X_FORWARDED_PORT",
};
const X_PREFIX: Header = Header {
    name: "X-Forwarded-Prefix",
    key: "HTTP_X_FORWARDED_PREFIX",
};
const FORWARDED: Header = Header {
    name: "Forwarded",
    key: "HTTP_FORWARDED",
};

/// The list item `hops` from the right of `header` (repeated fields arrive
/// joined with `,`), or `None` when untrusted, absent or too short.
fn trusted_item(environ: &Environ, header: Header, hops: usize) -> Option<&str> {
    if hops == 0 {
        return None;
    }
    let value = environ.get(header.key)?;
    let Some(items) = split_outside_quotes(value, b',') else {
        tracing::warn!(
            header = header.name,
            ?value,
            "ignoring a header with an unterminated quoted string"
        );
        return None;
    };
    let items: Vec<&str> = items.into_iter().filter(|i| !i.is_empty()).collect();
    if items.len() < hops {
        tracing::debug!(
            header = header.name,
            values = items.len(),
            hops,
            "ignoring a header with fewer values than trusted hops"
        );
        return None;
    }
    Some(items[items.len() - hops])
}

/// [`trusted_item`], unquoted.
fn trusted(environ: &Environ, header: Header, hops: usize) -> Option<String> {
    trusted_item(environ, header, hops).map(|item| unquote(item).into_owned())
}

/// Splits at `separator` outside quoted strings, trimming each part;
/// `None` when a quoted string does not end.
fn split_outside_quotes(value: &str, separator: u8) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, byte) in value.bytes().enumerate() {
        if quoted {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if byte == b'"' {
            quoted = true;
        } else if byte == separator {
            parts.push(value[start..i].trim());
            start = i + 1;
        }
    }
    if quoted {
        return None;
    }
    parts.push(value[start..].trim());
    Some(parts)
}

/// The content of a quoted string (`"a\"b"` → `a"b`); anything else as it is.
fn unquote(value: &str) -> Cow<'_, str> {
    match value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) if inner.contains('\\') => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            Cow::Owned(out)
        }
        Some(inner) => Cow::Borrowed(inner),
        None => Cow::Borrowed(value),
    }
}

fn invalid(header: Header, what: &str, value: &str) {
    tracing::warn!(
        header = header.name,
        ?value,
        "ignoring a forwarded value that is not {what}"
    );
}

/// A forwarded client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Client {
    ip: IpAddr,
    port: Option<u16>,
}

/// What a node identifier says about the client.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Known(Client),
    /// `unknown` or obfuscated (`_hidden`): a valid answer, but no address.
    Hidden,
}

/// RFC 7239 `node`, also accepted in `X-Forwarded-For`: an IPv4 or IPv6
/// address (bare, or `[v6]`), an optional `:port` (digits or an obfuscated
/// `_port`), `unknown`, or an obfuscated `_name`.
fn parse_node(value: &str) -> Option<Node> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(Node::Known(Client { ip, port: None }));
    }
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let name = &value[..v6.len() + 2];
        match after {
            "" => (name, None),
            _ => (name, Some(after.strip_prefix(':')?)),
        }
    } else {
        match value.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        }
    };
    let port = match port {
        Some(port) if is_obfuscated(port) => None,
        Some(port) => Some(parse_port(port)?),
        None => None,
    };
    if name.eq_ignore_ascii_case("unknown") || is_obfuscated(name) {
        return Some(Node::Hidden);
    }
    let ip = match name.strip_prefix('[') {
        Some(bracketed) => IpAddr::V6(bracketed.strip_suffix(']')?.parse().ok()?),
        None => IpAddr::V4(name.parse().ok()?),
    };
    Some(Node::Known(Client { ip, port }))
}

/// RFC 7239 `obfnode` / `obfport`: `_` then letters, digits, `.`, `_`, `-`.
fn is_obfuscated(value: &str) -> bool {
    value.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

fn client_of(header: Header, value: &str) -> Option<Client> {
    match parse_node(value) {
        Some(Node::Known(client)) => Some(client),
        Some(Node::Hidden) => {
            tracing::debug!(
                header = header.name,
                ?value,
                "the trusted hop hides the client's address; REMOTE_ADDR unchanged"
            );
            None
        }
        None => {
            invalid(header, "an IP address", value);
            None
        }
    }
}

fn scheme_of(header: Header, value: &str) -> Option<&'static str> {
    if value.eq_ignore_ascii_case("http") {
        Some("http")
    } else if value.eq_ignore_ascii_case("https") {
        Some("https")
    } else {
        invalid(header, "http or https", value);
        None
    }
}

/// A forwarded `Host`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Host {
    /// The whole value, for `HTTP_HOST`.
    value: String,
    /// The name, or the IP literal (IPv6 in brackets), for `SERVER_NAME`.
    name: String,
    port: Option<u16>,
}

/// `host [":" port]`: a registered name (letters, digits, `-`, `.`, `_`,
/// `~`), an IPv4 address, or an IPv6 address in brackets.
fn parse_host(value: &str) -> Option<Host> {
    let (name, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        value[1..end].parse::<Ipv6Addr>().ok()?;
        match &value[end + 1..] {
            "" => (&value[..=end], None),
            rest => (&value[..=end], Some(rest.strip_prefix(':')?)),
        }
    } else {
        match value.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        }
    };
    let name_ok = !name.is_empty()
        && (name.starts_with('[')
            || name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')));
    if !name_ok {
        return None;
    }
    let port = match port {
        Some(port) => Some(parse_port(port)?),
        None => None,
    };
    Some(Host {
        value: value.to_owned(),
        name: name.to_owned(),
        port,
    })
}

fn host_of(header: Header, value: &str) -> Option<Host> {
    let host = parse_host(value);
    if host.is_none() {
        invalid(header, "a host with an optional port", value);
    }
    host
}

/// One to five digits, at most 65535.
fn parse_port(value: &str) -> Option<u16> {
    if value.is_empty() || value.len() > 5 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn port_of(header: Header, value: &str) -> Option<u16> {
    let port = parse_port(value);
    if port.is_none() {
        invalid(header, "a port number", value);
    }
    port
}

/// An absolute path of visible ASCII without `?`, `#` or dot segments, as
/// `SCRIPT_NAME`: percent-decoded (one char per byte) and without a trailing `/`.
fn parse_prefix(value: &str) -> Option<String> {
    if !value.starts_with('/')
        || !value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'\\'))
    {
        return None;
    }
    let decoded = latin1(&percent_encoding::percent_decode_str(value).collect::<Vec<u8>>());
    let bad_segment = decoded
        .split('/')
        .any(|s| s == "." || s == ".." || s.chars().any(char::is_control));
    if bad_segment {
        return None;
    }
    Some(decoded.trim_end_matches('/').to_owned())
}

fn prefix_of(header: Header, value: &str) -> Option<String> {
    let prefix = parse_prefix(value);
    if prefix.is_none() {
        invalid(header, "an absolute path", value);
    }
    prefix
}

/// The usable fields of the trusted `Forwarded` element.
#[derive(Debug, Default, PartialEq, Eq)]
struct Element {
    client: Option<Client>,
    scheme: Option<&'static str>,
    host: Option<Host>,
}

/// The `Forwarded` element `hops` from the right, parsed; `None` when
/// untrusted, absent, too short or malformed (logged).
fn forwarded_element(environ: &Environ, hops: usize) -> Option<Element> {
    let item = trusted_item(environ, FORWARDED, hops)?;
    let Some(pairs) = parse_element(item) else {
        invalid(FORWARDED, "a well-formed element", item);
        return None;
    };
    let mut element = Element::default();
    for (name, value) in pairs {
        match name.to_ascii_lowercase().as_str() {
            "for" => element.client = client_of(FORWARDED, &value),
            "proto" => element.scheme = scheme_of(FORWARDED, &value),
            "host" => element.host = host_of(FORWARDED, &value),
            _ => {}
        }
    }
    Some(element)
}

/// `forwarded-element`: `name=value` pairs separated by `;`, values tokens
/// or quoted strings, each name at most once.
fn parse_element(item: &str) -> Option<Vec<(&str, String)>> {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for pair in split_outside_quotes(item, b';')? {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=')?;
        let (name, value) = (name.trim(), value.trim());
        let value_ok = if value.starts_with('"') {
            value.len() >= 2 && value.ends_with('"')
        } else {
            is_token(value)
        };
        if !is_token(name) || !value_ok || pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return None;
        }
        pairs.push((name, unquote(value).into_owned()));
    }
    Some(pairs)
}

/// RFC 9110 `token`.
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
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
