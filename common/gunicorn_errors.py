"""gunicorn's own error answers (requests its HTTP parser refuses) as the project's JSON error.

Imported by gunicorn.conf.py in the master before anything else: it must not import the app
(prometheus_client, imported with it, fixes its multiprocess mode at import time)."""

from __future__ import annotations

import json
import uuid

REQUEST_ID_HEADER = "X-MEN-RequestID"


def error_bytes(status: int, reason: str, message: str, extra_headers=()) -> bytes:
    """A complete `Connection: close` response carrying the JSON error and a new request id.
    `status` is already the one to send; a 5xx says only "internal error"."""
    rid = str(uuid.uuid4())
    text = "internal error" if status >= 500 else f"malformed request: {message}"[:300]
    body = json.dumps({"error": text, "request_id": rid}).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{REQUEST_ID_HEADER}: {rid}\r\n{extra}\r\n")
    return head.encode("latin-1", "replace") + body


def write_server_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request its own HTTP parser refused (raw non-ASCII bytes on the
    request line, a NUL or bare CR in a header, obsolete line folding, a request line or header
    over the limits…), as the JSON error every other answer is, instead of its text/html page.
    (The WSGI workers' writer; the ASGI front's protocol calls `error_bytes` itself.)

    gunicorn answers 501 to an unknown transfer coding and 500 to a SCRIPT_NAME header that does
    not prefix the path (both with the reason "Bad Request"): the client's input, so 400 here, as
    nothing a client sends may produce a 5xx. A real 500 (reason "Internal Server Error") stays."""
    from gunicorn.util import write_nonblock
    if status_int >= 500 and reason == "Bad Request":
        status_int = 400
    write_nonblock(sock, error_bytes(status_int, reason, mesg))


def install_server_error_writer() -> None:
    """Make gunicorn's WSGI workers write `write_server_error` (they call `gunicorn.util.write_error`)."""
    import gunicorn.util
    gunicorn.util.write_error = write_server_error
