//! The application's response body: an iterable of byte chunks with `close()`.

use std::fmt;

use bytes::Bytes;

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
/// ([`Body::from_chunks`]), from an iterator of results ([`Body::from_results`]),
/// or from your own [`Iterable`]. [`Body::on_close`] attaches a close hook.
///
/// A `Body` is closed exactly once: by [`Body::close`], or when it is dropped.
///
/// ```
/// use tower_wsgi::Body;
///
/// let body = Body::from_chunks(["hello, ", "world"]).on_close(|| {
///     println!("released");
///     Ok(())
/// });
/// let chunks: Vec<_> = body.map(|c| c.unwrap()).collect();
/// assert_eq!(chunks, ["hello, ", "world"]);
/// ```
pub struct Body {
    inner: Option<Box<dyn Iterable>>,
}

impl Body {
    /// Wraps an [`Iterable`].
    pub fn new(iterable: impl Iterable) -> Self {
        Self {
            inner: Some(Box::new(iterable)),
        }
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

impl Iterator for Body {
    type Item = Result<Bytes, BoxError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.as_mut()?.next_chunk()
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(
                error = crate::error::chain(&*error),
                "response body close() failed"
            );
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

macro_rules! single_chunk_from {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Body {
            fn from(chunk: $ty) -> Self {
                Self::from_chunks(std::iter::once(Bytes::from(chunk)))
            }
        }
    )*};
}

single_chunk_from!(Bytes, Vec<u8>, String, &'static str, &'static [u8]);

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
    body: Body,
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

    fn counted(closes: &Arc<AtomicUsize>) -> Body {
        let closes = closes.clone();
        Body::from_chunks(["a", "b"]).on_close(move || {
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
        let mut body = Body::new(Failing).on_close(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        assert!(body.close().is_err());
        assert_eq!(closes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn results_surface_errors() {
        let mut body = Body::from_results(vec![Ok::<_, BoxError>("x"), Err("boom".into())]);
        assert_eq!(body.next().unwrap().unwrap(), "x");
        assert_eq!(body.next().unwrap().unwrap_err().to_string(), "boom");
        assert!(body.next().is_none());
    }
}
