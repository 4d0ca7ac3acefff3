//! `wsgi.errors`: the application's error stream, into `tracing`.

use std::fmt;
use std::io;

/// WSGI's `wsgi.errors`: text written here becomes `tracing` events.
///
/// Each complete line is one `WARN` event with target `tower_wsgi::errors`,
/// inside the request's span; a partial line waits for its `\n`, a
/// [`flush`](io::Write::flush), or the end of the request.
///
/// ```
/// use std::io::Write;
/// let mut errors = tower_wsgi::environ::ErrorStream::default();
/// writeln!(errors, "cache miss for {}", "/index").unwrap();
/// ```
#[derive(Default)]
pub struct ErrorStream {
    pending: Vec<u8>,
}

impl ErrorStream {
    fn emit(line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        tracing::warn!(target: "tower_wsgi::errors", "{}", text.trim_end_matches('\r'));
    }
}

impl io::Write for ErrorStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            if self.pending.is_empty() {
                Self::emit(&rest[..pos]);
            } else {
                self.pending.extend_from_slice(&rest[..pos]);
                Self::emit(&self.pending);
                self.pending.clear();
            }
            rest = &rest[pos + 1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            Self::emit(&self.pending);
            self.pending.clear();
        }
        Ok(())
    }
}

impl fmt::Write for ErrorStream {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        io::Write::write_all(self, s.as_bytes()).map_err(|_| fmt::Error)
    }
}

impl Drop for ErrorStream {
    fn drop(&mut self) {
        let _ = io::Write::flush(self);
    }
}

impl fmt::Debug for ErrorStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorStream")
            .field("pending", &self.pending.len())
            .finish()
    }
}
