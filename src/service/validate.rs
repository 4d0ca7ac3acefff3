//! The request MUSTs of RFC 9112 that hyper leaves to the service (RULES.md 17):
//! checked before the application runs, each refusal with its cause.

use http::{header, request, HeaderMap, HeaderValue, Method, StatusCode, Version};

use crate::headers;

/// Why a request is refused before the application runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// 400, or 501 for a transfer coding the crate does not implement.
    pub(crate) status: StatusCode,
    /// The cause, for the log line.
    pub(crate) cause: &'static str,
}

impl Refusal {
    const fn bad(cause: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            cause,
        }
    }
}

/// What the checks' pass over the headers found that the service uses next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admitted {
    /// The first `Content-Length`, where the request declares a valid one.
    pub(crate) declared_length: Option<u64>,
}

/// Checks `parts` before the application sees them.
///
/// `on_connection` says the request arrived on a real connection (not built
/// in-process), so a missing `Host` is the client's doing. `lenient` keeps
/// Werkzeug's leniency: everything but `Transfer-Encoding`, which decides
/// how the body is framed, is let through.
pub(crate) fn check(
    parts: &request::Parts,
    on_connection: bool,
    lenient: bool,
) -> Result<Admitted, Refusal> {
    let http1 = parts.version < Version::HTTP_2;
    let fields = Fields::of(&parts.headers);
    if http1 && fields.transfer_encoding {
        transfer_encoding(&parts.headers)?;
    }
    let admitted = Admitted {
        declared_length: fields
            .first_content_length
            .and_then(|value| headers::parse_content_length(value.as_bytes())),
    };
    if lenient {
        return Ok(admitted);
    }
    target_form(&parts.method, &parts.uri)?;
    if let Some(authority) = parts.uri.authority() {
        // RFC 9110 4.2.4 (HTTP/1 absolute-form), RFC 9113 8.3.1 (`:authority`).
        if authority.as_str().contains('@') {
            return Err(Refusal::bad("the request target carries userinfo"));
        }
    }
    if http1 {
        host(&fields, parts.version, on_connection)?;
    }
    if fields.content_types > 1 {
        return Err(Refusal::bad("more than one Content-Type field"));
    }
    Ok(admitted)
}

/// The fields the checks look at, found in one pass over the headers: a
/// request carries a handful, and one pass costs less than a lookup each.
#[derive(Default)]
struct Fields<'a> {
    transfer_encoding: bool,
    hosts: usize,
    first_host: Option<&'a HeaderValue>,
    content_types: usize,
    first_content_length: Option<&'a HeaderValue>,
}

impl<'a> Fields<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        let mut fields = Self::default();
        for (name, value) in headers {
            if name == header::HOST {
                fields.hosts += 1;
                fields.first_host.get_or_insert(value);
            } else if name == header::TRANSFER_ENCODING {
                fields.transfer_encoding = true;
            } else if name == header::CONTENT_TYPE {
                fields.content_types += 1;
            } else if name == header::CONTENT_LENGTH {
                fields.first_content_length.get_or_insert(value);
            }
        }
        fields
    }
}

/// RFC 9112 6.1 and 7: `chunked` exactly once and last; no other coding.
fn transfer_encoding(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut codings = Vec::new();
    for line in headers.get_all(header::TRANSFER_ENCODING) {
        for coding in line.as_bytes().split(|&b| b == b',') {
            // A coding's parameters (`;q=...`) do not change its name.
            let name = coding.split(|&b| b == b';').next().unwrap_or_default();
            let name = name.trim_ascii();
            if !name.is_empty() {
                codings.push(name);
            }
        }
    }
    let Some(last) = codings.last() else {
        return Ok(());
    };
    let chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
    if codings.iter().filter(|c| chunked(c)).count() != 1 || !chunked(last) {
        return Err(Refusal::bad(
            "Transfer-Encoding must apply chunked exactly once, as the last coding",
        ));
    }
    if codings.len() > 1 {
        return Err(Refusal {
            status: StatusCode::NOT_IMPLEMENTED,
            cause: "Transfer-Encoding names a coding the server does not implement (only chunked)",
        });
    }
    Ok(())
}

/// RFC 9112 3.2.3-3.2.4: `*` is for OPTIONS, `host:port` for CONNECT.
fn target_form(method: &Method, uri: &http::Uri) -> Result<(), Refusal> {
    if uri.path() == "*" && method != Method::OPTIONS {
        return Err(Refusal::bad(
            "asterisk-form target with a method other than OPTIONS",
        ));
    }
    if uri.scheme().is_none() && uri.authority().is_some() && method != Method::CONNECT {
        return Err(Refusal::bad(
            "authority-form target with a method other than CONNECT",
        ));
    }
    Ok(())
}

/// RFC 9112 3.2: exactly one `Host` on HTTP/1.1, and a valid one.
fn host(fields: &Fields<'_>, version: Version, on_connection: bool) -> Result<(), Refusal> {
    match (fields.first_host, fields.hosts) {
        (None, _) if on_connection && version == Version::HTTP_11 => {
            Err(Refusal::bad("HTTP/1.1 request without a Host field"))
        }
        (None, _) => Ok(()),
        (Some(_), 2..) => Err(Refusal::bad("more than one Host field")),
        (Some(value), _) if is_host(value.as_bytes()) => Ok(()),
        (Some(_), _) => Err(Refusal::bad("Host is not uri-host [ \":\" port ]")),
    }
}

/// `uri-host [ ":" port ]` (RFC 3986 3.2.2-3.2.3); empty is allowed (RFC 9112 3.2).
fn is_host(value: &[u8]) -> bool {
    let (host, port) = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(end) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        if !is_ip_literal(&literal[..end]) {
            return false;
        }
        (&[][..], &literal[end + 1..])
    } else {
        let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
        (&value[..end], &value[end..])
    };
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    port_ok && is_reg_name(host)
}

/// `reg-name` (which covers `IPv4address`): unreserved, pct-encoded, sub-delims.
fn is_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let hex = name.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
                continue;
            }
            b if is_unreserved(b) || is_sub_delim(b) => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// `IPv6address` or `IPvFuture` between the brackets.
fn is_ip_literal(inner: &[u8]) -> bool {
    if let Some(future) = inner
        .strip_prefix(b"v")
        .or_else(|| inner.strip_prefix(b"V"))
    {
        let Some(dot) = future.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, rest) = (&future[..dot], &future[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !rest.is_empty()
            && rest
                .iter()
                .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inner).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(build: http::request::Builder) -> request::Parts {
        build.body(()).unwrap().into_parts().0
    }

    fn verdict(build: http::request::Builder) -> Result<(), Refusal> {
        check(&parts(build), true, false).map(|_| ())
    }

    #[test]
    fn host_grammar() {
        for good in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"example.com:",
            b"127.0.0.1:80",
            b"[::1]",
            b"[::1]:8080",
            b"[v1.fe:x]",
            b"xn--bcher-kva.example",
            b"a%20b",
            b"sub!$&'()*+,;=",
        ] {
            assert!(is_host(good), "{:?}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"a/b"[..],
            b"a b",
            b"u@a",
            b"a:b",
            b"a:80:90",
            b"[::1",
            b"[nope]",
            b"[::1]x",
            b"a%2",
            b"a%zz",
            b"a?b",
            b"a#b",
            b"\xc3\xa9",
        ] {
            assert!(!is_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn host_presence_and_repeats() {
        let no_host = Request::get("/");
        assert_eq!(
            verdict(no_host).unwrap_err().cause,
            "HTTP/1.1 request without a Host field"
        );
        // Built in-process, a request without Host is the caller's business.
        assert!(check(&parts(Request::get("/")), false, false).is_ok());
        assert!(verdict(Request::get("/").version(Version::HTTP_10)).is_ok());
        let two = Request::get("/").header("host", "a").header("host", "b");
        assert_eq!(verdict(two).unwrap_err().cause, "more than one Host field");
        assert!(verdict(Request::get("/").header("host", "a/b")).is_err());
        // HTTP/2 takes `:authority`.
        assert!(verdict(Request::get("http://a/").version(Version::HTTP_2)).is_ok());
    }

    #[test]
    fn userinfo_and_target_forms() {
        let userinfo = Request::get("http://user:pass@example.com:8080/x").header("host", "x");
        assert_eq!(
            verdict(userinfo).unwrap_err().cause,
            "the request target carries userinfo"
        );
        let star = Request::get("*").header("host", "x");
        assert!(verdict(star).is_err());
        assert!(verdict(Request::options("*").header("host", "x")).is_ok());
        let authority = Request::get("example.com:443").header("host", "x");
        assert!(verdict(authority).is_err());
        let connect = Request::builder()
            .method(Method::CONNECT)
            .uri("example.com:443")
            .header("host", "example.com:443");
        assert!(verdict(connect).is_ok());
    }

    #[test]
    fn transfer_codings() {
        let te = |values: &[&str]| {
            let mut build = Request::post("/").header("host", "x");
            for v in values {
                build = build.header("transfer-encoding", *v);
            }
            verdict(build).map_err(|r| r.status.as_u16())
        };
        assert_eq!(te(&["chunked"]), Ok(()));
        assert_eq!(te(&["Chunked"]), Ok(()));
        assert_eq!(te(&["chunked, chunked"]), Err(400));
        assert_eq!(te(&["chunked", "chunked"]), Err(400));
        assert_eq!(te(&["chunked, gzip"]), Err(400));
        assert_eq!(te(&["identity, chunked"]), Err(501));
        assert_eq!(te(&["x", "chunked"]), Err(501));
        assert_eq!(te(&["gzip, chunked"]), Err(501));
    }

    #[test]
    fn repeated_content_type() {
        let two = Request::post("/")
            .header("host", "x")
            .header("content-type", "a/b")
            .header("content-type", "c/d");
        assert_eq!(
            verdict(two).unwrap_err().cause,
            "more than one Content-Type field"
        );
    }

    #[test]
    fn the_declared_length_comes_from_the_same_pass() {
        let declared = |build: http::request::Builder, lenient| {
            check(&parts(build.header("host", "x")), true, lenient).map(|a| a.declared_length)
        };
        for lenient in [false, true] {
            let post = Request::post("/").header("content-length", "5");
            assert_eq!(declared(post, lenient), Ok(Some(5)));
            assert_eq!(declared(Request::get("/"), lenient), Ok(None));
            let bad = Request::post("/").header("content-length", "+5");
            assert_eq!(declared(bad, lenient), Ok(None));
        }
    }

    #[test]
    fn lenient_keeps_only_the_framing_checks() {
        let lax = |build: http::request::Builder| check(&parts(build), true, true);
        assert!(lax(Request::get("/")).is_ok());
        assert!(lax(Request::get("/").header("host", "a").header("host", "b")).is_ok());
        assert!(lax(Request::get("*").header("host", "x")).is_ok());
        let te = Request::post("/").header("transfer-encoding", "chunked, chunked");
        assert!(lax(te).is_err());
    }
}
