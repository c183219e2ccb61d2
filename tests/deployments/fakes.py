"""In-test stand-ins for the artifacts and inventory services, implementing the agreed
interfaces (docs/ARCHITECTURE.md) with the same records, so that the deployment rules can be
tested in isolation on both real stores. The API tests use the real services."""

from __future__ import annotations

import uuid

from common.errors import NotFound
from deployments.artifacts.model import Artifact, ArtifactBrief, Link

LINK_EXPIRE = 1_893_456_000.0  # 2030-01-01


class FakeArtifacts:
    def __init__(self):
        self.items: dict[str, Artifact] = {}

    def add(self, name: str, device_types=("dt",), size: int = 5120, depends: dict | None = None) -> Artifact:
        depends = {"device_type": list(device_types), **(depends or {})}
        a = Artifact(id=str(uuid.uuid4()), name=name, description="", device_types=list(device_types),
                     update_types=[], info={"format": "mender", "version": 3}, signed=False, updates=[],
                     provides={"artifact_name": name}, depends=depends, clears_provides=[], depends_idx=[],
                     size=size, modified=1_767_225_600.0, storage_key=f"key-{name}")
        self.items[a.id] = a
        return a

    def find_by_name(self, tenant, name):
        return [a for a in self.items.values() if a.name == name]

    def get(self, tenant, artifact_id):
        if artifact_id not in self.items:
            raise NotFound("artifact not found")
        return self.items[artifact_id]

    def get_for_device(self, tenant, artifact_id):
        a = self.get(tenant, artifact_id)
        return ArtifactBrief(a.id, a.name, a.device_types, a.size, a.storage_key)

    def device_link_for(self, tenant, artifact, base_url):
        return Link(f"{base_url}/download/{artifact.id}", LINK_EXPIRE)


class FakeInventory:
    def __init__(self):
        self.devices: dict[str, dict] = {}
        self.filters: dict = {}  # id -> inventory.model.Filter

    def add(self, device_id=None, group=None, status="accepted", **attrs) -> str:
        device_id = device_id or str(uuid.uuid4())
        self.devices[device_id] = {"group": group, "status": status, "attrs": attrs}
        return device_id

    def _match(self, d, filters):
        for f in filters or []:
            value = d["attrs"].get(f["attribute"])
            if f["type"] == "$eq" and value != f["value"]:
                return False
        return True

    def search_device_ids(self, tenant, *, filters=None, group=None, status="accepted", page=1, per_page=500):
        ids = [i for i, d in sorted(self.devices.items())
               if (status is None or d["status"] == status) and (group is None or d["group"] == group)
               and self._match(d, filters)]
        return ids[(page - 1) * per_page: page * per_page], len(ids)

    def all_device_ids(self, tenant, *, group=None, status="accepted", limit):
        return self.search_device_ids(tenant, group=group, status=status, per_page=limit)[0]

    def device_group(self, tenant, device_id):
        d = self.devices.get(device_id)
        return d["group"] if d else None

    def device_matches(self, tenant, device_id, filters):
        d = self.devices.get(device_id)
        return d is not None and d["status"] == "accepted" and self._match(d, filters)

    def get_filter(self, tenant, filter_id):
        if filter_id not in self.filters:
            raise NotFound("filter not found")
        return self.filters[filter_id]
