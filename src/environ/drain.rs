//! Draining a request body the application left unread (RULES.md 14 and 17),
//! so the next pipelined request on an HTTP/1 connection is answered.
//!
//! hyper drains an unread body only when all of it sits in one read buffer;
//! otherwise it closes the connection. A body dropped before its end is
//! read to the end here instead, within a bound in bytes and time: past it
//! the body is dropped and hyper closes the connection, as before.

use std::time::Duration;

use bytes::Buf;
use http::{header, request, Version};
use http_body::Body;
use http_body_util::BodyExt;

/// The most bytes read from an unread body to keep its connection.
pub(crate) const MAX_BYTES: u64 = 1024 * 1024;

/// The longest an unread body may take to arrive once dropped.
pub(crate) const MAX_TIME: Duration = Duration::from_secs(1);

/// Whether `body`, if dropped unread, is drained to keep its connection:
/// HTTP/1, a body still to come, no `Expect: 100-continue` (draining would
/// ask for a body the application never wanted), and no declared length
/// past the bound.
pub(crate) fn is_worth_draining<B: Body>(body: &B, parts: &request::Parts) -> bool {
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let too_long = body.size_hint().exact().is_some_and(|n| n > MAX_BYTES);
    parts.version < Version::HTTP_2 && !body.is_end_stream() && !expects_continue && !too_long
}

/// Reads `body` to its end within the bound, then drops it.
pub(crate) async fn drain<B: Body + Unpin>(mut body: B) {
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
