//! [`MapChunks`]: a middleware that transforms every body chunk, written or
//! iterated.

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{Middleware, Next};
use crate::body::{AppBody, Iterable};
use crate::environ::Environ;
use crate::error::BoxError;
use crate::poison::lock;
use crate::response::{StartResponse, Writer};

/// A middleware that passes every chunk of the inner app's body through a
/// transform chosen from its head: what PEP 3333's Latinator does with
/// `start_latin`, `write_latin` and `LatinIter`, in one piece.
///
/// `select` runs on each `start_response` call of the inner app (a call with
/// `exc_info` chooses again). It may edit the status and headers (drop a
/// `Content-Length` the transform makes wrong) and returns the transform for
/// this head, or `None` to leave the body as it is. The transform then sees
/// every chunk: those passed to `write()` and those of the returned
/// iterable, in order. The inner body's `close()` runs exactly once, as
/// always. The rules of the response apply once, at the edge, to the
/// transformed result.
///
/// Built by [`map_chunks`]; it is a [`Middleware`], so it goes in front of an
/// app with [`MiddlewareApp`](super::MiddlewareApp) or of a tower service
/// with [`MiddlewareLayer`](super::MiddlewareLayer).
pub struct MapChunks<S> {
    select: Arc<S>,
}

/// A [`MapChunks`] middleware from `select` (see there).
///
/// ```
/// use bytes::Bytes;
/// use tower_wsgi::middleware::{map_chunks, MiddlewareApp};
/// use tower_wsgi::{app_fn, AppBody};
///
/// fn upper(chunk: Bytes) -> Bytes {
///     chunk.to_ascii_uppercase().into()
/// }
///
/// let shout = map_chunks(|_status, headers| {
///     let text = headers.iter().any(|(name, value)| {
///         name.eq_ignore_ascii_case("content-type") && value == "text/plain"
///     });
///     if !text {
///         return None;
///     }
///     headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-length"));
///     Some(upper)
/// });
/// let app = MiddlewareApp::new(shout, app_fn(|_environ, start_response| {
///     let write = start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///     write.write("hello ")?;
///     Ok(AppBody::from_chunks(["world\n"]))
/// }));
/// # drop(app);
/// ```
pub fn map_chunks<S, T>(select: S) -> MapChunks<S>
where
    S: Fn(&mut String, &mut Vec<(String, String)>) -> Option<T> + Send + Sync + 'static,
    T: Fn(Bytes) -> Bytes + Send + Sync + 'static,
{
    MapChunks {
        select: Arc::new(select),
    }
}

type Transform = Arc<dyn Fn(Bytes) -> Bytes + Send + Sync>;

impl<S, T> Middleware for MapChunks<S>
where
    S: Fn(&mut String, &mut Vec<(String, String)>) -> Option<T> + Send + Sync + 'static,
    T: Fn(Bytes) -> Bytes + Send + Sync + 'static,
{
    fn call(
        &self,
        environ: Environ,
        start_response: StartResponse,
        next: &Next,
    ) -> Result<AppBody, BoxError> {
        // The transform of the last head set: the iterable reads it per chunk.
        let current: Arc<Mutex<Option<Transform>>> = Arc::default();
        let select = self.select.clone();
        let chosen = current.clone();
        let inner_start = StartResponse::from_fn(move |status, mut headers, exc_info| {
            let mut status = status.to_owned();
            let transform = select(&mut status, &mut headers).map(|t| Arc::new(t) as Transform);
            let write = start_response.call(&status, headers, exc_info)?;
            *lock(&chosen) = transform.clone();
            Ok(match transform {
                Some(transform) => Writer::from_fn(move |data| write.write(transform(data))),
                None => write,
            })
        });
        let body = next.call(environ, inner_start)?;
        Ok(AppBody::new(Mapped { body, current }))
    }
}

impl<S> fmt::Debug for MapChunks<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapChunks").finish_non_exhaustive()
    }
}

/// The inner body, each chunk through the transform of the current head.
struct Mapped {
    body: AppBody,
    current: Arc<Mutex<Option<Transform>>>,
}

impl Iterable for Mapped {
    fn next_chunk(&mut self) -> Option<Result<Bytes, BoxError>> {
        let chunk = match self.body.next()? {
            Ok(chunk) => chunk,
            Err(error) => return Some(Err(error)),
        };
        let transform = lock(&self.current).clone();
        Some(Ok(match transform {
            Some(transform) => transform(chunk),
            None => chunk,
        }))
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.body.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::app_fn;
    use crate::middleware::MiddlewareApp;
    use crate::test_client::TestClient;

    fn upper_text() -> impl Middleware {
        map_chunks(|_status, headers| {
            let text = headers.iter().any(|(_, value)| value == "text/plain");
            text.then_some(|chunk: Bytes| Bytes::from(chunk.to_ascii_uppercase()))
        })
    }

    #[test]
    fn an_exc_info_call_chooses_the_transform_again() {
        let app = app_fn(|_environ, start_response| {
            start_response.start("200 OK", [("Content-Type", "text/html")])?;
            let write = start_response.start_with_exc_info(
                "500 Internal Server Error",
                [("Content-Type", "text/plain")],
                "failed",
            )?;
            write.write("error: ")?;
            Ok(AppBody::from_chunks(["failed"]))
        });
        let response = TestClient::new(MiddlewareApp::new(upper_text(), app))
            .get("/")
            .send_blocking();
        assert_eq!(response.status(), 500);
        assert_eq!(response.text(), "ERROR: FAILED");
    }

    #[test]
    fn a_stale_content_length_is_caught_at_the_edge() {
        // The transform doubles the body but select kept Content-Length: the
        // edge cuts the body at the declared length, as for any app.
        let doubling = map_chunks(|_status, _headers| {
            Some(|chunk: Bytes| Bytes::from([&chunk[..], &chunk[..]].concat()))
        });
        let app = app_fn(|_environ, start_response| {
            start_response.start("200 OK", [("Content-Length", "2")])?;
            Ok(AppBody::from_chunks(["ab"]))
        });
        let response = TestClient::new(MiddlewareApp::new(doubling, app))
            .get("/")
            .send_blocking();
        assert_eq!(response.header("content-length"), Some("2"));
        assert_eq!(&response.body()[..], b"ab");
    }
}
