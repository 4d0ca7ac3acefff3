//! The application's response body: an iterable of byte chunks with `close()`.

use std::fmt;

use std::io::{self, Read, Seek};

use bytes::{Bytes, BytesMut};

use crate::error::BoxError;

/// An iterable response body with a `close()` step, like a WSGI app iterable.
///
/// Implement this when a body holds resources (a file, a cursor, a lock) that
/// must be released when the response ends. The crate calls [`close`] exactly
/// once for every body an application returns: after the last chunk, after an
/// error, after a panic, when the client disconnects, and when the body is
/// never iterated at all (HEAD, 204, 304).
///
/// [`close`]: Iterable::close
pub trait Iterable: Send + 'static {
    /// The next chunk, an error, or `None` at the end.
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>>;

    /// Releases the body's resources. Called exactly once.
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The body an [`App`](crate::App) returns: chunks of bytes, then `close()`.
///
/// Build one from a single chunk (`"hello".into()`), from an iterator of chunks
/// ([`AppBody::from_chunks`]), from an iterator of results ([`AppBody::from_results`]),
/// or from your own [`Iterable`]. [`AppBody::on_close`] attaches a close hook.
///
/// An `AppBody` is closed exactly once: by [`AppBody::close`], or when it is dropped.
///
/// ```
/// use tower_wsgi::AppBody;
///
/// let body = AppBody::from_chunks(["hello, ", "world"]).on_close(|| {
///     println!("released");
///     Ok(())
/// });
/// let chunks: Vec<_> = body.map(|c| c.unwrap()).collect();
/// assert_eq!(chunks, ["hello, ", "world"]);
/// ```
pub struct AppBody {
    inner: Option<Box<dyn Iterable>>,
    /// The length of what the body yields, when known as it is built.
    len: Option<u64>,
}

impl AppBody {
    /// The block size of [`AppBody::from_reader`] and [`AppBody::from_file`]: 128 KiB.
    ///
    /// Measured streaming a 200 MiB file through [`Server`](crate::server::Server)
    /// to a local client (two runs, 11 rounds each alternating the sizes,
    /// medians in GiB/s): 8 KiB blocks 0.67 and 0.83, 64 KiB 2.18 and 2.07,
    /// 128 KiB 2.81 and 2.70, 256 KiB 2.12 and 1.96, 1 MiB 2.07 and 1.45.
    /// A third run on a heavily loaded machine ranked them the same (128 KiB
    /// first). `examples/file_blocks.rs` repeats the measurement.
    pub const DEFAULT_BLOCK_SIZE: usize = 128 * 1024;

    /// Wraps an [`Iterable`].
    pub fn new(iterable: impl Iterable) -> Self {
        Self {
            inner: Some(Box::new(iterable)),
            len: None,
        }
    }

    /// A body that reads `reader` in blocks of [`AppBody::DEFAULT_BLOCK_SIZE`]: a
    /// file, a pipe, a decompressor, anything [`Read`].
    ///
    /// Each chunk is what one `read` returned (at most a block); a read
    /// error fails the response. `close()` drops the reader, once, which
    /// closes a file. [`AppBody::from_file`] is the `wsgi.file_wrapper` of the
    /// crate; [`AppBody::from_reader_with_block_size`] sets the block size.
    ///
    /// ```
    /// use tower_wsgi::AppBody;
    ///
    /// let reader = std::io::Cursor::new(vec![b'x'; 10]);
    /// let chunks: Vec<_> = AppBody::from_reader_with_block_size(reader, 4).map(|c| c.unwrap().len()).collect();
    /// assert_eq!(chunks, [4, 4, 2]);
    /// ```
    pub fn from_reader<R: Read + Send + 'static>(reader: R) -> Self {
        Self::new(Reader::new(reader, None, Self::DEFAULT_BLOCK_SIZE))
    }

    /// Python's `wsgi.file_wrapper(file)`: a body that streams `file` from
    /// its current position to its end, knowing its length.
    ///
    /// [`content_length`](AppBody::content_length) gives that length, to send
    /// as `Content-Length`; blocks are no larger than what is left of the
    /// file, so a small file costs one small read. The file is closed when
    /// the body is.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use std::io::Write;
    /// use tower_wsgi::AppBody;
    ///
    /// let path = std::env::temp_dir().join("tower-wsgi-from-file-doc.txt");
    /// std::fs::File::create(&path)?.write_all(b"0123456789")?;
    /// let body = AppBody::from_file(std::fs::File::open(&path)?)?;
    /// assert_eq!(body.content_length(), Some(10));
    /// let bytes: Vec<u8> = body.flat_map(|chunk| chunk.unwrap()).collect();
    /// assert_eq!(bytes, b"0123456789");
    /// # std::fs::remove_file(&path)
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// If the file's length or position cannot be read.
    pub fn from_file(file: std::fs::File) -> io::Result<Self> {
        Self::from_file_with_block_size(file, Self::DEFAULT_BLOCK_SIZE)
    }

    /// [`AppBody::from_reader`] with blocks of `block_size` bytes (at least 1).
    ///
    /// Larger blocks mean fewer chunks, hence fewer hand-offs to the
    /// connection, and more memory per response in flight.
    pub fn from_reader_with_block_size<R: Read + Send + 'static>(
        reader: R,
        block_size: usize,
    ) -> Self {
        Self::new(Reader::new(reader, None, block_size))
    }

    /// [`AppBody::from_file`] with blocks of `block_size` bytes (at least 1),
    /// like Python's `wsgi.file_wrapper(file, blksize)`.
    ///
    /// # Errors
    ///
    /// If the file's length or position cannot be read.
    pub fn from_file_with_block_size(
        mut file: std::fs::File,
        block_size: usize,
    ) -> io::Result<Self> {
        let len = file.metadata()?.len();
        let position = file.stream_position()?;
        let remaining = len.saturating_sub(position);
        let mut body = Self::new(Reader::new(file, Some(remaining), block_size));
        body.len = Some(remaining);
        Ok(body)
    }

    /// The number of bytes the body yields, when known as it was built: a
    /// file's remaining length ([`AppBody::from_file`]), a single chunk's
    /// length (`"text".into()`); `None` otherwise. It is not updated as the
    /// body is read.
    pub fn content_length(&self) -> Option<u64> {
        self.len
    }

    /// A body with no chunks (what a WSGI app returns after using `write`).
    pub fn empty() -> Self {
        Self::from_chunks(std::iter::empty::<Bytes>())
    }

    /// A body that yields each item of `chunks`.
    pub fn from_chunks<I>(chunks: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
        I::IntoIter: Send + 'static,
    {
        Self::new(Chunks(chunks.into_iter()))
    }

    /// Chunks all in memory already (a hosted app's list of bytes): the body
    /// knows its length, so the last chunk is known as last.
    #[cfg_attr(not(feature = "python"), allow(dead_code))]
    pub(crate) fn from_whole(chunks: Vec<Bytes>) -> Self {
        let len = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        let mut body = Self::from_chunks(chunks);
        body.len = Some(len);
        body
    }

    /// A body that yields each item of `results`; an `Err` fails the response.
    pub fn from_results<I, T, E>(results: I) -> Self
    where
        I: IntoIterator<Item = Result<T, E>>,
        I::IntoIter: Send + 'static,
        T: Into<Bytes>,
        E: Into<BoxError>,
    {
        Self::new(Results(results.into_iter()))
    }

    /// A one-chunk body of a native string's bytes: Python's
    /// `[text.encode("latin-1")]`, which raises (here: fails) if a char is
    /// past U+00FF.
    ///
    /// ```
    /// use tower_wsgi::AppBody;
    ///
    /// // PATH_INFO of /caf%C3%A9 is "/caf\u{c3}\u{a9}": the client's bytes back.
    /// let body = AppBody::from_latin1("/caf\u{c3}\u{a9}").unwrap();
    /// assert_eq!(body.map(Result::unwrap).collect::<Vec<_>>(), [&b"/caf\xc3\xa9"[..]]);
    /// assert!(AppBody::from_latin1("\u{2603}").is_err());
    /// ```
    pub fn from_latin1(text: &str) -> Result<Self, BoxError> {
        let bytes = crate::latin1::encode(text).ok_or_else(|| {
            BoxError::from("a latin-1 body holds a char past U+00FF (not a native string)")
        })?;
        Ok(Self::from(Bytes::from(bytes.into_owned())))
    }

    /// Runs `hook` when the body is closed, after the inner body's own `close`.
    ///
    /// The hook runs exactly once, even if the inner `close` fails.
    #[must_use]
    pub fn on_close<F>(self, hook: F) -> Self
    where
        F: FnOnce() -> Result<(), BoxError> + Send + 'static,
    {
        Self::new(OnClose {
            body: self,
            hook: Some(hook),
        })
    }

    /// Closes the body now and reports whether its `close` succeeded.
    ///
    /// Later calls, and the drop, do nothing.
    pub fn close(&mut self) -> Result<(), BoxError> {
        match self.inner.take() {
            Some(mut inner) => inner.close(),
            None => Ok(()),
        }
    }

    /// `true` once the body has been closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_none()
    }
}

impl Iterator for AppBody {
    type Item = Result<Bytes, BoxError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.as_mut()?.next_chunk()
    }
}

impl Drop for AppBody {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(
                error = crate::error::chain(&*error),
                "response body close() failed"
            );
        }
    }
}

impl fmt::Debug for AppBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBody")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Default for AppBody {
    fn default() -> Self {
        Self::empty()
    }
}

macro_rules! single_chunk_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for AppBody {
            fn from(chunk: $ty) -> Self {
                let chunk = Bytes::from(chunk);
                let len = chunk.len() as u64;
                let mut body = Self::from_chunks(std::iter::once(chunk));
                body.len = Some(len);
                body
            }
        }
    )*};
}

single_chunk_from!(Bytes, String, &'static str, &'static [u8]);

/// What a `Vec` converts to a [`AppBody`] from: bytes (`Vec<u8>` is one
/// chunk) or chunks (`vec!["a", "b"]` is two, like Python's
/// `return [b"a", b"b"]`).
///
/// ```
/// use tower_wsgi::AppBody;
///
/// let one: AppBody = b"abc".to_vec().into();
/// assert_eq!(one.content_length(), Some(3));
/// let two: AppBody = vec!["Hello, ", "world"].into();
/// assert_eq!(two.map(|c| c.unwrap()).collect::<Vec<_>>(), ["Hello, ", "world"]);
/// ```
///
/// Other element types need [`AppBody::from_chunks`] (for chunks made by an
/// iterator) or a conversion of their own:
///
/// ```compile_fail,E0277
/// let body: tower_wsgi::Body = vec![1_u32, 2].into();
/// ```
#[diagnostic::on_unimplemented(
    message = "a `Vec<{Self}>` does not convert to a `AppBody`",
    label = "`AppBody::from` takes a `Vec` of bytes or of chunks",
    note = "a `Vec` of `Bytes`, `String`, `Vec<u8>`, `&'static str` or `&'static [u8]` is a body of those chunks; `Vec<u8>` is one chunk",
    note = "for any other iterator of chunks use `AppBody::from_chunks(iter)`, or `AppBody::from_results(iter)` for fallible ones"
)]
pub trait VecInto: Sized {
    /// The body made of `vec`.
    fn vec_into_body(vec: Vec<Self>) -> AppBody;
}

impl VecInto for u8 {
    fn vec_into_body(vec: Vec<u8>) -> AppBody {
        AppBody::from(Bytes::from(vec))
    }
}

macro_rules! chunks_vec_into {
    ($($ty:ty),*) => {$(
        impl VecInto for $ty {
            fn vec_into_body(vec: Vec<Self>) -> AppBody {
                AppBody::from_chunks(vec)
            }
        }
    )*};
}

chunks_vec_into!(Bytes, Vec<u8>, String, &'static str, &'static [u8]);

impl<T: VecInto> From<Vec<T>> for AppBody {
    fn from(vec: Vec<T>) -> Self {
        T::vec_into_body(vec)
    }
}

/// Reads a [`Read`] in blocks; see [`AppBody::from_reader`].
struct Reader<R> {
    reader: Option<R>,
    block: usize,
    /// Bytes still to come, when known: blocks are no larger.
    remaining: Option<u64>,
    /// Zeroed space the next reads fill; chunks are split off its front.
    buf: BytesMut,
}

impl<R> Reader<R> {
    fn new(reader: R, remaining: Option<u64>, block: usize) -> Self {
        Self {
            reader: Some(reader),
            block: block.max(1),
            remaining,
            buf: BytesMut::new(),
        }
    }
}

impl<R: Read + Send + 'static> Iterable for Reader<R> {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        let reader = self.reader.as_mut()?;
        // One byte past a known end, so that a file that grew is still read to EOF.
        let want = match self.remaining {
            Some(remaining) => usize::try_from(remaining.saturating_add(1))
                .map_or(self.block, |left| left.min(self.block)),
            None => self.block,
        };
        if self.buf.len() < want {
            // Short reads leave the rest of the block for the next ones.
            self.buf = BytesMut::zeroed(want.max(self.buf.len()));
        }
        loop {
            match reader.read(&mut self.buf[..want]) {
                Ok(0) => return None,
                Ok(n) => {
                    if let Some(remaining) = self.remaining.as_mut() {
                        *remaining = remaining.saturating_sub(n as u64);
                    }
                    return Some(Ok(self.buf.split_to(n).freeze()));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Some(Err(error.into())),
            }
        }
    }

    fn close(&mut self) -> Result<(), BoxError> {
        drop(self.reader.take());
        Ok(())
    }
}

struct Chunks<I>(I);

impl<I> Iterable for Chunks<I>
where
    I: Iterator + Send + 'static,
    I::Item: Into<Bytes>,
{
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        self.0.next().map(|chunk| Ok(chunk.into()))
    }
}

struct Results<I>(I);

impl<I, T, E> Iterable for Results<I>
where
    I: Iterator<Item = Result<T, E>> + Send + 'static,
    T: Into<Bytes>,
    E: Into<BoxError>,
{
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        self.0
            .next()
            .map(|result| result.map(Into::into).map_err(Into::into))
    }
}

struct OnClose<F> {
    body: AppBody,
    hook: Option<F>,
}

impl<F> Iterable for OnClose<F>
where
    F: FnOnce() -> Result<(), BoxError> + Send + 'static,
{
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        self.body.next()
    }

    fn close(&mut self) -> Result<(), BoxError> {
        let inner = self.body.close();
        let hook = self.hook.take().map_or(Ok(()), |hook| hook());
        inner.and(hook)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counted(closes: &Arc<AtomicUsize>) -> AppBody {
        let closes = closes.clone();
        AppBody::from_chunks(["a", "b"]).on_close(move || {
            closes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    #[test]
    fn explicit_close_then_drop_closes_once() {
        let closes = Arc::new(AtomicUsize::new(0));
        let mut body = counted(&closes);
        assert_eq!(body.next().unwrap().unwrap(), "a");
        body.close().unwrap();
        body.close().unwrap();
        drop(body);
        assert_eq!(closes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn drop_closes_a_body_never_iterated() {
        let closes = Arc::new(AtomicUsize::new(0));
        drop(counted(&closes));
        assert_eq!(closes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn hook_runs_even_when_inner_close_fails() {
        struct Failing;
        impl Iterable for Failing {
            fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
                None
            }
            fn close(&mut self) -> Result<(), BoxError> {
                Err("inner close failed".into())
            }
        }
        let closes = Arc::new(AtomicUsize::new(0));
        let counter = closes.clone();
        let mut body = AppBody::new(Failing).on_close(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        assert!(body.close().is_err());
        assert_eq!(closes.load(Ordering::SeqCst), 1);
    }

    /// Hands out `data` in reads of at most `per_read` bytes, failing or
    /// interrupting where told; counts its drops.
    struct Script {
        data: Vec<u8>,
        per_read: usize,
        interrupt_first: bool,
        fail_at_end: bool,
        drops: Arc<AtomicUsize>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if std::mem::take(&mut self.interrupt_first) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.data.is_empty() && self.fail_at_end {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.per_read).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Ok(n)
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn script(len: usize, per_read: usize) -> (Script, Arc<AtomicUsize>) {
        let drops = Arc::new(AtomicUsize::new(0));
        let script = Script {
            data: (0..len).map(|i| i as u8).collect(),
            per_read,
            interrupt_first: true,
            fail_at_end: false,
            drops: drops.clone(),
        };
        (script, drops)
    }

    #[test]
    fn reader_yields_blocks_then_closes_the_reader_once() {
        let (reader, drops) = script(10, usize::MAX);
        let mut body = AppBody::from_reader_with_block_size(reader, 4);
        let chunks: Vec<Bytes> = body.by_ref().map(Result::unwrap).collect();
        assert_eq!(chunks.iter().map(Bytes::len).collect::<Vec<_>>(), [4, 4, 2]);
        assert_eq!(chunks.concat(), (0..10).collect::<Vec<u8>>());
        assert_eq!(drops.load(Ordering::SeqCst), 0, "open until closed");
        body.close().unwrap();
        drop(body);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn short_reads_become_chunks_sharing_one_block() {
        let (reader, _) = script(9, 3);
        let body = AppBody::from_reader_with_block_size(reader, 1024);
        let chunks: Vec<Bytes> = body.map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.concat(), (0..9).collect::<Vec<u8>>());
    }

    #[test]
    fn read_errors_fail_the_body_and_it_still_closes() {
        let (mut reader, drops) = script(3, usize::MAX);
        reader.fail_at_end = true;
        let mut body = AppBody::from_reader(reader);
        assert_eq!(body.next().unwrap().unwrap().len(), 3);
        assert_eq!(
            body.next().unwrap().unwrap_err().to_string(),
            "disk on fire"
        );
        drop(body);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_file_is_read_from_its_position_in_blocks_no_larger_than_what_is_left() {
        use std::io::{Seek, SeekFrom, Write};
        let path = std::env::temp_dir().join(format!("tower-wsgi-body-{}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&[1; 1000])
            .unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        file.seek(SeekFrom::Start(100)).unwrap();
        let mut body = AppBody::from_file(file).unwrap();
        assert_eq!(body.content_length(), Some(900));
        let first = body.next().unwrap().unwrap();
        assert_eq!(first.len(), 900);
        assert!(body.next().is_none());
        std::fs::remove_file(&path).unwrap();
        assert_eq!(AppBody::from("four").content_length(), Some(4));
        assert_eq!(AppBody::from_chunks(["a"]).content_length(), None);
    }

    #[test]
    fn results_surface_errors() {
        let mut body = AppBody::from_results(vec![Ok::<_, BoxError>("x"), Err("boom".into())]);
        assert_eq!(body.next().unwrap().unwrap(), "x");
        assert_eq!(body.next().unwrap().unwrap_err().to_string(), "boom");
        assert!(body.next().is_none());
    }
}
