//! Building the environ of a request (rule 12): the variables are made
//! when first asked for, from the request as received.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{header, request, HeaderMap, Method, Version};

use super::keys::{each_header, header_var, HeaderVar};
use super::Home;
use super::{
    below_prefix, Environ, Https, Input, LocalAddr, Made, MountPoint, RemoteAddr, VarSink,
};
use crate::latin1;

/// The service's options the environ is made with.
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvironOptions {
    /// Percent-decoded, one char per byte, no trailing `/`: compared with
    /// the decoded path.
    pub(crate) script_name: String,
    pub(crate) https: bool,
    pub(crate) server_software: String,
    pub(crate) keep_underscore_headers: bool,
}

/// What the environ is made of: the request as received, and the options.
pub(super) struct Received {
    method: Method,
    /// The URI the client sent (under a [`MountPoint`], the original one).
    uri: http::Uri,
    /// Length of the path's part a router mounted the service at.
    mount_len: usize,
    version: Version,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    local: Option<SocketAddr>,
    https: bool,
    /// An HTTP/1 absolute-form target (`GET http://host/path`).
    absolute_form: bool,
    /// `HTTP_HOST` from the target's authority (HTTP/2, absolute-form).
    authority: Option<String>,
    options: Arc<EnvironOptions>,
}

impl Received {
    pub(super) fn add_request_vars(&self, vars: &mut impl VarSink) {
        // Values are lent, not given: a sink that keeps them copies them,
        // and one that only converts them (a hosted app's dict) makes no
        // heap string on the way.
        let mut set = |key: &'static str, value: &str| {
            vars.var(Cow::Borrowed(key), Cow::Borrowed(value), None);
        };
        let uri = &self.uri;
        set("REQUEST_METHOD", self.method.as_str());

        let (mount, below_mount) = uri.path().split_at(self.mount_len);
        let path = latin1::percent_decode_cow(below_mount);
        // `build` refused a path outside the configured script name.
        let script_name = self.options.script_name.as_str();
        let path_info = below_prefix(&path, script_name).unwrap_or(&path);
        if mount.is_empty() {
            set("SCRIPT_NAME", script_name);
        } else {
            set(
                "SCRIPT_NAME",
                &(latin1::percent_decode_cow(mount) + script_name),
            );
        }
        set("PATH_INFO", path_info);
        // Raw bytes past ASCII reach us as UTF-8 `str`s: back to one char per byte.
        let query = uri.query().unwrap_or_default();
        set("QUERY_STRING", &latin1::decode_cow(query.as_bytes()));

        let absolute_target;
        let raw_target = latin1::decode_cow(if self.absolute_form {
            absolute_target = uri.to_string();
            absolute_target.as_bytes()
        } else {
            uri.path_and_query()
                .map_or("/", |pq| pq.as_str())
                .as_bytes()
        });
        set("REQUEST_URI", &raw_target);
        set("RAW_URI", &raw_target);
        set("SERVER_PROTOCOL", protocol(self.version));
        set("SERVER_SOFTWARE", &self.options.server_software);
        let url_scheme = if self.https { "https" } else { "http" };
        set("wsgi.url_scheme", url_scheme);

        let mut text = ShortText::default();
        if let Some(addr) = self.remote {
            set("REMOTE_ADDR", text.ip(addr.ip()));
            set("REMOTE_PORT", text.number(addr.port()));
        }
        match self.local {
            Some(addr) => {
                set("SERVER_NAME", text.ip(addr.ip()));
                set("SERVER_PORT", text.number(addr.port()));
            }
            None => {
                let (name, port) = self.server_name_and_port(url_scheme);
                set("SERVER_NAME", name);
                set("SERVER_PORT", port.map_or("", |port| text.number(port)));
            }
        }
    }

    pub(super) fn into_headers(self) -> HeaderMap {
        self.headers
    }

    pub(super) fn add_header_vars(&self, vars: &mut impl VarSink) {
        each_header(&self.headers, self.options.keep_underscore_headers, vars);
        if let Some(authority) = &self.authority {
            vars.var(Cow::Borrowed("HTTP_HOST"), Cow::Borrowed(authority), None);
        }
    }

    /// The header variable `key`, made alone (the common case), or `None`
    /// when only making the whole group tells: kept underscored names may
    /// spell one key several ways.
    pub(super) fn header_var(&self, key: &str) -> Option<HeaderVar<'_>> {
        if self.options.keep_underscore_headers {
            return None;
        }
        if let (Some(authority), "HTTP_HOST") = (&self.authority, key) {
            return Some(HeaderVar::Borrowed(authority));
        }
        header_var(&self.headers, key)
    }

    /// `SERVER_NAME` and `SERVER_PORT` where the server's own address is
    /// unknown: from the `Host` the client named, else `localhost` and the
    /// scheme's port.
    fn server_name_and_port(&self, scheme: &str) -> (&str, Option<u16>) {
        let default_port = if scheme == "https" { 443 } else { 80 };
        let host = self
            .authority
            .as_deref()
            .or_else(|| self.headers.get(header::HOST).and_then(|h| h.to_str().ok()));
        let Some((host, authority)) =
            host.and_then(|h| Some((h, h.parse::<http::uri::Authority>().ok()?)))
        else {
            return ("localhost", Some(default_port));
        };
        // The host as the client spelt it: past any userinfo, before the port.
        let start = host.rfind('@').map_or(0, |at| at + 1);
        let name = host
            .get(start..start + authority.host().len())
            .unwrap_or_default();
        (name, Some(authority.port_u16().unwrap_or(default_port)))
    }
}

/// An address or a port written on the stack, lent to the environ's sink.
struct ShortText {
    /// Room for the longest IPv6 text (45 chars).
    bytes: [u8; 48],
    len: usize,
}

impl Default for ShortText {
    fn default() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl ShortText {
    /// `ip` as `Display` writes it; IPv4, the common case, without the
    /// formatting machinery (a tenth of the instructions).
    fn ip(&mut self, ip: IpAddr) -> &str {
        self.len = 0;
        match ip {
            IpAddr::V4(v4) => {
                let mut digits = itoa::Buffer::new();
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        let _ = self.write_str(".");
                    }
                    let _ = self.write_str(digits.format(octet));
                }
            }
            // At most 45 chars, the buffer's room.
            IpAddr::V6(v6) => {
                let _ = write!(self, "{v6}");
            }
        }
        self.as_str()
    }

    fn number(&mut self, number: u16) -> &str {
        self.len = 0;
        let _ = self.write_str(itoa::Buffer::new().format(number));
        self.as_str()
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for ShortText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Why a request cannot be turned into an environ.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvironError {
    /// The path is not below the configured `SCRIPT_NAME`.
    NotMounted,
}

/// Builds the environ of a request (rule 12), `wsgi.input` aside. Its
/// variables are made when first asked for; only a path outside the
/// configured script name is found out here.
pub(crate) fn build(
    mut parts: request::Parts,
    input: Input,
    options: &Arc<EnvironOptions>,
    home: Option<Arc<dyn Home>>,
) -> Result<Environ, EnvironError> {
    let (uri, mount_len) = match parts.extensions.remove::<MountPoint>() {
        Some(mount) => {
            let len = mount.prefix_len();
            (mount.original_uri().clone(), len)
        }
        None => (std::mem::take(&mut parts.uri), 0),
    };
    if !options.script_name.is_empty()
        && below_prefix(
            &latin1::percent_decode(&uri.path()[mount_len..]),
            &options.script_name,
        )
        .is_none()
    {
        return Err(EnvironError::NotMounted);
    }
    let absolute_form = parts.version != Version::HTTP_2 && uri.scheme().is_some();
    let authority = if absolute_form || parts.version == Version::HTTP_2 {
        // RFC 9110 4.2.4: userinfo is no part of the host (refused unless
        // the service is lenient, and dropped even then).
        uri.authority()
            .and_then(|a| a.as_str().rsplit('@').next())
            .map(str::to_owned)
    } else {
        None
    };
    let chunked = parts
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .any(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .any(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        });
    let input_terminated = chunked
        || (parts.version == Version::HTTP_2
            && !parts.headers.contains_key(header::CONTENT_LENGTH));
    let received = Received {
        method: parts.method,
        mount_len,
        version: parts.version,
        remote: parts.extensions.get::<RemoteAddr>().map(|remote| remote.0),
        local: parts.extensions.get::<LocalAddr>().map(|local| local.0),
        https: options.https || parts.extensions.get::<Https>().is_some(),
        absolute_form,
        authority,
        headers: parts.headers,
        uri,
        options: options.clone(),
    };
    Ok(Environ {
        vars: OnceCell::new(),
        header_vars: OnceCell::new(),
        made: Made::default(),
        received: Some(received),
        input,
        errors: OnceCell::new(),
        input_terminated,
        extensions: parts.extensions,
        home,
    })
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::super::is_header_key;
    use super::*;
    use http::Request;

    fn options() -> EnvironOptions {
        EnvironOptions {
            script_name: String::new(),
            https: false,
            server_software: "tower-wsgi".to_owned(),
            keep_underscore_headers: false,
        }
    }

    fn environ_of(req: Request<()>, options: &EnvironOptions) -> Result<Environ, EnvironError> {
        let (parts, ()) = req.into_parts();
        build(parts, Input::default(), &Arc::new(options.clone()), None)
    }

    #[test]
    fn header_variables_made_on_first_use_behave_like_the_rest() {
        let request = || {
            Request::get("/")
                .header("host", "example.com")
                .header("x-b", "2")
                .header("x-b", "3")
                .header("content-type", "text/plain")
                .body(())
                .unwrap()
        };
        // Written before anything was read.
        let mut env = environ_of(request(), &options()).unwrap();
        assert_eq!(env.insert("HTTP_X_A", "1"), None);
        assert_eq!(env.remove("HTTP_HOST").as_deref(), Some("example.com"));
        assert_eq!(env.get("HTTP_X_A"), Some("1"));
        assert_eq!(env.get("HTTP_HOST"), None);
        assert_eq!(env.get("HTTP_X_B"), Some("2,3"));

        // Read first, then written; the other keys are untouched.
        let mut env = environ_of(request(), &options()).unwrap();
        assert_eq!(env.header("X-B"), Some("2,3"));
        assert_eq!(env.insert("HTTP_X_B", "4").as_deref(), Some("2,3"));
        assert_eq!(env.insert("PATH_INFO", "/moved").as_deref(), Some("/"));
        assert_eq!(env.get("HTTP_X_B"), Some("4"));
        assert_eq!(env.content_type(), Some("text/plain"));

        // One sorted sequence, header variables and the rest merged.
        let keys: Vec<&str> = env.iter().map(|(k, _)| k).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), env.len());
        for key in [
            "CONTENT_TYPE",
            "HTTP_HOST",
            "HTTP_X_B",
            "PATH_INFO",
            "wsgi.url_scheme",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn one_header_variable_read_alone_is_what_the_whole_group_holds() {
        let request = || {
            let mut req = Request::get("http://u@authority.example:81/x")
                .header("host", "ignored")
                .header("x-b", "2")
                .header("x-b", "3")
                .header("Cookie", "a=1")
                .header("Cookie", "b=2")
                .header("content-type", "text/plain")
                .header("content-type", "text/html")
                .header("content-length", "7")
                .header(
                    "x-latin",
                    http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
                )
                .header("x_under", "u")
                .header("x.odd!", "o")
                .header("x-".to_owned() + &"l".repeat(90), "long")
                .header("accept", "*/*")
                .body(())
                .unwrap();
            *req.version_mut() = Version::HTTP_11;
            req
        };
        for keep in [false, true] {
            let options = EnvironOptions {
                keep_underscore_headers: keep,
                ..options()
            };
            let whole = environ_of(request(), &options).unwrap();
            let whole: Vec<(String, String)> = whole
                .iter()
                .filter(|(k, _)| is_header_key(k))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert!(whole.len() >= 9, "{whole:?}");
            let env = environ_of(request(), &options).unwrap();
            for (key, value) in &whole {
                assert_eq!(env.get(key), Some(&**value), "{key}, keep {keep}");
                assert_eq!(env.get(key), Some(&**value), "{key} again");
            }
            for key in [
                "HTTP_CONTENT_TYPE",
                "HTTP_CONTENT_LENGTH",
                "HTTP_X-B",
                "HTTP_x_b",
                "HTTP_",
                "HTTP_X_MISSING",
                "HTTP_X_B ",
                "HTTP_\u{e9}",
            ] {
                assert_eq!(env.get(key), None, "{key}");
            }
            // Read one at a time, the group itself was never made.
            assert_eq!(env.header_vars.get().is_none(), !keep);
        }
        let env = environ_of(request(), &options()).unwrap();
        assert_eq!(env.get("HTTP_HOST"), Some("authority.example:81"));
        assert_eq!(env.get("HTTP_COOKIE"), Some("a=1; b=2"));
        assert_eq!(env.get("HTTP_X_B"), Some("2,3"));
        assert_eq!(env.get("CONTENT_TYPE"), Some("text/html"));
        assert_eq!(env.get("HTTP_X_LATIN"), Some("caf\u{e9}"));
        assert_eq!(env.get("HTTP_X_UNDER"), None);
        assert_eq!(env.get("HTTP_X.ODD!"), Some("o"));
        // Written after a lone read, the group is made and the write holds.
        let mut env = env;
        assert_eq!(env.insert("HTTP_X_B", "4").as_deref(), Some("2,3"));
        assert_eq!(env.get("HTTP_X_B"), Some("4"));
        assert_eq!(env.get("HTTP_COOKIE"), Some("a=1; b=2"));
    }

    #[test]
    fn copies_carry_every_variable_of_a_received_request() {
        let mut req = Request::post("/caf%C3%A9?x=1")
            .header("Cookie", "a=1")
            .header("Content-Length", "4")
            .body(())
            .unwrap();
        req.extensions_mut()
            .insert(RemoteAddr("10.0.0.1:5".parse().unwrap()));
        let (parts, ()) = req.into_parts();
        let options = Arc::new(options());
        let mut env = build(parts, Input::from_bytes("data"), &options, None).unwrap();
        let expected: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut copy = env.copy_with_buffered_input().unwrap();
        let copied: Vec<(String, String)> = copy
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(copied, expected);
        assert_eq!(copy.get("HTTP_COOKIE"), Some("a=1"));
        assert_eq!(
            copy.extensions().get::<RemoteAddr>(),
            env.extensions().get()
        );
        copy.remove("HTTP_COOKIE");
        assert_eq!(env.get("HTTP_COOKIE"), Some("a=1"));
        assert_eq!(copy.input().read_all().unwrap(), b"data");
        assert_eq!(env.input().read_all().unwrap(), b"data");
        let mut empty = env.copy_with_empty_input();
        assert_eq!(empty.content_length(), Some(4));
        assert!(empty.input().read_all().unwrap().is_empty());
    }

    #[test]
    fn path_info_is_percent_decoded_bytes_as_latin1() {
        let req = Request::get("/caf%C3%A9/%FF%2Fx?q=%20a").body(()).unwrap();
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.path_info(), "/caf\u{c3}\u{a9}/\u{ff}/x");
        assert_eq!(env.query_string(), "q=%20a");
        assert_eq!(env.get("REQUEST_URI"), Some("/caf%C3%A9/%FF%2Fx?q=%20a"));
    }

    #[test]
    fn raw_non_ascii_target_bytes_are_one_char_each() {
        let uri =
            http::Uri::from_maybe_shared(bytes::Bytes::from_static(b"/caf\xc3\xa9?q=\xc3\xa9"))
                .expect("http accepts raw non-ASCII target bytes, as hyper does");
        let env = environ_of(Request::get(uri).body(()).unwrap(), &options()).unwrap();
        assert_eq!(env.path_info(), "/caf\u{c3}\u{a9}");
        assert_eq!(env.query_string(), "q=\u{c3}\u{a9}");
        assert_eq!(
            env.get("REQUEST_URI"),
            Some("/caf\u{c3}\u{a9}?q=\u{c3}\u{a9}")
        );
    }

    #[test]
    fn repeated_headers_join_with_comma_and_cookies_with_semicolon() {
        let req = Request::get("/")
            .header("X-Dup", "1")
            .header("X-Dup", "2")
            .header("Cookie", "a=1")
            .header("Cookie", "b=2")
            .header("Content-Type", "text/plain")
            .header("Content-Length", "0")
            .body(())
            .unwrap();
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.get("HTTP_X_DUP"), Some("1,2"));
        assert_eq!(env.get("HTTP_COOKIE"), Some("a=1; b=2"));
        assert_eq!(env.content_type(), Some("text/plain"));
        assert_eq!(env.get("CONTENT_LENGTH"), Some("0"));
        assert!(!env.contains_key("HTTP_CONTENT_TYPE"));
        assert_eq!(env.header("x-dup"), Some("1,2"));
    }

    #[test]
    fn underscore_headers_are_dropped_unless_kept() {
        let req = || {
            Request::get("/")
                .header("X_Under", "u")
                .header("X-Under", "d")
                .body(())
                .unwrap()
        };
        let env = environ_of(req(), &options()).unwrap();
        assert_eq!(env.get("HTTP_X_UNDER"), Some("d"));
        let keep = EnvironOptions {
            keep_underscore_headers: true,
            ..options()
        };
        let merged = environ_of(req(), &keep).unwrap();
        assert_eq!(merged.get("HTTP_X_UNDER").map(str::len), Some(3));
    }

    #[test]
    fn absolute_form_userinfo_never_reaches_http_host() {
        let req = Request::get("http://user:pass@example.com:8080/environ")
            .header("Host", "ignored")
            .body(())
            .unwrap();
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.get("HTTP_HOST"), Some("example.com:8080"));
        assert_eq!(env.get("SERVER_NAME"), Some("example.com"));
    }

    #[test]
    fn absolute_form_target_sets_http_host() {
        let req = Request::get("http://other.example:9/env?x=1")
            .header("Host", "ignored")
            .body(())
            .unwrap();
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.get("HTTP_HOST"), Some("other.example:9"));
        assert_eq!(
            env.get("REQUEST_URI"),
            Some("http://other.example:9/env?x=1")
        );
        assert_eq!(env.path_info(), "/env");
        assert_eq!(env.get("SERVER_NAME"), Some("other.example"));
        assert_eq!(env.get("SERVER_PORT"), Some("9"));
    }

    #[test]
    fn script_name_splits_the_path() {
        let mounted = EnvironOptions {
            script_name: "/app".to_owned(),
            ..options()
        };
        let cases = [
            ("/app", "", true),
            ("/app/", "/", true),
            ("/app/x/y", "/x/y", true),
            ("/appx", "", false),
        ];
        for (path, path_info, inside) in cases {
            let env = environ_of(Request::get(path).body(()).unwrap(), &mounted);
            match env {
                Ok(env) => {
                    assert!(inside, "{path}");
                    assert_eq!(env.script_name(), "/app");
                    assert_eq!(env.path_info(), path_info);
                }
                Err(e) => {
                    assert!(!inside, "{path}");
                    assert_eq!(e, EnvironError::NotMounted);
                }
            }
        }
    }

    #[test]
    fn chunked_requests_are_input_terminated() {
        let req = Request::post("/")
            .header("Transfer-Encoding", "gzip, Chunked")
            .body(())
            .unwrap();
        assert!(environ_of(req, &options()).unwrap().input_terminated());
        let req = Request::post("/")
            .header("Content-Length", "3")
            .body(())
            .unwrap();
        assert!(!environ_of(req, &options()).unwrap().input_terminated());
    }

    #[test]
    fn addresses_read_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "10.1.20.255",
            "127.0.0.1",
            "192.168.100.9",
            "::1",
            "fe80::1:2",
            "::ffff:255.255.255.255",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ShortText::default().ip(ip), ip.to_string());
        }
        let mut text = ShortText::default();
        for port in [0, 7, 10, 99, 443, 8000, 10000, 65535] {
            assert_eq!(text.number(port), port.to_string());
        }
    }

    #[test]
    fn remote_and_local_addresses_come_from_extensions() {
        let mut req = Request::get("/")
            .version(Version::HTTP_10)
            .body(())
            .unwrap();
        req.extensions_mut()
            .insert(RemoteAddr("10.1.2.3:4567".parse().unwrap()));
        req.extensions_mut()
            .insert(LocalAddr("127.0.0.1:8000".parse().unwrap()));
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.remote_addr(), Some("10.1.2.3"));
        assert_eq!(env.get("REMOTE_PORT"), Some("4567"));
        assert_eq!(env.get("SERVER_NAME"), Some("127.0.0.1"));
        assert_eq!(env.get("SERVER_PORT"), Some("8000"));
        assert_eq!(env.server_protocol(), "HTTP/1.0");
    }

    #[test]
    fn the_https_extension_makes_the_scheme_and_default_port_https() {
        let mut req = Request::get("/")
            .header("Host", "example.test")
            .body(())
            .unwrap();
        req.extensions_mut().insert(Https);
        let env = environ_of(req, &options()).unwrap();
        assert_eq!(env.url_scheme(), "https");
        assert_eq!(env.get("SERVER_PORT"), Some("443"));
        let plain = Request::get("/")
            .header("Host", "example.test")
            .body(())
            .unwrap();
        let env = environ_of(plain, &options()).unwrap();
        assert_eq!(
            (env.url_scheme(), env.get("SERVER_PORT")),
            ("http", Some("80"))
        );
    }
}
