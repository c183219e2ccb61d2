"""Failure insight (a mixin of DeploymentsService): the attribute values that separate a
deployment's failed devices from its succeeded ones, and its failed devices' common error lines.
The rules and the formula are in deployments/insights.py."""

from __future__ import annotations

from collections import defaultdict

from common.errors import BadRequest
from deployments import insights as ins
from deployments import model as m

SAMPLE = 3000            # failed and succeeded devices whose inventory is read, each
MAX_LOGS = 1000          # failed devices' logs read for the error lines
MAX_ATTRIBUTES = 50      # attributes an operator may name
MAX_LIMIT = 100
# recorded by the deployment itself, exact for every device: (field, attribute shown)
OWN_FIELDS = (("device_type", "device_type"), ("previous_artifact", "artifact_name"))
# inventory attributes left out: the deployment's own record is exact and unbiased (the
# inventory's artifact_name is already the new one on devices that succeeded)
SKIPPED_INVENTORY = frozenset({"device_type", "artifact_name"})


class FailureInsight:
    """Failure insight of DeploymentsService (uses its store and the inventory service)."""

    def insights(self, tenant: str, deployment_id: str, attributes: list[str] | None = None,
                 limit: int = 10, error_limit: int = 10) -> ins.Insights:
        """Rank the attribute values of the deployment's devices by how strongly they separate
        failed from succeeded devices (device type and the artifact they ran before, exact; the
        named inventory attributes, or all of them, over a sample of up to SAMPLE devices of each
        outcome), and group the failed devices' error lines. Raises NotFound, BadRequest."""
        if attributes is not None and len(attributes) > MAX_ATTRIBUTES:
            raise BadRequest(f"attribute: at most {MAX_ATTRIBUTES}")
        if not 1 <= limit <= MAX_LIMIT or not 1 <= error_limit <= MAX_LIMIT:
            raise BadRequest(f"limit: between 1 and {MAX_LIMIT}")
        self.get_deployment(tenant, deployment_id)
        cells: list[tuple] = []
        tables: tuple[dict, dict] = (defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0]))
        for device_type, previous, status, n in self.store.outcome_counts(tenant, deployment_id):
            for table, value in zip(tables, (device_type, previous)):
                table[value][0 if status == m.FAILURE else 1] += n
        failed_total = sum(a for a, _ in tables[0].values())
        succeeded_total = sum(b for _, b in tables[0].values())
        for (_, shown), table in zip(OWN_FIELDS, tables):
            cells += [(shown, "deployment", value, a, b, failed_total, succeeded_total, failed_total, succeeded_total)
                      for value, (a, b) in table.items() if value is not None]

        failed_ids = self.store.outcome_sample(tenant, deployment_id, m.FAILURE, SAMPLE)
        succeeded_ids = self.store.outcome_sample(tenant, deployment_id, m.SUCCESS, SAMPLE)
        names = [a for a in attributes if a not in SKIPPED_INVENTORY] if attributes else None
        if failed_ids and (names is None or names):
            inventory = self._services.inventory
            table = defaultdict(lambda: [0, 0])
            for i, ids in enumerate((failed_ids, succeeded_ids)):
                for c in inventory.attribute_value_counts(tenant, ids, names):
                    if c.name not in SKIPPED_INVENTORY:
                        table[(c.name, c.value)][i] += c.count
            cells += [(name, "inventory", value, a, b, len(failed_ids), len(succeeded_ids), failed_total,
                       succeeded_total) for (name, value), (a, b) in table.items()]

        logs = self.store.logs_of(tenant, deployment_id, failed_ids[:MAX_LOGS])
        return ins.Insights(deployment_id=deployment_id, failed=failed_total, succeeded=succeeded_total,
                            sampled_failed=len(failed_ids), sampled_succeeded=len(succeeded_ids),
                            breakdowns=ins.rank(cells, limit), error_lines=ins.error_lines(logs, error_limit),
                            logs_read=len(logs))
