//! CGI keys for request headers, both ways: `User-Agent` is
//! `HTTP_USER_AGENT`, and back.

use std::borrow::Cow;

use http::header::{self, HeaderName, InvalidHeaderName};
use http::HeaderMap;

use super::{Text, VarSink, Vars};
use crate::latin1;

pub(crate) fn add_headers(vars: &mut Vars, headers: &HeaderMap, keep_underscore: bool) {
    each_header(headers, keep_underscore, vars);
}

/// The variables of `headers` into `sink`: one per header name, its values
/// joined (`,`, or `; ` for cookies), except `Content-Type` and
/// `Content-Length`, whose last value Werkzeug keeps.
pub(crate) fn each_header(headers: &HeaderMap, keep_underscore: bool, sink: &mut impl VarSink) {
    for name in headers.keys() {
        if !keep_underscore && name.as_str().contains('_') {
            continue;
        }
        let mut values = headers.get_all(name).iter();
        if name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH {
            if let Some(last) = values.next_back() {
                let key = if name == header::CONTENT_TYPE {
                    "CONTENT_TYPE"
                } else {
                    "CONTENT_LENGTH"
                };
                sink.var(
                    Cow::Borrowed(key),
                    latin1::decode_cow(last.as_bytes()),
                    None,
                );
            }
            continue;
        }
        let separator = if name == header::COOKIE { "; " } else { "," };
        let Some(first) = values.next() else {
            continue;
        };
        let mut value = latin1::decode_cow(first.as_bytes());
        for more in values {
            let joined = value.to_mut();
            joined.push_str(separator);
            latin1::push_decoded(joined, more.as_bytes());
        }
        // A name can repeat under two spellings (`X_A`, `X-A`) when underscores are kept.
        sink.var(http_key(name), value, keep_underscore.then_some(separator));
    }
}

/// One header variable read straight from the request's headers, without
/// making the others: what [`add_headers`] would give for `key`.
pub(crate) enum HeaderVar<'a> {
    /// No header makes `key`.
    Absent,
    /// One ASCII value: the header's own bytes (latin-1 of ASCII is ASCII).
    Borrowed(&'a str),
    /// Values joined, or bytes past ASCII decoded.
    Made(String),
}

/// The variable `key` as [`add_headers`] makes it (underscored names
/// dropped), looked up in `headers` by name; `None` when `key` is not a
/// header variable's key at all.
pub(crate) fn header_var<'a>(headers: &'a HeaderMap, key: &str) -> Option<HeaderVar<'a>> {
    let (spelled, last_only) = match key {
        "CONTENT_TYPE" | "CONTENT_LENGTH" => (key, true),
        // Those headers make `CONTENT_*`; an underscored twin is dropped.
        "HTTP_CONTENT_TYPE" | "HTTP_CONTENT_LENGTH" => return Some(HeaderVar::Absent),
        _ => (key.strip_prefix("HTTP_")?, false),
    };
    // Keys are made upper case with `_` for `-`: any other spelling names no header.
    let mut buf = [0u8; 64];
    let Some(name) = buf.get_mut(..spelled.len()) else {
        // Longer names than any browser sends: spelled out on the heap.
        return Some(match header_spelling(spelled) {
            Some(name) => lookup(headers, &name, last_only),
            None => HeaderVar::Absent,
        });
    };
    for (to, &b) in name.iter_mut().zip(spelled.as_bytes()) {
        match header_byte(b) {
            Some(b) => *to = b,
            None => return Some(HeaderVar::Absent),
        }
    }
    Some(match std::str::from_utf8(name) {
        Ok(name) => lookup(headers, name, last_only),
        Err(_) => HeaderVar::Absent,
    })
}

/// `b` of a key as the byte of the header name that made it, `None` for a
/// byte no made key holds (`-`, lower case, past ASCII).
fn header_byte(b: u8) -> Option<u8> {
    match b {
        b'_' => Some(b'-'),
        b'-' | b'a'..=b'z' | 0x80.. => None,
        _ => Some(b.to_ascii_lowercase()),
    }
}

fn header_spelling(spelled: &str) -> Option<String> {
    spelled
        .bytes()
        .map(|b| header_byte(b).map(char::from))
        .collect()
}

fn lookup<'a>(headers: &'a HeaderMap, name: &str, last_only: bool) -> HeaderVar<'a> {
    if name.is_empty() {
        return HeaderVar::Absent;
    }
    let mut values = headers.get_all(name).iter();
    let (first, rest) = if last_only {
        (values.next_back(), None)
    } else {
        (values.next(), values.next())
    };
    let Some(first) = first else {
        return HeaderVar::Absent;
    };
    let Some(second) = rest else {
        return match std::str::from_utf8(first.as_bytes()) {
            Ok(ascii) if ascii.is_ascii() => HeaderVar::Borrowed(ascii),
            _ => HeaderVar::Made(latin1::decode(first.as_bytes())),
        };
    };
    let separator = if name == "cookie" { "; " } else { "," };
    let mut joined = latin1::decode(first.as_bytes());
    for value in std::iter::once(second).chain(values) {
        joined.push_str(separator);
        latin1::push_decoded(&mut joined, value.as_bytes());
    }
    HeaderVar::Made(joined)
}

/// `User-Agent` → `HTTP_USER_AGENT`, without an allocation for common names.
fn http_key(name: &HeaderName) -> Text {
    let known = match name.as_str() {
        "host" => "HTTP_HOST",
        "user-agent" => "HTTP_USER_AGENT",
        "accept" => "HTTP_ACCEPT",
        "accept-encoding" => "HTTP_ACCEPT_ENCODING",
        "accept-language" => "HTTP_ACCEPT_LANGUAGE",
        "cookie" => "HTTP_COOKIE",
        "referer" => "HTTP_REFERER",
        "connection" => "HTTP_CONNECTION",
        "cache-control" => "HTTP_CACHE_CONTROL",
        "authorization" => "HTTP_AUTHORIZATION",
        "origin" => "HTTP_ORIGIN",
        "upgrade-insecure-requests" => "HTTP_UPGRADE_INSECURE_REQUESTS",
        "if-none-match" => "HTTP_IF_NONE_MATCH",
        "if-modified-since" => "HTTP_IF_MODIFIED_SINCE",
        "x-forwarded-for" => "HTTP_X_FORWARDED_FOR",
        "x-forwarded-proto" => "HTTP_X_FORWARDED_PROTO",
        "x-requested-with" => "HTTP_X_REQUESTED_WITH",
        "transfer-encoding" => "HTTP_TRANSFER_ENCODING",
        "expect" => "HTTP_EXPECT",
        other => {
            let mut key = String::with_capacity(5 + other.len());
            key.push_str("HTTP_");
            key.push_str(&cgi_header_key(other.as_bytes()));
            return Cow::Owned(key);
        }
    };
    Cow::Borrowed(known)
}

/// `Content-Type` → `CONTENT_TYPE`.
pub(crate) fn cgi_header_key(name: &[u8]) -> String {
    name.iter()
        .map(|&b| {
            if b == b'-' {
                '_'
            } else {
                char::from(b.to_ascii_uppercase())
            }
        })
        .collect()
}

/// The header an environ key stands for, the other way round: `CONTENT_TYPE`
/// and `HTTP_*` keys give `Some`, with an error for a key that cannot name a
/// header; every other key (and the `HTTP_CONTENT_*` twins the environ
/// never makes) gives `None`.
pub(crate) fn header_name_of(key: &str) -> Option<Result<HeaderName, InvalidHeaderName>> {
    let name = match key {
        "CONTENT_TYPE" | "CONTENT_LENGTH" => key,
        "HTTP_CONTENT_TYPE" | "HTTP_CONTENT_LENGTH" => return None,
        _ => key.strip_prefix("HTTP_")?,
    };
    Some(HeaderName::from_bytes(name.replace('_', "-").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_both_ways() {
        assert_eq!(http_key(&header::USER_AGENT), "HTTP_USER_AGENT");
        assert_eq!(
            http_key(&HeaderName::from_static("x-custom-id")),
            "HTTP_X_CUSTOM_ID"
        );
        assert_eq!(cgi_header_key(b"Content-Type"), "CONTENT_TYPE");
        let name = |key| header_name_of(key).map(|name| name.unwrap());
        assert_eq!(
            name("HTTP_X_CUSTOM_ID"),
            Some(HeaderName::from_static("x-custom-id"))
        );
        assert_eq!(name("CONTENT_TYPE"), Some(header::CONTENT_TYPE));
        assert_eq!(name("HTTP_CONTENT_TYPE"), None);
        assert_eq!(name("PATH_INFO"), None);
        assert!(matches!(header_name_of("HTTP_BAD KEY"), Some(Err(_))));
    }
}
