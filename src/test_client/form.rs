//! Request bodies for forms: `application/x-www-form-urlencoded` and
//! `multipart/form-data`, as `werkzeug.test.EnvironBuilder` makes from `data=`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};

/// `application/x-www-form-urlencoded` pairs, as browsers encode them
/// (space as `+`, bytes other than `*-._` and alphanumerics as `%XX`).
pub(super) fn urlencoded<I, K, V>(pairs: I) -> String
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        encode_into(&mut out, key.as_ref());
        out.push('=');
        encode_into(&mut out, value.as_ref());
    }
    out
}

fn encode_into(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        match b {
            b' ' => out.push('+'),
            b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
            _ if b.is_ascii_alphanumeric() => out.push(char::from(b)),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

/// A `multipart/form-data` body for [`TestRequest::multipart`]: form
/// fields and uploaded files, as a browser sends a form with
/// `enctype="multipart/form-data"`.
///
/// [`TestRequest::multipart`]: super::TestRequest::multipart
///
/// ```
/// use tower_wsgi::test_client::FormData;
///
/// let form = FormData::new()
///     .text("title", "notes")
///     .file("upload", "notes.txt", "text/plain", "hello");
/// assert!(form.content_type().starts_with("multipart/form-data; boundary="));
/// ```
#[derive(Clone)]
pub struct FormData {
    boundary: String,
    body: BytesMut,
}

impl FormData {
    /// An empty form, with a boundary of its own.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self {
            boundary: format!("----tower-wsgi-test-boundary-{:016x}", n ^ 0x5bd1_e995),
            body: BytesMut::new(),
        }
    }

    /// Adds a text field.
    #[must_use]
    pub fn text(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.part(name, None, None, value.as_ref());
        self
    }

    /// Adds a file field: `file_name` and `content_type` as a browser
    /// sends them for an `<input type="file">`.
    #[must_use]
    pub fn file(
        mut self,
        name: &str,
        file_name: &str,
        content_type: &str,
        data: impl AsRef<[u8]>,
    ) -> Self {
        self.part(name, Some(file_name), Some(content_type), data.as_ref());
        self
    }

    fn part(
        &mut self,
        name: &str,
        file_name: Option<&str>,
        content_type: Option<&str>,
        data: &[u8],
    ) {
        let body = &mut self.body;
        body.put_slice(b"--");
        body.put_slice(self.boundary.as_bytes());
        body.put_slice(b"\r\nContent-Disposition: form-data; name=\"");
        put_quoted(body, name);
        body.put_slice(b"\"");
        if let Some(file_name) = file_name {
            body.put_slice(b"; filename=\"");
            put_quoted(body, file_name);
            body.put_slice(b"\"");
        }
        body.put_slice(b"\r\n");
        if let Some(content_type) = content_type {
            body.put_slice(b"Content-Type: ");
            body.put_slice(content_type.as_bytes());
            body.put_slice(b"\r\n");
        }
        body.put_slice(b"\r\n");
        body.put_slice(data);
        body.put_slice(b"\r\n");
    }

    /// The `Content-Type` header value, with the boundary.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The encoded body.
    pub fn to_bytes(&self) -> Bytes {
        let mut body = self.body.clone();
        body.put_slice(b"--");
        body.put_slice(self.boundary.as_bytes());
        body.put_slice(b"--\r\n");
        body.freeze()
    }
}

/// A name in a `Content-Disposition` quoted string, escaped as browsers
/// do (HTML's form encoding: `"` as `%22`, CR and LF as `%0D` `%0A`).
fn put_quoted(body: &mut BytesMut, text: &str) {
    for &b in text.as_bytes() {
        match b {
            b'"' => body.put_slice(b"%22"),
            b'\r' => body.put_slice(b"%0D"),
            b'\n' => body.put_slice(b"%0A"),
            _ => body.put_u8(b),
        }
    }
}

impl Default for FormData {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FormData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormData")
            .field("boundary", &self.boundary)
            .field("len", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_matches_browsers() {
        assert_eq!(
            urlencoded([("a b", "c&d=e"), ("caf\u{e9}", "*-._~")]),
            "a+b=c%26d%3De&caf%C3%A9=*-._%7E"
        );
        assert_eq!(urlencoded(Vec::<(&str, &str)>::new()), "");
    }

    #[test]
    fn multipart_layout() {
        let form = FormData::new()
            .text("a", "1")
            .file("f", "x\".txt", "text/plain", "data");
        let body = String::from_utf8(form.to_bytes().to_vec()).unwrap();
        let b = &form.boundary;
        assert_eq!(
            body,
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
                 --{b}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x%22.txt\"\r\n\
                 Content-Type: text/plain\r\n\r\ndata\r\n--{b}--\r\n"
            )
        );
    }
}
