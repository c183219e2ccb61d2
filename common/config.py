"""Every configuration key in one table: name (= environment variable), default, type and meaning."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from common.errors import ConfigError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {raw!r}")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    doc: str


SETTINGS: tuple[Setting, ...] = (
    # --- process and storage -------------------------------------------------
    Setting("MENDER_DATA_DIR", "./data", str,
            "Directory for the SQLite file, the filesystem artifact store, generated keys and secrets."),
    Setting("MENDER_DB_URL", "", str,
            "Database: `sqlite:///PATH` or `mongodb://…`. Empty: `sqlite:///$MENDER_DATA_DIR/mender.db`."),
    Setting("MENDER_MONGO_DB_NAME", "mender", str,
            "MongoDB database name, used when the URL names none."),
    Setting("MENDER_DB_TIMEOUT_SECONDS", 5.0, float,
            "SQLite busy timeout; MongoDB connection timeout, and how long migrations (at startup, on a worker's "
            "first request) wait for a reachable server before giving up (health 503 meanwhile)."),
    Setting("MENDER_MONGO_OPERATION_TIMEOUT_SECONDS", 10.0, float,
            "MongoDB: every operation ends within this time (the client's `timeoutMS`, sent as `maxTimeMS` too; "
            "then 503), except migrations' (an index build over a large collection takes what it takes). Writes "
            "wait for a majority of the replica set (`w=majority`); options in the URL win."),
    Setting("MENDER_HEALTH_TIMEOUT_SECONDS", 2.0, float,
            "How long a health check waits for the database and the artifact store."),
    Setting("MENDER_MIN_FREE_BYTES", 64 * MIB, int,
            "Health answers 503 (storage full) when the data directory's disk has less free space than this; "
            "writes that find the disk full get 503, reads go on (0: no check)."),
    Setting("MENDER_REQUEST_SIZE_LIMIT", 1 * MIB, int,
            "Largest accepted request body for JSON APIs, in bytes (larger: 413)."),
    Setting("MENDER_LOG_LEVEL", "info", str, "Log level: debug, info, warning, error."),
    Setting("MENDER_METRICS_ENABLED", True, _bool, "Serve Prometheus metrics at `/metrics`."),
    Setting("MENDER_DIRECT_ROUTES", True, _bool,
            "Serve the device's hot requests (the deployment poll, the status report, the inventory upload, "
            "the auth request) in a thin layer in front of Flask: the same authentication, limits, errors, "
            "metrics and access line without Flask's per-request machinery (docs/ARCHITECTURE.md). "
            "`false`: through Flask like every other route."),
    Setting("MENDER_METRICS_FLEET_SECONDS", 30.0, float,
            "How long each worker reuses the fleet gauges of `/metrics` (devices, deployments and device "
            "deployments by status) before counting again."),
    Setting("MENDER_TRUSTED_PROXIES", 0, int,
            "Number of reverse proxies in front of the server whose X-Forwarded-* headers are trusted."),
    Setting("MENDER_INTERNAL_BIND", "127.0.0.1:8081", str,
            "Listener (HOST:PORT) that alone serves `/api/internal/…` and `/metrics`; the public one answers 404 "
            "for them. Empty: no internal listener."),
    Setting("MENDER_HEADER_TIMEOUT_SECONDS", 30.0, float,
            "A new connection must send its request headers within this time (then it is closed)."),
    Setting("MENDER_BODY_TIMEOUT_SECONDS", 60.0, float,
            "A request body up to MENDER_REQUEST_SIZE_LIMIT must arrive within this time (else 408); a larger "
            "upload may not stall longer than this."),
    Setting("MENDER_UPLOADS_PER_CLIENT", 4, int,
            "Request bodies larger than MENDER_REQUEST_SIZE_LIMIT (artifact uploads) streamed at once from one "
            "client address, per worker (more: 429)."),
    Setting("MENDER_UPLOADS_PER_WORKER", 4, int,
            "Large uploads (artifacts) one worker streams at once, each in a thread of its own beside the app "
            "threads (`MENDER_WORKER_THREADS`); more wait up to MENDER_BODY_TIMEOUT_SECONDS for one, then 503."),
    Setting("MENDER_MULTI_TENANT", False, _bool,
            "Strict multi-tenancy: a device must present its organization's tenant token (an empty one "
            "is refused). Off: an empty tenant token admits the device to the default organization."),
    # --- tenantadm -------------------------------------------------------------
    Setting("TENANTADM_SIGNUP", "closed", str,
            "Who may create organizations over the management API: `closed` (administrators of the default "
            "organization only; the CLI and the internal API always can), `approval` (anyone signs up; the "
            "organization stays inactive until an administrator of the default organization activates it), `open` "
            "(anyone; active at once)."),
    Setting("TENANTADM_SERVER_PRIV_KEY_PATH", "", str,
            "PEM private key signing tenant tokens. Empty: generated Ed25519 key in the data dir."),
    Setting("TENANTADM_SERVER_FALLBACK_PRIV_KEY_PATH", "", str,
            "Previous tenant-token key, accepted for verification only (key rotation)."),
    # --- useradm ---------------------------------------------------------------
    Setting("USERADM_SERVER_PRIV_KEY_PATH", "", str,
            "PEM private key for user tokens (RSA → RS256, Ed25519 → EdDSA). Empty: generated Ed25519 key in the data dir."),
    Setting("USERADM_SERVER_FALLBACK_PRIV_KEY_PATH", "", str,
            "Previous user-token key, accepted for verification only (key rotation)."),
    Setting("USERADM_JWT_ISSUER", "mender.useradm", str, "`iss` claim of user tokens."),
    Setting("USERADM_JWT_EXP_TIMEOUT", 604800, int, "User token lifetime in seconds."),
    Setting("USERADM_LIMIT_SESSIONS_PER_USER", 10, int,
            "Login sessions kept per user; the oldest are revoked beyond it."),
    Setting("USERADM_LIMIT_TOKENS_PER_USER", 10, int, "Personal access tokens per user."),
    Setting("USERADM_TOKEN_MAX_EXPIRATION_SECONDS", 31536000, int,
            "Longest personal access token lifetime."),
    Setting("USERADM_RATE_LIMIT_LOGIN", "10/minute", str,
            "Failed login attempts allowed per email and per client address (Flask-Limiter syntax, "
            "e.g. `10/minute;100/hour`). Empty: no limit."),
    Setting("USERADM_RATE_LIMIT_STORAGE_URL", "", str,
            "Flask-Limiter storage URI. Empty: the database (shared by all workers)."),
    Setting("USERADM_MAX_USERS", -1, int,
            "Default limit of users per organization (-1: unlimited); `flask tenantadm set-limits` sets one "
            "organization's."),
    Setting("MENDER_ADMIN_EMAIL", "", str, "Bootstrap: create this admin user at first start if no user exists."),
    Setting("MENDER_ADMIN_PASSWORD", "", str, "Bootstrap admin password (with MENDER_ADMIN_EMAIL)."),
    # --- deviceauth ------------------------------------------------------------
    Setting("DEVICEAUTH_SERVER_PRIV_KEY_PATH", "", str,
            "PEM private key for device tokens (RSA → RS256, Ed25519 → EdDSA). Empty: generated Ed25519 key in the data dir."),
    Setting("DEVICEAUTH_SERVER_FALLBACK_PRIV_KEY_PATH", "", str,
            "Previous device-token key, accepted for verification only (key rotation)."),
    Setting("DEVICEAUTH_JWT_ISSUER", "Mender", str, "`iss` claim of device tokens."),
    Setting("DEVICEAUTH_JWT_EXP_TIMEOUT", 604800, int, "Device token lifetime in seconds."),
    Setting("DEVICEAUTH_CHECK_IN_BATCH_SECONDS", 1.0, float,
            "Device check-in times are written in batches this often per worker (0: in each request)."),
    Setting("DEVICEAUTH_MAX_DEVICES", -1, int,
            "Default accepted-device limit per tenant (-1: unlimited)."),
    Setting("DEVAUTH_MAX_PENDING", 10000, int,
            "Pending devices per organization: beyond it, auth requests from new identities get 429 (known "
            "devices are unaffected; -1: unlimited)."),
    Setting("DEVAUTH_MAX_PENDING_KEYS", 8, int,
            "Pending auth sets (keys awaiting a decision) per device: beyond it, auth requests with a new key "
            "for that identity get 429 (-1: unlimited)."),
    Setting("DEVAUTH_BULK_MAX_DEVICES", 10000, int,
            "Devices one bulk accept, reject or decommission request may act on (each goes through the "
            "admission rules on its own); a selection matching more is refused with 400."),
    # --- inventory -------------------------------------------------------------
    Setting("INVENTORY_LIMIT_ATTRIBUTES", 100, int, "Inventory attributes a device may report."),
    Setting("INVENTORY_LIMIT_TAGS", 20, int, "Tags per device."),
    Setting("INVENTORY_BULK_MAX_DEVICES", 100000, int,
            "Devices one bulk group or tag request may act on; a selection matching more is refused with 400. "
            "Group changes are written in batches of 500, one transaction each."),
    # --- deployments -----------------------------------------------------------
    Setting("DEPLOYMENTS_STORAGE_DEFAULT", "filesystem", str,
            "Artifact store: `filesystem` (in the data dir) or `aws` (S3)."),
    Setting("DEPLOYMENTS_STORAGE_BUCKET", "mender-artifact-storage", str, "S3 bucket."),
    Setting("DEPLOYMENTS_STORAGE_MAX_IMAGE_SIZE", 10 * GIB, int, "Largest artifact upload, in bytes (larger: 413)."),
    Setting("DEPLOYMENTS_ARTIFACT_MAX_UNPACKED_SIZE", 20 * GIB, int,
            "Most bytes an artifact's compressed header and payloads may unpack to, in all (more: 400)."),
    Setting("DEPLOYMENTS_ARTIFACT_MAX_UNPACK_RATIO", 2000.0, float,
            "Most bytes each compressed member of an artifact may unpack to, per byte of it (plus 1 MiB; more: 400)."),
    Setting("DEPLOYMENTS_ARTIFACT_MAX_ENTRIES", 10000, int,
            "Most tar entries (pax and GNU records included) in one artifact, all its tars together (more: 400)."),
    Setting("DEPLOYMENTS_ARTIFACT_MAX_CPU_SECONDS", 600.0, float,
            "Most CPU time reading one artifact may take (its thread's own CPU time; more: 400)."),
    Setting("DEPLOYMENTS_STORAGE_SWEEP_INTERVAL_SECONDS", 60.0, float,
            "How often each server process removes what interrupted uploads left in the artifact storage "
            "(0: only at start)."),
    Setting("DEPLOYMENTS_STORAGE_LIMIT", 0, int,
            "Default artifact storage limit per organization, in bytes (0: unlimited); the internal "
            "`tenants/{id}/limits/storage` operations set one organization's."),
    Setting("DEPLOYMENTS_STORAGE_DOWNLOAD_EXPIRE_SECONDS", 900, int,
            "Lifetime of management download links."),
    Setting("DEPLOYMENTS_STORAGE_UPLOAD_EXPIRE_SECONDS", 3600, int, "Lifetime of direct-upload links."),
    Setting("DEPLOYMENTS_DEVICE_DOWNLOAD_EXPIRE_SECONDS", 86400, int,
            "Lifetime of the artifact links handed to devices."),
    Setting("DEPLOYMENTS_AWS_URI", "", str, "S3 endpoint the server uses (empty: AWS)."),
    Setting("DEPLOYMENTS_AWS_EXTERNAL_URI", "", str, "S3 endpoint put in links handed to devices and operators."),
    Setting("DEPLOYMENTS_AWS_REGION", "us-east-1", str, "S3 region."),
    Setting("DEPLOYMENTS_AWS_FORCE_PATH_STYLE", True, _bool, "Path-style S3 addressing."),
    Setting("DEPLOYMENTS_AWS_AUTH_KEY", "", str, "S3 access key id."),
    Setting("DEPLOYMENTS_AWS_AUTH_SECRET", "", str, "S3 secret access key."),
    Setting("DEPLOYMENTS_AWS_EXISTS_CACHE_SECONDS", 60.0, float,
            "How long a server process takes an artifact's S3 object as still there after checking it "
            "(a HEAD) before handing out a download link (0: check for every link)."),
    Setting("DEPLOYMENTS_PRESIGN_SECRET", "", str,
            "Base64 HMAC secret for the server's own signed download links. Empty: generated in the data dir."),
    Setting("DEPLOYMENTS_PRESIGN_URL_HOSTNAME", "", str,
            "Host (and port) put in signed links. Empty: the Host of the request."),
    Setting("DEPLOYMENTS_PRESIGN_URL_SCHEME", "", str,
            "Scheme of signed links. Empty: the scheme of the request."),
    # --- deviceconnect ---------------------------------------------------------
    Setting("DEVICECONNECT_NATS_URI", "", str,
            "Message bus between the processes holding device and operator sockets. Empty: the "
            "embedded bus (unix sockets between this box's workers); `nats://host:4222`: NATS (several hosts)."),
    Setting("DEVICECONNECT_MAX_MESSAGE_SIZE", 64 * KIB, int,
            "Largest WebSocket message a device may send, in bytes (larger: closed with 1009). An "
            "operator's messages are relayed to mender-connect, which reads at most 8 KiB: 8 KiB for them."),
    Setting("DEVICECONNECT_MESSAGE_RATE", 2000, int,
            "Messages per second a connection may send; faster senders are slowed down (back-pressure)."),
    Setting("DEVICECONNECT_FLOOD_SECONDS", 10.0, float,
            "A connection that keeps sending faster than DEVICECONNECT_MESSAGE_RATE this long is closed (1008)."),
    Setting("DEVICECONNECT_SESSION_IDLE_TIMEOUT_SECONDS", 1800, int,
            "An operator session with no message either way for this long is closed."),
    Setting("DEVICECONNECT_PING_INTERVAL_SECONDS", 50, int,
            "Ping every device and operator socket this often (proxies see traffic); a ping unanswered "
            "for as long closes the socket (its peer is gone). 0: no pings."),
    Setting("DEVICECONNECT_OPERATOR_RECHECK_SECONDS", 60.0, float,
            "An open operator session or playback is re-decided this often: a revoked token, a role taken "
            "away or the device moved out of a limited role's groups closes it (1008)."),
    Setting("DEVICECONNECT_MAX_SESSIONS_PER_USER", 32, int,
            "Operator websockets (terminal/port-forward/file-transfer sessions and playbacks) one user may "
            "hold open in one worker process; one more is refused with 429. 0: no limit."),
    Setting("DEVICECONNECT_RECORDING_LIMIT", 8 * MIB, int,
            "Terminal output recorded per session, in bytes; a session that reaches it is ended (as Mender)."),
    Setting("DEVICECONNECT_RECORDING_RETENTION_SECONDS", 30 * 86400, int,
            "How long terminal recordings and session records are kept."),
    Setting("DEVICECONNECT_FILE_TRANSFER_MAX_SIZE", 1 * GIB, int,
            "Largest file uploaded to or downloaded from a device, in bytes."),
    Setting("DEVICECONNECT_FILE_TRANSFER_TIMEOUT_SECONDS", 60, int,
            "A file transfer fails when the device is silent this long."),
    # --- iot-manager (webhooks) -------------------------------------------------
    Setting("IOT_MANAGER_WEBHOOKS_TIMEOUT_SECONDS", 10.0, float,
            "Longest one webhook delivery attempt may take, from resolving the host to reading the answer."),
    Setting("IOT_MANAGER_WEBHOOKS_RETRY_BASE_SECONDS", 5.0, float,
            "Delay after a delivery's first failed attempt; doubled after each further failure, each delay "
            "drawn from its upper half (jitter)."),
    Setting("IOT_MANAGER_WEBHOOKS_RETRY_MAX_DELAY_SECONDS", 600.0, float, "Longest delay between two attempts."),
    Setting("IOT_MANAGER_WEBHOOKS_RETRY_MAX_SECONDS", 3600.0, float,
            "How long after an event its deliveries are retried (no attempt starts later; the first always happens)."),
    Setting("IOT_MANAGER_WEBHOOKS_WORKERS", 2, int,
            "Delivery threads per server process (each serves one integration at a time)."),
    Setting("IOT_MANAGER_WEBHOOKS_POLL_SECONDS", 1.0, float,
            "How often idle delivery threads look for due deliveries (an event recorded in the same process "
            "wakes them at once). 0: this process delivers nothing."),
    Setting("IOT_MANAGER_DOMAIN_SKIPVERIFY", False, _bool,
            "Allow webhook deliveries to loopback, private, link-local and other non-public addresses "
            "(turns the SSRF protection off)."),
    Setting("IOT_MANAGER_EVENT_EXP_TIMEOUT", 604800, int,
            "How long events and their delivery records are kept, in seconds."),
    # --- auditlogs -------------------------------------------------------------
    Setting("AUDITLOGS_RETENTION_DAYS", 90, int,
            "Audit log entries older than this many days are removed (SQLite: by each process at most "
            "hourly; MongoDB: by its TTL index). 0: kept forever."),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


class Config(dict):
    """The resolved configuration: a plain mapping from setting name to typed value."""

    @property
    def data_dir(self) -> str:
        return self["MENDER_DATA_DIR"]

    @property
    def db_url(self) -> str:
        return self["MENDER_DB_URL"] or "sqlite:///" + os.path.join(self.data_dir, "mender.db")

    @property
    def embedded_db(self) -> bool:
        """The database is SQLite (the default), not MongoDB."""
        return self.db_url.startswith("sqlite:")


# The process model's defaults, by database (WEB_CONCURRENCY and MENDER_WORKER_THREADS override).
# SQLite admits one writer at a time, across every process (common.db's writer lock), and its
# holder takes its process's GIL back after every statement, behind the process's other threads:
# with 8 app threads per worker a hold's 90th percentile was 7-17 ms for 0.02-0.13 ms of SQLite
# work (bench/README.md, issue 21). Fewer threads per process and more processes keep the holds
# short (bench/writer_handover.py: 4 processes x 2 threads commit 8 x what 1 x 8 does beside busy
# threads); in the million-device wave 8 x 2 kept every endpoint's p99 under 100 ms in 5 of 7
# runs, 4 x 8 in 6 of 11. On MongoDB requests wait on the network and there is no such lock: more
# threads per process overlap the waits.
SQLITE_WORKERS_PER_CORE, SQLITE_THREADS = 4, 2
MONGO_WORKERS_PER_CORE, MONGO_THREADS = 2, 8
# SQLite's writes go one at a time whatever the number of processes: past this many workers a big
# box only adds ~90 MB of memory per worker (a 64-core machine would otherwise start 256)
SQLITE_MAX_WORKERS = 32


def default_workers(config: Config, cores: int) -> int:
    """gunicorn workers when WEB_CONCURRENCY is not set."""
    if config.embedded_db:
        return min(SQLITE_MAX_WORKERS, max(1, cores) * SQLITE_WORKERS_PER_CORE)
    return max(1, cores) * MONGO_WORKERS_PER_CORE


def default_threads(config: Mapping[str, Any]) -> int:
    """App threads per worker (common.asgi's pool) when MENDER_WORKER_THREADS is not set."""
    url = config.get("MENDER_DB_URL") or ""
    return SQLITE_THREADS if not url or url.startswith("sqlite:") else MONGO_THREADS


def load_config(overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Resolve every setting: explicit overrides, then the environment, then the default.

    Raises ConfigError naming the variable when a value cannot be parsed.
    Keys of `overrides` that are not settings are kept as they are (test hooks).
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    cfg = Config()
    for s in SETTINGS:
        if s.name in overrides:
            value = overrides.pop(s.name)
            if isinstance(value, str) and not isinstance(s.default, str):
                value = _parse(s, value)
        elif s.name in environ:
            value = _parse(s, environ[s.name])
        else:
            value = s.default
        cfg[s.name] = value
    cfg.update(overrides)
    cfg["MENDER_DATA_DIR"] = os.path.abspath(cfg["MENDER_DATA_DIR"])
    return cfg


def _parse(setting: Setting, raw: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{setting.name}: {exc}") from None


def markdown_table() -> str:
    """The settings table as Markdown, as the README carries it."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = "" if s.default == "" else str(s.default).lower() if isinstance(s.default, bool) else str(s.default)
        rows.append(f"| `{s.name}` | `{default}` | {s.doc} |" if default else f"| `{s.name}` | | {s.doc} |")
    return "\n".join(rows)
