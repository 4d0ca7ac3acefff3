//! The grammar of `X-Forwarded-*` and `Forwarded` (RFC 7239) values, and
//! which of them a hop count trusts.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

use crate::environ::Environ;
use crate::latin1;

/// A header and its environ key.
#[derive(Clone, Copy)]
pub(super) struct Header {
    name: &'static str,
    key: &'static str,
}

pub(super) const X_FOR: Header = Header {
    name: "X-Forwarded-For",
    key: "HTTP_X_FORWARDED_FOR",
};
pub(super) const X_PROTO: Header = Header {
    name: "X-Forwarded-Proto",
    key: "HTTP_X_FORWARDED_PROTO",
};
pub(super) const X_HOST: Header = Header {
    name: "X-Forwarded-Host",
    key: "HTTP_X_FORWARDED_HOST",
};
pub(super) const X_PORT: Header = Header {
    name: "X-Forwarded-Port",
    key: "HTTP_X_FORWARDED_PORT",
};
pub(super) const X_PREFIX: Header = Header {
    name: "X-Forwarded-Prefix",
    key: "HTTP_X_FORWARDED_PREFIX",
};
pub(super) const FORWARDED: Header = Header {
    name: "Forwarded",
    key: "HTTP_FORWARDED",
};

/// The list item `hops` from the right of `header` (repeated fields arrive
/// joined with `,`), or `None` when untrusted, absent or too short.
pub(super) fn trusted_item(environ: &Environ, header: Header, hops: usize) -> Option<&str> {
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
pub(super) fn trusted(environ: &Environ, header: Header, hops: usize) -> Option<String> {
    trusted_item(environ, header, hops).map(|item| unquote(item).into_owned())
}

/// Splits at `separator` outside quoted strings, trimming each part;
/// `None` when a quoted string does not end.
pub(super) fn split_outside_quotes(value: &str, separator: u8) -> Option<Vec<&str>> {
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
pub(super) fn unquote(value: &str) -> Cow<'_, str> {
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

pub(super) fn invalid(header: Header, what: &str, value: &str) {
    tracing::warn!(
        header = header.name,
        ?value,
        "ignoring a forwarded value that is not {what}"
    );
}

/// A forwarded client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Client {
    pub(super) ip: IpAddr,
    pub(super) port: Option<u16>,
}

/// What a node identifier says about the client.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Node {
    Known(Client),
    /// `unknown` or obfuscated (`_hidden`): a valid answer, but no address.
    Hidden,
}

/// RFC 7239 `node`, also accepted in `X-Forwarded-For`: an IPv4 or IPv6
/// address (bare, or `[v6]`), an optional `:port` (digits or an obfuscated
/// `_port`), `unknown`, or an obfuscated `_name`.
pub(super) fn parse_node(value: &str) -> Option<Node> {
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
pub(super) fn is_obfuscated(value: &str) -> bool {
    value.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

pub(super) fn client_of(header: Header, value: &str) -> Option<Client> {
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

pub(super) fn scheme_of(header: Header, value: &str) -> Option<&'static str> {
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
pub(super) struct Host {
    /// The whole value, for `HTTP_HOST`.
    pub(super) value: String,
    /// The name, or the IP literal (IPv6 in brackets), for `SERVER_NAME`.
    pub(super) name: String,
    pub(super) port: Option<u16>,
}

/// `host [":" port]`: a registered name (letters, digits, `-`, `.`, `_`,
/// `~`), an IPv4 address, or an IPv6 address in brackets.
pub(super) fn parse_host(value: &str) -> Option<Host> {
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

pub(super) fn host_of(header: Header, value: &str) -> Option<Host> {
    let host = parse_host(value);
    if host.is_none() {
        invalid(header, "a host with an optional port", value);
    }
    host
}

/// One to five digits, at most 65535.
pub(super) fn parse_port(value: &str) -> Option<u16> {
    if value.is_empty() || value.len() > 5 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

pub(super) fn port_of(header: Header, value: &str) -> Option<u16> {
    let port = parse_port(value);
    if port.is_none() {
        invalid(header, "a port number", value);
    }
    port
}

/// An absolute path of visible ASCII without `?`, `#` or dot segments, as
/// `SCRIPT_NAME`: percent-decoded (one char per byte) and without a trailing `/`.
pub(super) fn parse_prefix(value: &str) -> Option<String> {
    if !value.starts_with('/')
        || !value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'\\'))
    {
        return None;
    }
    let decoded = latin1::percent_decode(value);
    let bad_segment = decoded
        .split('/')
        .any(|s| s == "." || s == ".." || s.chars().any(char::is_control));
    if bad_segment {
        return None;
    }
    Some(decoded.trim_end_matches('/').to_owned())
}

pub(super) fn prefix_of(header: Header, value: &str) -> Option<String> {
    let prefix = parse_prefix(value);
    if prefix.is_none() {
        invalid(header, "an absolute path", value);
    }
    prefix
}

/// The usable fields of the trusted `Forwarded` element.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Element {
    pub(super) client: Option<Client>,
    pub(super) scheme: Option<&'static str>,
    pub(super) host: Option<Host>,
}

/// The `Forwarded` element `hops` from the right, parsed; `None` when
/// untrusted, absent, too short or malformed (logged).
pub(super) fn forwarded_element(environ: &Environ, hops: usize) -> Option<Element> {
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
pub(super) fn parse_element(item: &str) -> Option<Vec<(&str, String)>> {
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
pub(super) fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
