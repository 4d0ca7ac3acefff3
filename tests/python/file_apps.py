"""wsgi.file_wrapper: a real file (streamed by the server), a file-like
without a descriptor (read through read()), and a declared Content-Length
shorter than the file."""
import io
import json
import os

STATS = {"reads": 0, "closes": 0}


class Tracked(io.FileIO):
    def read(self, *args):
        STATS["reads"] += 1
        return super().read(*args)

    def close(self):
        if not self.closed:
            STATS["closes"] += 1
        super().close()


class TrackedBytes(io.BytesIO):
    def read(self, *args):
        STATS["reads"] += 1
        return super().read(*args)

    def close(self):
        STATS["closes"] += 1
        super().close()


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/stats":
        body = json.dumps(STATS).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/reset":
        STATS.update(reads=0, closes=0)
        start_response("204 No Content", [])
        return []
    name = environ["QUERY_STRING"]
    if path == "/file":
        f = Tracked(name, "r")
        f.seek(10)  # the server starts where the file stands
        size = os.path.getsize(name) - 10
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/short":
        f = Tracked(name, "r")
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "1000")])
        return environ["wsgi.file_wrapper"](f)
    if path == "/bytesio":
        f = TrackedBytes(b"0123456789" * 1000)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "10000")])
        return environ["wsgi.file_wrapper"](f, 3000)
    if path == "/iterated":
        # Wrapped by middleware: iterated from Python, block by block.
        f = TrackedBytes(b"abcdefghij" * 10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        wrapper = environ["wsgi.file_wrapper"](f, 30)
        chunks = list(wrapper)
        wrapper.close()
        wrapper.close()
        return chunks
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such route"]
