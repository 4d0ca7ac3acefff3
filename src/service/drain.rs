//! Draining a request body the application left unread (RULES.md 14 and 17),
//! so the next pipelined request on an HTTP/1 connection is answered.
//!
//! hyper drains an unread body only when all of it sits in one read buffer;
//! otherwise it closes the connection. A body dropped before its end is
//! read to the end here instead, within a bound in bytes and time: past it
//! the body is dropped and hyper closes the connection, as before.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http::{header, request, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// The most bytes read from an unread body to keep its connection.
pub(crate) const MAX_BYTES: u64 = 1024 * 1024;

/// The longest an unread body may take to arrive once dropped.
pub(crate) const MAX_TIME: Duration = Duration::from_secs(1);

/// A request body that is drained in the background if dropped before its end.
pub(crate) struct DrainOnDrop<B: Body + Send + 'static> {
    body: Option<Pin<Box<B>>>,
    done: bool,
    runtime: tokio::runtime::Handle,
}

/// `body`, drained when dropped unread, where that can keep the connection:
/// HTTP/1, a body still to come, no `Expect: 100-continue` (draining would
/// ask for a body the application never wanted), and no declared length
/// past the bound. Otherwise `body` as it was.
pub(crate) fn on_drop<B>(body: B, parts: &request::Parts) -> Result<DrainOnDrop<B>, B>
where
    B: Body + Send + 'static,
{
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let too_long = body.size_hint().exact().is_some_and(|n| n > MAX_BYTES);
    let runtime = tokio::runtime::Handle::try_current();
    match runtime {
        Ok(runtime)
            if parts.version < Version::HTTP_2
                && !body.is_end_stream()
                && !expects_continue
                && !too_long =>
        {
            Ok(DrainOnDrop {
                body: Some(Box::pin(body)),
                done: false,
                runtime,
            })
        }
        _ => Err(body),
    }
}

impl<B: Body + Send + 'static> Body for DrainOnDrop<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = body.as_mut().poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.done = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl<B: Body + Send + 'static> Drop for DrainOnDrop<B> {
    fn drop(&mut self) {
        let Some(body) = self.body.take() else {
            return;
        };
        if self.done || body.is_end_stream() {
            return;
        }
        self.runtime.spawn(drain(body));
    }
}

/// Reads `body` to its end within the bound, then drops it.
async fn drain<B: Body>(mut body: Pin<Box<B>>) {
    let deadline = tokio::time::sleep(MAX_TIME);
    tokio::pin!(deadline);
    let mut read = 0u64;
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                None => {
                    tracing::debug!(bytes = read, "drained an unread request body");
                    return;
                }
                Some(Ok(frame)) => {
                    read += frame.data_ref().map_or(0, |d| d.remaining() as u64);
                    if read > MAX_BYTES {
                        tracing::debug!(limit = MAX_BYTES, "unread request body too long to drain; closing the connection");
                        return;
                    }
                }
                Some(Err(_)) => return,
            },
            () = &mut deadline => {
                tracing::debug!(bytes = read, "unread request body still arriving; closing the connection");
                return;
            }
        }
    }
}
