use std::fmt;
use std::pin::Pin;
use std::sync::PoisonError;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::trace::{Ending, RequestTrace};
use crate::body::AppBody;
use crate::error::BoxError;

/// One item of the channel from the application thread: a chunk, or the
/// error that aborts the body.
pub(crate) type StreamItem = Result<Bytes, BoxError>;

/// Response body for [`WsgiService`](crate::WsgiService).
///
/// Streams the application's chunks from its thread through a bounded
/// buffer. Its size hint is exact only when it equals the `Content-Length`
/// header, so hyper never frames the body differently from the header.
/// Dropping it (the client went away) makes the application's next `write`
/// fail and its body close.
pub struct ResponseBody {
    kind: Kind,
    trace: Option<RequestTrace>,
}

enum Kind {
    Full(Option<Bytes>),
    /// At most one chunk, of a length no header declares: the size stays
    /// unknown to hyper, and the end shows only once polled.
    Once {
        data: Option<Bytes>,
        ended: bool,
    },
    /// No body bytes. `end_stream: false` keeps a 304's `Content-Length`
    /// on HTTP/1 (hyper drops it for a body that says it has ended).
    Empty {
        end_stream: bool,
    },
    Stream {
        rx: mpsc::Receiver<StreamItem>,
        remaining: Option<u64>,
        ended: bool,
        /// An abort, held back for one poll (see `poll_frame`).
        abort: Option<BoxError>,
    },
    /// A nested app's body, pulled on the thread that polls it: the edge's
    /// application thread, which waits for each chunk anyway. `None` once
    /// ended (and closed). The mutex only keeps the body `Sync`; polling
    /// takes `&mut`, so it is never locked.
    Pulled(std::sync::Mutex<Option<AppBody>>),
}

impl Default for ResponseBody {
    /// An empty body. Middleware that answers on its own with a default body
    /// (tower-http's `TimeoutLayer`, for one) stacks directly on the service.
    fn default() -> Self {
        Self::empty(false)
    }
}

impl ResponseBody {
    fn new(kind: Kind) -> Self {
        Self { kind, trace: None }
    }

    /// From now on the body reports what it sends to `trace`.
    pub(crate) fn set_trace(&mut self, trace: RequestTrace) {
        self.trace = Some(trace);
    }

    /// Nothing is left to send: hyper may drop the body without polling
    /// it to the end (a satisfied `Content-Length`, HEAD on HTTP/1).
    fn is_complete(&self) -> bool {
        matches!(self.kind, Kind::Empty { .. })
            || self.is_end_stream()
            || self.size_hint().exact() == Some(0)
    }

    pub(crate) fn full(data: Bytes) -> Self {
        Self::new(Kind::Full(Some(data)))
    }

    /// The whole body, known when the head goes out.
    pub(crate) fn once(data: Option<Bytes>, content_length: Option<u64>) -> Self {
        let kind = match content_length {
            Some(_) => Kind::Full(data),
            None => Kind::Once { data, ended: false },
        };
        Self::new(kind)
    }

    pub(crate) fn empty(keep_open: bool) -> Self {
        Self::new(Kind::Empty {
            end_stream: !keep_open,
        })
    }

    /// A nested app's body, for the edge to pull (see `service::nested`).
    pub(crate) fn pulled(body: AppBody) -> Self {
        Self::new(Kind::Pulled(std::sync::Mutex::new(Some(body))))
    }

    pub(crate) fn stream(rx: mpsc::Receiver<StreamItem>, content_length: Option<u64>) -> Self {
        Self::new(Kind::Stream {
            rx,
            remaining: content_length,
            ended: false,
            abort: None,
        })
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = poll_kind(&mut this.kind, cx);
        if let (Poll::Ready(frame), Some(trace)) = (&polled, &mut this.trace) {
            match frame {
                Some(Ok(frame)) => trace.sent(frame.data_ref().map_or(0, Bytes::len)),
                Some(Err(error)) => trace.end(Ending::Aborted(&**error)),
                None => trace.end(Ending::Complete),
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(data) => data.is_none(),
            Kind::Once { ended, .. } => *ended,
            Kind::Empty { end_stream } => *end_stream,
            Kind::Stream { ended, .. } => *ended,
            Kind::Pulled(body) => body.lock().map_or(true, |body| body.is_none()),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Once { .. } => SizeHint::default(),
            Kind::Empty { end_stream: true } => SizeHint::with_exact(0),
            Kind::Empty { end_stream: false } => SizeHint::default(),
            Kind::Stream { remaining, .. } => {
                remaining.map_or_else(SizeHint::default, SizeHint::with_exact)
            }
            Kind::Pulled(_) => SizeHint::default(),
        }
    }
}

fn poll_kind(
    kind: &mut Kind,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    match kind {
        Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        Kind::Once { data, ended } => match data.take() {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None => {
                *ended = true;
                Poll::Ready(None)
            }
        },
        Kind::Empty { .. } => Poll::Ready(None),
        Kind::Stream {
            rx,
            remaining,
            ended,
            abort,
        } => {
            if let Some(error) = abort.take() {
                *ended = true;
                return Poll::Ready(Some(Err(error)));
            }
            if *ended {
                return Poll::Ready(None);
            }
            match rx.poll_recv(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(data))) => {
                    if let Some(remaining) = remaining {
                        *remaining = remaining.saturating_sub(data.len() as u64);
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Poll::Ready(Some(Err(error))) => {
                    // hyper flushes what it holds when the body is pending;
                    // an error right away would drop the head and the
                    // partial body unsent, and the client could not tell
                    // a truncated response from none at all.
                    *abort = Some(error);
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(None) => {
                    *ended = true;
                    Poll::Ready(None)
                }
            }
        }
        Kind::Pulled(slot) => {
            let slot = slot.get_mut().unwrap_or_else(PoisonError::into_inner);
            let Some(body) = slot.as_mut() else {
                return Poll::Ready(None);
            };
            match body.next() {
                Some(Ok(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
                ended => {
                    // Dropped, so closed (once, a failure logged), before the
                    // end is reported: close() comes before the response ends.
                    *slot = None;
                    Poll::Ready(ended.map(|failed| failed.map(Frame::data)))
                }
            }
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(mut trace) = self.trace.take() {
            if self.is_complete() {
                trace.end(Ending::Complete);
            }
            // Otherwise the trace reports the client gone as it drops.
        }
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Full(_) => "Full",
            Kind::Once { .. } => "Once",
            Kind::Empty { .. } => "Empty",
            Kind::Stream { .. } => "Stream",
            Kind::Pulled(_) => "Pulled",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
    }
}
