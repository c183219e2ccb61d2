"""ASGI entry point: `gunicorn -c gunicorn.conf.py asgi:app` (what scripts/serve.sh runs).
`wsgi.py` stays the entry point of `flask --app wsgi …` and of the WSGI worker classes."""

from common.app import create_app
from common.asgi import AsgiFront

app = AsgiFront(create_app())
