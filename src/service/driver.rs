//! Runs an application on its thread and drives its body to the end:
//! every chunk through the responder, `close()` exactly once, every failure
//! reported (rules 7 to 11).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bytes::Bytes;

use crate::app::App;
use crate::body::AppBody;
use crate::environ::Environ;
use crate::error;
use crate::response::{ChunkFrom, Failure, Responder, Sent, StartResponse, Stop};

/// The rest of a response whose next chunk must wait for the client:
/// inline dispatch hands it to a pool thread ([`resume`]).
pub(crate) struct Blocked {
    body: AppBody,
    chunk: Bytes,
    /// The item after `chunk`, when the body was looked ahead in.
    ahead: Option<Pulled>,
    /// Bytes the body yielded, `chunk` included.
    yielded: u64,
}

/// Runs the application and its body; `Some` only when running inline and
/// the body has to wait for the client.
pub(crate) fn run<A: App + ?Sized>(
    app: &A,
    environ: Environ,
    responder: &Arc<Responder>,
) -> Option<Blocked> {
    let start_response = StartResponse::new(responder.clone());
    match catch_unwind(AssertUnwindSafe(|| app.call(environ, start_response))) {
        Ok(Ok(body)) => drive(body, None, 0, responder),
        Ok(Err(error)) => {
            responder.fail(Failure::Error(error));
            None
        }
        Err(panic) => {
            responder.fail(Failure::Panic(panic));
            None
        }
    }
}

/// Goes on with a blocked inline response, on a pool thread.
pub(crate) fn resume(blocked: Blocked, responder: &Responder) {
    responder.set_inline(false);
    let Blocked {
        body,
        chunk,
        ahead,
        yielded,
    } = blocked;
    match responder.resume(chunk) {
        Ok(_) => {
            let _never_blocks = drive(body, ahead, yielded, responder);
        }
        Err(stop) => end(body, End::Stopped(stop), responder),
    }
}

enum End {
    Finished,
    Stopped(Stop),
    Failed(Failure),
}

/// What pulling the next item from a body gave.
type Pulled = std::thread::Result<Option<Result<Bytes, crate::error::BoxError>>>;

fn pull(body: &mut AppBody) -> Pulled {
    catch_unwind(AssertUnwindSafe(|| body.next()))
}

/// Drives `body` to its end, from `yielded` bytes on; `ahead` is an item
/// already taken from it.
fn drive(
    mut body: AppBody,
    mut ahead: Option<Pulled>,
    mut yielded: u64,
    responder: &Responder,
) -> Option<Blocked> {
    let ended = loop {
        match ahead.take().unwrap_or_else(|| pull(&mut body)) {
            Ok(None) => break End::Finished,
            Ok(Some(Ok(chunk))) => {
                yielded = yielded.saturating_add(chunk.len() as u64);
                let mut from = ChunkFrom::Iterable;
                // A body that knows its length (one chunk, a list, a file)
                // and has yielded all of it is at its end: look, without
                // making a stream wait, so that the last chunk can go out
                // with the head.
                if !chunk.is_empty() && body.content_length() == Some(yielded) {
                    match pull(&mut body) {
                        Ok(None) => from = ChunkFrom::LastOfIterable,
                        other => ahead = Some(other),
                    }
                }
                match responder.send(chunk, from) {
                    Ok(Sent::Accepted) => {}
                    // HEAD, 204, 304: the rest of the body would be thrown away.
                    Ok(Sent::Discarded) => break End::Finished,
                    Err(Stop::WouldBlock(chunk)) => {
                        return Some(Blocked {
                            body,
                            chunk,
                            ahead,
                            yielded,
                        });
                    }
                    Err(stop) => break End::Stopped(stop),
                }
            }
            Ok(Some(Err(error))) => break End::Failed(Failure::Error(error)),
            Err(panic) => break End::Failed(Failure::Panic(panic)),
        }
    };
    end(body, ended, responder);
    None
}

/// Closes the body, then ends the response as `ended` says.
fn end(mut body: AppBody, ended: End, responder: &Responder) {
    // close() comes before the response ends, so a client that sees the end
    // of one response knows its body was closed.
    match catch_unwind(AssertUnwindSafe(|| body.close())) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(
                error = error::chain(&*error),
                "response body close() failed"
            )
        }
        Err(panic) => {
            tracing::error!(panic = %error::panic_message(&*panic), "response body close() panicked")
        }
    }
    let stop = match ended {
        End::Finished => match responder.finish() {
            Ok(()) => return,
            Err(stop) => stop,
        },
        End::Stopped(stop) => stop,
        End::Failed(failure) => return responder.fail(failure),
    };
    match stop {
        Stop::ClientGone => {
            tracing::info!("client disconnected before the response ended; body closed")
        }
        Stop::Surplus => {
            let _ = responder.finish();
        }
        Stop::Closed | Stop::WouldBlock(_) => {}
        Stop::App(error) => responder.fail(Failure::Error(error.into())),
    }
}
