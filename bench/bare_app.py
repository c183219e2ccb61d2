"""The baseline: a bare Flask endpoint, served by the same gunicorn settings as the server."""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello():
    return "", 204
