"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app` (command-line flags such as --bind win)."""

import multiprocessing
import os
import shutil

from common.logging import GUNICORN_LOGCONFIG

bind = os.environ.get("MENDER_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count()))
# gthread: a worker's heartbeat runs beside its request threads, so a multi-GB upload that
# takes an hour never trips the worker timeout, while a hung worker is still replaced.
worker_class = os.environ.get("MENDER_WORKER_CLASS", "gthread")
threads = int(os.environ.get("MENDER_WORKER_THREADS", "4"))
timeout = int(os.environ.get("MENDER_WORKER_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 75  # longer than the usual load balancer idle timeout
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None  # the app writes one JSON access line per request, with the request id
logger_class = "common.logging.GunicornLogger"  # so gunicorn writes none of its own
errorlog = "-"
logconfig_dict = GUNICORN_LOGCONFIG
proc_name = "mender-server"

_data_dir = os.path.abspath(os.environ.get("MENDER_DATA_DIR", "./data"))


def on_starting(server):
    # Prometheus multiprocess mode: every worker writes its own files, /metrics sums them.
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(_data_dir, "prometheus")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


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


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    # a graceful stop writes what the worker still holds in memory (batched check-in times)
    app = getattr(worker, "wsgi", None)
    context = getattr(app, "extensions", {}).get("mender") if app is not None else None
    if context is not None:
        try:
            context.shutdown()
        except Exception as exc:  # the worker is leaving either way
            server.log.error("shutdown hooks failed: %r", exc)
