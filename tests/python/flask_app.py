"""A Flask app for tests/python_flask.rs: each route is one feature a
migrating team relies on."""
from flask import Flask, jsonify, request, send_file, session, stream_with_context

app = Flask(__name__)
app.secret_key = "tower-wsgi tests"


@app.route("/text")
def text():
    return "hello from flask"


@app.route("/json")
def json_route():
    return jsonify(name=request.args.get("name", "nobody"), items=[1, 2, 3])


@app.route("/stream")
def stream():
    def generate():
        # Needs the request context inside the generator.
        for i in range(int(request.args.get("n", "3"))):
            yield "%s-%d\n" % (request.args.get("tag", "chunk"), i)

    return app.response_class(stream_with_context(generate()), mimetype="text/plain")


@app.route("/file")
def file():
    return send_file(request.args["path"], mimetype="application/octet-stream")


@app.route("/upload", methods=["POST"])
def upload():
    data = request.get_data()
    return jsonify(length=len(data), head=data[:16].decode("latin-1"), tail=data[-16:].decode("latin-1"))


@app.route("/form", methods=["POST"])
def form():
    return "name=%s, lang=%s" % (request.form["name"], request.form.get("lang", ""))


@app.route("/boom")
def boom():
    raise ValueError("flask route failed on purpose")


@app.route("/session")
def counter():
    session["n"] = session.get("n", 0) + 1
    return "visit %d" % session["n"]
