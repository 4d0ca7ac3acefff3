//! The crate's own answers: 404 (outside the script name), 413 (body over
//! the limit), 500 (an application error, or a response future that lost
//! its application thread), 503 (pool full). Each follows the same rules as
//! an application's: a `Content-Length`, `Server` and `Date`, no body bytes
//! for HEAD.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::body::ResponseBody;
use super::head;

/// Werkzeug 1.0.1's `InternalServerError` page, byte for byte.
const INTERNAL_ERROR_PAGE: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n\
<title>500 Internal Server Error</title>\n\
<h1>Internal Server Error</h1>\n\
<p>The server encountered an internal error and was unable to complete your request. \
Either the server is overloaded or there is an error in the application.</p>\n";

/// The 500 answer for an application error before the headers went out.
pub(crate) fn internal_error(
    server: Option<&HeaderValue>,
    is_head: bool,
) -> Response<ResponseBody> {
    let mut response = own_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/html; charset=utf-8",
        Bytes::from_static(INTERNAL_ERROR_PAGE.as_bytes()),
        server,
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

/// A short plain-text answer (404, 413, 503, ...).
pub(crate) fn simple_response(
    status: StatusCode,
    server: Option<&HeaderValue>,
    is_head: bool,
) -> Response<ResponseBody> {
    let text = status.canonical_reason().unwrap_or("Error");
    let body = Bytes::from(format!("{text}\n"));
    own_response(status, "text/plain; charset=utf-8", body, server, is_head)
}

/// The answer when no response can be had (a future polled after its end,
/// or an application thread that vanished): an empty 500.
pub(crate) fn lost() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty(false));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

fn own_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    server: Option<&HeaderValue>,
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
    if let Some(server) = server {
        headers.insert(header::SERVER, server.clone());
    }
    headers.insert(header::DATE, head::http_date());
    response
}
