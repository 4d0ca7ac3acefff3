use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::Response;

use super::answers::lost;
use super::body::ResponseBody;
use super::responder::{Outcome, Responder};
use super::trace::RequestTrace;
use crate::environ::Leftovers;

/// Response future for [`WsgiService`](crate::WsgiService).
///
/// Resolves when the response head is known: the first non-empty body
/// chunk, the end of the body, or a failure. Dropping it before then (the
/// client went away) makes the application's next `write` fail.
pub struct ResponseFuture {
    kind: Kind,
    /// Handed to the body with the head.
    trace: Option<RequestTrace>,
}

enum Kind {
    /// Boxed: the future is moved several times per request on its way
    /// into hyper, and an inline response made it 304 bytes instead of 88
    /// for every request, where only refusals and nested calls answer ready.
    Ready(Option<Box<Response<ResponseBody>>>),
    /// The head comes from the application thread through the responder,
    /// which also holds the request's memory once its environ is dropped
    /// there: freed here, where hyper made it.
    Waiting(Arc<Responder>),
}

impl ResponseFuture {
    pub(crate) fn ready(response: Response<ResponseBody>, trace: RequestTrace) -> Self {
        Self {
            kind: Kind::Ready(Some(Box::new(response))),
            trace: Some(trace),
        }
    }

    /// A nested answer: the edge's own span and events report the request.
    pub(crate) fn untraced(response: Response<ResponseBody>) -> Self {
        Self {
            kind: Kind::Ready(Some(Box::new(response))),
            trace: None,
        }
    }

    /// Waits for `responder` to send the head.
    pub(crate) fn waiting(responder: Arc<Responder>, trace: RequestTrace) -> Self {
        Self {
            kind: Kind::Waiting(responder),
            trace: Some(trace),
        }
    }

    fn traced(&mut self, mut response: Response<ResponseBody>) -> Response<ResponseBody> {
        if let Some(mut trace) = self.trace.take() {
            trace.responded(response.status());
            response.body_mut().set_trace(trace);
        }
        response
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Ready(response) => {
                let response = response.take().map_or_else(lost, |response| *response);
                Poll::Ready(Ok(this.traced(response)))
            }
            Kind::Waiting(responder) => {
                let outcome = ready!(responder.poll_reply(cx));
                recycle(responder.take_leftovers());
                this.kind = Kind::Ready(None);
                match outcome {
                    Some(Outcome::Response(response)) => Poll::Ready(Ok(this.traced(response))),
                    Some(Outcome::Passthrough(payload)) => std::panic::resume_unwind(payload),
                    None => {
                        tracing::error!(
                            "the application thread ended without answering; answering 500"
                        );
                        Poll::Ready(Ok(this.traced(lost())))
                    }
                }
            }
        }
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        if let Kind::Waiting(responder) = &self.kind {
            // The application's next write learns that the client is gone.
            drop(responder.reply_dropped());
            recycle(responder.take_leftovers());
        }
    }
}

/// Frees what the request left on this (the async worker's) thread, its
/// header map and extensions kept for later requests.
fn recycle(leftovers: Option<Leftovers>) {
    let Some(leftovers) = leftovers else {
        return;
    };
    let (headers, extensions) = leftovers.into_reusable();
    if let Some(headers) = headers {
        crate::recycled::keep_headers(headers);
    }
    crate::recycled::keep_extensions(extensions);
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
