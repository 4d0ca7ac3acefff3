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
