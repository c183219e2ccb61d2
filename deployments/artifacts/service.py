"""Artifacts: upload (stored and parsed in one pass), listing, editing, deletion, links, direct upload."""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from typing import Iterator
from urllib.parse import quote

from common.errors import BadRequest, Conflict, NotFound, ServiceError, TooLarge, Unavailable, Unprocessable
from deployments.artifacts.generate import build_single_file, temp_dir_for
from deployments.artifacts.generate import parse_args as parse_generate_args
from deployments.artifacts.limits import ReadLimits
from deployments.artifacts.model import Artifact, ArtifactBrief, DirectUpload, Link
from deployments.artifacts.parser import ArtifactMeta, InvalidArtifact, drain_tail, parse_artifact
from deployments.artifacts.releases import ReleasesMixin
from deployments.artifacts.storage import ArtifactStorage, clamp_expiry, new_object_key, object_key, tenant_prefix
from deployments.artifacts.streams import StreamError, TeeReader, file_chunks
from deployments.artifacts.strings import MAX_NAME_BYTES, description_problem, string_problem

log = logging.getLogger(__name__)

DOWNLOAD_PATH = "/api/devices/v1/deployments/download/artifacts/{id}"
UPLOAD_PATH = "/api/devices/v1/deployments/download/uploads/{id}"
STORAGE_LIMIT = "storage"  # bytes of artifacts an organization may keep (0: unlimited)
MAX_DEPENDS_COMBINATIONS = 1024
MAX_DESCRIPTION = 4096
# how long after its link expired a direct upload is kept: a PUT begun before the expiry (S3 checks
# it when the request starts) may still be sending; then its staging object and record go
# (sweep_direct_uploads), whatever came of the upload
DIRECT_UPLOAD_GRACE_SECONDS = 24 * 3600
DIRECT_UPLOAD_SWEEP_BATCH = 500


def depends_index(depends: dict[str, list[str]]) -> list[str]:
    """Every combination of one value per depends key, as canonical JSON (Mender's depends_idx)."""
    keys = sorted(depends)
    count = 1
    for k in keys:
        count *= max(1, len(depends[k]))
    if count > MAX_DEPENDS_COMBINATIONS:
        raise InvalidArtifact(f"invalid artifact: artifact_depends has {count} combinations "
                              f"(at most {MAX_DEPENDS_COMBINATIONS})")
    combos = itertools.product(*(sorted(set(depends[k])) for k in keys))
    return sorted(json.dumps(dict(zip(keys, values)), sort_keys=True, separators=(",", ":")) for values in combos)


class ArtifactConflict(Conflict):
    """An artifact with the same name shares a depends combination with the new one: `other` is
    that artifact, `depends` the first combination they share (the API names both)."""

    def __init__(self, other: Artifact, name: str, depends: dict):
        super().__init__(f"an artifact with the same name and depends already exists: artifact {other.id} is "
                         f"named {name!r} and depends on {json.dumps(depends)}")
        self.other, self.name, self.depends = other, name, depends


def parse_artifact_id(raw: str | None) -> str | None:
    """A client-chosen artifact id must be a UUID; returned canonical. BadRequest otherwise."""
    if raw is None or raw == "":
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise BadRequest("artifact_id: must be a UUID") from None


def _raise_stream_failure(exc: StreamError) -> None:
    """Raise what a failed upload stream means: the reader's own error (a limit, a bad artifact),
    the storage failing (503), or the client going away (400)."""
    if isinstance(exc.original, ServiceError) or getattr(exc.original, "code", None):
        raise exc.original from None
    if exc.side == "sink":
        raise Unavailable("artifact storage failed") from exc
    raise BadRequest("the upload was interrupted") from exc


class ArtifactsService(ReleasesMixin):
    """The artifacts rules. Takes `tenant` explicitly; never imports flask."""

    def __init__(self, store, config, clock, services, storage: ArtifactStorage, signer=None):
        self.signer = signer  # () -> LinkSigner (filesystem links)
        self.store = store
        self.config = config
        self.clock = clock
        self._services = services
        self.storage = storage

    @property
    def max_size(self) -> int:
        return int(self.config["DEPLOYMENTS_STORAGE_MAX_IMAGE_SIZE"])

    def _too_large(self) -> None:
        raise TooLarge(f"artifact too large (limit {self.max_size} bytes)")

    # ------------------------------------------------------------------ storage limit
    def storage_limit(self, tenant: str) -> int:
        """The organization's artifact storage limit in bytes (0: unlimited)."""
        value = self.store.get_limit(tenant, STORAGE_LIMIT)
        return int(self.config["DEPLOYMENTS_STORAGE_LIMIT"]) if value is None else value

    def set_storage_limit(self, tenant: str, limit: int) -> None:
        """Set the organization's storage limit (0: unlimited); BadRequest."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise BadRequest("limit: must be an integer >= 0 (0: unlimited)")
        self.store.set_limit(tenant, STORAGE_LIMIT, limit)

    def _over_limit(self, tenant: str, limit: int) -> TooLarge:
        return TooLarge(f"artifact storage limit exceeded: the organization may store {limit} bytes of "
                        f"artifacts and uses {self.store.storage_usage(tenant)}")

    def _stream_limit(self, tenant: str):
        """(bytes an upload may have, what to raise past them): the image size limit, or less
        when the organization's storage limit leaves less room. TooLarge when it leaves none."""
        limit = self.storage_limit(tenant)
        if limit <= 0:
            return self.max_size, self._too_large
        room = limit - self.store.storage_usage(tenant)
        if room <= 0:
            raise self._over_limit(tenant, limit)
        if room >= self.max_size:
            return self.max_size, self._too_large

        def over() -> None:
            raise self._over_limit(tenant, limit)
        return room, over

    def _insert_within_limit(self, tenant: str, record: Artifact) -> None:
        """Register an artifact unless the organization's storage limit forbids it (TooLarge):
        checked with the insert in one transaction (SQLite), and again after it, so that on a
        backend without transactions concurrent uploads never go past the limit together (both
        may then be refused). An organization that is no longer active takes no artifact."""
        self._services.tenantadm.require_active(tenant)
        limit = self.storage_limit(tenant)
        with self.store.transaction():
            if limit > 0 and self.store.storage_usage(tenant) + record.size > limit:
                raise self._over_limit(tenant, limit)
            self.store.insert_artifact(tenant, record)
        if limit > 0 and self.store.storage_usage(tenant) > limit:
            self.store.delete_artifact(tenant, record.id)
            raise self._over_limit(tenant, limit)

    def delete_tenant(self, tenant: str) -> None:
        """Remove every artifact object (unfinished uploads included) and record of the
        organization; idempotent. Not for the default organization."""
        self._storage_call(self.storage.delete_prefix, tenant_prefix(tenant))
        self.store.delete_tenant(tenant)

    def _in_use(self, tenant: str, artifact_id: str) -> bool:
        deployments = getattr(self._services, "deployments", None)
        return bool(deployments is not None and deployments.artifact_in_use(tenant, artifact_id))

    # ------------------------------------------------------------------ upload
    def upload(self, tenant: str, chunks: Iterator[bytes], *, description: str = "",
               artifact_id: str | None = None, declared_size: int | None = None) -> Artifact:
        """Store and parse an artifact from a stream of byte chunks in one pass, then register it.
        InvalidArtifact (400), TooLarge (413) or Conflict (409: ArtifactConflict when the name and
        depends clash); nothing is left behind on failure."""
        self._check_description(description)
        artifact_id = artifact_id or str(uuid.uuid4())
        if self.store.get_artifact(tenant, artifact_id) is not None:
            raise Conflict(f"artifact {artifact_id} already exists")
        key = new_object_key(tenant, artifact_id)
        self._services.tenantadm.require_active(tenant)
        limit, on_exceed = self._stream_limit(tenant)
        writer = self._storage_call(self.storage.writer, key)
        committed = False
        try:
            tee = TeeReader(chunks, writer.write, limit=limit, on_exceed=on_exceed)
            meta = self._parse(tee)
            if declared_size is not None and declared_size > 0 and declared_size != tee.count:
                raise BadRequest(f"size: {declared_size} does not match the artifact's {tee.count} bytes")
            record = self._record(meta, artifact_id, description, tee.count, key)
            self._check_conflict(tenant, record.name, record.depends_idx)
            self._storage_call(writer.commit)
            committed = True
            self._insert_within_limit(tenant, record)
        except BaseException:
            if committed:
                self._delete_object(key)
            else:
                writer.abort()
            raise
        log.info("artifact uploaded", extra={"artifact_id": artifact_id})
        return record

    def _parse(self, tee: TeeReader) -> ArtifactMeta:
        try:
            meta = parse_artifact(tee, ReadLimits.from_config(self.config))
            tee.drain(drain_tail)
            return meta
        except StreamError as exc:
            _raise_stream_failure(exc)

    @staticmethod
    def _storage_call(fn, *args):
        try:
            return fn(*args)
        except ServiceError:
            raise
        except Exception as exc:  # boto/OS errors: the store is not answering as it should
            log.warning("artifact storage failed: %r", exc)
            raise Unavailable("artifact storage failed") from exc

    def _delete_object(self, key: str) -> None:
        try:
            self.storage.delete(key)
        except Exception as exc:  # an orphan object is invisible; never mask the original error
            log.warning("could not delete artifact object %s: %r", key, exc)

    def _check_description(self, description: str) -> None:
        if len(description) > MAX_DESCRIPTION:
            raise BadRequest(f"description: longer than {MAX_DESCRIPTION} characters")
        if problem := description_problem(description):
            raise BadRequest(f"description: {problem}")

    def _record(self, meta: ArtifactMeta, artifact_id: str, description: str, size: int,
                storage_key: str) -> Artifact:
        return Artifact(id=artifact_id, name=meta.name, description=description, storage_key=storage_key,
                        device_types=meta.device_types, update_types=meta.update_types,
                        info={"format": "mender", "version": meta.version}, signed=meta.signed,
                        updates=meta.updates, provides=meta.provides, depends=meta.depends,
                        clears_provides=meta.clears_provides, depends_idx=depends_index(meta.depends),
                        size=size, modified=self.clock.now())

    def _check_conflict(self, tenant: str, name: str, depends_idx: list[str]) -> None:
        other = self.store.find_conflict(tenant, name, depends_idx)
        if other is not None:
            clash = sorted(set(other.depends_idx) & set(depends_idx))
            raise ArtifactConflict(other, name, json.loads(clash[0]) if clash else {})

    # ------------------------------------------------------------------ queries
    def get(self, tenant: str, artifact_id: str) -> Artifact:
        """An artifact; NotFound."""
        return self._get(tenant, artifact_id)

    def get_for_device(self, tenant: str, artifact_id: str) -> ArtifactBrief:
        """What deployment instructions name of an artifact (one narrow read: every poll of a
        device with a pending deployment asks); NotFound."""
        artifact = self.store.get_artifact_brief(tenant, artifact_id)
        if artifact is None:
            raise NotFound("artifact not found")
        return artifact

    def _get(self, tenant: str, artifact_id: str) -> Artifact:
        try:
            artifact_id = str(uuid.UUID(artifact_id))
        except ValueError:
            raise NotFound("artifact not found") from None
        artifact = self.store.get_artifact(tenant, artifact_id)
        if artifact is None:
            raise NotFound("artifact not found")
        return artifact

    def find_by_name(self, tenant: str, name: str) -> list[Artifact]:
        """The artifacts with that name (a release), by id."""
        return self.store.artifacts_by_names(tenant, [name])

    def list(self, tenant: str, *, name=None, description=None, device_type=None, sort=("name", True),
             skip: int = 0, limit: int | None = None) -> tuple[list[Artifact], int]:
        return self.store.list_artifacts(tenant, name=name, description=description, device_type=device_type,
                                         sort=sort, skip=skip, limit=limit)

    def storage_usage(self, tenant: str) -> int:
        """Bytes of the tenant's artifacts."""
        return self.store.storage_usage(tenant)

    # ------------------------------------------------------------------ changes
    def edit(self, tenant: str, artifact_id: str, description: str) -> None:
        """Change the description; NotFound; Unprocessable while a deployment uses the artifact."""
        self._check_description(description)
        artifact = self._get(tenant, artifact_id)
        if self._in_use(tenant, artifact.id):
            raise Unprocessable("the artifact is used by an active deployment")
        if not self.store.update_description(tenant, artifact.id, description, self.clock.now()):
            raise NotFound("artifact not found")

    def delete(self, tenant: str, artifact_id: str) -> None:
        """Delete the record, then the object. NotFound; Conflict while a deployment uses it."""
        artifact = self._get(tenant, artifact_id)
        if self._in_use(tenant, artifact.id):
            raise Conflict("the artifact is used by an active deployment")
        if self.store.delete_artifact(tenant, artifact.id) is None:
            raise NotFound("artifact not found")
        self._delete_object(artifact.storage_key)

    # ------------------------------------------------------------------ links
    def _link(self, tenant: str, artifact: Artifact | ArtifactBrief, base_url: str, lifetime: int) -> Link:
        uri, expire = self._storage_call(lambda: self.storage.download_link(
            artifact.storage_key, tenant=tenant, filename=f"{artifact.name}.mender",
            expires_in=clamp_expiry(lifetime), base_url=base_url.rstrip("/"),
            path=DOWNLOAD_PATH.format(id=artifact.id)))
        return Link(uri, expire)

    def device_link(self, tenant: str, artifact_id: str, base_url: str) -> Link:
        """A link a device can GET without a token; NotFound."""
        return self.device_link_for(tenant, self._get(tenant, artifact_id), base_url)

    def device_link_for(self, tenant: str, artifact: Artifact | ArtifactBrief, base_url: str) -> Link:
        """device_link for an artifact already read (`get`, `get_for_device`, `find_by_name`)."""
        return self._link(tenant, artifact, base_url, self.config["DEPLOYMENTS_DEVICE_DOWNLOAD_EXPIRE_SECONDS"])

    def server_link(self, tenant: str, path: str, base_url: str) -> Link:
        """A link to one of this server's own device endpoints that take no token (`path` as the
        request will show it, unquoted: a generated configuration artifact), signed for `tenant`
        and expiring as device links do, whatever the artifact storage."""
        query, expire = self.signer().sign("GET", path, tenant,
                                           clamp_expiry(self.config["DEPLOYMENTS_DEVICE_DOWNLOAD_EXPIRE_SECONDS"]))
        return Link(f"{base_url.rstrip('/')}{quote(path)}?{query}", expire)

    def verify_server_link(self, method: str, path: str, args) -> str:
        """The tenant a server_link names; BadRequest (parameters missing or malformed), Forbidden
        (expired or tampered with)."""
        tenant, _ = self.signer().verify(method, path, args)
        return tenant

    def download_link(self, tenant: str, artifact_id: str, base_url: str) -> Link:
        """The management download link; NotFound."""
        return self._link(tenant, self._get(tenant, artifact_id), base_url,
                          self.config["DEPLOYMENTS_STORAGE_DOWNLOAD_EXPIRE_SECONDS"])

    def file_for_download(self, tenant: str, artifact_id: str, obj: str | None) -> tuple[Artifact, str]:
        """(artifact, local path) behind a verified filesystem link that names object `obj` (None:
        a link from before links named their object, good only for an artifact stored then);
        NotFound, also when the artifact now has another object (deleted and uploaded again)."""
        artifact = self._get(tenant, artifact_id)
        key = artifact.storage_key
        if key != (obj if obj is not None else object_key(tenant, artifact.id)):
            raise NotFound("the artifact file this link was made for no longer exists")
        return artifact, self.storage.path(key)

    # ------------------------------------------------------------------ direct upload
    def request_direct_upload(self, tenant: str, base_url: str) -> DirectUpload:
        upload_id = str(uuid.uuid4())
        staging = object_key(tenant, upload_id) + ".upload"
        uri, expire = self._storage_call(lambda: self.storage.upload_link(
            staging, tenant=tenant, expires_in=clamp_expiry(self.config["DEPLOYMENTS_STORAGE_UPLOAD_EXPIRE_SECONDS"]),
            base_url=base_url.rstrip("/"), path=UPLOAD_PATH.format(id=upload_id)))
        self.store.insert_upload(tenant, upload_id, expire, self.clock.now())
        return DirectUpload(upload_id, Link(uri, expire))

    def receive_direct_upload(self, tenant: str, upload_id: str, chunks: Iterator[bytes]) -> None:
        """The body of a filesystem direct-upload link; NotFound unless the upload is pending."""
        upload_id = self._pending_upload(tenant, upload_id)
        limit, on_exceed = self._stream_limit(tenant)
        writer = self._storage_call(self.storage.writer, object_key(tenant, upload_id) + ".upload")
        try:
            tee = TeeReader(chunks, writer.write, limit=limit, on_exceed=on_exceed)
            try:
                tee.drain()
            except StreamError as exc:
                _raise_stream_failure(exc)
            self._storage_call(writer.commit)
        except BaseException:
            writer.abort()
            raise

    def _pending_upload(self, tenant: str, upload_id: str) -> str:
        try:
            upload_id = str(uuid.UUID(upload_id))
        except ValueError:
            raise NotFound("upload not found") from None
        if self.store.upload_status(tenant, upload_id) != "pending":
            raise NotFound("no pending direct upload with this id")
        return upload_id

    def complete_direct_upload(self, tenant: str, upload_id: str) -> Artifact:
        """Parse the uploaded object and register it as artifact `upload_id`.
        NotFound (no pending upload), BadRequest (nothing uploaded, or not an artifact)."""
        upload_id = self._pending_upload(tenant, upload_id)
        if not self.store.claim_upload(tenant, upload_id):
            raise NotFound("no pending direct upload with this id")
        key = new_object_key(tenant, upload_id)
        staging = object_key(tenant, upload_id) + ".upload"
        if not self._storage_call(self.storage.exists, staging):
            self.store.set_upload_status(tenant, upload_id, "pending")
            raise BadRequest("nothing has been uploaded to the link yet")
        try:
            # the object moves to the artifact's key first, and the parser reads it there: a PUT
            # through the link still in flight then commits to the staging key, never over the
            # bytes parsed (parsed at the staging key and moved after, such a PUT's unparsed
            # bytes became the artifact)
            self._storage_call(self.storage.promote, staging, key)
            limit, on_exceed = self._stream_limit(tenant)
            source = self._storage_call(self.storage.open, key)
            try:
                tee = TeeReader(file_chunks(source), lambda _: None, limit=limit, on_exceed=on_exceed)
                meta = self._parse(tee)
            finally:
                source.close()
            record = self._record(meta, upload_id, "", tee.count, key)
            self._check_conflict(tenant, record.name, record.depends_idx)
            self._insert_within_limit(tenant, record)
        except BaseException:
            self._delete_object(key)
            self._delete_object(staging)
            self.store.set_upload_status(tenant, upload_id, "aborted")
            raise
        self.store.set_upload_status(tenant, upload_id, "completed")
        return record

    def sweep_direct_uploads(self) -> int:
        """Remove the direct uploads whose link expired over DIRECT_UPLOAD_GRACE_SECONDS ago, with
        their staging objects: one never completed (abandoned; `complete` then answers 404), and
        the object a PUT through the link put after `complete` (an S3 presigned PUT cannot be
        revoked; a filesystem PUT still in flight commits after `complete` moved the object). The
        object goes first, then the record, if still in the status read: an upload `complete`
        claims meanwhile is left to it. One being completed (`processing`) is left alone.
        Returns how many were removed; every process may run it (each step is idempotent)."""
        removed = 0
        before = self.clock.now() - DIRECT_UPLOAD_GRACE_SECONDS
        for tenant, upload_id, status in self.store.expired_uploads(before, DIRECT_UPLOAD_SWEEP_BATCH):
            if status == "processing":
                continue
            self.storage.delete(object_key(tenant, upload_id) + ".upload")
            removed += self.store.delete_upload(tenant, upload_id, status)
        return removed

    # ------------------------------------------------------------------ generate
    def generate(self, tenant: str, *, name: str, description: str, device_types: list[str], update_type: str,
                 args: str, filename: str | None, chunks: Iterator[bytes]) -> Artifact:
        """Build a single-file artifact from an uploaded file and register it (BadRequest, Conflict, TooLarge)."""
        if not name:
            raise BadRequest("name: required")
        if not device_types:
            raise BadRequest("device_types_compatible: at least one device type is required")
        if update_type != "single_file":
            raise BadRequest("type: must be single_file")
        for field, value in [("name", name)] + [("device_types_compatible", t) for t in device_types]:
            if problem := string_problem(value, MAX_NAME_BYTES):
                raise BadRequest(f"{field}: {value[:100]!r} {problem}")
        options = parse_generate_args(args, filename)
        self._check_description(description)
        self._check_conflict(tenant, name, depends_index({"device_type": device_types}))
        artifact = build_single_file(name=name, device_types=device_types, args=options, source_chunks=chunks,
                                     temp_dir=temp_dir_for(self.config.data_dir), max_size=self.max_size,
                                     on_too_large=self._too_large)
        try:
            return self.upload(tenant, artifact, description=description)
        finally:
            artifact.close()
