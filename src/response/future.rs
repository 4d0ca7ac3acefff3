use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Response, StatusCode};
use tokio::sync::oneshot;

use super::body::ResponseBody;
use super::exchange::Outcome;

/// Response future for [`WsgiService`](crate::WsgiService).
///
/// Resolves when the response head is known: the first non-empty body
/// chunk, the end of the body, or a failure. Dropping it before then (the
/// client went away) makes the application's next `write` fail.
pub struct ResponseFuture {
    kind: Kind,
}

enum Kind {
    Ready(Option<Response<ResponseBody>>),
    Waiting(oneshot::Receiver<Outcome>),
}

impl ResponseFuture {
    pub(crate) fn ready(response: Response<ResponseBody>) -> Self {
        Self {
            kind: Kind::Ready(Some(response)),
        }
    }

    pub(crate) fn waiting(rx: oneshot::Receiver<Outcome>) -> Self {
        Self {
            kind: Kind::Waiting(rx),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Ready(response) => Poll::Ready(Ok(response.take().unwrap_or_else(lost))),
            Kind::Waiting(rx) => {
                let outcome = ready!(Pin::new(rx).poll(cx));
                this.kind = Kind::Ready(None);
                match outcome {
                    Ok(Outcome::Response(response)) => Poll::Ready(Ok(response)),
                    Ok(Outcome::Passthrough(payload)) => std::panic::resume_unwind(payload),
                    Err(_) => {
                        tracing::error!(
                            "the application thread ended without answering; answering 500"
                        );
                        Poll::Ready(Ok(lost()))
                    }
                }
            }
        }
    }
}

/// The answer when no response can be had (polled after completion, or the
/// application thread vanished): an empty 500.
fn lost() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty(false));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
