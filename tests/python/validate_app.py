"""An app wrapped in wsgiref.validate.validator that touches every environ key,
every wsgi.input method, wsgi.errors, write() and a closing iterable.

Any assertion of the validator is an exception, so the server answers 500;
a 200 means the server passed every check on that request. `make()` gives an
app with its own close counter.
"""
import json
import threading
from wsgiref.validate import validator

REQUIRED = [
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
    "SERVER_PORT", "SERVER_PROTOCOL", "wsgi.version", "wsgi.url_scheme", "wsgi.input",
    "wsgi.errors", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
]


class Closing:
    def __init__(self, chunks, counters):
        self.chunks = chunks
        self.counters = counters

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        self.counters["closed"] += 1


def inner(counters):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/counters":
            body = json.dumps(counters).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        counters["started"] += 1
        missing = [k for k in REQUIRED if k not in environ]
        types = {k: type(v).__name__ for k, v in environ.items() if "." not in k}
        inp = environ["wsgi.input"]
        pieces = []
        if environ["REQUEST_METHOD"] == "POST":
            pieces.append(inp.read(3))
            pieces.append(inp.readline())
            pieces.append(inp.readline(4))
            pieces.extend(inp.readlines(10))
            for line in inp:
                pieces.append(line)
                break
            pieces.extend(inp.readlines())
            pieces.append(inp.read(-1))
            pieces.append(inp.readline())
        err = environ["wsgi.errors"]
        err.write("validate: %s %s\n" % (environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        err.writelines(["validate: a line\n", "validate: another\n"])
        err.flush()
        report = json.dumps({
            "missing": missing,
            "types": types,
            "version": list(environ["wsgi.version"]),
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
            "run_once": environ["wsgi.run_once"],
            "url_scheme": environ["wsgi.url_scheme"],
            "terminated": environ.get("wsgi.input_terminated", False),
            "content_length": environ.get("CONTENT_LENGTH"),
            "pieces": [p.decode("latin-1") for p in pieces],
            "file_wrapper": callable(environ.get("wsgi.file_wrapper")),
        }).encode()
        write = start_response("200 OK", [("Content-Type", "application/json")])
        write(b"")
        write(report[:10])
        return Closing([report[10:]], counters)
    return app


def make():
    counters = {"started": 0, "closed": 0}
    checked = validator(inner(counters))

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/counters":
            return inner(counters)(environ, start_response)
        return checked(environ, start_response)

    return app
