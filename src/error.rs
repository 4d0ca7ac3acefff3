use std::fmt;

/// Alias for a type-erased error type, as in tower and tower-http.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong in a call to [`StartResponse`](crate::StartResponse) or
/// [`Writer`](crate::Writer).
///
/// These are the errors a WSGI server raises into the application. An
/// application propagates them with `?` like any other error; the crate then
/// answers 500 (before the headers went out) or aborts the response (after).
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

/// The category of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The status line is not `"NNN reason"` or `"NNN"` with NNN in 200..=999.
    InvalidStatus,
    /// A header name is not a token, or a value holds CR, LF, NUL or a
    /// character outside latin-1.
    InvalidHeader,
    /// The application set a hop-by-hop header (PEP 3333 forbids them).
    HopByHopHeader,
    /// `Content-Length` is unparsable, or given twice with different values.
    InvalidContentLength,
    /// `start_response` was called a second time without `exc_info`.
    HeadersAlreadySet,
    /// The application produced a body without a valid `start_response`.
    StartResponseNotCalled,
    /// `start_response` was called with `exc_info` after the headers went out:
    /// the application's error is raised again (its [`source`](std::error::Error::source)).
    Reraised,
    /// The client is gone: nothing more can be sent.
    ClientDisconnected,
    /// The response was already aborted or finished.
    ResponseClosed,
    /// Inline dispatch ([`Builder::inline`](crate::Builder::inline)): `write`
    /// found the response buffer full, and waiting would block an async worker.
    WouldBlock,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: BoxError) -> Self {
        self.source = Some(source);
        self
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// `true` when the client disconnected.
    pub fn is_client_disconnected(&self) -> bool {
        self.kind == ErrorKind::ClientDisconnected
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Formats an error with its whole `source()` chain: `outer: cause: root`.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        // Wrappers often repeat their cause in their own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}

/// Text of a panic payload, for logs.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lists_every_cause_once() {
        let root = std::io::Error::other("disk on fire");
        let err = Error::new(ErrorKind::Reraised, "exc_info raised again").with_source(root.into());
        assert_eq!(chain(&err), "exc_info raised again: disk on fire");
    }
}
