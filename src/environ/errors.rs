//! `wsgi.errors`: the application's error stream, into `tracing`.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// WSGI's `wsgi.errors`: text written here becomes `tracing` events.
///
/// Each complete line is one `WARN` event with target `tower_wsgi::errors`,
/// inside the request's span; a partial line waits for its `\n`, a
/// [`flush`](io::Write::flush), or the end of the request.
///
/// A cheap handle: [`Environ::errors`](crate::Environ::errors) returns one
/// by value, so it does not keep the environ borrowed, and every clone
/// writes to the same stream (a partial line written through one handle is
/// completed through another, as with Python's single `wsgi.errors` file).
///
/// ```
/// use std::io::Write;
/// let mut environ = tower_wsgi::Environ::default();
/// writeln!(environ.errors(), "cache miss for {}", environ.path_info()).unwrap();
/// let errors = environ.errors(); // keep one for later, in a body iterator say
/// # drop(errors);
/// ```
#[derive(Clone, Default)]
pub struct ErrorStream {
    shared: Arc<Shared>,
}

/// The stream all handles write to; what is pending is logged when the
/// last handle goes.
#[derive(Default)]
struct Shared {
    pending: Mutex<Vec<u8>>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves only bytes behind: keep them.
        crate::poison::lock(&self.pending)
    }
}

fn emit(line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    tracing::warn!(target: "tower_wsgi::errors", "{}", text.trim_end_matches('\r'));
}

impl io::Write for ErrorStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = self.shared.pending();
        let mut rest = buf;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            if pending.is_empty() {
                emit(&rest[..pos]);
            } else {
                pending.extend_from_slice(&rest[..pos]);
                emit(&pending);
                pending.clear();
            }
            rest = &rest[pos + 1..];
        }
        pending.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut pending = self.shared.pending();
        if !pending.is_empty() {
            emit(&pending);
            pending.clear();
        }
        Ok(())
    }
}

impl fmt::Write for ErrorStream {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        io::Write::write_all(self, s.as_bytes()).map_err(|_| fmt::Error)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let pending = self
            .pending
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if !pending.is_empty() {
            emit(pending);
        }
    }
}

impl fmt::Debug for ErrorStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorStream")
            .field("pending", &self.shared.pending().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn clones_share_one_stream() {
        let mut a = ErrorStream::default();
        let mut b = a.clone();
        write!(a, "half").unwrap();
        assert_eq!(b.shared.pending().as_slice(), b"half");
        writeln!(b, " and half").unwrap();
        assert!(a.shared.pending().is_empty());
        write!(a, "tail").unwrap();
        drop(a);
        assert_eq!(b.shared.pending().as_slice(), b"tail");
    }
}
