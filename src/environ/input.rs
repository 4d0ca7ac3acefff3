//! `wsgi.input`: the request body as a blocking reader.

use std::fmt;
use std::future::Future;
use std::io::{self, BufRead, Read};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use tokio::sync::mpsc;

use crate::error::BoxError;

/// The request body, streamed: WSGI's `wsgi.input`.
///
/// A blocking [`Read`] and [`BufRead`]: `read_all()` (Python's `read()`),
/// [`read_n`](Input::read_n) (`read(n)`), [`readline`](Input::readline),
/// [`BufRead::lines`]. Each read pulls the next frame from hyper, so nothing is
/// buffered beyond one frame, and a client that sent `Expect: 100-continue`
/// gets its `100 Continue` on the first read, and only then.
///
/// At the end of the body reads return 0 bytes (EOF). A body the client cut
/// short, or a broken chunked encoding, is an [`io::Error`]. A body past the
/// configured limit is an [`io::ErrorKind::InvalidData`] error, and the
/// response becomes 413 if the application gives up before its headers went out.
pub struct Input {
    source: Option<BodySource>,
    buffered: Bytes,
}

struct BodySource {
    frames: Frames,
    runtime: Option<tokio::runtime::Handle>,
}

/// Where the body's frames come from.
enum Frames {
    /// Straight from the request body, polled by whoever reads.
    Direct(Direct),
    /// From a task on the runtime that reads ahead (see [`BodySource::next_data`]).
    Pumped {
        rx: mpsc::Receiver<io::Result<Bytes>>,
        /// Bytes still to come, when the body's length is known.
        remaining: Option<u64>,
        /// Frames read, back to the task for their memory to be used again.
        spent: Arc<Spent>,
    },
}

/// Buffers the application thread has read, handed back to the task that
/// filled them, so that memory allocated on the runtime's thread is reused
/// (and freed) there: glibc's malloc makes a free on another thread, and a
/// fresh allocation per frame, costly (trimmed heaps, page faults).
#[derive(Default)]
struct Spent(std::sync::Mutex<Vec<Bytes>>);

impl Spent {
    fn put(&self, buffer: Bytes) {
        let mut spent = crate::poison::lock(&self.0);
        // As many as can be in flight; any more is freed here.
        if spent.len() <= READ_AHEAD_FRAMES {
            spent.push(buffer);
        }
    }

    /// `frame`'s bytes in a buffer of this task's, so that hyper's read
    /// buffer is free for its next read at once (as when the frame is
    /// dropped right away) rather than reallocated while frames wait.
    fn copy(&self, frame: &[u8]) -> Bytes {
        let spare = crate::poison::lock(&self.0).pop();
        // A few sizes only, so that buffers fit the next frames and the
        // allocator sees the same blocks come back.
        let size = frame.len().next_power_of_two().max(64 * 1024);
        let mut buffer = match spare.map(Bytes::try_into_mut) {
            Some(Ok(mut buffer)) => {
                buffer.clear();
                // In place when the buffer is large enough (a read one
                // moved its start), else one larger.
                buffer.reserve(size);
                buffer
            }
            _ => bytes::BytesMut::with_capacity(size),
        };
        buffer.extend_from_slice(frame);
        buffer.freeze()
    }
}

/// The request body, with the limit and fault bookkeeping.
struct Direct {
    body: UnsyncBoxBody<Bytes, BoxError>,
    received: u64,
    limit: Option<u64>,
    fault: Arc<dyn FaultHolder>,
    /// The body said it ended, or failed: nothing is left to drain.
    ended: bool,
    /// Where a body dropped before its end is drained, if it is worth it
    /// (see [`super::drain`]).
    drain_unread: Option<tokio::runtime::Handle>,
}

impl Drop for Direct {
    fn drop(&mut self) {
        let Some(runtime) = self.drain_unread.take() else {
            return;
        };
        if !self.is_end_stream() {
            runtime.spawn(super::drain::drain(std::mem::take(&mut self.body)));
        }
    }
}

/// Bodies longer than this (or of unknown length) are read ahead.
const READ_AHEAD_FROM: u64 = 64 * 1024;

/// Frames read ahead of the application, at most.
const READ_AHEAD_FRAMES: usize = 4;

/// The most a read allocates up front for the body's declared length.
const PREALLOCATE_AT_MOST: usize = 256 * 1024;

/// What went wrong with the request body, so that an application that gives
/// up because of it is answered 413 or 400 rather than 500.
#[derive(Debug, Default)]
pub(crate) struct BodyFault(AtomicU8);

/// What holds a request's [`BodyFault`]: the fault alone, or the response's
/// shared state, so that a request with a body allocates nothing for it.
pub(crate) trait FaultHolder: Send + Sync {
    fn body_fault(&self) -> &BodyFault;
}

impl FaultHolder for BodyFault {
    fn body_fault(&self) -> &BodyFault {
        self
    }
}

impl BodyFault {
    const TOO_LARGE: u8 = 1;
    const BROKEN: u8 = 2;

    /// Records `fault` unless one was recorded already: the first one decides.
    fn set(&self, fault: u8) {
        let _ = self
            .0
            .compare_exchange(0, fault, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The status to answer with, if the body failed.
    pub(crate) fn status(&self) -> Option<http::StatusCode> {
        match self.0.load(Ordering::Acquire) {
            Self::TOO_LARGE => Some(http::StatusCode::PAYLOAD_TOO_LARGE),
            Self::BROKEN => Some(http::StatusCode::BAD_REQUEST),
            _ => None,
        }
    }
}

impl Input {
    /// An input stream over any HTTP body.
    ///
    /// The crate builds one per request; this constructor is for tests and for
    /// middleware that replaces the body.
    pub fn new<B>(body: B) -> Self
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        Self::with_limit(body, None, Arc::new(BodyFault::default()), false)
    }

    /// The input of a request the crate serves: past `limit` bytes a read
    /// fails, and what failed is recorded in `fault`. With `drain_unread`
    /// (see [`super::drain::is_worth_draining`]), a body dropped before its
    /// end is read to it on the runtime, so that its connection is kept.
    pub(crate) fn with_limit<B>(
        body: B,
        limit: Option<u64>,
        fault: Arc<dyn FaultHolder>,
        drain_unread: bool,
    ) -> Self
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let runtime = tokio::runtime::Handle::try_current().ok();
        Self {
            source: Some(BodySource {
                frames: Frames::Direct(Direct {
                    body: boxed_bytes_body(body),
                    received: 0,
                    limit,
                    fault,
                    ended: false,
                    drain_unread: runtime.as_ref().filter(|_| drain_unread).cloned(),
                }),
                runtime,
            }),
            buffered: Bytes::new(),
        }
    }

    /// An input stream holding `data`.
    pub fn from_bytes(data: impl Into<Bytes>) -> Self {
        Self {
            source: None,
            buffered: data.into(),
        }
    }

    /// Reads to the end of the body: Python's `wsgi.input.read()`.
    pub fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.expected_len(None));
        self.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Reads up to `n` bytes, fewer only at the end of the body: `read(n)`.
    pub fn read_n(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.expected_len(Some(n)));
        self.by_ref().take(n as u64).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Reads one line, with its `\n`; empty at the end of the body: `readline()`.
    pub fn readline(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_until(b'\n', &mut out)?;
        Ok(out)
    }

    /// The rest of the stream as an asynchronous [`http_body::Body`]: what is
    /// still buffered, then the frames not yet read, with the same limit and
    /// errors as the blocking reads.
    ///
    /// The request body of the original request goes on without being copied
    /// or moved to another thread; an input made by [`Input::from_bytes`]
    /// becomes a body of exactly that length.
    ///
    /// ```
    /// use http_body::Body as _;
    /// use std::io::BufRead;
    ///
    /// let mut input = tower_wsgi::environ::Input::from_bytes("first\nrest");
    /// assert_eq!(input.readline().unwrap(), b"first\n");
    /// let body = input.into_body();
    /// assert_eq!(body.size_hint().exact(), Some(4));
    /// ```
    pub fn into_body(self) -> InputBody {
        InputBody { input: self }
    }

    /// How much a read of up to `n` bytes (`None`: to the end) is likely to
    /// return, for its buffer: growing one from empty costs a copy at every
    /// doubling. The declared length is the client's word, so it counts only
    /// up to [`PREALLOCATE_AT_MOST`]; an unknown one, as the frame at hand.
    fn expected_len(&self, n: Option<usize>) -> usize {
        let rest = match &self.source {
            None => Some(0),
            Some(source) => source.size_hint().upper(),
        };
        let expected = match rest.and_then(|rest| usize::try_from(rest).ok()) {
            Some(rest) => rest.saturating_add(self.buffered.len()),
            None => n.unwrap_or(self.buffered.len()),
        };
        n.map_or(expected, |n| expected.min(n))
            .min(PREALLOCATE_AT_MOST)
    }

    /// The length of what a read of up to `n` bytes (`None`: to the end)
    /// returns, when the bytes already buffered answer it whole: an
    /// application thread then need not let go of anything to wait.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) fn ready_len(&self, n: Option<usize>) -> Option<usize> {
        match n {
            Some(n) if n <= self.buffered.len() => Some(n),
            _ if self.ends_with_buffered() => Some(self.buffered.len()),
            _ => None,
        }
    }

    /// The same for a line of at most `size` bytes (`None`: any length).
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) fn ready_line_len(&self, size: Option<usize>) -> Option<usize> {
        let window = &self.buffered
            [..size.map_or(self.buffered.len(), |size| size.min(self.buffered.len()))];
        match window.iter().position(|&byte| byte == b'\n') {
            Some(newline) => Some(newline + 1),
            None if size.is_some_and(|size| size <= self.buffered.len()) => Some(window.len()),
            None if self.ends_with_buffered() => Some(self.buffered.len()),
            None => None,
        }
    }

    /// The bytes read from the body and not yet consumed.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buffered
    }

    /// Whether nothing of the body is left beyond what is buffered: a body
    /// of known length says so once all of it was read, with no poll for
    /// its end.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    fn ends_with_buffered(&self) -> bool {
        self.source.as_ref().is_none_or(BodySource::is_end_stream)
    }

    fn fill(&mut self) -> io::Result<()> {
        while self.buffered.is_empty() {
            let Some(source) = self.source.as_mut() else {
                return Ok(());
            };
            match source.next_data()? {
                Some(data) => {
                    let read = std::mem::replace(&mut self.buffered, data);
                    if let Frames::Pumped { spent, .. } = &source.frames {
                        spent.put(read);
                    }
                }
                None => {
                    self.source = None;
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

impl BodySource {
    /// The next data frame, for a blocking read on an application thread.
    ///
    /// A long body is read ahead by a task on the runtime, a few frames at
    /// most: each frame then costs the connection no round trip to this
    /// thread, as it does when read one at a time. The task starts with the
    /// first read, so `100 Continue` still waits for the application.
    fn next_data(&mut self) -> io::Result<Option<Bytes>> {
        self.read_ahead();
        let runtime = self.runtime.clone();
        let _context = runtime.as_ref().map(|rt| rt.enter());
        block_on(std::future::poll_fn(|cx| self.poll_data(cx))).transpose()
    }

    fn read_ahead(&mut self) {
        let (Frames::Direct(direct), Some(runtime)) = (&self.frames, &self.runtime) else {
            return;
        };
        let length = direct.body.size_hint().exact();
        if length.is_some_and(|length| length <= READ_AHEAD_FROM) {
            return;
        }
        let (tx, rx) = mpsc::channel(READ_AHEAD_FRAMES);
        let spent = Arc::new(Spent::default());
        let pumped = Frames::Pumped {
            rx,
            remaining: length,
            spent: spent.clone(),
        };
        let Frames::Direct(mut direct) = std::mem::replace(&mut self.frames, pumped) else {
            return;
        };
        runtime.spawn(async move {
            while let Some(item) = std::future::poll_fn(|cx| direct.poll_data(cx)).await {
                let failed = item.is_err();
                let item = item.map(|frame| spent.copy(&frame));
                // The application dropped its input: stop reading.
                if send_in_batches(&tx, item).await.is_err() || failed {
                    break;
                }
            }
        });
    }

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        match &mut self.frames {
            Frames::Direct(direct) => direct.poll_data(cx),
            Frames::Pumped { rx, remaining, .. } => {
                let item = ready!(rx.poll_recv(cx));
                if let (Some(Ok(data)), Some(remaining)) = (&item, remaining) {
                    *remaining = remaining.saturating_sub(data.len() as u64);
                }
                Poll::Ready(item)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.frames {
            Frames::Direct(direct) => direct.is_end_stream(),
            Frames::Pumped { remaining, .. } => *remaining == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.frames {
            Frames::Direct(direct) => direct.body.size_hint(),
            Frames::Pumped {
                remaining: Some(remaining),
                ..
            } => SizeHint::with_exact(*remaining),
            Frames::Pumped {
                remaining: None, ..
            } => SizeHint::default(),
        }
    }
}

impl Direct {
    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    /// The next non-empty data frame, with the limit and fault bookkeeping
    /// shared by the blocking reader and [`InputBody`].
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if let Some(limit) = self.limit.filter(|&limit| self.received > limit) {
            // Past the limit nothing more of the body is read.
            return Poll::Ready(Some(Err(over_limit(limit))));
        }
        loop {
            let polled = ready!(Pin::new(&mut self.body).poll_frame(cx));
            if matches!(polled, None | Some(Err(_))) {
                self.ended = true;
            }
            match polled {
                None => return Poll::Ready(None),
                Some(Err(error)) => {
                    if is_length_limit(&*error) {
                        // A limit set by a layer in front (tower-http's
                        // `RequestBodyLimitLayer`, axum's `DefaultBodyLimit`).
                        self.fault.body_fault().set(BodyFault::TOO_LARGE);
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            error,
                        ))));
                    }
                    self.fault.body_fault().set(BodyFault::BROKEN);
                    return Poll::Ready(Some(Err(body_error(error))));
                }
                Some(Ok(frame)) => {
                    // Trailers carry no body bytes; WSGI has no place for them.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    self.received += data.len() as u64;
                    if let Some(limit) = self.limit {
                        if self.received > limit {
                            self.fault.body_fault().set(BodyFault::TOO_LARGE);
                            return Poll::Ready(Some(Err(over_limit(limit))));
                        }
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
            }
        }
    }
}

/// `body` with `Bytes` data and boxed errors, its size hint and end kept
/// (`BodyExt::map_frame` would lose them).
pub(crate) fn boxed_bytes_body<B>(body: B) -> UnsyncBoxBody<Bytes, BoxError>
where
    B: HttpBody + Send + 'static,
    B::Error: Into<BoxError>,
{
    UnsyncBoxBody::new(IntoBytes { body })
}

pin_project_lite::pin_project! {
    struct IntoBytes<B> {
        #[pin]
        body: B,
    }
}

impl<B> HttpBody for IntoBytes<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = ready!(self.project().body.poll_frame(cx));
        Poll::Ready(frame.map(|frame| {
            frame
                .map(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
                .map_err(Into::into)
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn over_limit(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("request body exceeds the limit of {limit} bytes"),
    )
}

/// Turns a body error into the `io::Error` it wraps, keeping its kind
/// (hyper reports a truncated body as `UnexpectedEof`).
/// Whether `error` is, or is caused by, `http_body_util::Limited` refusing
/// more of the body.
fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(err) = cause {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = err.source();
    }
    false
}

fn body_error(error: BoxError) -> io::Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*error);
    let mut kind = io::ErrorKind::Other;
    while let Some(err) = cause {
        if let Some(io_error) = err.downcast_ref::<io::Error>() {
            kind = io_error.kind();
            break;
        }
        cause = err.source();
    }
    io::Error::new(kind, error)
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.fill()?;
        Ok(&self.buffered)
    }

    fn consume(&mut self, amt: usize) {
        self.buffered.advance(amt.min(self.buffered.len()));
        let recycled = |source: &BodySource| matches!(source.frames, Frames::Pumped { .. });
        if self.buffered.is_empty() && !self.source.as_ref().is_some_and(recycled) {
            // A frame read to its end is let go at once: it may share
            // hyper's read buffer, which a long response (a stream, a big
            // file) would otherwise keep alive, and whose last reference
            // then goes with the request's head, on the async worker.
            self.buffered = Bytes::new();
        }
    }
}

impl Default for Input {
    fn default() -> Self {
        Self::from_bytes(Bytes::new())
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("buffered", &self.buffered.len())
            .field(
                "at_eof",
                &(self.source.is_none() && self.buffered.is_empty()),
            )
            .finish()
    }
}

/// [`Input`] as an asynchronous [`http_body::Body`], made by [`Input::into_body`].
///
/// Errors are the [`io::Error`]s the blocking reads return, boxed. Trailers of
/// the original body are not passed on (`wsgi.input` has no place for them).
pub struct InputBody {
    input: Input,
}

impl HttpBody for InputBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let input = &mut self.get_mut().input;
        if !input.buffered.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut input.buffered)))));
        }
        let Some(source) = input.source.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(source.poll_data(cx)) {
            Some(Ok(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Some(Err(error)) => Poll::Ready(Some(Err(error.into()))),
            None => {
                input.source = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.input.buffered.is_empty()
            && self
                .input
                .source
                .as_ref()
                .is_none_or(BodySource::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let buffered = self.input.buffered.len() as u64;
        match &self.input.source {
            None => SizeHint::with_exact(buffered),
            Some(source) => {
                let rest = source.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(buffered));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(buffered));
                }
                hint
            }
        }
    }
}

impl fmt::Debug for InputBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputBody")
            .field("input", &self.input)
            .finish()
    }
}

struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        // Costs a system call only when the thread is parked.
        self.thread.unpark();
    }
}

/// Sends `item` on `tx`; a full channel waits until half of it is free
/// again, not one slot: the other side then takes several items per wake-up
/// of this one, where a wait for one slot costs a wake-up per item.
pub(crate) async fn send_in_batches<T>(tx: &mpsc::Sender<T>, mut item: T) -> Result<(), T> {
    loop {
        match tx.try_send(item) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(back)) => return Err(back),
            Err(mpsc::error::TrySendError::Full(back)) => {
                item = back;
                let half = (tx.max_capacity() / 2).max(1);
                // The permits go back at once: they only mark the moment.
                if tx.reserve_many(half).await.is_err() {
                    return Err(item);
                }
            }
        }
    }
}

/// How long a blocked read watches for its wake-up before the thread parks.
const WAKE_SPIN: Duration = Duration::from_micros(50);

/// Drives a future to completion on the current (application) thread.
///
/// The application threads are not runtime workers, so parking them is fine;
/// the runtime's own threads drive the I/O that wakes us. The next frame of
/// a streaming upload usually comes within microseconds, so the thread
/// watches for it a moment before it parks.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Arc::new(ThreadWaker {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let woken = waker.clone();
    let waker = Waker::from(waker);
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let started = Instant::now();
        while !woken.woken.swap(false, Ordering::AcqRel) {
            if started.elapsed() > WAKE_SPIN {
                thread::park();
                woken.woken.store(false, Ordering::Release);
                break;
            }
            thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::collections::VecDeque;

    #[test]
    fn read_buffers_come_back_to_be_filled_again() {
        let spent = Spent::default();
        let mut first = spent.copy(b"hello");
        let memory = first.as_ptr();
        first.advance(5); // read by the application
        spent.put(first);
        let second = spent.copy(b"world");
        assert_eq!(second.as_ptr(), memory, "the same memory, filled again");
        assert_eq!(&second[..], b"world");
        // A buffer still shared elsewhere is left alone.
        let kept = second.clone();
        spent.put(second);
        let third = spent.copy(b"other");
        assert_ne!(third.as_ptr(), kept.as_ptr());
        assert_eq!((&kept[..], &third[..]), (&b"world"[..], &b"other"[..]));
    }

    #[test]
    fn a_full_channel_takes_more_once_half_of_it_is_free() {
        let (tx, mut rx) = mpsc::channel(4);
        for i in 0..4 {
            tx.try_send(i).unwrap();
        }
        let mut send = pin!(send_in_batches(&tx, 4));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(send.as_mut().poll(&mut cx).is_pending());
        rx.try_recv().unwrap();
        assert!(
            send.as_mut().poll(&mut cx).is_pending(),
            "one free slot of four wakes nobody"
        );
        rx.try_recv().unwrap();
        assert!(send.as_mut().poll(&mut cx).is_ready());
        // The permits that marked the moment went back.
        assert_eq!(tx.capacity(), 1);
        drop(rx);
        assert!(block_on(send_in_batches(&tx, 5)).is_err());
    }

    /// A body of `left` one-byte frames, its length known (so it is read
    /// directly, not ahead), that never says it ended (as a body of a length
    /// it does not track may not), counting the frames taken and the polls
    /// after its end.
    struct Counted {
        left: usize,
        taken: Arc<std::sync::atomic::AtomicUsize>,
        polled_after_end: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Counted {
        fn new(left: usize) -> Self {
            Self {
                left,
                taken: Arc::default(),
                polled_after_end: Arc::default(),
            }
        }
    }

    impl HttpBody for Counted {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if self.left == 0 {
                self.polled_after_end.fetch_add(1, Ordering::SeqCst);
                return Poll::Ready(None);
            }
            self.left -= 1;
            self.taken.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.left as u64)
        }
    }

    /// Waits up to a second for `done`, on `runtime`'s own threads.
    fn wait_for(runtime: &tokio::runtime::Runtime, done: impl Fn() -> bool) {
        runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(1);
            while !done() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap()
    }

    fn input_on(runtime: &tokio::runtime::Runtime, body: Counted, drain_unread: bool) -> Input {
        let _entered = runtime.enter();
        Input::with_limit(body, None, Arc::new(BodyFault::default()), drain_unread)
    }

    #[test]
    fn an_input_dropped_unread_drains_its_body_only_when_asked_to() {
        let runtime = runtime();
        for (drain_unread, drained) in [(true, 5), (false, 0)] {
            let body = Counted::new(5);
            let taken = body.taken.clone();
            drop(input_on(&runtime, body, drain_unread));
            wait_for(&runtime, || taken.load(Ordering::SeqCst) == 5);
            assert_eq!(
                taken.load(Ordering::SeqCst),
                drained,
                "drain_unread: {drain_unread}"
            );
        }
    }

    #[test]
    fn an_input_partly_read_drains_the_rest_and_one_read_to_its_end_drains_nothing() {
        let runtime = runtime();
        let body = Counted::new(5);
        let taken = body.taken.clone();
        let mut input = input_on(&runtime, body, true);
        assert_eq!(input.read_n(2).unwrap(), b"xx");
        drop(input);
        wait_for(&runtime, || taken.load(Ordering::SeqCst) == 5);
        assert_eq!(taken.load(Ordering::SeqCst), 5);

        // The body never says it ended: only the end it returned tells that
        // nothing is left.
        let body = Counted::new(3);
        let polled_after_end = body.polled_after_end.clone();
        let mut input = input_on(&runtime, body, true);
        assert_eq!(input.read_all().unwrap(), b"xxx");
        assert_eq!(polled_after_end.load(Ordering::SeqCst), 1);
        drop(input);
        wait_for(&runtime, || polled_after_end.load(Ordering::SeqCst) > 1);
        assert_eq!(polled_after_end.load(Ordering::SeqCst), 1, "drained again");
    }

    /// A body that yields one frame per part, under a declared length if any.
    struct Parts(VecDeque<&'static str>, Option<u64>);

    impl HttpBody for Parts {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(
                self.0
                    .pop_front()
                    .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes())))),
            )
        }

        fn size_hint(&self) -> SizeHint {
            self.1.map_or_else(SizeHint::default, SizeHint::with_exact)
        }
    }

    fn chunked(parts: &[&'static str]) -> Input {
        Input::new(Parts(parts.iter().copied().collect(), None))
    }

    #[test]
    fn reads_lines_across_frames() {
        let mut input = chunked(&["first li", "ne\nsecond\n", "tail"]);
        assert_eq!(input.readline().unwrap(), b"first line\n");
        assert_eq!(input.readline().unwrap(), b"second\n");
        assert_eq!(input.read_all().unwrap(), b"tail");
        assert_eq!(input.readline().unwrap(), b"");
    }

    #[test]
    fn reads_that_the_buffered_frame_answers_whole_need_no_wait() {
        // Of unknown length: only what the frame at hand holds.
        let mut input = chunked(&["ab\ncd", "ef\n"]);
        assert_eq!(input.ready_len(Some(1)), None, "nothing read yet");
        input.fill_buf().unwrap();
        assert_eq!(input.ready_len(Some(5)), Some(5));
        assert_eq!(input.ready_len(Some(6)), None, "the rest may be longer");
        assert_eq!(input.ready_len(None), None);
        assert_eq!(input.ready_line_len(None), Some(3));
        assert_eq!(input.ready_line_len(Some(2)), Some(2));
        input.consume(3);
        assert_eq!(input.ready_line_len(None), None, "the line may go on");
        assert_eq!(input.ready_line_len(Some(2)), Some(2));
        assert_eq!(input.ready_line_len(Some(3)), None);
        assert_eq!(input.readline().unwrap(), b"cdef\n");
        // Of known length, all of it read: the frame at hand is the rest.
        let mut input = Input::new(Full::new(Bytes::from_static(b"abc")));
        assert_eq!(input.ready_len(None), None, "nothing read yet");
        input.fill_buf().unwrap();
        assert_eq!(input.ready_len(None), Some(3));
        assert_eq!(input.ready_len(Some(10)), Some(3));
        assert_eq!(input.ready_line_len(None), Some(3));
        input.consume(3);
        assert_eq!(input.ready_len(Some(1)), Some(0), "the end, without a poll");
        assert_eq!(Input::from_bytes("x").ready_len(None), Some(1));
    }

    #[test]
    fn a_frame_read_to_its_end_is_let_go_at_once() {
        // Its memory may be hyper's read buffer, not to be kept for as long
        // as the request's environ lives.
        let frame = Bytes::from(vec![7; 100]);
        let mut input = Input::new(Full::new(frame.clone()));
        assert_eq!(input.read_n(60).unwrap().len(), 60);
        let frame = frame.try_into_mut().expect_err("a part is still unread");
        assert_eq!(input.read_all().unwrap().len(), 40);
        assert!(
            frame.try_into_mut().is_ok(),
            "the input still holds the frame"
        );
        let kept = Bytes::from(vec![7; 10]);
        let mut input = Input::from_bytes(kept.clone());
        assert_eq!(input.readline().unwrap().len(), 10);
        assert!(kept.try_into_mut().is_ok());
    }

    #[test]
    fn reads_allocate_what_the_declared_length_leaves_at_most() {
        let mut input = Input::new(Full::new(Bytes::from(vec![7; 3000])));
        let first = input.read_n(1000).unwrap();
        assert_eq!((first.len(), first.capacity()), (1000, 1000));
        let rest = input.read_all().unwrap();
        assert_eq!((rest.len(), rest.capacity()), (2000, 2000));
        // A length the client declares but may never send counts only so far.
        let mut input = Input::new(Parts(["short"].into(), Some(1 << 30)));
        let read = input.read_all().unwrap();
        assert_eq!(
            (&read[..], read.capacity()),
            (&b"short"[..], PREALLOCATE_AT_MOST)
        );
        // An unknown length: the frame at hand.
        let mut input = chunked(&["12345", "678"]);
        input.fill_buf().unwrap();
        let read = input.read_all().unwrap();
        assert_eq!(read, b"12345678");
    }

    #[test]
    fn read_n_stops_at_n_and_at_eof() {
        let mut input = Input::new(Full::new(Bytes::from_static(b"abcdef")));
        assert_eq!(input.read_n(4).unwrap(), b"abcd");
        assert_eq!(input.read_n(4).unwrap(), b"ef");
        assert_eq!(input.read_n(4).unwrap(), b"");
    }

    #[test]
    fn limit_is_an_invalid_data_error_and_flagged() {
        let flag = Arc::new(BodyFault::default());
        let mut input = Input::with_limit(
            Full::new(Bytes::from_static(b"0123456789")),
            Some(4),
            flag.clone(),
            false,
        );
        let err = input.read_all().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(flag.status(), Some(http::StatusCode::PAYLOAD_TOO_LARGE));
        // The limit is final, and a later fault does not change the verdict.
        assert_eq!(
            input.read_all().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        flag.set(BodyFault::BROKEN);
        assert_eq!(flag.status(), Some(http::StatusCode::PAYLOAD_TOO_LARGE));
    }
}
