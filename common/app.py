"""The application factory and the per-app context that services hang off."""

from __future__ import annotations

import base64
import hashlib
import importlib
import inspect
import os
import re
import threading
from types import SimpleNamespace
from typing import Any, Callable, Mapping

import click
from flask import Flask, current_app, request, send_from_directory
from flask_smorest import Api
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect, Rule

from common import http, metrics
from common.api import TenantConverter
from common.auth import authenticate_request
from common.authz import Authorizer
from common.clock import Clock
from common.config import Config, load_config
from common.db import Database, open_database
from common.direct import DirectRoutes
from common.health import data_disk_check
from common.logging import configure_logging
from common.tenancy import TENANT_ID_PATTERN

SERVICE_PACKAGES = ("tenantadm", "useradm", "inventory", "deployments", "devauth", "deviceconnect", "deviceconfig",
                    "iotmanager", "auditlogs", "ui")

# Paths that must answer even when the database does not (or has not been migrated yet).
_NO_DB_PREFIXES = ("/metrics", "/api/openapi.json", "/api/docs")
_NO_DB_SUFFIXES = ("/alive", "/health")


class AppContext:
    """Everything a request handler reaches through `ctx()`: config, database, clock, services."""

    def __init__(self, config: Config, db: Database, clock: Clock):
        self.config = config
        self.db = db
        self.clock = clock
        self.services = SimpleNamespace()
        self.disk_check: Callable[[float], None] = lambda timeout: None  # the data disk's free space (create_app)
        self.authenticators: dict[str, Callable] = {}
        # every management request and operator websocket is decided here (common.permissions)
        self.authorizer = Authorizer(self.services)
        self.migrations: list[tuple[str, Any]] = []
        self.health_checks: dict[str, list[Callable[[float], None]]] = {}
        self.startup_hooks: list[Callable[[], None]] = []  # run once by the gunicorn master after migrating
        self.body_limits: dict[tuple[str, str], int] = {}  # (method, endpoint) -> a body limit other than 1 MiB
        # Flask-free callables every request runs after authentication (lazy starts of a worker's
        # threads), on the Flask path and on the direct routes alike
        self.request_hooks: list[Callable[[], None]] = []
        # the device routes served without Flask's per-request machinery (common.direct)
        self.direct_routes = DirectRoutes(self, enabled=bool(config.get("MENDER_DIRECT_ROUTES", True)))
        self.migrated = False
        self.shutdown_hooks: list[Callable[[], None]] = []  # run when a worker stops (and by tests)
        # Websocket routes served by the ASGI front (common.asgi), on the public listener (paths
        # under /api/internal/ on the internal one alone): (werkzeug rule, `async def
        # handler(scope, receive, send, **params)`); see add_websocket_route.
        self.websocket_routes: list[tuple[str, Callable[..., Any]]] = []
        self._websocket_map: Map | None = None  # is_websocket_path's, built at its first call
        # Set by the ASGI front in each worker: its event loop and its `run_sync` (the bounded pool),
        # for services whose threads hand work to the loop; None under WSGI and in the test client.
        self.loop = None
        self.run_sync: Callable[..., Any] | None = None
        # `async def hook()` run on the loop at a graceful stop, before `shutdown_hooks`
        self.async_shutdown_hooks: list[Callable[[], Any]] = []
        # Gauges of the whole fleet on /metrics: (metric name, help, label name, `fn() -> {label
        # value: count}`), each fn a cheap indexed count (common.metrics caches them briefly).
        self.fleet_gauges: list[tuple[str, str, str, Callable[[], dict[str, int]]]] = []

    def add_migrations(self, service: str, migrations: Any) -> None:
        self.migrations.append((service, migrations))

    def ensure_migrated(self) -> None:
        if self.migrated:
            return
        for service, migrations in self.migrations:
            self.db.ensure_migrated(service, migrations)
        self.migrated = True

    def migrate_all(self) -> dict[str, int]:
        return {service: self.db.migrate(service, migrations) for service, migrations in self.migrations}

    def add_websocket_route(self, rule: str, handler: Callable[..., Any]) -> None:
        """Serve websockets on `rule` (werkzeug syntax, e.g. `/api/devices/v1/deviceconnect/connect`
        or `/api/management/v1/deviceconnect/devices/<id>/connect`) with `async def handler(scope,
        receive, send, **params)`, a plain ASGI websocket application (accept, receive, send,
        close). Blocking calls (token checks, the database) go through `await
        common.asgi.run_sync(fn, *args)`; `common.asgi.deny_websocket(scope, receive, send, 401,
        "unauthorized")` refuses the handshake with a status and a JSON error body."""
        self.websocket_routes.append((rule, handler))
        self._websocket_map = None

    def is_websocket_path(self, path: str) -> bool:
        """Whether `path` is one of the websocket routes (a plain HTTP GET to it is answered 400,
        as Mender's specs say: the route exists, the handshake is missing)."""
        ws_map = self._websocket_map
        if ws_map is None:
            ws_map = self._websocket_map = Map([Rule(rule, endpoint=str(i), methods=["GET"])
                                                for i, (rule, _) in enumerate(self.websocket_routes)],
                                               strict_slashes=False, merge_slashes=False)
        try:
            ws_map.bind("", "/").match(path, "GET")
        except HTTPException:
            return False
        return True

    def shutdown(self) -> None:
        for hook in self.shutdown_hooks:
            hook()

    def checks_for(self, service: str) -> list[Callable[[float], None]]:
        return [self.disk_check, self.db.ping] + self.health_checks.get(service, [])  # the reason first


def ctx() -> AppContext:
    """The context of the current app."""
    return current_app.extensions["mender"]


def services() -> SimpleNamespace:
    return ctx().services


class LazyBuilderRule(Rule):
    """werkzeug's Rule with its two URL builders (url_for's, compiled from generated Python code)
    made on the first URL built from the rule, not when the rule is added: compiling them for
    the ~200 routes was 40% of create_app, and only a few rules ever build a URL. Matching
    requests uses the parsed parts, made at once as before."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        compiled: list[Callable[..., tuple[str, str]]] = []

        def build(rule: "LazyBuilderRule", *args: Any, **kwargs: Any) -> tuple[str, str]:
            if not compiled:
                compiled.append(Rule._compile_builder(rule, append_unknown).__get__(rule, None))
            return compiled[0](*args, **kwargs)

        return build  # Rule.compile binds it to the rule (`__get__`), as it binds the real one


class NoMergeMap(Map):
    """werkzeug's Map, without merging slashes: a path with `//` is not a route (404 JSON, as
    Mender's routers answer), where werkzeug answered a 308 redirect with an HTML page naming the
    merged path, `/api//internal/…` included, on the public listener."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("merge_slashes", False)
        super().__init__(*args, **kwargs)


class MenderFlask(Flask):
    """Flask, minus a per-request cost: `ensure_sync` asks `inspect` whether each hook and view is
    a coroutine function on every request (a dozen times per request here); the answer is
    remembered per function instead (the underlying function of a bound method: a method view
    is a new object per request). Its routing redirects (a rule ending in `/` asked without it)
    have an empty body, not werkzeug's HTML page."""

    url_rule_class = LazyBuilderRule
    url_map_class = NoMergeMap

    def handle_http_exception(self, e: HTTPException):
        if isinstance(e, RequestRedirect):
            return self.response_class(b"", status=e.code, headers={"Location": e.new_url})
        return super().handle_http_exception(e)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._is_async: dict[Callable, bool] = {}

    def ensure_sync(self, func: Callable) -> Callable:
        key = getattr(func, "__func__", func)
        try:
            is_async = self._is_async.get(key)
        except TypeError:  # unhashable callable
            return super().ensure_sync(func)
        if is_async is None:
            is_async = self._is_async[key] = inspect.iscoroutinefunction(func)
        return self.async_to_sync(func) if is_async else func


class LazyDocsApi(Api):
    """flask-smorest's Api, with the OpenAPI document written when it is first read
    (/api/openapi.json, /api/docs, `flask openapi`, `api.spec` anywhere) instead of at each app
    creation: documenting the ~200 routes was 40% of create_app, paid by every gunicorn worker,
    every CLI command and every test app, for a document most processes never serve. Routes are
    registered with Flask at once, as before; only their documentation waits, in order."""

    def __init__(self, app: Flask):
        self._pending_docs: list[Callable[[], None]] = []
        self._writing = False
        self._docs_lock = threading.RLock()
        super().__init__(app)

    @property
    def spec(self):
        if self._pending_docs or self._writing:  # once written: two attribute reads
            with self._docs_lock:  # one thread writes it, the others wait for the whole of it
                if self._pending_docs and not self._writing:  # (a step reading it sees it so far)
                    self._writing = True
                    try:
                        while self._pending_docs:
                            self._pending_docs.pop(0)()
                    finally:
                        self._writing = False
        return self._spec

    @spec.setter
    def spec(self, value) -> None:
        self._spec = value

    def document_later(self, step: Callable[[], None]) -> None:
        """Run `step` (which writes to `api.spec`) when the document is first read, after the
        blueprints registered before it."""
        self._pending_docs.append(step)

    def register_blueprint(self, blp, *, parameters=None, **options) -> None:
        """Api.register_blueprint, the documentation part deferred (document_later)."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)

        def document() -> None:
            blp.register_views_in_doc(self, self._app, self._spec, name=name, parameters=parameters)
            self._spec.tag({"name": name, "description": blp.description})

        self.document_later(document)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application. `config` overrides environment settings (tests pass a mapping)."""
    cfg = load_config(config)
    configure_logging(cfg["MENDER_LOG_LEVEL"])
    # files under the data dir are the service user's alone (database, WAL, keys, artifacts, temp
    # files); the directories are made where they are first written, so that a CLI command run
    # from the wrong directory creates nothing (see cli_data)
    os.umask(os.umask(0o077) | 0o077)
    app = MenderFlask(__name__)
    app.config.update(cfg)
    app.config.update(
        MAX_CONTENT_LENGTH=cfg["MENDER_REQUEST_SIZE_LIMIT"],
        API_TITLE="Mender-compatible OTA server",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/api/docs/static/",
    )
    app.json.sort_keys = False
    app.json.compact = True
    db = open_database(cfg.db_url, timeout=cfg["MENDER_DB_TIMEOUT_SECONDS"],
                       mongo_db_name=cfg["MENDER_MONGO_DB_NAME"],
                       mongo_client_factory=cfg.get("_MONGO_CLIENT_FACTORY"),
                       mongo_operation_timeout=cfg["MENDER_MONGO_OPERATION_TIMEOUT_SECONDS"])
    context = AppContext(cfg, db, cfg.get("_CLOCK") or Clock())
    # WSGI layers, innermost first: the direct routes in front of Flask, the proxy headers, the guard
    app.wsgi_app = context.direct_routes.wrap(app.wsgi_app)
    if cfg["MENDER_TRUSTED_PROXIES"] > 0:
        n = cfg["MENDER_TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)
    app.wsgi_app = http.Guard(app.wsgi_app)
    context.disk_check = data_disk_check(cfg.data_dir, cfg["MENDER_MIN_FREE_BYTES"])
    app.extensions["mender"] = context

    app.url_map.converters["tenant"] = TenantConverter
    api = LazyDocsApi(app)
    api.register_converter(TenantConverter, lambda converter: {"type": "string", "pattern": TENANT_ID_PATTERN})
    context.api = api

    def migrate_hook() -> None:
        if context.migrated:  # once per process: the common case costs one attribute read
            return
        req = request._get_current_object()
        path = req.path
        if (req.url_rule is not None and not path.startswith(_NO_DB_PREFIXES)
                and not (path.startswith("/api/internal/") and path.endswith(_NO_DB_SUFFIXES))):
            context.ensure_migrated()

    authenticators, authorizer = context.authenticators, context.authorizer
    def request_hooks() -> None:
        for hook in context.request_hooks:
            hook()

    http.install(app, [migrate_hook, lambda: authenticate_request(authenticators, authorizer), request_hooks],
                 context.body_limits)

    for name in SERVICE_PACKAGES:
        importlib.import_module(name).init_app(app, api, context)

    api.document_later(lambda: _declare_security(api))
    _add_docs_assets(app)
    if cfg["MENDER_METRICS_ENABLED"]:
        metrics.init_app(app, context)
    _add_cli(app, context)
    return app


SECURITY_SCHEMES = {
    "ManagementJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                      "description": "A user token: the body of POST /api/management/v1/useradm/auth/login, "
                                     "or a personal access token."},
    "DeviceJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                  "description": "A device token: the body of POST /api/devices/v1/authentication/auth_requests."},
    "Login": {"type": "http", "scheme": "basic", "description": "The user's email and password."},
}
_OPEN_OPERATIONS = ("/api/devices/v1/authentication/auth_requests",)


def _declare_security(api: Api) -> None:
    """Declare the schemes (bearer tokens, Basic for login) and give every management and device
    operation its scheme, so that /api/docs' "Authorize" and "Try it out" send the right header."""
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
    for path, operations in api.spec._paths.items():  # apispec keeps the registered paths here
        scheme = ("ManagementJWT" if path.startswith("/api/management/")
                  else "DeviceJWT" if path.startswith("/api/devices/") else None)
        if scheme is None or path in _OPEN_OPERATIONS:
            continue
        for method, operation in operations.items():
            if isinstance(operation, dict) and method not in ("parameters", "summary", "description"):
                operation.setdefault("security", [{scheme: []}])


_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def _docs_headers(response):
    """/api/docs and its assets: nothing but this origin's scripts (and the page's own inline
    start-up script, by hash), never framed (clickjacking)."""
    scripts = ["'self'"]
    if response.mimetype == "text/html" and not response.direct_passthrough:
        for script in _INLINE_SCRIPT.findall(response.get_data()):
            scripts.append(f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src {' '.join(scripts)}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _add_docs_assets(app: Flask) -> None:
    """Serve Swagger UI's files locally, so that /api/docs works without internet, with a CSP."""
    import swagger_ui_bundle

    @app.route("/api/docs/static/<path:filename>")
    def swagger_ui_static(filename: str):
        return _docs_headers(send_from_directory(swagger_ui_bundle.swagger_ui_path, filename))

    page = app.view_functions["api-docs.openapi_swagger_ui"]

    def swagger_ui_page(*args, **kwargs):
        return _docs_headers(app.make_response(page(*args, **kwargs)))

    app.view_functions["api-docs.openapi_swagger_ui"] = swagger_ui_page


def cli_data(context: AppContext, *, create: bool) -> None:
    """Say which data a CLI command works on (on stderr), and refuse a command that only reads
    or changes existing records when the SQLite database does not exist (a command run from
    another directory than the server's would otherwise create an empty `./data` and succeed)."""
    db = context.db
    where = f"data directory: {context.config.data_dir}"
    if db.kind == "sqlite":
        where += f", database: {db.path}"
    else:
        where += f", database: MongoDB {db.db_name}"
    click.echo(where, err=True)
    if db.kind == "sqlite" and not create and not os.path.exists(db.path):
        raise click.ClickException(
            f"no database at {db.path}: set MENDER_DATA_DIR (or MENDER_DB_URL) to the server's, "
            f"or create one with `flask --app wsgi migrate`")


def _add_cli(app: Flask, context: AppContext) -> None:
    @app.cli.command("migrate")
    def migrate_command() -> None:
        """Apply pending database migrations of every service (idempotent)."""
        cli_data(context, create=True)
        for service, version in context.migrate_all().items():
            click.echo(f"{service}: schema version {version}")

    @app.cli.command("rbac-table")
    @click.option("--write", "path", type=click.Path(dir_okay=False),
                  help="Replace the generated part of this Markdown file (docs/rbac.md) instead of printing.")
    def rbac_table_command(path) -> None:
        """Print the permission table (permission sets, built-in roles, every operation) as docs/rbac.md carries it."""
        from common.permissions import markdown_table, replace_generated
        if path is None:
            click.echo(markdown_table())
            return
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(replace_generated(text, markdown_table()))
        click.echo(f"{path}: permission table written")

    @app.cli.command("config-table")
    def config_table_command() -> None:
        """Print the settings table as the README carries it."""
        from common.config import markdown_table
        click.echo(markdown_table())
