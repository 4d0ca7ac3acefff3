"""The WSGI app of Granian's benchmark, written from its route table:
fixed-size bodies, echo (whole body / 4 KiB reads), and 10 ms of I/O."""
import time

HEADERS = [("content-type", "text/plain; charset=utf-8")]
BODIES = {
    "/b10": b"x" * 10,
    "/b1k": b"x" * 1024,
    "/b10k": b"x" * 10240,
    "/b100k": b"x" * 102400,
}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    body = BODIES.get(path)
    if body is not None:
        start_response("200 OK", HEADERS)
        return [body]
    if path == "/echo":
        start_response("200 OK", HEADERS)
        return [environ["wsgi.input"].read()]
    if path == "/echoi":
        start_response("200 OK", HEADERS)
        return _chunks(environ["wsgi.input"])
    if path == "/io10":
        time.sleep(0.01)
        start_response("200 OK", HEADERS)
        return [b"x" * 10]
    start_response("404 NOT FOUND", HEADERS)
    return [b"not found"]


def _chunks(stream):
    while True:
        chunk = stream.read(4096)
        if not chunk:
            break
        yield chunk
