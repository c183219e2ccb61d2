"""The baseline: a bare Flask endpoint, served by the same gunicorn settings as the server
(`bench.bare_app:app` under a WSGI worker class, `bench.bare_app:asgi` under the asgi one: the same
ASGI front as the server, so the ratio measures the app, not the worker model)."""

from flask import Flask

from common.asgi import AsgiFront

app = Flask(__name__)


@app.get("/hello")
def hello():
    return "", 204


asgi = AsgiFront(app)
