"""Inventory rules: attribute writes per scope, tags with ETags, groups, search and saved filters."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable, Sequence

from common.bulk import BulkResult, audit_each, batches
from common.clock import rfc3339_ms
from common.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from common.text import check_printable
from inventory.model import (ATTR_CREATED, ATTR_GROUP, ATTR_STATUS, ATTR_UPDATED, MAX_NAME_LENGTH,
                             SCOPE_IDENTITY, SCOPE_INVENTORY, SCOPE_SYSTEM, SCOPE_TAGS, SCOPES, STATUSES,
                             Attribute, AttributeCount, AttributeValueCount, Device, Filter, check_group_name,
                             check_value, eq, id_condition, in_groups, parse_attributes)
from inventory.query import SELECTION_KEYS, SearchQuery, compile_filters, parse_selection
from inventory.store import InventoryStore

WRITE_RETRIES = 8
CHECK_IN_DEBOUNCE_SECONDS = 60.0
FILTER_ATTRIBUTES_SAMPLE = 5000
FILTER_ATTRIBUTES_LIMIT = 500
# a full sample (a fleet of 5,000 devices or more) is kept this long per process: the UI asks for
# it on every device list load, and over a large fleet it costs a few hundred ms and barely moves
FILTER_ATTRIBUTES_CACHE_SECONDS = 60.0
_FILTER_ATTRIBUTES_CACHE_TENANTS = 1000
_monotonic = time.monotonic  # the cache's clock (a test moves it)
MAX_VALUE_COUNT_DEVICES = 100_000
MAX_VALUE_COUNT_NAMES = 100
MAX_FILTER_NAME = 256

Change = tuple  # (set_attrs, unset, updated_ts | None, tags_etag | None)


def new_etag() -> str:
    return str(uuid.uuid4())


def etag_matches(if_match: str, etag: str) -> bool:
    """`If-Match` (a list of quoted, weak or bare tags, or `*`) against the stored tags ETag."""
    for tag in if_match.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tag = tag.strip('"')
        if tag == "*" or tag == etag:
            return True
    return False


def _identity_value(value: Any) -> Any:
    """Identity data is arbitrary JSON: keep what inventory can store, stringify the rest."""
    try:
        return check_value(value)
    except BadRequest:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))[:4096]


class InventoryService:
    def __init__(self, store: InventoryStore, config, clock, services):
        self.store = store
        self.config = config
        self.clock = clock
        self._services = services
        self._attribute_counts: dict[str, tuple[float, list[AttributeCount]]] = {}

    @property
    def attribute_limit(self) -> int:
        return self.config["INVENTORY_LIMIT_ATTRIBUTES"]

    @property
    def tag_limit(self) -> int:
        return self.config["INVENTORY_LIMIT_TAGS"]

    # ------------------------------------------------------------------ writes
    def _base_attributes(self, now: float) -> list[Attribute]:
        ts = rfc3339_ms(now)
        return [Attribute(SCOPE_SYSTEM, ATTR_CREATED, ts), Attribute(SCOPE_SYSTEM, ATTR_UPDATED, ts)]

    def _ensure(self, tenant: str, device_id: str) -> None:
        now = self.clock.now()
        self.store.create_device(tenant, device_id, now, new_etag(), self._base_attributes(now))

    def _write(self, tenant: str, device_id: str, compute: Callable[[Device], Change | None],
               create: bool = True, scopes: Sequence[str] | None = None,
               admitted: Callable[[], bool] | None = None) -> None:
        """Read-modify-write with optimistic concurrency on the device's version; `compute` sees
        the attributes of `scopes` (all if None). A missing device is created when `create`, and
        when `admitted` (if given) says the device may still have a record: asked before the
        record is created and again after the write, which then removes it (NotFound) if the
        device was decommissioned meanwhile (see `device_upload`)."""
        created = False
        for _ in range(WRITE_RETRIES):
            device = self.store.get_device(tenant, device_id, scopes)
            if device is None:
                if not create or (admitted is not None and not admitted()):
                    raise NotFound("device not found")
                self._ensure(tenant, device_id)
                created = True
                continue
            change = compute(device)
            if change is None or self.store.apply(tenant, device_id, device.version, *change):
                if created and admitted is not None and not admitted():
                    self.store.delete_device(tenant, device_id)
                    raise NotFound("device not found")
                return
        raise Conflict("the device was changed concurrently; retry")

    def _admitted(self, tenant: str, device_id: str) -> bool:
        """Whether devauth still has the device and is not decommissioning it."""
        try:
            return not self._services.devauth.get_device(tenant, device_id).decommissioning
        except NotFound:
            return False

    def _updated(self, now: float) -> list[Attribute]:
        return [Attribute(SCOPE_SYSTEM, ATTR_UPDATED, rfc3339_ms(now))]

    def _scope_change(self, device: Device, scope: str, attrs: Sequence[Attribute], replace: bool,
                      limit: int | None, keep: Sequence[str] = (), stamp: bool = False,
                      bump_updated: bool = False) -> tuple[list[Attribute], list[tuple[str, str]], float | None]:
        now = self.clock.now()
        current = {a.name: a for a in device.attributes if a.scope == scope}
        incoming = {a.name: a for a in attrs}
        unset = [(scope, n) for n in current if replace and n not in incoming and n not in keep]
        changed = [a for a in attrs if a.name not in current or not a.same_content(current[a.name])]
        final = len(set(current) - {n for _, n in unset} | set(incoming))
        if limit is not None and final > limit and (changed or unset):
            raise BadRequest(f"too many {scope} attributes: at most {limit}")
        if stamp:
            for a in changed:
                a.timestamp = now
        updated = None
        if bump_updated:
            same_day = int(device.updated_ts // 86400) == int(now // 86400)
            if changed or unset or not same_day:
                updated = now
                changed = changed + self._updated(now)
        return changed, unset, updated

    def update_device_attributes(self, tenant: str, device_id: str, body: Any, replace: bool) -> None:
        """PUT (replace=True) or PATCH a device's `inventory` scope, creating the device if
        inventory does not know it (seeding, tests); the device API uses `device_upload`."""
        self._update_inventory(tenant, device_id, body, replace, None)

    def device_upload(self, tenant: str, device_id: str, body: Any, replace: bool) -> None:
        """Device API: PUT (replace=True) or PATCH the device's `inventory` scope. A device
        inventory does not know is created only while devauth admits it (else NotFound).

        An upload authenticated before a decommission may land after it removed the record: a
        write to a record that is gone fails (its version), and the record is created again only
        for a device devauth still admits, asked before and after the write. devauth flags the
        device `decommissioning` before removing the inventory, so either the second question sees
        the flag (the record written is removed), or the removal comes after this write and takes
        the record with it."""
        self._update_inventory(tenant, device_id, body, replace, lambda: self._admitted(tenant, device_id))

    def _update_inventory(self, tenant: str, device_id: str, body: Any, replace: bool,
                          admitted: Callable[[], bool] | None) -> None:
        attrs = parse_attributes(body, SCOPE_INVENTORY, limit=self.attribute_limit)

        def compute(device):
            set_attrs, unset, updated = self._scope_change(device, SCOPE_INVENTORY, attrs, replace,
                                                           self.attribute_limit, bump_updated=True)
            return (set_attrs, unset, updated, None) if set_attrs or unset else None

        self._write(tenant, device_id, compute, scopes=(SCOPE_INVENTORY,), admitted=admitted)

    def update_tags(self, tenant: str, device_id: str, body: Any, replace: bool, if_match: str | None) -> None:
        """PUT (replace) or PATCH the device's tags; 412 when If-Match does not match; 404 if unknown."""
        tags = parse_attributes(body, SCOPE_TAGS, limit=self.tag_limit, string_only=True)

        def compute(device):
            if if_match and not etag_matches(if_match, device.tags_etag):
                raise PreconditionFailed("ETag does not match")
            set_attrs, unset, _ = self._scope_change(device, SCOPE_TAGS, tags, replace, self.tag_limit, stamp=True)
            return set_attrs, unset, None, new_etag()

        self._write(tenant, device_id, compute, create=False, scopes=(SCOPE_TAGS,))

    def patch_scope(self, tenant: str, device_id: str, scope: str | None, body: Any,
                    unmodified_since: float | None = None) -> None:
        """Internal: upsert attributes into one scope (or each item's own scope when `scope` is None)."""
        if scope is not None and scope not in SCOPES:
            raise BadRequest(f"scope: must be one of {', '.join(SCOPES)}")
        attrs = parse_attributes(body, scope or SCOPE_INVENTORY, allow_scope=True,
                                 limit=self.attribute_limit if scope != SCOPE_TAGS else self.tag_limit)
        if scope is not None:
            for a in attrs:
                a.scope = scope

        def compute(device):
            if unmodified_since is not None and device.updated_ts > unmodified_since + 0.999:
                raise PreconditionFailed("the device was modified since the given time")
            set_all, unset_all, updated = [], [], None
            for s in sorted({a.scope for a in attrs}):
                part = [a for a in attrs if a.scope == s]
                limit = {SCOPE_INVENTORY: self.attribute_limit, SCOPE_TAGS: self.tag_limit}.get(s)
                changed, unset, upd = self._scope_change(device, s, part, False, limit, stamp=s == SCOPE_TAGS,
                                                         bump_updated=s == SCOPE_INVENTORY)
                set_all += changed
                unset_all += unset
                updated = updated or upd
            return (set_all, unset_all, updated, new_etag() if any(a.scope == SCOPE_TAGS for a in set_all)
                    else None) if set_all or unset_all else None

        self._write(tenant, device_id, compute)

    # ------------------------------------------------------------------ cross-service interface
    def upsert_identity(self, tenant: str, device_id: str, identity: dict) -> None:
        """Create the device if absent and replace its identity attributes (keeping `status`)."""
        attrs = [Attribute(SCOPE_IDENTITY, str(k)[:MAX_NAME_LENGTH], _identity_value(v))
                 for k, v in (identity or {}).items() if str(k) and str(k) != ATTR_STATUS]

        def compute(device):
            set_attrs, unset, _ = self._scope_change(device, SCOPE_IDENTITY, attrs, True, None, keep=(ATTR_STATUS,))
            return (set_attrs, unset, None, None) if set_attrs or unset else None

        self._write(tenant, device_id, compute, scopes=(SCOPE_IDENTITY,))

    def set_status(self, tenant: str, device_ids: list[str], status: str,
                   revisions: Sequence[int | None] | None = None) -> int:
        """Status as identity/status and system/status; creates missing devices."""
        if status not in STATUSES:
            raise BadRequest(f"status: must be one of {', '.join(STATUSES)}")
        ids = list(device_ids)
        if not ids:
            return 0
        now = self.clock.now()
        self.store.import_devices(tenant, [(i, self._base_attributes(now)) for i in dict.fromkeys(ids)], now, new_etag)
        items = list(zip(ids, revisions if revisions is not None else [None] * len(ids)))
        return self.store.set_status(tenant, items, status)

    def set_system_attributes(self, tenant: str, device_id: str, attributes: dict[str, Any]) -> bool:
        """Upsert attributes of the `system` scope of a device inventory knows (another service's
        facts about it, such as deviceconnect's connection status). A device inventory does not
        know is left alone (False): a late write must not bring back a decommissioned device."""
        attrs = [Attribute(SCOPE_SYSTEM, name, check_value(value)) for name, value in attributes.items()]

        def compute(device):
            set_attrs, unset, _ = self._scope_change(device, SCOPE_SYSTEM, attrs, False, None)
            return (set_attrs, unset, None, None) if set_attrs else None

        try:
            self._write(tenant, device_id, compute, create=False, scopes=(SCOPE_SYSTEM,))
        except NotFound:
            return False
        return True

    def delete_device(self, tenant: str, device_id: str) -> None:
        """Remove the device's inventory; idempotent."""
        self.store.delete_device(tenant, device_id)

    def delete_tenant(self, tenant: str) -> None:
        """Remove every device, attribute and saved filter of the organization; idempotent."""
        self.store.delete_tenant(tenant)

    def record_check_ins(self, tenant: str, device_ids: list[str], ts: float) -> None:
        """system/check_in_time of these devices (one write); a device's time moves at most once
        a minute."""
        if device_ids:
            self.store.record_check_ins(tenant, device_ids, rfc3339_ms(ts),
                                        rfc3339_ms(ts - CHECK_IN_DEBOUNCE_SECONDS))

    def device_group(self, tenant: str, device_id: str) -> str | None:
        device = self.store.get_devices(tenant, [device_id], select=[(SCOPE_SYSTEM, ATTR_GROUP)])
        if not device:
            return None
        return next((a.value for a in device[0].attributes), None)

    def search_device_ids(self, tenant: str, *, filters: list[dict] | None = None, group: str | None = None,
                          status: str | None = "accepted", page: int = 1, per_page: int = 500
                          ) -> tuple[list[str], int]:
        """Ids of the devices matching v2 predicates, a group and a status (one page), and the total."""
        conds = compile_filters(filters)
        if group is not None:
            conds.append(eq(SCOPE_SYSTEM, ATTR_GROUP, group))
        if status is not None:
            conds.append(eq(SCOPE_IDENTITY, ATTR_STATUS, status))
        return self.store.search(tenant, conds, [], (page - 1) * per_page, per_page)

    def all_device_ids(self, tenant: str, *, group: str | None = None, status: str | None = "accepted",
                       limit: int) -> list[str]:
        """Ids of the devices of a group (or all) with that status, in id order, at most `limit`
        (one query, however many there are)."""
        conds = []
        if group is not None:
            conds.append(eq(SCOPE_SYSTEM, ATTR_GROUP, group))
        if status is not None:
            conds.append(eq(SCOPE_IDENTITY, ATTR_STATUS, status))
        return self.store.matching_ids(tenant, conds, limit)

    def device_matches(self, tenant: str, device_id: str, filters: list[dict]) -> bool:
        """Whether the device matches a stored filter (one that is no longer valid, e.g. a pattern
        saved before backtracking_risk refused it, matches nothing)."""
        try:
            conds = compile_filters(filters) + [id_condition([device_id])]
        except BadRequest:
            return False
        return self.store.search(tenant, conds, [], 0, 1)[1] > 0

    def get_filter(self, tenant: str, filter_id: str) -> Filter:
        """A saved filter; NotFound."""
        saved = self.store.get_filter(tenant, filter_id)
        if saved is None:
            raise NotFound("filter not found")
        return saved

    # ------------------------------------------------------------------ reads
    def get_device(self, tenant: str, device_id: str) -> Device:
        """The device with all its attributes (and its tags ETag); NotFound."""
        device = self.store.get_device(tenant, device_id)
        if device is None:
            raise NotFound("device not found")
        return device

    def search(self, tenant: str, query: SearchQuery, groups: frozenset[str] | None = None
               ) -> tuple[list[Device], int]:
        """One page of devices (with the attributes the query selects) for a parsed query, and the
        total (an `EstimatedCount` for a large search on SQLite: docs/inventory.md); `groups`: only
        devices of these groups (a role limited to device groups)."""
        if query.empty or (groups is not None and not groups):
            return [], 0
        conds = query.conds + [in_groups(groups)] if groups is not None else query.conds
        ids, total = self.store.search(tenant, conds, query.sort, (query.page - 1) * query.per_page,
                                       query.per_page, exact=False)
        return self.store.get_devices(tenant, ids, query.select), total

    # ------------------------------------------------------------------ groups
    def get_device_group(self, tenant: str, device_id: str) -> str | None:
        if self.store.get_devices(tenant, [device_id], select=[]) == []:
            raise NotFound("device not found")
        return self.device_group(tenant, device_id)

    def assign_group(self, tenant: str, device_id: str, group: Any) -> None:
        matched, _ = self.store.set_group(tenant, [device_id], check_group_name(group))
        if not matched:
            raise NotFound("device not found")

    def remove_from_group(self, tenant: str, device_id: str, group: str) -> None:
        if not self.store.clear_group(tenant, group, [device_id]):
            raise NotFound("device not found or not in this group")

    def groups(self, tenant: str, status: str | None = None, visible: frozenset[str] | None = None) -> list[str]:
        names = self.store.groups(tenant, status or None)
        return names if visible is None else [n for n in names if n in visible]

    def device_visible(self, tenant: str, device_id: str, groups: frozenset[str] | None) -> bool:
        """Whether a role limited to `groups` sees the device (None: every device). A device in no
        group is visible to unlimited roles only."""
        return groups is None or self.device_group(tenant, device_id) in groups

    def devices_visible(self, tenant: str, device_ids: list[str], groups: frozenset[str] | None) -> bool:
        """Whether every listed device is in one of `groups` (None: yes)."""
        if groups is None:
            return True
        if not groups:
            return False
        ids = list(dict.fromkeys(device_ids))
        _, total = self.store.search(tenant, [id_condition(ids), in_groups(groups)], [], 0, 1)
        return total == len(ids)

    def group_devices(self, tenant: str, group: str, page: int, per_page: int) -> tuple[list[str], int]:
        check_group_name(group)
        ids, total = self.store.search(tenant, [eq(SCOPE_SYSTEM, ATTR_GROUP, group)], [],
                                       (page - 1) * per_page, per_page)
        if total == 0:
            raise NotFound("group not found")
        return ids, total

    @staticmethod
    def _id_list(body: Any) -> list[str]:
        if not isinstance(body, list) or not all(isinstance(i, str) and i for i in body):
            raise BadRequest("body: must be a JSON array of device ids")
        if not body:
            raise BadRequest("body: no device ids given")
        return body

    def add_devices_to_group(self, tenant: str, group: str, body: Any) -> tuple[int, int]:
        """Put the listed devices into `group`: (devices found, devices moved)."""
        check_group_name(group)
        return self.store.set_group(tenant, self._id_list(body), group)

    def remove_devices_from_group(self, tenant: str, group: str, body: Any) -> int:
        """Take the listed devices out of `group`; how many were in it."""
        check_group_name(group)
        return self.store.clear_group(tenant, group, self._id_list(body))

    def delete_group(self, tenant: str, group: str) -> int:
        """Empty `group`; how many devices were in it. NotFound when none."""
        check_group_name(group)
        count = self.store.clear_group(tenant, group)
        if count == 0:
            raise NotFound("group not found")
        return count

    # ------------------------------------------------------------------ bulk (a selection of devices)
    def select_device_ids(self, tenant: str, selection: Any, extra: Sequence[str] = (),
                          cap: tuple[str, int] | None = None) -> list[str]:
        """Ids of the devices a bulk request selects (see inventory.query.parse_selection; `extra`
        names other fields the body may carry). BadRequest for a malformed selection, or one
        matching more devices than `cap` (the setting's name and value; by default
        INVENTORY_BULK_MAX_DEVICES)."""
        if isinstance(selection, dict):
            unknown = set(selection) - set(SELECTION_KEYS) - set(extra)
            if unknown:
                raise BadRequest(f"{sorted(unknown)[0]}: unknown field")
        conds = parse_selection(selection)
        setting, most = cap or ("INVENTORY_BULK_MAX_DEVICES", int(self.config["INVENTORY_BULK_MAX_DEVICES"]))
        ids, total = self.store.search(tenant, conds, [], 0, most)
        if total > most:
            raise BadRequest(f"the selection matches {total} devices, more than {most} ({setting}): narrow it")
        return ids

    def group_selection(self, tenant: str, group: str, selection: Any) -> BulkResult:
        """Put the selected devices into `group` (moving them from any other)."""
        check_group_name(group)
        ids = self.select_device_ids(tenant, selection)
        result = BulkResult(len(ids))
        for batch in batches(ids):
            result.updated += self.store.set_group(tenant, batch, group)[1]
        return result

    def ungroup_selection(self, tenant: str, group: str, selection: Any) -> BulkResult:
        """Take the selected devices that are in `group` out of it."""
        check_group_name(group)
        ids = self.select_device_ids(tenant, selection)
        result = BulkResult(len(ids))
        for batch in batches(ids):
            result.updated += self.store.clear_group(tenant, group, batch)
        return result

    def tag_selection(self, tenant: str, body: Any) -> BulkResult:
        """Merge `tags` (`[{name, value}]`; an empty value removes the tag) into each selected
        device's tags; a device that would pass INVENTORY_LIMIT_TAGS fails alone."""
        if not isinstance(body, dict):
            raise BadRequest("body: must be a JSON object")
        tags = parse_attributes(body.get("tags"), SCOPE_TAGS, limit=self.tag_limit, string_only=True)
        if not tags:
            raise BadRequest("tags: at least one tag is required")
        ids = self.select_device_ids(tenant, body, extra=("tags",))
        result = BulkResult(len(ids))
        setting = [t for t in tags if t.value != ""]
        removing = {t.name for t in tags if t.value == ""}
        changed = [False]

        def compute(device):
            current = {a.name for a in device.attributes if a.scope == SCOPE_TAGS}
            fresh = [Attribute(SCOPE_TAGS, t.name, t.value, t.description) for t in setting]
            set_attrs, _, _ = self._scope_change(device, SCOPE_TAGS, fresh, False, None, stamp=True)
            unset = [(SCOPE_TAGS, n) for n in removing if n in current]
            if len(current - removing | {t.name for t in setting}) > self.tag_limit:
                raise BadRequest(f"more than {self.tag_limit} tags")
            changed[0] = bool(set_attrs or unset)
            return (set_attrs, unset, None, new_etag()) if changed[0] else None

        for device_id in ids:
            changed[0] = False
            try:
                self._write(tenant, device_id, compute, create=False, scopes=(SCOPE_TAGS,))
            except (BadRequest, NotFound, Conflict) as exc:
                result.fail(device_id, exc.message)
            else:
                if changed[0]:
                    result.done(device_id)
        audit_each(result, "update_tags")
        return result

    # ------------------------------------------------------------------ v2 filters
    def filter_attributes(self, tenant: str) -> list[AttributeCount]:
        """How many of a sample of the fleet's devices have each attribute. The sample of a fleet
        of FILTER_ATTRIBUTES_SAMPLE devices or more is reused for FILTER_ATTRIBUTES_CACHE_SECONDS
        (per process); a smaller fleet's is read every time."""
        cached = self._attribute_counts.get(tenant)
        now = _monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        counts = self.store.attribute_counts(tenant, FILTER_ATTRIBUTES_SAMPLE, FILTER_ATTRIBUTES_LIMIT)
        if counts and max(c.count for c in counts) >= FILTER_ATTRIBUTES_SAMPLE:
            if len(self._attribute_counts) >= _FILTER_ATTRIBUTES_CACHE_TENANTS:
                self._attribute_counts.clear()
            self._attribute_counts[tenant] = (now + FILTER_ATTRIBUTES_CACHE_SECONDS, counts)
        return counts

    def attribute_value_counts(self, tenant: str, device_ids: Sequence[str], names: Sequence[str] | None = None,
                               scope: str = SCOPE_INVENTORY) -> list[AttributeValueCount]:
        """How many of these devices hold each value of each attribute of `scope` (only `names`,
        when given): the breakdowns of a set of devices (deployments' failure insight). Cost
        follows the set: one indexed lookup per device and attribute. Raises BadRequest (more
        than MAX_VALUE_COUNT_DEVICES ids or MAX_VALUE_COUNT_NAMES names, an unknown scope)."""
        if len(device_ids) > MAX_VALUE_COUNT_DEVICES:
            raise BadRequest(f"at most {MAX_VALUE_COUNT_DEVICES} devices")
        if names is not None and len(names) > MAX_VALUE_COUNT_NAMES:
            raise BadRequest(f"at most {MAX_VALUE_COUNT_NAMES} attributes")
        if scope not in SCOPES:
            raise BadRequest(f"scope: one of {', '.join(SCOPES)}")
        return self.store.attribute_value_counts(tenant, list(device_ids), scope, list(names) if names else None)

    def create_filter(self, tenant: str, body: Any) -> Filter:
        if not isinstance(body, dict):
            raise BadRequest("body: must be a JSON object")
        if set(body) - {"name", "terms"}:
            raise BadRequest(f"{sorted(set(body) - {'name', 'terms'})[0]}: unknown field")
        name, terms = body.get("name"), body.get("terms")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_FILTER_NAME:
            raise BadRequest(f"name: must be a non-empty string of at most {MAX_FILTER_NAME} characters")
        check_printable(name, "name")
        if not isinstance(terms, list) or not terms:
            raise BadRequest("terms: must be a non-empty array of predicates")
        compile_filters(terms, "terms")
        saved = Filter(id=str(uuid.uuid4()), name=name, terms=terms, created_ts=self.clock.now())
        self.store.insert_filter(tenant, saved)
        return saved

    def list_filters(self, tenant: str, page: int, per_page: int) -> tuple[list[Filter], int]:
        return self.store.list_filters(tenant, (page - 1) * per_page, per_page)

    def delete_filter(self, tenant: str, filter_id: str) -> None:
        if not self.store.delete_filter(tenant, filter_id):
            raise NotFound("filter not found")

    def run_filter(self, tenant: str, filter_id: str, page: int, per_page: int,
                   groups: frozenset[str] | None = None) -> tuple[list[Device], int]:
        saved = self.get_filter(tenant, filter_id)
        return self.search(tenant, SearchQuery(conds=compile_filters(saved.terms, "terms"), page=page,
                                               per_page=per_page), groups)

    def statistics(self, tenant: str) -> dict[str, dict[str, int]]:
        """Accepted and pending devices per tier (system/tier; devices without one are `standard`):
        {status: {tier: count}}."""
        counts = self.store.status_tier_counts(tenant, ("accepted", "pending"), (SCOPE_SYSTEM, "tier"))
        out = {}
        for status in ("accepted", "pending"):
            tiers = {t: counts.get((status, t), 0) for t in ("micro", "system")}
            total = sum(n for (s, _), n in counts.items() if s == status)
            out[status] = {"standard": total - tiers["micro"] - tiers["system"], **tiers}
        return out

    # ------------------------------------------------------------------ internal
    def create_device(self, tenant: str, body: Any) -> str:
        """Internal: create a device with attributes (an existing device gets them upserted)."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            raise BadRequest("id: must be a non-empty string")
        if set(body) - {"id", "updated_ts", "attributes"}:
            raise BadRequest(f"{sorted(set(body) - {'id', 'updated_ts', 'attributes'})[0]}: unknown field")
        attrs = parse_attributes(body.get("attributes") or [], SCOPE_INVENTORY, allow_scope=True,
                                 limit=self.attribute_limit)
        now = self.clock.now()
        keys = {x.key() for x in attrs}
        base = [a for a in self._base_attributes(now) if a.key() not in keys]
        if not self.store.create_device(tenant, body["id"], now, new_etag(), base + attrs) and attrs:
            self.patch_scope(tenant, body["id"], None, body["attributes"])
        return body["id"]

    def device_groups(self, tenant: str, device_id: str) -> list[str]:
        group = self.get_device_group(tenant, device_id)
        return [group] if group else []


