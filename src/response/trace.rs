//! One request's record in `tracing`: the span's status, bytes sent and
//! duration, filled in as the response goes out, and an event at its end.

use std::time::Instant;

use http::StatusCode;
use tracing::Span;

/// Travels with the response (future, then body) and records how it ended.
pub(crate) struct RequestTrace {
    span: Span,
    /// `None` when nothing would record the duration (no subscriber wants
    /// the span or the events): a clock read saved per request.
    started: Option<Instant>,
    status: Option<StatusCode>,
    bytes_sent: u64,
    ended: bool,
}

/// How the response ended.
pub(crate) enum Ending<'a> {
    /// Every byte went out.
    Complete,
    /// The response was aborted (the client sees a truncated body).
    Aborted(&'a (dyn std::error::Error + 'static)),
    /// Dropped before its end: the client went away.
    ClientGone,
}

impl RequestTrace {
    /// The span of a new request: `status`, `bytes_sent` and `duration_ms`
    /// are recorded when the response ends.
    ///
    /// `DEBUG`, as tower-http's `TraceLayer` makes its spans: under the
    /// usual `INFO` filter a request costs no span (no formatting, no
    /// allocation), while the events that need a reader (errors, aborts,
    /// clients gone) keep their own levels.
    pub(crate) fn span(method: &http::Method, uri: &http::Uri) -> Span {
        tracing::debug_span!(
            "wsgi",
            %method,
            %uri,
            status = tracing::field::Empty,
            bytes_sent = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    }

    pub(crate) fn new(span: Span) -> Self {
        let timed = !span.is_disabled() || tracing::enabled!(tracing::Level::WARN);
        Self {
            span,
            started: timed.then(Instant::now),
            status: None,
            bytes_sent: 0,
            ended: false,
        }
    }

    /// The head is ready for the client.
    pub(crate) fn responded(&mut self, status: StatusCode) {
        self.status = Some(status);
        self.span.record("status", status.as_u16());
    }

    pub(crate) fn sent(&mut self, bytes: usize) {
        self.bytes_sent += bytes as u64;
    }

    pub(crate) fn end(&mut self, ending: Ending<'_>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let recorded = !self.span.is_disabled()
            || !matches!(ending, Ending::Complete)
            || tracing::enabled!(tracing::Level::DEBUG);
        if !recorded {
            // The usual end under an `INFO` filter: nothing reads the clock.
            return;
        }
        let duration_ms = self
            .started
            .map_or(0.0, |started| started.elapsed().as_secs_f64() * 1000.0);
        let bytes_sent = self.bytes_sent;
        self.span.record("bytes_sent", bytes_sent);
        self.span.record("duration_ms", duration_ms);
        let status = self.status.map(|s| s.as_u16());
        let _entered = self.span.enter();
        match ending {
            Ending::Complete => {
                tracing::debug!(status, bytes_sent, duration_ms, "response sent")
            }
            Ending::Aborted(error) => tracing::warn!(
                status,
                bytes_sent,
                duration_ms,
                error = %crate::error::chain(error),
                "response aborted"
            ),
            Ending::ClientGone => tracing::info!(
                status,
                bytes_sent,
                duration_ms,
                "client went away before the response ended"
            ),
        }
    }
}

impl Drop for RequestTrace {
    fn drop(&mut self) {
        self.end(Ending::ClientGone);
    }
}
