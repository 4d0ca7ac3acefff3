//! The test client's cookie jar: `Set-Cookie` stored, `Cookie` sent back.

use std::time::{Duration, SystemTime};

/// One stored cookie.
#[derive(Clone, Debug)]
pub(super) struct StoredCookie {
    pub(super) name: String,
    pub(super) value: String,
    /// Lowercase, without a leading dot.
    domain: String,
    /// `false`: sent to `domain` only; `true`: to its subdomains too.
    include_subdomains: bool,
    path: String,
    secure: bool,
    expires: Option<SystemTime>,
}

/// Cookies as a browser keeps them (RFC 6265, section 5.3), minus the
/// public suffix list: what `werkzeug.test.Client`'s `http.cookiejar` does
/// for a test.
#[derive(Clone, Debug, Default)]
pub(super) struct Jar {
    cookies: Vec<StoredCookie>,
}

/// Where a request goes, as the jar sees it.
pub(super) struct Target<'a> {
    /// Lowercase, without the port.
    pub(super) host: &'a str,
    pub(super) path: &'a str,
    pub(super) secure: bool,
}

impl Jar {
    /// Stores (or removes, when expired) the cookie of one `Set-Cookie`
    /// value received from `target`; an invalid one is ignored, as a
    /// browser does.
    pub(super) fn store(&mut self, set_cookie: &str, target: &Target<'_>, now: SystemTime) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return;
        }
        let mut cookie = StoredCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            domain: target.host.to_owned(),
            include_subdomains: false,
            path: default_path(target.path),
            secure: false,
            expires: None,
        };
        let mut max_age = None;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            let (key, val) = (key.trim(), val.trim());
            if key.eq_ignore_ascii_case("domain") {
                let domain = val.trim_start_matches('.').to_ascii_lowercase();
                if domain.is_empty() {
                    continue;
                }
                if !domain_matches(target.host, &domain) {
                    return; // a cookie for another site
                }
                cookie.domain = domain;
                cookie.include_subdomains = true;
            } else if key.eq_ignore_ascii_case("path") {
                if val.starts_with('/') {
                    cookie.path = val.to_owned();
                }
            } else if key.eq_ignore_ascii_case("secure") {
                cookie.secure = true;
            } else if key.eq_ignore_ascii_case("max-age") {
                if let Ok(seconds) = val.parse::<i64>() {
                    max_age = Some(seconds);
                }
            } else if key.eq_ignore_ascii_case("expires") {
                if let Some(time) = parse_cookie_date(val) {
                    cookie.expires = Some(time);
                }
            }
        }
        // Max-Age wins over Expires.
        if let Some(seconds) = max_age {
            cookie.expires = Some(match u64::try_from(seconds) {
                Ok(seconds) if seconds > 0 => now + Duration::from_secs(seconds),
                _ => SystemTime::UNIX_EPOCH,
            });
        }
        self.cookies.retain(|c| {
            !(c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path)
        });
        if cookie.expires.is_none_or(|expires| expires > now) {
            self.cookies.push(cookie);
        }
    }

    /// The `Cookie` header value for a request to `target`, if any cookie applies.
    pub(super) fn header_for(&mut self, target: &Target<'_>, now: SystemTime) -> Option<String> {
        self.cookies
            .retain(|c| c.expires.is_none_or(|expires| expires > now));
        let mut matching: Vec<&StoredCookie> = self
            .cookies
            .iter()
            .filter(|c| {
                let domain_ok = if c.include_subdomains {
                    domain_matches(target.host, &c.domain)
                } else {
                    target.host == c.domain
                };
                domain_ok && path_matches(target.path, &c.path) && (!c.secure || target.secure)
            })
            .collect();
        if matching.is_empty() {
            return None;
        }
        // Longer paths first; otherwise in the order they were set.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        Some(pairs.join("; "))
    }

    /// Sets a cookie for `domain` and its subdomains, path `/`.
    pub(super) fn set(&mut self, name: &str, value: &str, domain: &str) {
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        self.cookies
            .retain(|c| !(c.name == name && c.domain == domain && c.path == "/"));
        self.cookies.push(StoredCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            domain,
            include_subdomains: true,
            path: "/".to_owned(),
            secure: false,
            expires: None,
        });
    }

    /// Removes every cookie named `name`.
    pub(super) fn remove(&mut self, name: &str) {
        self.cookies.retain(|c| c.name != name);
    }

    /// The stored cookies that have not expired.
    pub(super) fn live(&self, now: SystemTime) -> impl Iterator<Item = &StoredCookie> {
        self.cookies
            .iter()
            .filter(move |c| c.expires.is_none_or(|expires| expires > now))
    }
}

/// RFC 6265 section 5.1.3, for names (no IP address special case).
fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// RFC 6265 section 5.1.4: the directory of the request path.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(last) => path[..last].to_owned(),
    }
}

/// RFC 6265 section 5.1.4.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request[cookie.len()..].starts_with('/')))
}

/// An `Expires` date: an HTTP date, or the `Wdy, DD-Mon-YYYY` form Werkzeug
/// and others write.
fn parse_cookie_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text)
        .or_else(|_| httpdate::parse_http_date(&text.replace('-', " ")))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(host: &'a str, path: &'a str) -> Target<'a> {
        Target {
            host,
            path,
            secure: false,
        }
    }

    #[test]
    fn domain_path_and_host_only_rules() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        jar.store("a=1", &target("example.com", "/app/page"), now);
        jar.store("b=2; Domain=.Example.com", &target("example.com", "/"), now);
        jar.store("c=3; Path=/app/deep", &target("example.com", "/"), now);
        jar.store("d=4; Domain=other.com", &target("example.com", "/"), now);
        assert_eq!(
            jar.header_for(&target("example.com", "/app/x"), now)
                .as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(
            jar.header_for(&target("example.com", "/app/deep/x"), now)
                .as_deref(),
            Some("c=3; a=1; b=2")
        );
        assert_eq!(
            jar.header_for(&target("www.example.com", "/app/x"), now)
                .as_deref(),
            Some("b=2")
        );
        assert_eq!(
            jar.header_for(&target("example.com", "/apps"), now)
                .as_deref(),
            Some("b=2")
        );
        assert_eq!(jar.header_for(&target("other.com", "/"), now), None);
    }

    #[test]
    fn expiry_max_age_and_deletion() {
        let now = SystemTime::now();
        let t = target("localhost", "/");
        let mut jar = Jar::default();
        jar.store("s=1; Max-Age=60", &t, now);
        jar.store("old=1; Expires=Thu, 01-Jan-1970 00:00:00 GMT", &t, now);
        jar.store(
            "x=1; Expires=Thu, 01-Jan-1970 00:00:00 GMT; Max-Age=60",
            &t,
            now,
        );
        assert_eq!(jar.header_for(&t, now).as_deref(), Some("s=1; x=1"));
        assert_eq!(jar.header_for(&t, now + Duration::from_secs(61)), None);
        let mut jar = Jar::default();
        jar.store("s=1", &t, now);
        jar.store("s=; Max-Age=0", &t, now);
        assert_eq!(jar.header_for(&t, now), None);
    }

    #[test]
    fn secure_cookies_only_over_https() {
        let now = SystemTime::now();
        let mut jar = Jar::default();
        jar.store("s=1; Secure; HttpOnly", &target("h", "/"), now);
        assert_eq!(jar.header_for(&target("h", "/"), now), None);
        let https = Target {
            host: "h",
            path: "/",
            secure: true,
        };
        assert_eq!(jar.header_for(&https, now).as_deref(), Some("s=1"));
    }
}
