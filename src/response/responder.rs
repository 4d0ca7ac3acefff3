//! One request's response, shared by `start_response`, `write` and the app
//! driver: headers go out late, bodies stay within their length, and every
//! failure turns into the right thing on the wire (rules 5 to 11).

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderMap, Response, Version};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::answers::{internal_error, simple_response};
use super::body::{ResponseBody, StreamItem};
use super::head::{self, BodyPlan, Prepared, RequestFacts};
use super::options::{ConnectionPolicy, ResponseOptions};
use super::reply::ReplySlot;
use super::values;
use crate::environ::{BodyFault, FaultHolder, Home, Leftovers};
use crate::error::{self, BoxError, Error, ErrorKind};
use crate::poison;

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
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Error(error) => error::chain(&**error),
            Self::Panic(payload) => format!("panic: {}", error::panic_message(&**payload)),
        }
    }
}

/// Who produced a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChunkFrom {
    /// The `write` callable: the application is still running.
    Write,
    /// The returned iterable: the driver closes it before the response ends.
    Iterable,
    /// The returned iterable's last chunk, known to be last: with no
    /// declared length the whole body then goes out with the head, and no
    /// stream to the connection is needed.
    LastOfIterable,
}

/// What `start_response` left for the head.
enum Head {
    /// Not called yet. Holds the empty map the head will be built in, when
    /// one was kept from an earlier request (see `crate::recycled`).
    NotStarted(Option<HeaderMap>),
    /// Called, and the head passed every rule.
    Set(Prepared),
    /// Called, and refused: the error stands in for the head if a body
    /// starts anyway.
    Invalid(Error),
}

/// A body counted against its declared `Content-Length`.
#[derive(Debug)]
struct Counted {
    declared: u64,
    remaining: u64,
    /// The chunk that completes the declared length, kept back until the
    /// application's next move shows whether surplus follows it.
    held: Option<Bytes>,
    /// The body went past the declared length.
    surplus: bool,
}

impl Counted {
    fn new(declared: u64) -> Self {
        Self {
            declared,
            remaining: declared,
            held: None,
            surplus: false,
        }
    }

    /// Counts a chunk: the chunk to send now, `None` when it is held back
    /// (it completes the length), or `Stop::Surplus` (the part that fits is
    /// held back).
    fn admit(&mut self, chunk: Bytes) -> Result<Option<Bytes>, Stop> {
        if self.held.is_some() || self.remaining == 0 {
            self.surplus = true;
            return Err(Stop::Surplus);
        }
        let len = chunk.len() as u64;
        if len < self.remaining {
            self.remaining -= len;
            return Ok(Some(chunk));
        }
        let fits = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        self.held = Some(chunk.slice(..fits));
        self.remaining = 0;
        if len > fits as u64 {
            self.surplus = true;
            return Err(Stop::Surplus);
        }
        Ok(None)
    }
}

enum Phase {
    /// Nothing sent yet; the response future waits on the reply slot.
    Before {
        head: Head,
        /// A non-empty chunk was produced: the headers count as sent
        /// (PEP 3333), even while their emission waits (a held chunk, or a
        /// body to discard).
        committed: bool,
        /// Once committed with a declared length: its accounting.
        counted: Option<Counted>,
        /// The body's last chunk ([`ChunkFrom::LastOfIterable`]) without a
        /// declared length, kept back until close() has run.
        last: Option<Bytes>,
    },
    /// The head went out; body chunks flow through `tx`.
    Streaming {
        tx: mpsc::Sender<StreamItem>,
        /// `None`: no declared length, the body streams until it ends.
        counted: Option<Counted>,
    },
    /// The head went out and the response has no body.
    Discarding,
    /// The client dropped the response.
    Gone,
    /// The response ended (completely or aborted).
    Done,
}

impl Phase {
    fn surplus(&self) -> bool {
        match self {
            Self::Before { counted, .. } | Self::Streaming { counted, .. } => {
                counted.as_ref().is_some_and(|c| c.surplus)
            }
            _ => false,
        }
    }
}

/// The error that stands in for a missing or invalid `start_response`.
fn missing_start(head: &mut Head) -> Error {
    match std::mem::replace(head, Head::NotStarted(None)) {
        Head::Invalid(error) => error,
        _ => Error::new(
            ErrorKind::StartResponseNotCalled,
            "the application produced a body without calling start_response",
        ),
    }
}

/// The shared state of one response.
pub(crate) struct Responder {
    phase: Mutex<Phase>,
    /// Where the response future waits for the head.
    reply: ReplySlot,
    facts: RequestFacts,
    options: Arc<ResponseOptions>,
    /// What went wrong with the request body, if anything (see [`FaultHolder`]).
    body_fault: BodyFault,
    /// Running on an async worker (inline dispatch): never block.
    inline: AtomicBool,
    /// The request's memory, from an environ dropped on an application
    /// thread, for the response future to free on the async worker.
    leftovers: Mutex<Option<Leftovers>>,
}

impl FaultHolder for Responder {
    fn body_fault(&self) -> &BodyFault {
        &self.body_fault
    }
}

impl Home for Responder {
    fn keep(&self, leftovers: Leftovers) {
        *poison::lock(&self.leftovers) = Some(leftovers);
    }
}

impl Responder {
    /// What an environ left here (see [`Home`]), to be dropped by the caller.
    pub(crate) fn take_leftovers(&self) -> Option<Leftovers> {
        poison::lock(&self.leftovers).take()
    }

    /// `spare_headers`: an empty map to build the response head in.
    pub(crate) fn new(
        facts: RequestFacts,
        options: Arc<ResponseOptions>,
        spare_headers: Option<HeaderMap>,
    ) -> Self {
        Self {
            phase: Mutex::new(Phase::Before {
                head: Head::NotStarted(spare_headers),
                committed: false,
                counted: None,
                last: None,
            }),
            reply: ReplySlot::new(),
            facts,
            options,
            body_fault: BodyFault::default(),
            inline: AtomicBool::new(false),
            leftovers: Mutex::new(None),
        }
    }

    /// Marks the application as running on an async worker (`true`) or on
    /// a pool thread (`false`), where waiting for the client is allowed.
    pub(crate) fn set_inline(&self, inline: bool) {
        self.inline.store(inline, Ordering::Release);
    }

    pub(crate) fn facts(&self) -> RequestFacts {
        self.facts
    }

    pub(crate) fn options(&self) -> &ResponseOptions {
        &self.options
    }

    /// Answers with a response of the crate's own, before the application ran.
    pub(crate) fn answer(&self, response: Response<ResponseBody>) {
        if let Phase::Before { .. } = std::mem::replace(&mut *self.lock(), Phase::Done) {
            let _ = self.reply.send(Outcome::Response(response));
        }
    }

    /// The response future's side of the reply: the outcome once sent,
    /// `None` if the responder ended without one.
    pub(crate) fn poll_reply(&self, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        self.reply.poll(cx)
    }

    /// The response future was dropped: the client is gone. Returns an
    /// outcome sent but not taken, for the caller to drop.
    pub(crate) fn reply_dropped(&self) -> Option<Outcome> {
        self.reply.close()
    }

    fn is_inline(&self) -> bool {
        self.inline.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        // A panic while holding the lock cannot leave the state half-written
        // in a way that matters more than answering the client.
        poison::lock(&self.phase)
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
        let mut phase = self.lock();
        let (mut head, headers_sent) = match &mut *phase {
            Phase::Before {
                head, committed, ..
            } => (Some(head), *committed),
            _ => (None, true),
        };
        let started = head
            .as_ref()
            .is_none_or(|head| !matches!(head, Head::NotStarted(_)));
        match exc_info {
            Some(exc_info) if headers_sent => {
                let message = format!(
                    "start_response called with exc_info after the headers were sent: {}",
                    error::chain(&*exc_info)
                );
                return Err(Error::new(ErrorKind::Reraised, message).with_source(exc_info));
            }
            None if started => {
                let message = "start_response called a second time without exc_info";
                if let (Some(head), false) = (head, headers_sent) {
                    *head = Head::Invalid(Error::new(ErrorKind::HeadersAlreadySet, message));
                }
                return Err(Error::new(ErrorKind::HeadersAlreadySet, message));
            }
            _ => {}
        }
        let spare_headers = match head.as_deref_mut() {
            Some(Head::NotStarted(spare)) => spare.take(),
            _ => None,
        };
        let prepared = head::prepare(
            status,
            headers,
            self.facts,
            &self.options.head,
            spare_headers,
        );
        let Some(head) = head else {
            // Unreachable: outside `Before` the headers count as sent.
            return prepared.map(drop);
        };
        match prepared {
            Ok(prepared) => {
                *head = Head::Set(prepared);
                Ok(())
            }
            Err(err) => {
                *head = Head::Invalid(Error::new(err.kind(), err.to_string()));
                Err(err)
            }
        }
    }

    /// The `write` callable.
    pub(crate) fn write(&self, chunk: Bytes) -> Result<(), Error> {
        match self.send(chunk, ChunkFrom::Write) {
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
    pub(crate) fn send(&self, chunk: Bytes, from: ChunkFrom) -> Result<Sent, Stop> {
        let mut guard = self.lock();
        if chunk.is_empty() {
            return match &*guard {
                Phase::Before { .. } if self.reply.is_closed() => Err(Stop::ClientGone),
                Phase::Streaming { tx, .. } if tx.is_closed() => Err(Stop::ClientGone),
                Phase::Gone => Err(Stop::ClientGone),
                Phase::Done => Err(Stop::Closed),
                Phase::Discarding => Ok(Sent::Discarded),
                Phase::Before { .. } | Phase::Streaming { .. } => Ok(Sent::Accepted),
            };
        }
        match &mut *guard {
            Phase::Gone => Err(Stop::ClientGone),
            Phase::Done => Err(Stop::Closed),
            Phase::Discarding => Ok(Sent::Discarded),
            Phase::Streaming { tx, counted } => {
                let chunk = match counted {
                    Some(counted) => match counted.admit(chunk)? {
                        Some(chunk) => chunk,
                        None => return Ok(Sent::Accepted),
                    },
                    None => chunk,
                };
                let tx = tx.clone();
                drop(guard);
                self.push(&tx, chunk)
            }
            Phase::Before {
                head,
                committed,
                counted,
                last,
                ..
            } => {
                let plan = match head {
                    Head::Set(prepared) => prepared.plan,
                    _ => return Err(Stop::App(missing_start(head))),
                };
                *committed = true;
                match plan {
                    BodyPlan::Suppressed { .. } => {
                        // From the iterable, the head waits for close() (see finish).
                        if from == ChunkFrom::Write {
                            self.emit_without_body(&mut guard);
                        }
                        Ok(Sent::Discarded)
                    }
                    BodyPlan::Stream { content_length } => {
                        let chunk = match content_length {
                            Some(declared) => {
                                let counted = counted.get_or_insert_with(|| Counted::new(declared));
                                match counted.admit(chunk)? {
                                    Some(chunk) => chunk,
                                    None => return Ok(Sent::Accepted),
                                }
                            }
                            None => match (from, last.take()) {
                                (ChunkFrom::LastOfIterable, None) => {
                                    *last = Some(chunk);
                                    return Ok(Sent::Accepted);
                                }
                                (_, Some(held)) => {
                                    // Something came after the last chunk
                                    // (close() calling write): stream both.
                                    self.emit(&mut guard, Some(held), Then::Stream)?;
                                    drop(guard);
                                    return self.send(chunk, from);
                                }
                                (_, None) => chunk,
                            },
                        };
                        self.emit(&mut guard, Some(chunk), Then::Stream)?;
                        Ok(Sent::Accepted)
                    }
                }
            }
        }
    }

    /// The body ended without error.
    pub(crate) fn finish(&self) -> Result<(), Stop> {
        let mut guard = self.lock();
        if guard.surplus() {
            self.overflow(&mut guard);
            return Ok(());
        }
        match &mut *guard {
            Phase::Before {
                head,
                counted,
                last,
                ..
            } => {
                let plan = match head {
                    Head::Set(prepared) => prepared.plan,
                    _ => return Err(Stop::App(missing_start(head))),
                };
                match plan {
                    BodyPlan::Suppressed { .. } => self.emit_without_body(&mut guard),
                    BodyPlan::Stream { content_length } => {
                        let held = counted.as_mut().and_then(|c| c.held.take());
                        match held.or_else(|| last.take()) {
                            Some(held) => self.emit(&mut guard, Some(held), Then::End)?,
                            None => match content_length {
                                Some(declared) if declared > 0 => {
                                    return Err(Stop::App(Error::new(
                                        ErrorKind::InvalidContentLength,
                                        format!(
                                            "the application declared Content-Length {declared} but sent no body"
                                        ),
                                    )))
                                }
                                _ => self.emit(&mut guard, None, Then::End)?,
                            },
                        }
                    }
                }
                Ok(())
            }
            Phase::Streaming { .. } => {
                let Phase::Streaming { tx, counted } = std::mem::replace(&mut *guard, Phase::Done)
                else {
                    return Ok(());
                };
                drop(guard);
                match counted {
                    Some(Counted {
                        held: Some(held), ..
                    }) => {
                        // It completes the declared length; the stream then ends.
                        self.send_last(tx, Ok(held));
                    }
                    Some(Counted { remaining, .. }) if remaining > 0 => {
                        tracing::error!(
                            missing = remaining,
                            "the application's body ended {remaining} bytes short of its Content-Length; \
                             aborting the response"
                        );
                        self.send_last(tx, Err(short_body_error(remaining)));
                    }
                    _ => {}
                }
                Ok(())
            }
            Phase::Discarding => {
                *guard = Phase::Done;
                Ok(())
            }
            Phase::Gone | Phase::Done => Ok(()),
        }
    }

    /// The application failed (error or panic) at some point of the response.
    pub(crate) fn fail(&self, failure: Failure) {
        let mut phase = self.lock();
        let cause = failure.describe();
        match std::mem::replace(&mut *phase, Phase::Done) {
            Phase::Before { .. } => {
                let is_head = self.facts.is_head;
                let server = self.options.head.server.as_ref();
                let outcome = if let Some(status) = self.body_fault.status() {
                    tracing::warn!(
                        cause,
                        status = status.as_u16(),
                        "the request body failed (over the limit, or broken by the client); \
                         answering {status}"
                    );
                    Outcome::Response(simple_response(status, server, is_head))
                } else if self.options.passthrough_errors {
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
                    Outcome::Response(internal_error(server, is_head))
                };
                if self.reply.send(outcome).is_err() {
                    tracing::debug!("the client was gone before the error response");
                }
            }
            Phase::Streaming { tx, .. } => {
                drop(phase);
                tracing::error!(
                    cause,
                    "application error after the response started; aborting the response"
                );
                self.send_last(tx, Err(cause.into()));
            }
            Phase::Gone => {
                *phase = Phase::Gone;
                tracing::error!(cause, "application error after the client disconnected");
            }
            Phase::Discarding | Phase::Done => {
                tracing::error!(cause, "application error after the response was complete");
            }
        }
    }

    /// The body went past its `Content-Length`: send exactly the declared
    /// bytes and end the connection (rule 6).
    fn overflow(&self, guard: &mut MutexGuard<'_, Phase>) {
        match std::mem::replace(&mut **guard, Phase::Done) {
            Phase::Before {
                mut head,
                committed,
                counted,
                ..
            } => {
                let counted = counted.unwrap_or_else(|| Counted::new(0));
                tracing::error!(
                    declared = counted.declared,
                    "the application's body is longer than its Content-Length; \
                     surplus discarded, connection closed"
                );
                if let Head::Set(prepared) = &mut head {
                    prepared.close_connection(self.facts);
                }
                let held = counted.held.unwrap_or_default();
                **guard = Phase::Before {
                    head,
                    committed,
                    counted: None,
                    last: None,
                };
                let _ = self.emit(guard, Some(held), Then::End);
            }
            Phase::Streaming { tx, counted } => {
                let declared = counted.map_or(0, |c| c.declared);
                tracing::error!(
                    declared,
                    "the application's body is longer than its Content-Length; aborting the response"
                );
                self.send_last(
                    tx,
                    Err("response body longer than its Content-Length".into()),
                );
            }
            other => **guard = other,
        }
    }

    /// Sends the head of a response that has no body (HEAD, 204, 304).
    fn emit_without_body(&self, guard: &mut MutexGuard<'_, Phase>) {
        let prepared = match std::mem::replace(&mut **guard, Phase::Discarding) {
            Phase::Before {
                head: Head::Set(prepared),
                ..
            } => prepared,
            Phase::Before { .. } => {
                self.reply.abandon();
                return;
            }
            _ => return,
        };
        let keep_open = matches!(prepared.plan, BodyPlan::Suppressed { keep_length: true });
        let response = build(prepared, ResponseBody::empty(keep_open));
        if self.reply.send(Outcome::Response(response)).is_err() {
            **guard = Phase::Gone;
        }
    }

    /// Sends the head, with `first` as the start of the body.
    fn emit(
        &self,
        guard: &mut MutexGuard<'_, Phase>,
        first: Option<Bytes>,
        then: Then,
    ) -> Result<(), Stop> {
        let Phase::Before {
            mut head, counted, ..
        } = std::mem::replace(&mut **guard, Phase::Done)
        else {
            return Err(Stop::Closed);
        };
        let mut prepared = match head {
            Head::Set(prepared) => prepared,
            _ => {
                self.reply.abandon();
                return Err(Stop::App(missing_start(&mut head)));
            }
        };
        let content_length = match prepared.plan {
            BodyPlan::Stream {
                content_length: None,
            } if then == Then::End
                && self.options.head.connection_policy == ConnectionPolicy::ComputeLength =>
            {
                // The whole body is `first`: nothing went out before it.
                let length = first.as_ref().map_or(0, |first| first.len() as u64);
                prepared
                    .headers
                    .insert(header::CONTENT_LENGTH, values::length_value(length));
                Some(length)
            }
            BodyPlan::Stream { content_length } => content_length,
            BodyPlan::Suppressed { .. } => None,
        };
        let (body, tx) = match then {
            // The whole body is known: no channel to the application thread.
            Then::End => (ResponseBody::once(first, content_length), None),
            Then::Stream => {
                let (tx, rx) = mpsc::channel(self.options.response_buffer);
                if let Some(first) = first {
                    // A new channel has room for one.
                    let _ = tx.try_send(Ok(first));
                }
                (ResponseBody::stream(rx, content_length), Some(tx))
            }
        };
        if self
            .reply
            .send(Outcome::Response(build(prepared, body)))
            .is_err()
        {
            **guard = Phase::Gone;
            return Err(Stop::ClientGone);
        }
        if let Some(tx) = tx {
            **guard = Phase::Streaming { tx, counted };
        }
        Ok(())
    }

    fn push(&self, tx: &mpsc::Sender<StreamItem>, chunk: Bytes) -> Result<Sent, Stop> {
        let sent = if self.is_inline() {
            match tx.try_send(Ok(chunk)) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(Ok(chunk))) => return Err(Stop::WouldBlock(chunk)),
                Err(_) => Err(()),
            }
        } else {
            crate::environ::block_on(crate::environ::send_in_batches(tx, Ok(chunk))).map_err(drop)
        };
        if sent.is_ok() {
            return Ok(Sent::Accepted);
        }
        *self.lock() = Phase::Gone;
        Err(Stop::ClientGone)
    }

    /// Sends a chunk that `send` counted but could not deliver inline
    /// (`Stop::WouldBlock`); the caller is now on a pool thread.
    pub(crate) fn resume(&self, chunk: Bytes) -> Result<Sent, Stop> {
        let tx = match &*self.lock() {
            Phase::Streaming { tx, .. } => tx.clone(),
            Phase::Gone => return Err(Stop::ClientGone),
            _ => return Err(Stop::Closed),
        };
        self.push(&tx, chunk)
    }

    /// Sends the item that ends the body. Inline, a full buffer hands it
    /// to a task, since nothing can follow it.
    fn send_last(&self, tx: mpsc::Sender<StreamItem>, last: StreamItem) {
        if !self.is_inline() {
            let _ = tx.blocking_send(last);
            return;
        }
        if let Err(TrySendError::Full(last)) = tx.try_send(last) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        let _ = tx.send(last).await;
                    });
                }
                Err(_) => tracing::error!("no runtime to finish an inline response on"),
            }
        }
    }
}

/// What follows the chunks sent with the head.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    /// More chunks.
    Stream,
    /// Nothing: the body ends.
    End,
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

#[cfg(test)]
mod tests {
    //! The state machine in-process: each test drives a responder as the
    //! driver and `start_response` would, and reads what hyper would get.

    use http_body_util::BodyExt;

    use super::*;
    use crate::environ::block_on;

    const GET11: RequestFacts = RequestFacts {
        is_head: false,
        version: Version::HTTP_11,
    };

    struct Harness {
        responder: Arc<Responder>,
    }

    fn harness(facts: RequestFacts) -> Harness {
        harness_with(facts, ResponseOptions::default())
    }

    fn harness_with(facts: RequestFacts, options: ResponseOptions) -> Harness {
        let responder = Responder::new(facts, Arc::new(options), None);
        Harness {
            responder: Arc::new(responder),
        }
    }

    /// What the client would see.
    #[derive(Debug)]
    struct Seen {
        status: u16,
        headers: http::HeaderMap,
        body: Vec<u8>,
        /// The body ended in an error (an abort) rather than its end.
        aborted: bool,
    }

    impl Harness {
        fn start(&self, status: &str, headers: &[(&str, &str)]) -> Result<(), Error> {
            self.responder.start(status, headers.iter().copied(), None)
        }

        fn send(&self, chunk: &'static str) -> Result<Sent, Stop> {
            self.responder
                .send(Bytes::from_static(chunk.as_bytes()), ChunkFrom::Iterable)
        }

        /// `true` once the head went out.
        fn head_sent(&self) -> bool {
            self.responder.reply.is_sent()
        }

        /// What the response future receives.
        fn outcome(&self) -> Option<Outcome> {
            block_on(std::future::poll_fn(|cx| self.responder.poll_reply(cx)))
        }

        fn seen(&mut self) -> Seen {
            let outcome = self.outcome().expect("an outcome");
            let Outcome::Response(response) = outcome else {
                panic!("passthrough outcome");
            };
            let (parts, mut body) = response.into_parts();
            let mut bytes = Vec::new();
            let mut aborted = false;
            while let Some(frame) = block_on(body.frame()) {
                match frame {
                    Ok(frame) => bytes.extend_from_slice(&frame.into_data().unwrap_or_default()),
                    Err(_) => {
                        aborted = true;
                        break;
                    }
                }
            }
            Seen {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: bytes,
                aborted,
            }
        }
    }

    /// Runs `f` on a thread of its own, as the application thread would,
    /// so the test thread can read the body that `f` writes.
    fn on_app_thread(responder: &Arc<Responder>, f: impl FnOnce(&Responder) + Send + 'static) {
        let responder = responder.clone();
        std::thread::spawn(move || f(&responder));
    }

    #[test]
    fn exact_length_over_several_chunks_streams_and_ends() {
        let mut h = harness(GET11);
        h.start("200 OK", &[("Content-Length", "6")]).unwrap();
        on_app_thread(&h.responder, |r| {
            for chunk in ["ab", "cd", "ef"] {
                assert_eq!(
                    r.send(Bytes::from_static(chunk.as_bytes()), ChunkFrom::Iterable)
                        .unwrap(),
                    Sent::Accepted
                );
            }
            r.finish().unwrap();
        });
        let seen = h.seen();
        assert_eq!(
            (seen.status, &seen.body[..], seen.aborted),
            (200, &b"abcdef"[..], false)
        );
        assert_eq!(seen.headers["content-length"], "6");
    }

    #[test]
    fn the_chunk_that_completes_the_length_is_held_back_until_the_next_move() {
        let mut h = harness(GET11);
        h.start("200 OK", &[("Content-Length", "2")]).unwrap();
        assert_eq!(h.send("ok").unwrap(), Sent::Accepted);
        assert!(!h.head_sent(), "held: surplus might follow");
        h.responder.finish().unwrap();
        let seen = h.seen();
        assert_eq!(&seen.body[..], b"ok");
        assert!(!seen.headers.contains_key("connection"));
    }

    #[test]
    fn a_last_chunk_without_a_length_waits_for_close_and_goes_out_whole() {
        let mut h = harness(GET11);
        h.start("200 OK", &[]).unwrap();
        let last = h
            .responder
            .send(Bytes::from_static(b"whole"), ChunkFrom::LastOfIterable);
        assert_eq!(last.unwrap(), Sent::Accepted);
        assert!(!h.head_sent(), "held until close() has run");
        h.responder.finish().unwrap();
        let seen = h.seen();
        assert_eq!((&seen.body[..], seen.aborted), (&b"whole"[..], false));
        assert!(!seen.headers.contains_key("content-length"));
    }

    fn computing_lengths() -> ResponseOptions {
        let mut options = ResponseOptions::default();
        options.head.connection_policy = ConnectionPolicy::ComputeLength;
        options
    }

    /// A body of one chunk, `whole`, under `ComputeLength`.
    fn one_chunk(facts: RequestFacts) -> Seen {
        let mut h = harness_with(facts, computing_lengths());
        h.start("200 OK", &[]).unwrap();
        h.responder
            .send(Bytes::from_static(b"whole"), ChunkFrom::LastOfIterable)
            .unwrap();
        h.responder.finish().unwrap();
        h.seen()
    }

    #[test]
    fn compute_length_measures_a_body_of_one_chunk_and_streams_any_other() {
        let seen = one_chunk(GET11);
        assert_eq!(seen.headers["content-length"], "5");
        assert_eq!(&seen.body[..], b"whole");
        assert!(!seen.headers.contains_key("connection"));
        // No chunk at all.
        let mut h = harness_with(GET11, computing_lengths());
        h.start("200 OK", &[]).unwrap();
        h.responder.finish().unwrap();
        assert_eq!(h.seen().headers["content-length"], "0");
        // Chunks not known as the last, and write(): streamed, connection kept.
        for first in [ChunkFrom::Iterable, ChunkFrom::Write] {
            let mut h = harness_with(GET11, computing_lengths());
            h.start("200 OK", &[]).unwrap();
            on_app_thread(&h.responder, move |r| {
                r.send(Bytes::from_static(b"a"), first).unwrap();
                r.send(Bytes::from_static(b"b"), ChunkFrom::LastOfIterable)
                    .unwrap();
                r.finish().unwrap();
            });
            let seen = h.seen();
            assert_eq!((&seen.body[..], seen.aborted), (&b"ab"[..], false));
            assert!(!seen.headers.contains_key("content-length"), "{first:?}");
            assert!(!seen.headers.contains_key("connection"), "{first:?}");
        }
        // HTTP/1.0 has no chunking: the connection still closes.
        let http10 = RequestFacts {
            is_head: false,
            version: Version::HTTP_10,
        };
        let seen = one_chunk(http10);
        assert_eq!(seen.headers["content-length"], "5");
        assert_eq!(seen.headers["connection"], "close");
    }

    #[test]
    fn a_chunk_after_the_last_one_streams_both_in_order() {
        let mut h = harness(GET11);
        h.start("200 OK", &[]).unwrap();
        h.responder
            .send(Bytes::from_static(b"last "), ChunkFrom::LastOfIterable)
            .unwrap();
        on_app_thread(&h.responder, |r| {
            // close() calling write(), say.
            r.send(Bytes::from_static(b"then more"), ChunkFrom::Write)
                .unwrap();
            r.finish().unwrap();
        });
        let seen = h.seen();
        assert_eq!(
            (&seen.body[..], seen.aborted),
            (&b"last then more"[..], false)
        );
    }

    #[test]
    fn headers_wait_for_the_first_non_empty_chunk() {
        let mut h = harness(GET11);
        h.start("200 OK", &[]).unwrap();
        assert_eq!(h.send("").unwrap(), Sent::Accepted);
        assert!(!h.head_sent());
        on_app_thread(&h.responder, |r| {
            r.send(Bytes::from_static(b"x"), ChunkFrom::Iterable)
                .unwrap();
            r.finish().unwrap();
        });
        assert_eq!(&h.seen().body[..], b"x");
    }

    #[test]
    fn exc_info_replaces_the_head_until_it_is_committed() {
        let mut h = harness(GET11);
        h.start("200 OK", &[("X-First", "1")]).unwrap();
        h.responder
            .start("500 Oops", [("X-Second", "2")], Some("boom".into()))
            .unwrap();
        h.responder.finish().unwrap();
        let seen = h.seen();
        assert_eq!(seen.status, 500);
        assert!(seen.headers.contains_key("x-second"));
        assert!(!seen.headers.contains_key("x-first"));
    }

    #[test]
    fn exc_info_after_the_headers_is_raised_again() {
        let h = harness(GET11);
        h.start("200 OK", &[]).unwrap();
        h.send("body").unwrap();
        let err = h
            .responder
            .start("500 Oops", [("a", "b")], Some("boom".into()))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Reraised);
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn a_second_start_response_without_exc_info_is_an_app_error() {
        let mut h = harness(GET11);
        h.start("200 OK", &[]).unwrap();
        let err = h.start("201 Created", &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::HeadersAlreadySet);
        // Swallowed by the app: the body cannot start on the refused head.
        match h.send("x") {
            Err(Stop::App(err)) => assert_eq!(err.kind(), ErrorKind::HeadersAlreadySet),
            other => panic!("{other:?}"),
        }
        h.responder.fail(Failure::Error("from the driver".into()));
        assert_eq!(h.seen().status, 500);
    }

    #[test]
    fn a_body_without_start_response_is_an_app_error() {
        let h = harness(GET11);
        match h.send("x") {
            Err(Stop::App(err)) => assert_eq!(err.kind(), ErrorKind::StartResponseNotCalled),
            other => panic!("{other:?}"),
        }
        match h.responder.finish() {
            Err(Stop::App(err)) => assert_eq!(err.kind(), ErrorKind::StartResponseNotCalled),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn surplus_before_the_head_sends_the_declared_bytes_and_closes() {
        let mut h = harness(GET11);
        h.start("200 OK", &[("Content-Length", "3")]).unwrap();
        assert!(matches!(h.send("abcdef"), Err(Stop::Surplus)));
        h.responder.finish().unwrap();
        let seen = h.seen();
        assert_eq!((&seen.body[..], seen.aborted), (&b"abc"[..], false));
        assert_eq!(seen.headers["connection"], "close");
    }

    #[test]
    fn surplus_while_streaming_aborts_and_logs_the_declared_length() {
        let mut h = harness(GET11);
        h.start("200 OK", &[("Content-Length", "4")]).unwrap();
        h.send("ab").unwrap();
        assert!(matches!(h.send("cdef"), Err(Stop::Surplus)));
        let streaming_declared = match &*h.responder.lock() {
            Phase::Streaming {
                counted: Some(counted),
                ..
            } => counted.declared,
            _ => panic!("expected a streaming phase"),
        };
        // The overflow log reads this: it used to be lost with the head.
        assert_eq!(streaming_declared, 4);
        on_app_thread(&h.responder, |r| r.finish().unwrap());
        let seen = h.seen();
        assert_eq!(&seen.body[..], b"ab");
        assert!(seen.aborted);
    }

    #[test]
    fn a_short_body_aborts_after_the_head_and_is_500_before() {
        let mut h = harness(GET11);
        h.start("200 OK", &[("Content-Length", "5")]).unwrap();
        h.send("ab").unwrap();
        on_app_thread(&h.responder, |r| r.finish().unwrap());
        let seen = h.seen();
        assert_eq!((&seen.body[..], seen.aborted), (&b"ab"[..], true));

        let h = harness(GET11);
        h.start("200 OK", &[("Content-Length", "5")]).unwrap();
        match h.responder.finish() {
            Err(Stop::App(err)) => assert_eq!(err.kind(), ErrorKind::InvalidContentLength),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn suppressed_bodies_are_discarded_and_the_head_waits_for_the_end() {
        for (status, facts) in [
            ("204 No Content", GET11),
            ("304 Not Modified", GET11),
            (
                "200 OK",
                RequestFacts {
                    is_head: true,
                    version: Version::HTTP_11,
                },
            ),
        ] {
            let mut h = harness(facts);
            h.start(status, &[]).unwrap();
            assert_eq!(h.send("ignored").unwrap(), Sent::Discarded, "{status}");
            assert!(
                !h.head_sent(),
                "{status}: the iterable's close() comes first"
            );
            h.responder.finish().unwrap();
            let seen = h.seen();
            assert!(seen.body.is_empty(), "{status}");
        }
    }

    #[test]
    fn failures_are_500_before_the_head_and_an_abort_after() {
        let mut h = harness(GET11);
        h.start("200 OK", &[]).unwrap();
        h.responder.fail(Failure::Error("boom".into()));
        let seen = h.seen();
        assert_eq!(seen.status, 500);
        assert_eq!(
            seen.headers["content-length"],
            seen.body.len().to_string().as_str()
        );

        let mut h = harness(GET11);
        h.start("200 OK", &[]).unwrap();
        h.send("partial").unwrap();
        on_app_thread(&h.responder, |r| r.fail(Failure::Error("boom".into())));
        let seen = h.seen();
        assert_eq!((&seen.body[..], seen.aborted), (&b"partial"[..], true));
    }

    #[test]
    fn a_client_gone_before_the_head_stops_the_body() {
        let h = harness(GET11);
        h.start("200 OK", &[]).unwrap();
        drop(h.responder.reply_dropped());
        assert!(matches!(h.send(""), Err(Stop::ClientGone)));
        assert!(matches!(h.send("x"), Err(Stop::ClientGone)));
        let err = h.responder.write(Bytes::from_static(b"x")).unwrap_err();
        assert!(err.is_client_disconnected());
    }

    #[test]
    fn passthrough_errors_hand_the_failure_to_the_caller() {
        let options = ResponseOptions {
            passthrough_errors: true,
            ..ResponseOptions::default()
        };
        let h = harness_with(GET11, options);
        h.responder.fail(Failure::Error("boom".into()));
        let outcome = h.outcome().unwrap();
        assert!(matches!(outcome, Outcome::Passthrough(_)));
    }

    #[test]
    fn the_crate_answers_on_its_own_before_the_app_ran() {
        let mut h = harness(GET11);
        h.responder
            .answer(simple_response(http::StatusCode::NOT_FOUND, None, false));
        assert_eq!(h.seen().status, 404);
        assert!(matches!(h.send("x"), Err(Stop::Closed)));
    }
}
