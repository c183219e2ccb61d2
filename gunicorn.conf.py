"""gunicorn settings: `gunicorn -c gunicorn.conf.py` (what scripts/serve.sh runs). It serves the
public listener (`MENDER_BIND`, or a --bind flag) and the internal one (`MENDER_INTERNAL_BIND`,
added whatever --bind says) from the same workers."""

import glob
import hashlib
import multiprocessing
import os
import shutil
import tempfile

from common.config import default_workers, load_config
from common.listeners import parse_bind
from common.gunicorn_errors import install_server_error_writer
from common.logging import GUNICORN_LOGCONFIG

install_server_error_writer()  # requests gunicorn's own HTTP parser refuses get the JSON error too

# Every file the server writes (database, WAL, keys, artifacts, temp files, sockets) is the
# service user's alone; the code also sets explicit modes where it creates files.
os.umask(0o077)

_settings = load_config()
_data_dir = _settings["MENDER_DATA_DIR"]
_internal = parse_bind(_settings["MENDER_INTERNAL_BIND"])
_internal_bind = _settings["MENDER_INTERNAL_BIND"].strip()

bind = [os.environ.get("MENDER_BIND", "0.0.0.0:8080")]
workers = int(os.environ.get("WEB_CONCURRENCY", default_workers(_settings, multiprocessing.cpu_count())))

# The worker model. `asgi` (the default): gunicorn's asyncio worker serving common.asgi's front;
# a connection costs a socket and a coroutine, a thread from the pool only while the Flask app
# runs for it, so slow clients and long-lived websockets take no thread. `gthread` (a thread per
# connection; no websockets) remains for comparison and as a fallback.
_WORKER_CLASSES = {"asgi": "common.asgi_worker.AsgiWorker", "gthread": "gthread", "sync": "sync"}
_requested = os.environ.get("MENDER_WORKER_CLASS", "asgi")
worker_class = _WORKER_CLASSES.get(_requested, _requested)
_is_asgi = worker_class == _WORKER_CLASSES["asgi"]
wsgi_app = "asgi:app" if _is_asgi else "wsgi:app"
# asgi: the worker's event loop, uvloop's unless MENDER_EVENT_LOOP=asyncio (docs/process-model.md;
# a worker that cannot import uvloop warns and runs on asyncio's). Named here, not gunicorn's
# `auto`, which picks whichever happens to be importable.
asgi_loop = os.environ.get("MENDER_EVENT_LOOP", "uvloop").strip().lower() or "uvloop"
# asgi: the size of each worker's pool running the Flask app (read by common.asgi);
# gthread: threads per worker, each holding one connection
threads = 1 if _is_asgi else int(os.environ.get("MENDER_WORKER_THREADS", "4"))
# a heartbeat: the asgi worker's event loop (and gthread's main thread) beats while the
# requests run, so a multi-GB upload that takes an hour never trips it; a hung worker is replaced
timeout = int(os.environ.get("MENDER_WORKER_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 75  # longer than the usual load balancer idle timeout
limit_request_line = 8190
# the largest websocket message (deviceconnect's devices; an operator's is bounded lower by the app)
websocket_max_message_size = int(_settings["DEVICECONNECT_MAX_MESSAGE_SIZE"])
asgi_lifespan = "on"  # the front's startup/shutdown: batched check-ins are written on a graceful stop
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None  # the app writes one JSON access line per request, with the request id
logger_class = "common.logging.GunicornLogger"  # so gunicorn writes none of its own
errorlog = "-"
logconfig_dict = GUNICORN_LOGCONFIG
proc_name = "mender-server"


def run_dir(data_dir: str) -> str:
    """`$MENDER_DATA_DIR/run` (0700): this instance's control socket and lock files."""
    path = os.path.join(data_dir, "run")
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def runtime_dir(data_dir: str) -> str:
    """A private directory off the data disk for files that are mmap'd (Prometheus multiprocess
    mode): a full data disk must not turn their page faults into SIGBUS. In RAM ($XDG_RUNTIME_DIR
    or /dev/shm), new at each start (0700, a random name: /dev/shm is shared), removed at exit;
    those left by an earlier run of the same instance are removed first."""
    base = os.environ.get("XDG_RUNTIME_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    prefix = f"mender-server-{os.getuid()}-{hashlib.sha256(data_dir.encode()).hexdigest()[:12]}-"
    for stale in glob.glob(os.path.join(base, prefix + "*")):
        try:
            if os.lstat(stale).st_uid == os.getuid():
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    return tempfile.mkdtemp(prefix=prefix, dir=base)


# A control socket per instance (gunicorn's default is one path for every instance of a user).
_ctl = os.path.join(_data_dir, "run", "gunicorn.ctl")
if len(_ctl.encode()) < 100:  # sun_path holds 108 bytes
    control_socket = _ctl
    control_socket_mode = 0o600
else:
    control_socket_disable = True


def _add_internal_listener(server, create: bool) -> None:
    if _internal is None:
        return
    current = list(server.cfg.bind)
    if _internal_bind in current:
        return
    for address in current:
        try:
            if parse_bind(address) == _internal:
                return
        except ValueError:
            continue
    server.cfg.set("bind", current + [_internal_bind])
    if create:  # a reload rebuilt the listeners from --bind alone
        from gunicorn import sock
        server.LISTENERS += sock.create_sockets(_single_bind_cfg(server.cfg), server.log)


class _single_bind_cfg:
    """The arbiter's config, seen with the internal address as its only bind."""

    def __init__(self, cfg):
        self._cfg = cfg

    def __getattr__(self, name):
        if name == "address":
            from gunicorn import util
            return [util.parse_address(_internal_bind)]
        return getattr(self._cfg, name)


def _private(data_dir: str) -> None:
    """Files written by an older version (or by hand) with group or other bits lose them."""
    for root, _dirs, files in os.walk(data_dir):
        for name in [root] + [os.path.join(root, f) for f in files]:
            try:
                st = os.lstat(name)
                if st.st_mode & 0o077 and not os.path.islink(name):
                    os.chmod(name, st.st_mode & 0o700)
            except OSError:
                pass


def on_starting(server):
    if os.path.isdir(_data_dir):
        _private(_data_dir)
    run_dir(_data_dir)
    _add_internal_listener(server, create=False)
    # Prometheus multiprocess mode: every worker writes its own files, /metrics sums them.
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, mode=0o700, exist_ok=True)
    else:
        path = os.environ["PROMETHEUS_MULTIPROC_DIR"] = runtime_dir(_data_dir)
        os.environ["MENDER_RUNTIME_DIR"] = path


def on_reload(server):
    _add_internal_listener(server, create=True)


def when_ready(server):
    # Migrate once in the master before workers take traffic; workers re-check lazily,
    # so a database that is down now is migrated when it comes back.
    try:
        from common.app import create_app
        app = create_app()
        ctx = app.extensions["mender"]
        try:
            ctx.migrate_all()
            for hook in getattr(ctx, "startup_hooks", []):
                hook()
        finally:
            ctx.db.close()
    except Exception as exc:  # keep serving: health answers 503 until the database is back
        server.log.error("startup migration failed: %r", exc)


def on_exit(server):
    path = os.environ.get("MENDER_RUNTIME_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)


def post_worker_init(worker):
    # the app is loaded: its objects stay for the worker's life, out of every full collection
    from common.heap import freeze_startup_heap
    freeze_startup_heap()


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    # gthread: a graceful stop writes what the worker still holds in memory (batched check-in
    # times). The asgi worker does it in the front's lifespan shutdown instead.
    app = getattr(worker, "wsgi", None)
    context = getattr(app, "extensions", {}).get("mender") if app is not None else None
    if context is not None:
        try:
            context.shutdown()
        except Exception as exc:  # the worker is leaving either way
            server.log.error("shutdown hooks failed: %r", exc)
