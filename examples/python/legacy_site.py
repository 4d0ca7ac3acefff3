"""The legacy Flask site of examples/python_axum.rs: some of its routes are
already ported to Rust, the rest is still served from here."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return "legacy index, served by Flask (request id %s)\n" % request.headers.get("X-Request-Id")


@app.route("/users/<int:user_id>")
def user(user_id):
    # Ported: axum answers /users/{id} before this is ever reached.
    return "user %d, served by Flask\n" % user_id


@app.route("/report")
def report():
    return jsonify(year=request.args.get("year", "all"), served_by="flask")
