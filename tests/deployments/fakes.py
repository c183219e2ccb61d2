"""In-test stand-ins for the artifacts and inventory services, implementing the agreed
interfaces (docs/ARCHITECTURE.md), so that the deployment rules can be tested in isolation
on both real stores. The API tests use the real services."""

from __future__ import annotations

import uuid

from common.errors import NotFound


class FakeArtifacts:
    def __init__(self):
        self.items: dict[str, dict] = {}

    def add(self, name: str, device_types=("dt",), size: int = 5120, depends: dict | None = None) -> dict:
        a = {"id": str(uuid.uuid4()), "name": name, "description": "", "device_types_compatible": list(device_types),
             "info": {"format": "mender", "version": 3}, "signed": False, "updates": [],
             "artifact_provides": {"artifact_name": name},
             "artifact_depends": {"device_type": list(device_types), **(depends or {})},
             "clears_artifact_provides": [], "size": size, "modified": "2026-01-01T00:00:00Z"}
        self.items[a["id"]] = a
        return a

    def find_by_name(self, tenant, name):
        return [a for a in self.items.values() if a["name"] == name]

    def get(self, tenant, artifact_id):
        if artifact_id not in self.items:
            raise NotFound("artifact not found")
        return self.items[artifact_id]

    def device_link(self, tenant, artifact_id, base_url):
        return {"uri": f"{base_url}/download/{artifact_id}", "expire": "2030-01-01T00:00:00Z"}

    def get_for_device(self, tenant, artifact_id):
        return self.get(tenant, artifact_id)

    def device_link_for(self, tenant, artifact, base_url):
        return self.device_link(tenant, artifact["id"], base_url)


class FakeInventory:
    def __init__(self):
        self.devices: dict[str, dict] = {}
        self.filters: dict[str, dict] = {}

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

    def device_group(self, tenant, device_id):
        d = self.devices.get(device_id)
        return d["group"] if d else None

    def device_matches(self, tenant, device_id, filters):
        d = self.devices.get(device_id)
        return d is not None and d["status"] == "accepted" and self._match(d, filters)

    def get_filter(self, tenant, filter_id):
        if filter_id not in self.filters:
            raise NotFound("filter not found")
        return self.filters[filter_id]  # an inventory.model.Filter
