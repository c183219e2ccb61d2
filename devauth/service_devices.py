"""Device management operations of DevauthService: listing, preauthorization, removal."""

from __future__ import annotations

from typing import Iterable, Iterator

from common import audit
from common.bulk import BulkResult, audit_each
from common.errors import BadRequest, Conflict, NotFound, ServiceError
from devauth import crypto
from devauth.model import ACCEPTED, DEVICE_STATUSES, PENDING, PREAUTHORIZED, REJECTED, AuthSet, Device, PreauthorizeResult
from iotmanager.model import DEVICE_DECOMMISSIONED, DEVICE_STATUS_CHANGED


class DeviceExists(Conflict):
    """Preauthorization of a known identity: `device` is the existing device, with its auth sets
    (the API answers 409 with it)."""

    def __init__(self, device: Device):
        super().__init__("device already exists")
        self.device = device

MAX_ID_FILTER = 500  # device ids in one list/search filter


class DeviceManagement:
    """Mixin of DevauthService (uses its store, clock, services and state-machine helpers)."""

    # ------------------------------------------------------------------ reading
    def _check_filters(self, statuses, ids) -> None:
        for status in statuses or ():
            if status not in DEVICE_STATUSES:
                raise BadRequest(f"status: must be one of {', '.join(DEVICE_STATUSES)}")
        if ids is not None and len(ids) > MAX_ID_FILTER:
            raise BadRequest(f"id: at most {MAX_ID_FILTER} ids")

    def list_devices(self, tenant: str, statuses: Iterable[str] | None = None, ids: Iterable[str] | None = None,
                     page: int = 1, per_page: int = 20) -> tuple[list[Device], int]:
        """A page of devices (oldest first), each with `auth_sets`; and the total count.
        Raises BadRequest for an unknown status or too many ids."""
        statuses = list(statuses) if statuses else None
        ids = list(ids) if ids else None
        self._check_filters(statuses, ids)
        devices = self._store.list_devices(tenant, statuses, ids, skip=(page - 1) * per_page, limit=per_page)
        total = self._store.count_devices(tenant, statuses, ids)
        return self._with_auth_sets(tenant, devices), total

    def count_devices(self, tenant: str, status: str | None = None) -> int:
        """How many devices (with that status); BadRequest for an unknown status."""
        statuses = [status] if status else None
        self._check_filters(statuses, None)
        return self._store.count_devices(tenant, statuses)

    def get_device(self, tenant: str, device_id: str) -> Device:
        """One device with its `auth_sets`; NotFound."""
        device = self._store.get_device(tenant, device_id)
        if device is None:
            raise NotFound("device not found")
        return self._with_auth_sets(tenant, [device])[0]

    def device_status_of(self, tenant: str, device_id: str) -> str:
        device = self._store.get_device(tenant, device_id)
        if device is None:
            raise NotFound("device not found")
        return device.status

    def _with_auth_sets(self, tenant: str, devices: list[Device]) -> list[Device]:
        by_device: dict[str, Device] = {d.id: d for d in devices}
        for auth_set in self._store.list_auth_sets(tenant, list(by_device)):
            by_device[auth_set.device_id].auth_sets.append(auth_set)
        return devices

    # ------------------------------------------------------------------ preauthorization
    def preauthorize(self, tenant: str, identity_data, pubkey, force: bool = False) -> str:
        """Create a device with a preauthorized auth set; returns the device id.

        Raises BadRequest (identity, key), DeviceExists (a Conflict naming the existing device)
        when the identity is known — unless `force`, which adds a preauthorized set for a new key."""
        identity = crypto.check_identity(identity_data)
        pubkey = crypto.normalize_pubkey(pubkey)
        id_hash = crypto.identity_hash(identity)
        with self._store.transaction():
            existing = self._store.get_device_by_hash(tenant, id_hash)
            if existing is not None and (not force or existing.decommissioning
                                         or self._store.get_auth_set_by_key(tenant, id_hash, pubkey)):
                raise DeviceExists(self._with_auth_sets(tenant, [existing])[0])
            device = existing or self._get_or_create_device(tenant, identity, id_hash, PREAUTHORIZED)
            auth_set = self._new_auth_set(tenant, device.id, id_hash, pubkey, PREAUTHORIZED)
            if auth_set.device_id != device.id or auth_set.status != PREAUTHORIZED:
                raise DeviceExists(self._with_auth_sets(tenant, [device])[0])
            self._sync_device_status(tenant, device)
        return device.id

    # ------------------------------------------------------------------ removal
    def delete_auth_set(self, tenant: str, device_id: str, auth_set_id: str) -> None:
        """Remove one auth set (an accepted one is rejected first: its tokens are revoked). The
        last set of a preauthorized device takes the device with it. NotFound, BadRequest."""
        with self._store.transaction():
            device, auth_set = self._device_and_auth_set(tenant, device_id, auth_set_id)
            if auth_set.status == ACCEPTED:
                self.revoke_tokens(tenant, device_id)
            self._store.delete_auth_set(tenant, auth_set_id)
            remaining = self._store.list_auth_sets(tenant, [device_id])
            if not remaining and device.status == PREAUTHORIZED:
                self._store.delete_device(tenant, device_id)
                self._services.inventory.delete_device(tenant, device_id)
                # as Mender: a preauthorized device that goes away is a status change to "decommissioned"
                self._emit(tenant, DEVICE_STATUS_CHANGED, {"id": device_id, "status": "decommissioned"})
                return
            self._sync_device_status(tenant, device)

    def decommission(self, tenant: str, device_id: str) -> None:
        """Decommission a device: flag it, revoke its tokens, remove its inventory and finish its
        deployments as `decommissioned`, then delete it with its auth sets. Every step is
        idempotent, so a retry after a failure part-way converges. NotFound."""
        device = self._store.get_device(tenant, device_id)
        if device is None:
            raise NotFound("device not found")
        self._store.update_device(tenant, device_id, {"decommissioning": True, "updated_ts": self._clock.now()})
        self._services.deviceconnect.delete_device(tenant, device_id)  # its remote connection closes
        self.revoke_tokens(tenant, device_id)
        self._services.inventory.delete_device(tenant, device_id)
        self._services.deployments.decommission_device(tenant, device_id)
        self._services.deviceconfig.delete_device(tenant, device_id)
        with self._store.transaction():
            self._store.delete_auth_sets_of_device(tenant, device_id)
            self._store.delete_device(tenant, device_id)
            self._emit(tenant, DEVICE_DECOMMISSIONED, {"id": device_id})

    # ------------------------------------------------------------------ bulk
    # Which auth set an operator's "accept" or "reject" of a whole device acts on, in order of
    # preference: the one asking now (pending) first.
    BULK_SOURCES = {ACCEPTED: (PENDING, REJECTED), REJECTED: (PENDING, ACCEPTED, PREAUTHORIZED)}

    def _bulk_cap(self) -> tuple[str, int]:
        """Each device of a bulk admission or decommissioning goes through the state machine on its
        own (tokens, inventory, deployments): a cap of its own, lower than inventory's."""
        return "DEVAUTH_BULK_MAX_DEVICES", int(self._config["DEVAUTH_BULK_MAX_DEVICES"])

    def set_status_of_selection(self, tenant: str, status: str, selection) -> BulkResult:
        """Accept or reject every selected device (an inventory selection: ids, filters, text):
        its pending auth set, else the one that can move (see BULK_SOURCES), by the transition
        table, each device on its own; a device that cannot move (limit, nothing to move) fails
        alone. BadRequest for another status or a bad selection."""
        if status not in self.BULK_SOURCES:
            raise BadRequest("status: must be accepted or rejected")
        ids = self._services.inventory.select_device_ids(tenant, selection, extra=("status",), cap=self._bulk_cap())
        result = BulkResult(len(ids))
        for start in range(0, len(ids), MAX_ID_FILTER):
            batch = ids[start:start + MAX_ID_FILTER]
            sets: dict[str, list[AuthSet]] = {i: [] for i in batch}
            for auth_set in self._store.list_auth_sets(tenant, batch):
                sets[auth_set.device_id].append(auth_set)
            for device_id in batch:
                if any(a.status == status for a in sets[device_id]) and not any(
                        a.status == PENDING for a in sets[device_id]):
                    continue  # already there: nothing to do, nothing failed
                target = next((a for source in self.BULK_SOURCES[status] for a in sets[device_id]
                               if a.status == source), None)
                if target is None:
                    result.fail(device_id, f"no authentication set can become {status}")
                    continue
                try:
                    self.set_auth_set_status(tenant, device_id, target.id, status)
                except ServiceError as exc:
                    if exc.status >= 500:
                        raise
                    result.fail(device_id, exc.message)
                else:
                    result.done(device_id)
        audit_each(result, "update_status", f"status: {status}")
        return result

    def decommission_selection(self, tenant: str, selection) -> BulkResult:
        """Decommission every selected device, each as `decommission` does (idempotent steps)."""
        ids = self._services.inventory.select_device_ids(tenant, selection, cap=self._bulk_cap())
        result = BulkResult(len(ids))
        for device_id in ids:
            try:
                self.decommission(tenant, device_id)
            except NotFound as exc:
                result.fail(device_id, exc.message)
            else:
                result.done(device_id)
        audit_each(result, "decommission")
        return result

    def preauthorize_rows(self, tenant: str, rows: Iterable[dict]) -> Iterator[PreauthorizeResult]:
        """Preauthorize each row of devauth.bulk.parse_rows; yields one result per row."""
        for row in rows:
            if "error" in row:
                yield PreauthorizeResult(row["row"], "invalid", reason=row["error"])
                continue
            try:
                device_id = self.preauthorize(tenant, row["identity_data"], row["pubkey"])
            except DeviceExists as exc:
                yield PreauthorizeResult(row["row"], "conflict", device_id=exc.device.id, reason=exc.message)
            except BadRequest as exc:
                yield PreauthorizeResult(row["row"], "invalid", reason=exc.message)
            else:
                audit.emit(audit.AuditEvent(action="preauthorize", object_type="device", object_id=device_id))
                yield PreauthorizeResult(row["row"], "created", device_id=device_id)
