"""start_response, write() and the rule engine, as Python apps see them."""
import sys
import threading
import time

SEEN = {}
LOCAL = threading.local()
# Bodies the crate copies (short) or shares with Python (long).
BODIES = {"/body/100": b"s" * 100, "/body/4096": b"m" * 4096, "/body/65536": b"l" * 65536}


def application(environ, start_response):
    path = environ["PATH_INFO"]
    text = [("Content-Type", "text/plain")]

    if path == "/seen":
        body = repr(sorted(SEEN.items())).encode()
        start_response("200 OK", text)
        return [body]

    if path == "/local":
        # Survives between requests only if the thread keeps its Python
        # thread state (attached once for its life).
        LOCAL.hits = getattr(LOCAL, "hits", 0) + 1
        start_response("200 OK", text)
        return [b"%d" % LOCAL.hits]

    if path == "/thread":
        # A millisecond of pure Python, then which thread computed it.
        until = time.perf_counter() + 0.001
        while time.perf_counter() < until:
            pass
        start_response("200 OK", text)
        return [b"%d" % threading.get_ident()]

    if path in BODIES:
        start_response("200 OK", text)
        return [BODIES[path]]

    if path == "/refs":
        # Back to where it started once every response is done with its body.
        counts = [sys.getrefcount(body) for _, body in sorted(BODIES.items())]
        start_response("200 OK", text)
        return [repr(counts).encode()]

    if path == "/env":
        # The str entries, as this request's environ holds them.
        body = repr(sorted((k, v) for k, v in environ.items() if type(v) is str))
        start_response("200 OK", text)
        return [body.encode("latin-1")]

    if path == "/parts":
        start_response("200 OK", text)
        return (b"two ", b"parts")

    if path == "/lazy":
        def lazy():
            start_response("201 Created", text + [("X-Lazy", "yes")])
            yield b"made "
            yield b"lazily"
        return lazy()

    if path == "/exc-before":
        start_response("200 OK", text)
        try:
            raise KeyError("before any body")
        except KeyError:
            start_response("503 Try Later", text, sys.exc_info())
        return [b"error page"]

    if path == "/exc-after":
        write = start_response("200 OK", text)
        write(b"partial ")
        try:
            raise KeyError("after the body started")
        except KeyError as original:
            try:
                start_response("500 Oops", text, sys.exc_info())
            except KeyError as reraised:
                SEEN["exc-after reraised the original"] = reraised is original
                raise
        return [b"never"]

    if path == "/twice":
        start_response("200 OK", text)
        try:
            start_response("202 Accepted", text)
        except AssertionError as e:
            SEEN["second call"] = "%s: %s" % (type(e).__name__, e)
            return [b"the app went on"]
        return [b"second call accepted"]

    if path == "/write":
        write = start_response("200 OK", text)
        for part in (b"one ", b"two ", b""):
            write(part)
        try:
            write("a str")
        except TypeError as e:
            SEEN["write(str)"] = str(e)
        return [b"three"]

    if path == "/bad-status":
        try:
            start_response("abc", text)
        except ValueError as e:
            SEEN["bad status"] = str(e)
            raise

    if path == "/early-hints":
        start_response("103 Early Hints", text)
        return [b"hint"]

    if path == "/injection":
        start_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: x=1")])
        return [b"never"]

    if path == "/short":
        start_response("200 OK", [("Content-Length", "20")])
        return [b"only", b" nine"]

    if path == "/long":
        start_response("200 OK", [("Content-Length", "5")])
        return [b"hello", b" and more"]

    if path == "/no-content":
        start_response("204 No Content", [])
        return [b"dropped"]

    if path == "/upload":
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return [data]

    start_response("404 Not Found", text)
    return [b"no such route"]
