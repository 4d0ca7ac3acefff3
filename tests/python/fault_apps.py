"""The fault matrix of tests/faults.rs, as Python WSGI apps.

Every body counts its close() in its app's counters; GET /counters reports
them. `make()` gives an app with counters of its own (tests run in parallel
in one interpreter).
"""
import json
import threading
import time

_lock = threading.Lock()
_current = threading.local()


def _bump(key):
    with _lock:
        _current.counters[key] += 1


class Faulty:
    """An iterable that fails where it is told to, and counts its close()."""

    def __init__(self, chunks, fail_at=None, fail_close=False):
        self.chunks = list(chunks)
        self.fail_at = fail_at
        self.fail_close = fail_close

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("fault: error mid-body")
            yield chunk

    def close(self):
        _bump("closed")
        if self.fail_close:
            raise RuntimeError("fault: error in close")


def endless():
    try:
        block = b"s" * 65536
        while True:
            yield block
    finally:
        _bump("closed")


def make():
    counters = {"closed": 0, "returned": 0, "input_errors": 0}

    def application(environ, start_response):
        # Bodies run on the thread that called the app: they find the
        # counters there.
        _current.counters = counters
        try:
            return route(environ, start_response)
        finally:
            _bump("returned")

    return application


def route(environ, start_response):
    path = environ["PATH_INFO"]
    text = [("Content-Type", "text/plain")]
    if path == "/counters":
        body = json.dumps(_current.counters).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/ok":
        start_response("200 OK", [("Content-Length", "2")])
        return Faulty([b"ok"])
    if path == "/sleep":
        time.sleep(0.3)
        start_response("200 OK", text)
        return Faulty([b"late"])
    if path == "/upload":
        try:
            data = environ["wsgi.input"].read()
        except OSError:
            _bump("input_errors")
            raise
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return [data]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return endless()
    if path == "/error/before":
        raise RuntimeError("fault: error before start_response")
    if path == "/str-chunk/before":
        start_response("200 OK", text)
        return Faulty(["a str chunk"])
    if path == "/str-chunk/mid-body":
        start_response("200 OK", text)
        return Faulty([b"first chunk", "a str chunk"])
    if path == "/bad-header":
        start_response("200 OK", [("X-Bytes", b"value")])
        return Faulty([b"never"])
    start_response("200 OK", text)
    if path == "/error/after-start":
        raise RuntimeError("fault: error after start_response")
    if path == "/error/mid-body":
        return Faulty([b"first chunk", b"never"], fail_at=1)
    if path == "/error/in-close":
        return Faulty([b"complete body"], fail_close=True)
    raise RuntimeError("fault: no such route " + path)
