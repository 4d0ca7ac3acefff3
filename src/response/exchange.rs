//! One request's response, shared by `start_response`, `write` and the
//! dispatcher: headers go out late, bodies stay within their length, and
//! every failure turns into the right thing on the wire (RULES.md 5 to 11).

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode, Version};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::body::{Frame, ResponseBody};
use super::head::{self, BodyPlan, Prepared, RequestFacts};
use crate::config::Config;
use crate::error::{self, BoxError, Error, ErrorKind};
use crate::input::BodyFault;

/// What the response future receives.
// Boxing the common variant would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome {
    Response(Response<ResponseBody>),
    /// `passthrough_errors`: the failure, to raise again in the caller.
    Passthrough(Box<dyn Any + Send>),
}

/// Why the body must stop.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The client is gone.
    ClientGone,
    /// The body went past its `Content-Length`.
    Surplus,
    /// The response already ended.
    Closed,
    /// The application misused `start_response`: an application error.
    App(Error),
    /// Inline dispatch: the response buffer is full, and waiting for the
    /// client would block an async worker. The chunk was counted, not sent.
    WouldBlock(Bytes),
}

/// What became of a chunk that was accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    Accepted,
    /// The response has no body (HEAD, 204, 304): stop producing one.
    Discarded,
}

/// A failure of the application: an error or a panic.
pub(crate) enum Failure {
    Error(BoxError),
    Panic(Box<dyn Any + Send>),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Self::Error(error) => error::chain(&**error),
            Self::Panic(payload) => format!("panic: {}", error::panic_message(&**payload)),
        }
    }
}

enum Phase {
    /// Nothing sent yet; the response future waits on `reply`.
    Before(oneshot::Sender<Outcome>),
    /// The head went out; body chunks flow through `tx`.
    Streaming {
        tx: mpsc::Sender<Frame>,
        remaining: Option<u64>,
    },
    /// The head went out and the response has no body.
    Discarding,
    /// The client dropped the response.
    Gone,
    /// The response ended (completely or aborted).
    Done,
}

struct State {
    started: bool,
    prepared: Option<Prepared>,
    /// An invalid `start_response`, reported if the body starts anyway.
    fault: Option<Error>,
    phase: Phase,
    /// The chunk that completes the declared length, kept back until the
    /// application's next move shows whether surplus follows it.
    held: Option<Bytes>,
    /// A non-empty chunk was produced: the headers count as sent (PEP 3333),
    /// even while their emission waits (held chunk, or a body to discard).
    committed: bool,
    surplus: bool,
}

/// Who produced a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The `write` callable: the application is still running.
    Write,
    /// The returned iterable: the dispatcher closes it before the response ends.
    Iterable,
}

impl State {
    /// The body plan of the pending head, or the application error that
    /// stands in for a missing or invalid `start_response`.
    fn plan(&mut self) -> Result<BodyPlan, Stop> {
        match &self.prepared {
            Some(prepared) => Ok(prepared.plan),
            None => Err(Stop::App(self.missing_start())),
        }
    }

    /// The error that stands in for a missing or invalid `start_response`.
    fn missing_start(&mut self) -> Error {
        self.fault.take().unwrap_or_else(|| {
            Error::new(
                ErrorKind::StartResponseNotCalled,
                "the application produced a body without calling start_response",
            )
        })
    }

    /// Sends the head of a response that has no body (HEAD, 204, 304).
    fn emit_without_body(&mut self) {
        let Phase::Before(reply) = std::mem::replace(&mut self.phase, Phase::Discarding) else {
            return;
        };
        let Some(prepared) = self.prepared.take() else {
            return;
        };
        let keep_open = matches!(prepared.plan, BodyPlan::Suppressed { keep_length: true });
        if reply
            .send(Outcome::Response(build(
                prepared,
                ResponseBody::empty(keep_open),
            )))
            .is_err()
        {
            self.phase = Phase::Gone;
        }
    }
}

pub(crate) struct Exchange {
    state: Mutex<State>,
    facts: RequestFacts,
    config: Arc<Config>,
    body_fault: Arc<BodyFault>,
    /// Running on an async worker (inline dispatch): never block.
    inline: AtomicBool,
}

impl Exchange {
    pub(crate) fn new(
        reply: oneshot::Sender<Outcome>,
        facts: RequestFacts,
        config: Arc<Config>,
        body_fault: Arc<BodyFault>,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                started: false,
                prepared: None,
                fault: None,
                phase: Phase::Before(reply),
                held: None,
                committed: false,
                surplus: false,
            }),
            facts,
            config,
            body_fault,
            inline: AtomicBool::new(false),
        }
    }

    /// Marks the application as running on an async worker (`true`) or on
    /// a pool thread (`false`), where waiting for the client is allowed.
    pub(crate) fn set_inline(&self, inline: bool) {
        self.inline.store(inline, Ordering::Release);
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Answers with a response of the crate's own, before the application ran.
    pub(crate) fn answer(&self, response: Response<ResponseBody>) {
        let mut st = self.lock();
        if let Phase::Before(reply) = std::mem::replace(&mut st.phase, Phase::Done) {
            let _ = reply.send(Outcome::Response(response));
        }
    }

    fn is_inline(&self) -> bool {
        self.inline.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written
        // in a way that matters more than answering the client.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `start_response(status, headers, exc_info)`.
    pub(crate) fn start<K, V>(
        &self,
        status: &str,
        headers: impl IntoIterator<Item = (K, V)>,
        exc_info: Option<BoxError>,
    ) -> Result<(), Error>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut st = self.lock();
        let headers_sent = st.committed || !matches!(st.phase, Phase::Before(_));
        match exc_info {
            Some(exc_info) if headers_sent => {
                let message = format!(
                    "start_response called with exc_info after the headers were sent: {}",
                    error::chain(&*exc_info)
                );
                return Err(Error::new(ErrorKind::Reraised, message).with_source(exc_info));
            }
            None if st.started => {
                let message = "start_response called a second time without exc_info";
                if !headers_sent {
                    st.prepared = None;
                    st.fault = Some(Error::new(ErrorKind::HeadersAlreadySet, message));
                }
                return Err(Error::new(ErrorKind::HeadersAlreadySet, message));
            }
            _ => {}
        }
        st.started = true;
        match head::prepare(status, headers, self.facts, &self.config) {
            Ok(prepared) => {
                st.prepared = Some(prepared);
                st.fault = None;
                Ok(())
            }
            Err(err) => {
                st.prepared = None;
                st.fault = Some(Error::new(err.kind(), err.to_string()));
                Err(err)
            }
        }
    }

    /// The `write` callable.
    pub(crate) fn write(&self, chunk: Bytes) -> Result<(), Error> {
        match self.send(chunk, Source::Write) {
            Ok(_) => Ok(()),
            Err(Stop::ClientGone) => Err(Error::new(
                ErrorKind::ClientDisconnected,
                "the client disconnected",
            )),
            Err(Stop::Surplus) => Err(Error::new(
                ErrorKind::InvalidContentLength,
                "write() past the declared Content-Length",
            )),
            Err(Stop::Closed) => Err(Error::new(
                ErrorKind::ResponseClosed,
                "the response already ended",
            )),
            Err(Stop::App(err)) => Err(err),
            Err(Stop::WouldBlock(_)) => Err(Error::new(
                ErrorKind::WouldBlock,
                "write() found the response buffer full while the application runs inline; \
                 use blocking dispatch for applications that write large bodies",
            )),
        }
    }

    /// Sends one chunk of the body (from `write` or the iterable).
    pub(crate) fn send(&self, chunk: Bytes, source: Source) -> Result<Sent, Stop> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if chunk.is_empty() {
            return match &st.phase {
                Phase::Before(reply) if reply.is_closed() => Err(Stop::ClientGone),
                Phase::Streaming { tx, .. } if tx.is_closed() => Err(Stop::ClientGone),
                Phase::Gone => Err(Stop::ClientGone),
                Phase::Done => Err(Stop::Closed),
                Phase::Discarding => Ok(Sent::Discarded),
                Phase::Before(_) | Phase::Streaming { .. } => Ok(Sent::Accepted),
            };
        }
        match &mut st.phase {
            Phase::Gone => Err(Stop::ClientGone),
            Phase::Done => Err(Stop::Closed),
            Phase::Discarding => Ok(Sent::Discarded),
            Phase::Streaming { tx, remaining } => {
                let Some(chunk) = admit(&mut st.held, &mut st.surplus, remaining, chunk)? else {
                    return Ok(Sent::Accepted);
                };
                let tx = tx.clone();
                drop(guard);
                self.push(&tx, chunk)
            }
            Phase::Before(_) => match st.plan()? {
                BodyPlan::Suppressed { .. } => {
                    st.committed = true;
                    // From the iterable, the head waits for close() (see finish).
                    if source == Source::Write {
                        st.emit_without_body();
                    }
                    Ok(Sent::Discarded)
                }
                BodyPlan::Stream { content_length } => {
                    st.committed = true;
                    let mut remaining = content_length;
                    let Some(chunk) = admit(&mut st.held, &mut st.surplus, &mut remaining, chunk)?
                    else {
                        return Ok(Sent::Accepted);
                    };
                    self.emit(st, Some(chunk), Then::Stream(remaining))?;
                    Ok(Sent::Accepted)
                }
            },
        }
    }

    /// The body ended without error.
    pub(crate) fn finish(&self) -> Result<(), Stop> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.surplus {
            drop(guard);
            self.overflow();
            return Ok(());
        }
        match &st.phase {
            Phase::Before(_) => {
                match st.plan()? {
                    BodyPlan::Suppressed { .. } => st.emit_without_body(),
                    BodyPlan::Stream { content_length } => match st.held.take() {
                        Some(held) => self.emit(st, Some(held), Then::End)?,
                        None => match content_length {
                            Some(declared) if declared > 0 => {
                                return Err(Stop::App(Error::new(
                                    ErrorKind::InvalidContentLength,
                                    format!(
                                        "the application declared Content-Length {declared} but sent no body"
                                    ),
                                )))
                            }
                            _ => self.emit(st, None, Then::End)?,
                        },
                    },
                }
                Ok(())
            }
            Phase::Streaming { .. } => {
                let Phase::Streaming { tx, remaining } =
                    std::mem::replace(&mut st.phase, Phase::Done)
                else {
                    return Ok(());
                };
                let held = st.held.take();
                drop(guard);
                match (held, remaining) {
                    (Some(held), _) => {
                        // It completes the declared length; the stream then ends.
                        self.send_last(tx, Ok(held));
                    }
                    (None, Some(missing)) if missing > 0 => {
                        tracing::error!(
                            missing,
                            "the application's body ended {missing} bytes short of its Content-Length; \
                             aborting the response"
                        );
                        self.send_last(tx, Err(short_body_error(missing)));
                    }
                    _ => {}
                }
                Ok(())
            }
            Phase::Discarding => {
                st.phase = Phase::Done;
                Ok(())
            }
            Phase::Gone | Phase::Done => Ok(()),
        }
    }

    /// The application failed (error or panic) at some point of the response.
    pub(crate) fn fail(&self, failure: Failure) {
        let mut st = self.lock();
        let cause = failure.describe();
        match std::mem::replace(&mut st.phase, Phase::Done) {
            Phase::Before(reply) => {
                let outcome = if let Some(status) = self.body_fault.status() {
                    tracing::warn!(
                        cause,
                        status = status.as_u16(),
                        "the request body failed (over the limit, or broken by the client); \
                         answering {status}"
                    );
                    Outcome::Response(simple_response(status, &self.config, self.facts.is_head))
                } else if self.config.passthrough_errors {
                    tracing::error!(
                        cause,
                        "application error before the response started (passthrough_errors)"
                    );
                    Outcome::Passthrough(match failure {
                        Failure::Panic(payload) => payload,
                        Failure::Error(_) => Box::new(format!("application error: {cause}")),
                    })
                } else {
                    tracing::error!(
                        cause,
                        "application error before the response started; answering 500"
                    );
                    Outcome::Response(internal_error(&self.config, self.facts.is_head))
                };
                if reply.send(outcome).is_err() {
                    tracing::debug!("the client was gone before the error response");
                }
            }
            Phase::Streaming { tx, .. } => {
                drop(st);
                tracing::error!(
                    cause,
                    "application error after the response started; aborting the response"
                );
                self.send_last(tx, Err(cause.into()));
            }
            Phase::Gone => {
                st.phase = Phase::Gone;
                tracing::error!(cause, "application error after the client disconnected");
            }
            Phase::Discarding | Phase::Done => {
                tracing::error!(cause, "application error after the response was complete");
            }
        }
    }

    /// The body went past its `Content-Length`: send exactly the declared
    /// bytes and end the connection (RULES.md 6).
    fn overflow(&self) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let declared = match &st.prepared {
            Some(Prepared {
                plan:
                    BodyPlan::Stream {
                        content_length: Some(n),
                    },
                ..
            }) => *n,
            _ => 0,
        };
        match std::mem::replace(&mut st.phase, Phase::Done) {
            Phase::Before(reply) => {
                tracing::error!(
                    declared,
                    "the application's body is longer than its Content-Length; surplus discarded, connection closed"
                );
                st.phase = Phase::Before(reply);
                let held = st.held.take().unwrap_or_default();
                if let Some(prepared) = st.prepared.as_mut() {
                    prepared.close_connection(self.facts);
                }
                let _ = self.emit(st, Some(held), Then::End);
            }
            Phase::Streaming { tx, .. } => {
                st.held = None;
                drop(guard);
                tracing::error!(
                    declared,
                    "the application's body is longer than its Content-Length; aborting the response"
                );
                self.send_last(
                    tx,
                    Err("response body longer than its Content-Length".into()),
                );
            }
            other => st.phase = other,
        }
    }

    /// Sends the head, with `first` as the start of the body.
    fn emit(&self, st: &mut State, first: Option<Bytes>, then: Then) -> Result<(), Stop> {
        let Phase::Before(reply) = std::mem::replace(&mut st.phase, Phase::Done) else {
            return Err(Stop::Closed);
        };
        let Some(prepared) = st.prepared.take() else {
            return Err(Stop::App(st.missing_start()));
        };
        let content_length = match prepared.plan {
            BodyPlan::Stream { content_length } => content_length,
            BodyPlan::Suppressed { .. } => None,
        };
        let (body, streaming) = match then {
            // The whole body is known: no channel to the application thread.
            Then::End => (ResponseBody::once(first, content_length), None),
            Then::Stream(remaining) => {
                let (tx, rx) = mpsc::channel(self.config.response_buffer);
                if let Some(first) = first {
                    // A new channel has room for one.
                    let _ = tx.try_send(Ok(first));
                }
                (
                    ResponseBody::stream(rx, content_length),
                    Some((tx, remaining)),
                )
            }
        };
        if reply
            .send(Outcome::Response(build(prepared, body)))
            .is_err()
        {
            st.phase = Phase::Gone;
            return Err(Stop::ClientGone);
        }
        if let Some((tx, remaining)) = streaming {
            st.phase = Phase::Streaming { tx, remaining };
        }
        Ok(())
    }

    fn push(&self, tx: &mpsc::Sender<Frame>, chunk: Bytes) -> Result<Sent, Stop> {
        let sent = if self.is_inline() {
            match tx.try_send(Ok(chunk)) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(Ok(chunk))) => return Err(Stop::WouldBlock(chunk)),
                Err(_) => Err(()),
            }
        } else {
            tx.blocking_send(Ok(chunk)).map_err(drop)
        };
        if sent.is_ok() {
            return Ok(Sent::Accepted);
        }
        let mut st = self.lock();
        st.phase = Phase::Gone;
        Err(Stop::ClientGone)
    }

    /// Sends a chunk that `send` counted but could not deliver inline
    /// (`Stop::WouldBlock`); the caller is now on a pool thread.
    pub(crate) fn resume(&self, chunk: Bytes) -> Result<Sent, Stop> {
        let tx = match &self.lock().phase {
            Phase::Streaming { tx, .. } => tx.clone(),
            Phase::Gone => return Err(Stop::ClientGone),
            _ => return Err(Stop::Closed),
        };
        self.push(&tx, chunk)
    }

    /// Sends the frame that ends the body. Inline, a full buffer hands it
    /// to a task, since nothing can follow it.
    fn send_last(&self, tx: mpsc::Sender<Frame>, frame: Frame) {
        if !self.is_inline() {
            let _ = tx.blocking_send(frame);
            return;
        }
        if let Err(TrySendError::Full(frame)) = tx.try_send(frame) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let _ = tx.send(frame).await;
                    });
                }
                Err(_) => tracing::error!("no runtime to finish an inline response on"),
            }
        }
    }
}

/// What follows the chunks sent with the head.
enum Then {
    /// More chunks; `Some(n)` bytes of the declared length remain.
    Stream(Option<u64>),
    /// Nothing: the body ends.
    End,
}

/// Counts a chunk against the declared length, if any: the chunk to send
/// now, `None` when it is held back, or `Stop::Surplus`.
fn admit(
    held: &mut Option<Bytes>,
    surplus: &mut bool,
    remaining: &mut Option<u64>,
    chunk: Bytes,
) -> Result<Option<Bytes>, Stop> {
    let Some(remaining) = remaining else {
        return Ok(Some(chunk));
    };
    match account(held, surplus, remaining, chunk) {
        Accounted::Pass(chunk) => Ok(Some(chunk)),
        Accounted::Held => Ok(None),
        Accounted::Surplus => Err(Stop::Surplus),
    }
}

enum Accounted {
    Pass(Bytes),
    Held,
    Surplus,
}

/// Counts a chunk against the declared length: it passes, completes the
/// length (held back), or overflows it (cut to the length and held back).
fn account(
    held: &mut Option<Bytes>,
    surplus: &mut bool,
    remaining: &mut u64,
    chunk: Bytes,
) -> Accounted {
    if held.is_some() || *remaining == 0 {
        *surplus = true;
        return Accounted::Surplus;
    }
    let len = chunk.len() as u64;
    if len < *remaining {
        *remaining -= len;
        return Accounted::Pass(chunk);
    }
    let fits = usize::try_from(*remaining).unwrap_or(usize::MAX);
    *held = Some(chunk.slice(..fits));
    *remaining = 0;
    if len > fits as u64 {
        *surplus = true;
        return Accounted::Surplus;
    }
    Accounted::Held
}

fn short_body_error(missing: u64) -> BoxError {
    format!("response body ended {missing} bytes short of its Content-Length").into()
}

fn build(prepared: Prepared, body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = prepared.status;
    *response.headers_mut() = prepared.headers;
    if let Some(reason) = prepared.reason {
        response.extensions_mut().insert(reason);
    }
    if prepared.http10 {
        *response.version_mut() = Version::HTTP_10;
    }
    // Stamped as the head goes out, not when start_response was called.
    if !response.headers().contains_key(header::DATE) {
        response
            .headers_mut()
            .insert(header::DATE, head::http_date());
    }
    response
}

/// Werkzeug 1.0.1's `InternalServerError` page, byte for byte.
const INTERNAL_ERROR_PAGE: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n\
<title>500 Internal Server Error</title>\n\
<h1>Internal Server Error</h1>\n\
<p>The server encountered an internal error and was unable to complete your request. \
Either the server is overloaded or there is an error in the application.</p>\n";

/// The 500 answer for an application error before the headers went out.
pub(crate) fn internal_error(config: &Config, is_head: bool) -> Response<ResponseBody> {
    let mut response = own_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/html; charset=utf-8",
        Bytes::from_static(INTERNAL_ERROR_PAGE.as_bytes()),
        config,
        is_head,
    );
    // Werkzeug's status line for it, on HTTP/1: `500 INTERNAL SERVER ERROR`.
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            b"INTERNAL SERVER ERROR",
        ));
    response
}

/// A short plain-text answer the crate gives on its own (404, 413, 503).
pub(crate) fn simple_response(
    status: StatusCode,
    config: &Config,
    is_head: bool,
) -> Response<ResponseBody> {
    let text = status.canonical_reason().unwrap_or("Error");
    let body = Bytes::from(format!("{text}\n"));
    own_response(status, "text/plain; charset=utf-8", body, config, is_head)
}

/// A response of the crate's own, under the same rules as an app's: a
/// `Content-Length`, `Server` and `Date`, and no body bytes for HEAD.
fn own_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    config: &Config,
    is_head: bool,
) -> Response<ResponseBody> {
    let length = body.len();
    let body = if is_head {
        ResponseBody::empty(false)
    } else {
        ResponseBody::full(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    add_server_and_date(headers, config);
    response
}

fn add_server_and_date(headers: &mut http::HeaderMap, config: &Config) {
    if let Some(server) = &config.server {
        headers.insert(header::SERVER, server.clone());
    }
    headers.insert(header::DATE, head::http_date());
}
