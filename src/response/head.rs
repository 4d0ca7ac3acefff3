//! The response head rules: status line, header validation, Content-Length,
//! the connection rule, Server and Date (rules 1 to 6). Pure functions.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode, Version};
use hyper::ext::ReasonPhrase;

use super::options::{ConnectionPolicy, HeadRules, HopByHop};
use super::values;
use crate::error::{Error, ErrorKind};
use crate::headers;
use crate::latin1;

/// What the rules need to know about the request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestFacts {
    pub(crate) is_head: bool,
    pub(crate) version: Version,
}

/// How the body of a response goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyPlan {
    /// Body bytes are sent; `Some(n)` is the app's `Content-Length`, enforced.
    Stream { content_length: Option<u64> },
    /// HEAD, 204 and 304: no body bytes on any protocol. `keep_length` keeps a
    /// 304's `Content-Length` on the wire (hyper drops it for an ended body).
    Suppressed { keep_length: bool },
}

/// A validated response head with every rule applied, ready to send.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) status: StatusCode,
    pub(crate) reason: Option<ReasonPhrase>,
    pub(crate) headers: HeaderMap,
    pub(crate) plan: BodyPlan,
    /// Answer as HTTP/1.0: hyper then ends an HTTP/1.0 keep-alive client's
    /// connection instead of appending `keep-alive` to our `close`.
    pub(crate) http10: bool,
}

impl Prepared {
    /// Marks the response as the connection's last (HTTP/1 only: HTTP/2 has
    /// no `Connection` header, its stream ends on its own).
    pub(crate) fn close_connection(&mut self, facts: RequestFacts) {
        if facts.version != Version::HTTP_2 && facts.version != Version::HTTP_3 {
            self.headers
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            self.http10 = facts.version == Version::HTTP_10;
        }
    }
}

/// Validates `start_response(status, headers)` and applies the response rules.
/// The head is built in `spare_headers` when given (an empty map).
pub(crate) fn prepare<K, V>(
    status: &str,
    headers: impl IntoIterator<Item = (K, V)>,
    facts: RequestFacts,
    rules: &HeadRules,
    spare_headers: Option<HeaderMap>,
) -> Result<Prepared, Error>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let (status, reason) = parse_status(status)?;
    let (mut headers, mut content_length) =
        parse_headers_into(spare_headers, headers, Some(rules.hop_by_hop))?;
    let code = status.as_u16();

    if code == 204 {
        headers.remove(header::CONTENT_LENGTH);
        content_length = None;
    }
    if let Some(server) = &rules.server {
        if !headers.contains_key(header::SERVER) {
            headers.insert(header::SERVER, server.clone());
        }
    }

    let body_allowed = headers::body_allowed(status, facts.is_head);
    let plan = if body_allowed {
        BodyPlan::Stream { content_length }
    } else {
        // On HTTP/2 an ended body keeps the header, and its HEADERS frame
        // then ends the stream with no (empty) DATA frame after it.
        let http1 = facts.version != Version::HTTP_2 && facts.version != Version::HTTP_3;
        BodyPlan::Suppressed {
            keep_length: code == 304 && content_length.is_some() && http1,
        }
    };
    let mut prepared = Prepared {
        status,
        reason,
        headers,
        plan,
        http10: false,
    };
    // The seed's connection rule: a body of unknown length ends the connection,
    // unless chunked keep-alive was chosen (HTTP/1.1 only: 1.0 has no chunking).
    if body_allowed && content_length.is_none() {
        let close = match rules.connection_policy {
            ConnectionPolicy::CloseWithoutLength => true,
            ConnectionPolicy::KeepAliveChunked | ConnectionPolicy::ComputeLength => {
                facts.version < Version::HTTP_11
            }
        };
        if close {
            prepared.close_connection(facts);
        }
    }
    Ok(prepared)
}

/// Parses `"NNN reason"` or `"NNN"`: three digits, 200 to 999.
pub(crate) fn parse_status(status: &str) -> Result<(StatusCode, Option<ReasonPhrase>), Error> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidStatus,
            format!("invalid status {status:?}: {why}"),
        )
    };
    let bytes = status.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        return Err(invalid("expected three digits and a reason phrase"));
    }
    let reason_text = match &status[3..] {
        "" => None,
        rest => Some(
            rest.strip_prefix(' ')
                .ok_or_else(|| invalid("expected a space after the three-digit code"))?,
        ),
    };
    let code = StatusCode::from_bytes(&bytes[..3]).map_err(|_| invalid("code out of range"))?;
    if code.is_informational() {
        return Err(invalid(
            "an informational (1xx) status cannot be a final response",
        ));
    }
    let reason = match reason_text {
        Some(text) if Some(text) == code.canonical_reason() => None,
        Some(text) => {
            let bytes =
                latin1::encode(text).ok_or_else(|| invalid("reason phrase is not latin-1"))?;
            Some(
                ReasonPhrase::try_from(bytes.into_owned())
                    .map_err(|_| invalid("reason phrase holds a control character"))?,
            )
        }
        // hyper would write `<none>` for a code it has no phrase for.
        None if code.canonical_reason().is_none() => Some(ReasonPhrase::from_static(b"")),
        None => None,
    };
    Ok((code, reason))
}

/// Validates the application's headers and extracts its `Content-Length`.
/// `hop_by_hop: None` keeps hop-by-hop headers, for the edge to judge.
pub(crate) fn parse_headers<K, V>(
    headers: impl IntoIterator<Item = (K, V)>,
    hop_by_hop: Option<HopByHop>,
) -> Result<(HeaderMap, Option<u64>), Error>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    parse_headers_into(None, headers, hop_by_hop)
}

/// [`parse_headers`] into `spare` (an empty map) when given.
fn parse_headers_into<K, V>(
    spare: Option<HeaderMap>,
    headers: impl IntoIterator<Item = (K, V)>,
    hop_by_hop: Option<HopByHop>,
) -> Result<(HeaderMap, Option<u64>), Error>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let headers = headers.into_iter();
    // Room for the application's headers, `Server` and `Date`.
    let room = headers.size_hint().0 + 2;
    let mut map = match spare {
        Some(mut map) => {
            map.clear();
            map.reserve(room);
            map
        }
        None => HeaderMap::with_capacity(room),
    };
    let mut content_length: Option<u64> = None;
    for (name, value) in headers {
        let (name, value) = (name.as_ref(), value.as_ref());
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidHeader,
                format!("invalid header name {name:?}: not an HTTP token"),
            )
        })?;
        if headers::is_hop_by_hop(&header_name) {
            match hop_by_hop {
                None => {}
                Some(HopByHop::Reject) => {
                    return Err(Error::new(
                        ErrorKind::HopByHopHeader,
                        format!("hop-by-hop header {name:?} is not allowed from an application"),
                    ))
                }
                Some(HopByHop::Drop) => {
                    tracing::warn!(
                        header = name,
                        "dropped a hop-by-hop header set by the application"
                    );
                    continue;
                }
            }
        }
        let header_value = latin1::encode(value).and_then(|bytes| values::header_value(&bytes));
        let header_value = header_value.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidHeader,
                format!(
                    "invalid value for header {name:?}: {value:?} holds CR, LF, NUL, \
                         another control character, or a character outside latin-1"
                ),
            )
        })?;
        if header_name == header::CONTENT_LENGTH {
            let length = headers::parse_content_length(value.as_bytes()).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidContentLength,
                    format!("invalid Content-Length {value:?}"),
                )
            })?;
            match content_length {
                Some(earlier) if earlier != length => {
                    return Err(Error::new(
                        ErrorKind::InvalidContentLength,
                        format!("contradictory Content-Length values {earlier} and {length}"),
                    ))
                }
                Some(_) => continue,
                None => {
                    content_length = Some(length);
                    map.insert(header::CONTENT_LENGTH, values::length_value(length));
                }
            }
            continue;
        }
        map.append(header_name, header_value);
    }
    Ok((map, content_length))
}

/// The current time as an HTTP date, formatted at most once a second per thread.
pub(crate) fn http_date() -> HeaderValue {
    thread_local! {
        static CACHE: RefCell<(u64, Option<HeaderValue>)> = const { RefCell::new((0, None)) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        match &cache.1 {
            Some(value) if cache.0 == second => value.clone(),
            _ => {
                let value = HeaderValue::try_from(httpdate::fmt_http_date(now))
                    .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
                *cache = (second, Some(value.clone()));
                value
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(is_head: bool, version: Version) -> RequestFacts {
        RequestFacts { is_head, version }
    }

    fn prep(
        status: &str,
        headers: &[(&str, &str)],
        facts: RequestFacts,
    ) -> Result<Prepared, Error> {
        prepare(
            status,
            headers.iter().copied(),
            facts,
            &HeadRules::default(),
            None,
        )
    }

    const GET11: RequestFacts = RequestFacts {
        is_head: false,
        version: Version::HTTP_11,
    };

    #[test]
    fn statuses() {
        assert_eq!(parse_status("200 OK").unwrap().0, StatusCode::OK);
        assert!(
            parse_status("200 OK").unwrap().1.is_none(),
            "canonical reason needs no extension"
        );
        let (code, reason) = parse_status("404 NOT FOUND").unwrap();
        assert_eq!(code, 404);
        assert_eq!(reason.unwrap().as_bytes(), b"NOT FOUND");
        assert_eq!(parse_status("200").unwrap().0, 200);
        assert_eq!(parse_status("599").unwrap().1.unwrap().as_bytes(), b"");
        assert_eq!(
            parse_status("299 Caf\u{e9}").unwrap().1.unwrap().as_bytes(),
            b"Caf\xe9"
        );
        for bad in [
            "abc",
            "99 X",
            "1000 X",
            "100 Continue",
            "103 Early Hints",
            "20",
            "",
            "200\tOK",
            "200 OK\r\nX: y",
            "099 X",
        ] {
            let err = parse_status(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidStatus, "{bad:?}");
        }
    }

    #[test]
    fn bad_headers_are_named() {
        let err = prep("200 OK", &[("X-Ok", "1"), ("X Bad", "v")], GET11).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidHeader);
        assert!(err.to_string().contains("X Bad"));
        for value in ["a\r\nSet-Cookie: x=1", "a\nb", "a\0b", "\u{2603}"] {
            let err = prep("200 OK", &[("X-Inject", value)], GET11).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidHeader, "{value:?}");
            assert!(err.to_string().contains("X-Inject"));
        }
        assert!(prep("200 OK", &[("X-Latin", "caf\u{e9}\tok")], GET11).is_ok());
    }

    #[test]
    fn hop_by_hop_is_rejected_or_dropped() {
        for name in [
            "Connection",
            "Keep-Alive",
            "Proxy-Connection",
            "Transfer-Encoding",
            "Upgrade",
            "TE",
            "Trailer",
        ] {
            let err = prep("200 OK", &[(name, "x")], GET11).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::HopByHopHeader, "{name}");
            let (map, _) = parse_headers([(name, "x")], Some(HopByHop::Drop)).unwrap();
            assert!(map.is_empty(), "{name}");
        }
    }

    #[test]
    fn content_length_rules() {
        let p = prep(
            "200 OK",
            &[("Content-Length", " 5 "), ("content-length", "5")],
            GET11,
        )
        .unwrap();
        assert_eq!(
            p.plan,
            BodyPlan::Stream {
                content_length: Some(5)
            }
        );
        assert_eq!(p.headers.get_all(header::CONTENT_LENGTH).iter().count(), 1);
        assert!(!p.headers.contains_key(header::CONNECTION));
        for bad in [
            &[("Content-Length", "abc")][..],
            &[("Content-Length", "-1")],
            &[("Content-Length", "5"), ("Content-Length", "6")],
            &[("Content-Length", "")],
        ] {
            let err = prep("200 OK", bad, GET11).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidContentLength, "{bad:?}");
        }
    }

    #[test]
    fn connection_rule() {
        let close = |p: &Prepared| {
            p.headers
                .get(header::CONNECTION)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            close(&prep("200 OK", &[], GET11).unwrap()).as_deref(),
            Some("close")
        );
        assert_eq!(
            close(&prep("200 OK", &[], facts(true, Version::HTTP_11)).unwrap()),
            None
        );
        assert_eq!(close(&prep("204 No Content", &[], GET11).unwrap()), None);
        assert_eq!(close(&prep("304 Not Modified", &[], GET11).unwrap()), None);
        assert_eq!(
            close(&prep("200 OK", &[], facts(false, Version::HTTP_2)).unwrap()),
            None
        );
        let chunked = HeadRules {
            connection_policy: ConnectionPolicy::KeepAliveChunked,
            ..HeadRules::default()
        };
        // Built in a spare map: nothing of what it held stays.
        let mut spare = HeaderMap::with_capacity(32);
        spare.insert("x-stale", HeaderValue::from_static("1"));
        let p = prepare("200 OK", [("a", "b")], GET11, &chunked, Some(spare)).unwrap();
        assert_eq!(close(&p), None);
        assert!(!p.headers.contains_key("x-stale"));
        assert_eq!(p.headers["a"], "b");
        assert!(p.headers.capacity() >= 32);
        let p = prepare(
            "200 OK",
            [("a", "b")],
            facts(false, Version::HTTP_10),
            &chunked,
            None,
        )
        .unwrap();
        assert_eq!(close(&p).as_deref(), Some("close"));
    }

    #[test]
    fn bodies_that_must_stay_empty() {
        let p = prep("204 No Content", &[("Content-Length", "5")], GET11).unwrap();
        assert!(!p.headers.contains_key(header::CONTENT_LENGTH));
        assert_eq!(p.plan, BodyPlan::Suppressed { keep_length: false });
        let p = prep("304 Not Modified", &[("Content-Length", "5")], GET11).unwrap();
        assert_eq!(p.headers[header::CONTENT_LENGTH], "5");
        assert_eq!(p.plan, BodyPlan::Suppressed { keep_length: true });
        let p = prep(
            "304 Not Modified",
            &[("Content-Length", "5")],
            facts(false, Version::HTTP_2),
        )
        .unwrap();
        assert_eq!(p.headers[header::CONTENT_LENGTH], "5");
        assert_eq!(p.plan, BodyPlan::Suppressed { keep_length: false });
        let p = prep(
            "200 OK",
            &[("Content-Length", "5")],
            facts(true, Version::HTTP_11),
        )
        .unwrap();
        assert_eq!(p.headers[header::CONTENT_LENGTH], "5");
        assert_eq!(p.plan, BodyPlan::Suppressed { keep_length: false });
    }

    #[test]
    fn server_is_added_once() {
        let p = prep("200 OK", &[], GET11).unwrap();
        assert!(p.headers[header::SERVER]
            .to_str()
            .unwrap()
            .starts_with("tower-wsgi"));
        assert!(httpdate::parse_http_date(http_date().to_str().unwrap()).is_ok());
        let p = prep(
            "200 OK",
            &[
                ("Server", "legacy/1"),
                ("Date", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ],
            GET11,
        )
        .unwrap();
        assert_eq!(
            p.headers.get_all(header::SERVER).iter().collect::<Vec<_>>(),
            ["legacy/1"]
        );
        assert_eq!(p.headers.get_all(header::DATE).iter().count(), 1);
        let none = HeadRules {
            server: None,
            ..HeadRules::default()
        };
        assert!(!prepare("200 OK", [("a", "b")], GET11, &none, None)
            .unwrap()
            .headers
            .contains_key(header::SERVER));
    }
}
