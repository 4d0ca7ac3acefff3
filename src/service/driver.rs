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
        Ok(Ok(body)) => drive(body, responder),
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
    let Blocked { body, chunk } = blocked;
    match responder.resume(chunk) {
        Ok(_) => {
            let _never_blocks = drive(body, responder);
        }
        Err(stop) => end(body, End::Stopped(stop), responder),
    }
}

enum End {
    Finished,
    Stopped(Stop),
    Failed(Failure),
}

fn drive(mut body: AppBody, responder: &Responder) -> Option<Blocked> {
    let ended = loop {
        match catch_unwind(AssertUnwindSafe(|| body.next())) {
            Ok(None) => break End::Finished,
            Ok(Some(Ok(chunk))) => match responder.send(chunk, ChunkFrom::Iterable) {
                Ok(Sent::Accepted) => {}
                // HEAD, 204, 304: the rest of the body would be thrown away.
                Ok(Sent::Discarded) => break End::Finished,
                Err(Stop::WouldBlock(chunk)) => return Some(Blocked { body, chunk }),
                Err(stop) => break End::Stopped(stop),
            },
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
