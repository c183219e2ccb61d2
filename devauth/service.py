"""Device admission rules: auth requests, the auth-set state machine, device tokens, limits."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import replace
from typing import Any, Iterable

from common.clock import rfc3339_ms
from common.errors import (BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized,
                           Unprocessable)
from common.identity import Identity
from common.jsonbody import parse_json_bytes
from devauth import crypto
from devauth.api import render  # event bodies are devauth's wire shapes (the module is Flask-free)
from devauth.checkins import CheckIns
from devauth.service_devices import DeviceManagement
from devauth.tokens import DeviceTokens

from devauth.model import (ACCEPTED, AUTH_SET_STATUSES, DEVICE_STATUSES, NOAUTH, PENDING,  # noqa: F401
                           PREAUTHORIZED, REJECTED, AuthSet, Device, DeviceToken)
from iotmanager.model import DEVICE_PROVISIONED, DEVICE_STATUS_CHANGED

ALLOW, NOOP, DENY = "allow", "noop", "deny"

# Mender's auth-set transitions for PUT .../auth/{aid}/status: (current, requested) -> outcome.
# A preauthorized set only leaves that state when its device authenticates with the key
# (or when the set is deleted); nothing becomes preauthorized except through preauthorization.
TRANSITIONS: dict[tuple[str, str], str] = {
    (PENDING, PENDING): NOOP,
    (PENDING, ACCEPTED): ALLOW,
    (PENDING, REJECTED): ALLOW,
    (PENDING, PREAUTHORIZED): DENY,
    (ACCEPTED, PENDING): ALLOW,
    (ACCEPTED, ACCEPTED): NOOP,
    (ACCEPTED, REJECTED): ALLOW,
    (ACCEPTED, PREAUTHORIZED): DENY,
    (REJECTED, PENDING): ALLOW,
    (REJECTED, ACCEPTED): ALLOW,
    (REJECTED, REJECTED): NOOP,
    (REJECTED, PREAUTHORIZED): DENY,
    (PREAUTHORIZED, PENDING): DENY,
    (PREAUTHORIZED, ACCEPTED): DENY,
    (PREAUTHORIZED, REJECTED): DENY,
    (PREAUTHORIZED, PREAUTHORIZED): NOOP,
}

# Device status from its auth sets: accepted if any set is, else the first present in this order.
STATUS_PRECEDENCE = (ACCEPTED, PREAUTHORIZED, PENDING, REJECTED)

MAX_DEVICES = "max_devices"
CHECK_IN_INTERVAL = 60.0  # seconds between check-in time writes of one device
TOKENS_PER_DEVICE = 10  # newest valid tokens kept per device; older ones are revoked


def device_status(auth_set_statuses: Iterable[str]) -> str:
    """The aggregate status of a device with auth sets in these statuses."""
    present = set(auth_set_statuses)
    for status in STATUS_PRECEDENCE:
        if status in present:
            return status
    return NOAUTH


def token_digest(token: str, key_fingerprint: bytes) -> str:
    """How an issued token is recognised in the store: bound to the key that signed it, so that
    dropping a key (rotation) invalidates its tokens on the fast path too."""
    return hashlib.sha256(key_fingerprint + token.encode()).hexdigest()


class DevauthService(DeviceManagement):
    def __init__(self, store, config, clock, services):
        self._store = store
        self._config = config
        self._clock = clock
        self._services = services
        self.tokens = DeviceTokens(config, clock)
        self.check_ins = CheckIns(self._write_check_ins, float(config["DEVICEAUTH_CHECK_IN_BATCH_SECONDS"]))

    # ------------------------------------------------------------------ auth requests
    def submit_auth_request(self, raw_body: bytes, signature: str | None) -> str:
        """Handle a device's signed auth request. Returns a fresh JWT when the device is admitted.

        The tenant token decides the organization (tenantadm.admit): an empty one is the default
        organization unless MENDER_MULTI_TENANT is set; a retired (rotated) one only re-admits a
        key the operator already accepted or preauthorized, and records nothing otherwise.

        Raises BadRequest (malformed body, key, identity, missing signature), Unauthorized (bad
        signature; tenant token missing, not ours, of an organization that is not active; device
        not, or not yet, accepted). A validly signed request from an unknown identity or key
        records a pending auth set before the Unauthorized."""
        body = parse_json_bytes(raw_body)
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        for name in ("id_data", "pubkey"):
            if name not in body:
                raise BadRequest(f"missing required parameter: {name}")
            if not isinstance(body[name], str):
                raise BadRequest(f"{name}: must be a string")
        if not isinstance(body.get("tenant_token", ""), str):
            raise BadRequest("tenant_token: must be a string")
        identity = crypto.parse_identity(body["id_data"])
        key = crypto.parse_public_key(body["pubkey"])
        if signature is None or not signature.strip():
            raise BadRequest("missing request signature header X-MEN-Signature")
        crypto.verify_signature(key, signature, raw_body)

        admission = self._services.tenantadm.admit(body.get("tenant_token", ""))
        tenant = admission.tenant
        pubkey = crypto.normalize_pem(key)
        id_hash = crypto.identity_hash(identity)
        if not admission.current:
            approved = self._store.get_auth_set_by_key(tenant, id_hash, pubkey)
            if approved is None or approved.status not in (ACCEPTED, PREAUTHORIZED):
                raise Unauthorized("the tenant token was rotated: it only re-admits devices already accepted")
        device, auth_set = self._known(tenant, id_hash, pubkey)
        if device is None:  # something to record: take the write lock only then
            with self._store.transaction():
                device, auth_set = self._admit(tenant, identity, id_hash, pubkey)
        if auth_set.status != ACCEPTED:
            raise Unauthorized("device unauthorized")
        token = self._issue_token(tenant, device.id, auth_set.id, device.check_in_time)
        if tenant:
            # the organization may have been suspended since admit() read it; the suspension
            # revoked the tokens that existed then, this one is refused here
            try:
                self._services.tenantadm.check_active(tenant)
            except Unauthorized:
                self.revoke_tokens(tenant, device.id)
                raise
        return token

    def _known(self, tenant: str, id_hash: str, pubkey: str) -> tuple[Device | None, AuthSet | None]:
        """The read-only path of a known key whose answer needs no write (accepted, pending,
        rejected); (None, None) when _admit must run."""
        auth_set = self._store.get_auth_set_by_key(tenant, id_hash, pubkey)
        if auth_set is None or auth_set.status == PREAUTHORIZED:
            return None, None
        device = self._store.get_device(tenant, auth_set.device_id)
        if device is None:
            return None, None
        if device.decommissioning:
            raise Unauthorized("device is being decommissioned")
        return device, auth_set

    def _admit(self, tenant: str, identity: dict, id_hash: str, pubkey: str) -> tuple[Device, AuthSet]:
        auth_set = self._store.get_auth_set_by_key(tenant, id_hash, pubkey)
        device = self._store.get_device(tenant, auth_set.device_id) if auth_set else None
        if auth_set is not None and device is None:  # orphan left by an interrupted delete: start over
            self._store.delete_auth_set(tenant, auth_set.id)
            auth_set = None
        created = False
        if device is None:
            device = self._store.get_device_by_hash(tenant, id_hash)
            if device is None:
                self._check_pending_limit(tenant)
                device = self._get_or_create_device(tenant, identity, id_hash, PENDING)
                created = True
        if device.decommissioning:
            raise Unauthorized("device is being decommissioned")
        if auth_set is None:
            if not created:  # a device killed between its insert and its inventory entry is completed here
                self._check_pending_keys_limit(tenant, device)
                self._services.inventory.upsert_identity(tenant, device.id, device.identity)
            auth_set = self._new_auth_set(tenant, device.id, id_hash, pubkey, PENDING)
            if auth_set.status == PENDING:
                self._sync_device_status(tenant, device)
        if auth_set.status == PREAUTHORIZED:
            if device.status != ACCEPTED and not self._limit_allows(tenant):
                raise Unauthorized("device limit reached")
            if not self._accept_within_limit(tenant, device, auth_set):
                raise Unauthorized("device limit reached")
            auth_set.status = ACCEPTED
        return device, auth_set

    def _check_pending_limit(self, tenant: str) -> None:
        """A new identity would add a pending device: refuse beyond DEVAUTH_MAX_PENDING (an
        unauthenticated flood of identities must not grow the database without bound). Counted
        on the (tenant, status) index; raises TooManyRequests."""
        limit = int(self._config["DEVAUTH_MAX_PENDING"])
        if limit >= 0 and self._store.count_devices(tenant, [PENDING]) >= limit:
            raise TooManyRequests(f"too many pending devices in this organization (limit {limit}): "
                                  f"accept, reject or remove some", headers={"Retry-After": "300"})

    def _check_pending_keys_limit(self, tenant: str, device: Device) -> None:
        """A new key of a known identity would add a pending auth set: refuse beyond
        DEVAUTH_MAX_PENDING_KEYS pending ones on the device (DEVAUTH_MAX_PENDING bounds new
        identities only; anyone who knows or guesses an identity could otherwise add auth sets to
        its device without end). Raises TooManyRequests."""
        limit = int(self._config["DEVAUTH_MAX_PENDING_KEYS"])
        if limit < 0:
            return
        pending = sum(1 for a in self._store.list_auth_sets(tenant, [device.id]) if a.status == PENDING)
        if pending >= limit:
            raise TooManyRequests(f"too many pending keys for this device (limit {limit}): "
                                  f"accept, reject or remove some", headers={"Retry-After": "300"})

    def _get_or_create_device(self, tenant: str, identity: dict, id_hash: str, status: str) -> Device:
        device = self._store.get_device_by_hash(tenant, id_hash)
        if device is not None:
            return device
        now = self._clock.now()
        device = Device(id=str(uuid.uuid4()), tenant_id=tenant, id_data=crypto.canonical_json(identity),
                        id_hash=id_hash, status=status, created_ts=now, updated_ts=now)
        try:
            self._store.insert_device(device)
        except Conflict:  # created concurrently
            existing = self._store.get_device_by_hash(tenant, id_hash)
            if existing is None:
                raise
            return existing
        self._services.inventory.upsert_identity(tenant, device.id, device.identity)
        self._status_changed(tenant, device.id, status)
        return device

    def _new_auth_set(self, tenant: str, device_id: str, id_hash: str, pubkey: str, status: str) -> AuthSet:
        auth_set = AuthSet(id=str(uuid.uuid4()), tenant_id=tenant, device_id=device_id, id_hash=id_hash,
                           pubkey=pubkey, status=status, ts=self._clock.now())
        try:
            self._store.insert_auth_set(auth_set)
        except Conflict:  # created concurrently
            existing = self._store.get_auth_set_by_key(tenant, id_hash, pubkey)
            if existing is None:
                raise
            return existing
        return auth_set

    def _issue_token(self, tenant: str, device_id: str, auth_set_id: str, last_check_in: float | None) -> str:
        token, claims = self.tokens.issue(tenant, device_id)
        row = DeviceToken(id=claims["jti"], tenant_id=tenant, device_id=device_id, auth_set_id=auth_set_id,
                          iat=self._clock.now(),  # precise: pruning keeps the newest
                          exp=claims["exp"], token_hash=token_digest(token, self.tokens.keys.fingerprints[0]))
        self._store.issue_token(row, TOKENS_PER_DEVICE)  # the token and the pruning: one write (SQLite)
        self._check_in(tenant, device_id, last_check_in)  # (batched: no write here)
        return token

    def _check_in(self, tenant: str, device_id: str, last: float | None) -> None:
        now = self._clock.now()
        if last is not None and now - last < CHECK_IN_INTERVAL:
            return
        self.check_ins.record(tenant, device_id, now)

    def _write_check_ins(self, tenant: str, device_ids: list[str], ts: float) -> None:
        written = self._store.touch_check_ins(tenant, device_ids, ts, ts - CHECK_IN_INTERVAL)
        self._services.inventory.record_check_ins(tenant, written, ts)

    # ------------------------------------------------------------------ state machine
    def set_auth_set_status(self, tenant: str, device_id: str, auth_set_id: str, status: str) -> None:
        """Apply TRANSITIONS to one auth set. Raises NotFound (device or auth set), BadRequest
        (unknown status, set of another device, forbidden transition), Unprocessable (limit)."""
        if status not in AUTH_SET_STATUSES:
            raise BadRequest(f"status: must be one of {', '.join(AUTH_SET_STATUSES)}")
        with self._store.transaction():
            device, auth_set = self._device_and_auth_set(tenant, device_id, auth_set_id)
            outcome = TRANSITIONS[(auth_set.status, status)]
            if outcome == NOOP:
                return
            if outcome == DENY:
                raise BadRequest(f"invalid status transition from {auth_set.status} to {status}")
            if status == ACCEPTED:
                if device.status != ACCEPTED and not self._limit_allows(tenant):
                    raise Unprocessable(f"device limit reached: at most {self.max_devices(tenant)} accepted devices")
                if not self._accept_within_limit(tenant, device, auth_set):
                    raise Unprocessable(f"device limit reached: at most {self.max_devices(tenant)} accepted devices")
                return
            if auth_set.status == ACCEPTED:
                self.revoke_tokens(tenant, device_id)
            self._store.set_auth_set_status(tenant, auth_set_id, status)
            self._sync_device_status(tenant, device)

    def _accept(self, tenant: str, device: Device, auth_set: AuthSet) -> None:
        """One key at a time: the device's other accepted set is rejected and its tokens revoked.

        Several steps on several documents (MongoDB has no transaction on a standalone server), so
        safe against a concurrent accept of another set of the same device: each accept names its
        set in the device (the last one written wins), accepts its set, then rejects every accepted
        set but the winner's. Whatever the interleaving, one set stays accepted, the winner's; the
        loser is told (Conflict). On SQLite the whole runs in the caller's transaction."""
        self._store.update_device(tenant, device.id, {"accepted_auth_set": auth_set.id})
        self._store.set_auth_set_status(tenant, auth_set.id, ACCEPTED)
        current = self._store.get_device(tenant, device.id)
        winner = current.accepted_auth_set if current is not None else auth_set.id
        if self._store.replace_auth_set_status(tenant, device.id, ACCEPTED, REJECTED, except_id=winner):
            self.revoke_tokens(tenant, device.id)
        if winner == auth_set.id and self._store.mark_provisioned(tenant, device.id):  # accepted for the first time
            self._emit(tenant, DEVICE_PROVISIONED, {
                "id": device.id, "status": ACCEPTED, "created_ts": rfc3339_ms(device.created_ts),
                "auth_sets": [render.auth_set(replace(auth_set, status=ACCEPTED), device.identity)]})
        self._sync_device_status(tenant, device)
        if winner != auth_set.id:
            raise Conflict("another key of this device was accepted at the same time; it was kept")

    def _accept_within_limit(self, tenant: str, device: Device, auth_set: AuthSet) -> bool:
        """Accept, then count again: accepts running at once each counted the devices before any
        of them was accepted, so the limit is checked after the fact too, and an accept that went
        past it is undone (False). Of concurrent accepts past the limit all may be undone, never
        one too many kept. (SQLite: the callers' transaction makes the first count exact.)"""
        was_accepted, previous = device.status == ACCEPTED, auth_set.status
        self._accept(tenant, device, auth_set)
        limit = self.max_devices(tenant)
        if was_accepted or limit < 0 or self._store.count_devices(tenant, [ACCEPTED]) <= limit:
            return True
        self._store.set_auth_set_status(tenant, auth_set.id, previous)
        self._sync_device_status(tenant, device)
        return False

    def _sync_device_status(self, tenant: str, device: Device) -> str:
        """Recompute the device status from its auth sets; store and propagate it.

        The device's revision is bumped before the auth sets are read, and the status (in devauth
        and in inventory) is only written over one computed at an older revision: of concurrent
        recomputations the last to start read the newest auth sets, and its answer stays, whatever
        order the writes land in (no accepted device left `pending` by a stale recomputation)."""
        revision = self._store.next_revision(tenant, device.id)
        status = device_status(a.status for a in self._store.list_auth_sets(tenant, [device.id]))
        if revision is None:  # the device is gone
            return status
        if self._store.set_device_status(tenant, device.id, status, revision, self._clock.now()):
            self._status_changed(tenant, device.id, status, revision, changed=status != device.status)
            if status == ACCEPTED and device.status != ACCEPTED:  # deviceconfig's record of it (Mender's provisioning)
                self._services.deviceconfig.provision_device(tenant, device.id)
        device.status = status
        return status

    def _status_changed(self, tenant: str, device_id: str, status: str, revision: int | None = None,
                        changed: bool = True) -> None:
        """Tell inventory (only over an older revision) and, when it changed, the integrations
        (Mender's update_device_status workflow)."""
        self._services.inventory.set_status(tenant, [device_id], status,
                                            revisions=None if revision is None else [revision])
        if changed:
            self._emit(tenant, DEVICE_STATUS_CHANGED, {"id": device_id, "status": status})

    def _emit(self, tenant: str, event_type: str, data: dict) -> None:
        # in the caller's transaction where there is one (SQLite): the event commits with the change
        self._services.iotmanager.emit(tenant, event_type, data)

    def _device_and_auth_set(self, tenant: str, device_id: str, auth_set_id: str) -> tuple[Device, AuthSet]:
        device = self._store.get_device(tenant, device_id)
        if device is None:
            raise NotFound("device not found")
        auth_set = self._store.get_auth_set(tenant, auth_set_id)
        if auth_set is None:
            raise NotFound("authentication set not found")
        if auth_set.device_id != device_id:
            raise BadRequest("authentication set does not belong to this device")
        return device, auth_set

    def get_auth_set_status(self, tenant: str, device_id: str, auth_set_id: str) -> str:
        """The status of an auth set; NotFound, BadRequest as set_auth_set_status."""
        return self._device_and_auth_set(tenant, device_id, auth_set_id)[1].status

    # ------------------------------------------------------------------ limits
    def max_devices(self, tenant: str) -> int:
        """The tenant's accepted-device limit (-1: unlimited)."""
        value = self._store.get_limit(tenant, MAX_DEVICES)
        return int(self._config["DEVICEAUTH_MAX_DEVICES"]) if value is None else value

    def set_max_devices(self, tenant: str, limit: int) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < -1:
            raise BadRequest("limit: must be an integer >= -1 (-1: unlimited)")
        self._store.set_limit(tenant, MAX_DEVICES, limit)

    def clear_max_devices(self, tenant: str) -> None:
        self._store.delete_limit(tenant, MAX_DEVICES)

    def _limit_allows(self, tenant: str) -> bool:
        limit = self.max_devices(tenant)
        return limit < 0 or self._store.count_devices(tenant, [ACCEPTED]) + 1 <= limit

    # ------------------------------------------------------------------ tokens
    def verify_token(self, token: str) -> Identity:
        """A device token's identity: valid signature and claims, not revoked, of an accepted auth
        set of a device that is not being decommissioned. Raises Unauthorized, or Forbidden when
        the token has expired (its row is then deleted)."""
        # Fast path: a token we issued is stored with its SHA-256, so an exact match identifies it
        # (and its signed claims) without verifying the signature again; everything else takes the
        # full check. Revocation is the row itself, so it applies on the very next request.
        claims = self.tokens.peek(token)
        row = self._store.get_token_context(claims["jti"]) if claims else None
        issued = False
        if row is not None and row.token_hash:
            for fp in self.tokens.keys.fingerprints:  # (a loop: any() over a generator closes it by an exception)
                if hmac.compare_digest(row.token_hash, token_digest(token, fp)):
                    issued = True
                    break
        if not issued:
            try:
                claims = self.tokens.check(token)
            except Forbidden:
                claims = self.tokens.keys.decode(token, options={"verify_exp": False, "verify_iat": False,
                                                                 "verify_nbf": False})
                self._store.delete_token(claims.get("mender.tenant", ""), str(claims.get("jti")))
                raise
            row = self._store.get_token_context(claims["jti"]) if row is None or row.id != claims["jti"] else row
        elif claims["exp"] <= self._clock.now():
            self._store.delete_token(row.tenant_id, row.id)
            raise Forbidden("token expired")
        tenant = claims.get("mender.tenant", "")
        if row is None or row.tenant_id != tenant or row.device_id != claims["sub"]:
            raise Unauthorized("token revoked")
        if row.auth_set_status != ACCEPTED or row.device_decommissioning is not False:
            raise Unauthorized("device not accepted")
        self._check_in(tenant, claims["sub"], row.check_in_time)
        return Identity(subject=claims["sub"], tenant=tenant, is_device=True, token_id=claims["jti"],
                        claims=claims)

    def authenticate(self, token: str) -> Identity:
        """The `devices` authenticator: verify_token, with an expired token as Unauthorized
        (so that the client authenticates again)."""
        try:
            return self.verify_token(token)
        except Forbidden:
            raise Unauthorized("token expired") from None

    def revoke_tokens(self, tenant: str, device_id: str | None = None, jti: str | None = None) -> int:
        """Every revocation goes through here: one token (jti), one device's, or a tenant's. A
        remote connection (deviceconnect) of a device whose token is revoked closes too: it was
        opened with that token, or the device must authenticate again anyway."""
        deviceconnect = self._services.deviceconnect
        if jti is not None:
            row = self._store.get_token_context(jti)
            removed = int(self._store.delete_token(tenant, jti))
            if removed and row is not None and row.tenant_id == tenant:
                deviceconnect.disconnect_device(tenant, row.device_id, "device token revoked")
            return removed
        removed = self._store.delete_tokens(tenant, device_id)
        if device_id is not None:
            deviceconnect.disconnect_device(tenant, device_id, "device token revoked")
        else:
            deviceconnect.disconnect_tenant(tenant, "device token revoked")
        return removed

    def delete_tenant(self, tenant: str) -> None:
        """Remove every device, auth set, token and limit of the organization (its inventory and
        deployments are their services' to remove); idempotent."""
        self._store.delete_tenant(tenant)

    def revoke_token(self, tenant: str, jti: str) -> None:
        """Revoke one token by id; NotFound when the tenant has no such token."""
        if not self.revoke_tokens(tenant, jti=jti):
            raise NotFound("token not found")
