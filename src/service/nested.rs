//! One edge, whatever the nesting: a [`WsgiService`](super::WsgiService)
//! reached from a middleware's `next` on the edge's application thread runs
//! its app right there, and answers unruled, for the edge to apply every
//! rule once to what finally goes out.
//!
//! The request and response still pass through whatever sits between (an
//! axum `Router`, tower layers): only the second pool hop, the second span
//! and the second pass of the rules are saved.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, ThreadId};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body::Body as HttpBody;

use super::Shared;
use crate::app::App;
use crate::environ::{self, BodyFault, EnvironError, Input};
use crate::error::BoxError;
use crate::middleware::{Captured, WriteLimit};
use crate::response::{self, simple_response, Failure, ResponseBody};

/// What a nested app may hold through `write()` before it returns: nothing
/// can send it on until then, since the edge's thread is the one running it.
const WRITE_LIMIT: WriteLimit = WriteLimit {
    bytes: 1 << 20,
    why: "write() would hold more than 1 MiB before the application returned: \
          behind a MiddlewareLayer the app runs on the edge's thread, which cannot \
          send the body on until then; return the body as an iterable, or give the \
          service threads of its own with Builder::join_edge(false)",
};

/// Request extension set by a middleware's `next` on the request it sends
/// inward: the edge waits for the answer on this thread.
#[derive(Clone, Debug)]
pub(crate) struct NestedCall {
    thread: ThreadId,
}

impl NestedCall {
    pub(crate) fn here() -> Self {
        Self {
            thread: thread::current().id(),
        }
    }

    /// Still on the edge's thread: no layer in between moved the call to a
    /// task or thread of its own (where the app would block it).
    pub(crate) fn is_here(&self) -> bool {
        self.thread == thread::current().id()
    }
}

/// Response extension of a nested answer: its head and body are the app's
/// own, not yet under the rules. When the app failed, the placeholder answer
/// carries the failure, for the edge's `next` to raise in the middleware,
/// as a Python exception reaches the middleware that called the app.
#[derive(Clone)]
pub(crate) struct Unruled {
    /// `None` for an answer: only a failure needs a slot to be taken from.
    failure: Option<Arc<FailureSlot>>,
}

struct FailureSlot(Mutex<Option<Failure>>);

impl Unruled {
    fn answer() -> Self {
        Self { failure: None }
    }

    fn failed(failure: Failure) -> Self {
        Self {
            failure: Some(Arc::new(FailureSlot(Mutex::new(Some(failure))))),
        }
    }

    /// The app's failure, taken: the caller raises it.
    pub(crate) fn take_failure(&self) -> Option<Failure> {
        crate::poison::lock(&self.failure.as_ref()?.0).take()
    }
}

impl Drop for FailureSlot {
    fn drop(&mut self) {
        // A layer in between answered instead: the failure must not vanish.
        if let Some(failure) = self.0.get_mut().unwrap_or_else(PoisonError::into_inner) {
            tracing::error!(
                cause = failure.describe(),
                "application error before the response started; a layer replaced the answer"
            );
        }
    }
}

/// Runs `app` on this thread and answers unruled (see the module docs).
/// The request was already checked the way every request is.
pub(super) fn answer<A, B>(
    app: &A,
    shared: &Shared,
    parts: http::request::Parts,
    body: B,
) -> Response<ResponseBody>
where
    A: App + ?Sized,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let is_head = parts.method == http::Method::HEAD;
    // The edge drains what the app leaves unread: no drain of our own.
    let (input, fault) = if body.is_end_stream() {
        (Input::from_bytes(Bytes::new()), None)
    } else {
        let fault = Arc::new(BodyFault::default());
        let input = Input::with_limit(body, shared.max_request_body, fault.clone(), false);
        (input, Some(fault))
    };
    // The request was made on this thread (the edge's `next`): freed here too.
    let environ = match environ::build(parts, input, &shared.environ, None) {
        Ok(environ) => environ,
        Err(EnvironError::NotMounted) => {
            tracing::debug!(script_name = %shared.environ.script_name, "path outside SCRIPT_NAME; answering 404");
            return simple_response(StatusCode::NOT_FOUND, None, is_head);
        }
    };
    let captured = catch_unwind(AssertUnwindSafe(|| {
        Captured::call_holding(app, environ, Some(WRITE_LIMIT))
    }));
    let failure = match captured {
        Ok(Ok(captured)) => match unruled_response(captured) {
            Ok(response) => return response,
            Err(error) => Failure::Error(error),
        },
        Ok(Err(error)) => Failure::Error(error),
        Err(panic) => Failure::Panic(panic),
    };
    // This service's own body limit failed the read: its answer, as alone.
    if let Some(status) = fault.as_deref().and_then(BodyFault::status) {
        tracing::warn!(
            cause = failure.describe(),
            status = status.as_u16(),
            "the request body failed (over the limit, or broken by the client); answering {status}"
        );
        return simple_response(status, None, is_head);
    }
    let mut placeholder = Response::new(ResponseBody::default());
    *placeholder.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    placeholder
        .extensions_mut()
        .insert(Unruled::failed(failure));
    placeholder
}

/// The app's answer as a response, valid as HTTP but otherwise as the app
/// gave it: the edge's rules judge the rest (hop-by-hop headers included).
fn unruled_response(captured: Captured) -> Result<Response<ResponseBody>, BoxError> {
    let (status, reason) = response::parse_status(&captured.status)?;
    let (headers, _) = response::parse_headers(
        captured.headers.iter().map(|(name, value)| (name, value)),
        None,
    )?;
    let mut response = Response::new(ResponseBody::pulled(captured.body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if let Some(reason) = reason {
        response.extensions_mut().insert(reason);
    }
    response.extensions_mut().insert(Unruled::answer());
    Ok(response)
}
