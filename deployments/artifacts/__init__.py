"""Artifacts and releases: upload and parsing of .mender files, artifact storage, download links."""

from __future__ import annotations

import base64
import binascii
import threading

from common.errors import ConfigError
from common.keys import load_or_generate_secret

UPLOAD_ENDPOINTS = {
    ("POST", "deployments_artifacts.Artifacts"),
    ("POST", "deployments_artifacts.GenerateArtifact"),
    ("POST", "deployments_artifacts_internal.TenantArtifacts"),
    ("PUT", "deployments_artifacts_download.DirectUploadTarget"),
}
MULTIPART_OVERHEAD = 1024 * 1024  # form fields and part headers around the artifact


def _signer_factory(ctx):
    lock = threading.Lock()
    cache: list = []

    def signer():
        if not cache:
            with lock:
                if not cache:
                    from deployments.artifacts.links import LinkSigner
                    configured = ctx.config["DEPLOYMENTS_PRESIGN_SECRET"]
                    if configured:
                        try:
                            secret = base64.b64decode(configured, validate=True)
                        except (binascii.Error, ValueError):
                            raise ConfigError("DEPLOYMENTS_PRESIGN_SECRET: not base64") from None
                    else:
                        secret = load_or_generate_secret(ctx.config.data_dir, "deployments-presign-secret")
                    cache.append(LinkSigner(secret, ctx.clock))
        return cache[0]

    return signer


def init_app(app, api, ctx) -> None:
    """Build the artifacts service and register its blueprints."""
    from deployments.artifacts.api import internal, management, public, releases, software
    from deployments.artifacts.service import ArtifactsService
    from deployments.artifacts.storage import make_storage
    from deployments.artifacts.store import make_store
    from deployments.artifacts.sweeper import PeriodicSweep

    store = make_store(ctx.db)
    ctx.add_migrations("artifacts", store.migrations)
    signer = _signer_factory(ctx)
    storage = make_storage(ctx.config, ctx.clock, signer)
    service = ctx.services.artifacts = ArtifactsService(store, ctx.config, ctx.clock, ctx.services, storage, signer)
    # a role limited to release tags sees a release (an artifact) by id only with one of its tags
    ctx.authorizer.checkers["release"] = lambda tenant, name, access: service.release_visible(
        tenant, name, access.release_tags)
    ctx.authorizer.checkers["artifact"] = lambda tenant, artifact_id, access: service.artifact_visible(
        tenant, artifact_id, access.release_tags)
    for blp in (management.blp, releases.v1, releases.v2, software.blp, public.blp, internal.blp):
        api.register_blueprint(blp)
    ctx.health_checks.setdefault("deployments", []).append(storage.check)
    ctx.startup_hooks.append(storage.sweep)

    def sweep() -> int:
        return storage.sweep() + service.sweep_direct_uploads()

    sweeper = PeriodicSweep(sweep, float(ctx.config["DEPLOYMENTS_STORAGE_SWEEP_INTERVAL_SECONDS"]))
    ctx.request_hooks.append(sweeper.ensure_started)
    ctx.shutdown_hooks.append(sweeper.stop)

    # uploads take artifacts up to the image size limit instead of the app's 1 MiB JSON limit;
    # common.http applies it before reading the body, and closes the connection on a refusal
    limit = int(ctx.config["DEPLOYMENTS_STORAGE_MAX_IMAGE_SIZE"]) + MULTIPART_OVERHEAD
    for endpoint in UPLOAD_ENDPOINTS:
        ctx.body_limits[endpoint] = limit
