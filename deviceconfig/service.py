"""deviceconfig's rules: a device's desired configuration (set by operators), the configuration it
reports having applied, and configuration deployments (made by deployments, delivered through
the device's normal update poll as a generated `mender-configure` artifact). Plain Python."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from common.clock import Clock
from common.errors import NotFound, ServiceError
from deviceconfig.model import DeviceConfiguration, check_configuration
from deviceconfig.store import DeviceconfigStore

log = logging.getLogger(__name__)

# deviceconnect's Mender client command (its protocol name), sent after a deployment is made
CHECK_UPDATE = "check-update"
INTERNAL_USER = "internal"  # the user a server-made remote-access action is recorded under


def deployment_name(deployment_id: str) -> str:
    """The name (and artifact name) of a configuration deployment, as Mender names it."""
    return f"configuration-{deployment_id}"


class DeviceconfigService:
    def __init__(self, store: DeviceconfigStore, config, clock: Clock, services):
        self._store = store
        self.config = config
        self._clock = clock
        self._services = services

    # ------------------------------------------------------------------ reads
    def get_device(self, tenant: str, device_id: str) -> DeviceConfiguration:
        """The device's desired and reported configuration; NotFound when deviceconfig has no
        record of it (never provisioned, configured nor reported)."""
        record = self._store.get_device(tenant, device_id)
        if record is None:
            raise NotFound("device not found")
        return record

    # ------------------------------------------------------------------ writes
    def set_configuration(self, tenant: str, device_id: str, configuration: Any) -> None:
        """An operator replaces the device's desired configuration (deploy it to send it).
        BadRequest (not a valid configuration), NotFound (no such device in this organization)."""
        configured = check_configuration(configuration)
        if self._store.get_device(tenant, device_id) is None:
            self._services.devauth.get_device(tenant, device_id)  # NotFound for an unknown device
        self._store.set_configured(tenant, device_id, configured, self._clock.now())

    def report_configuration(self, tenant: str, device_id: str, configuration: Any) -> None:
        """The device reports the configuration it applied (it replaces the previous report).
        BadRequest."""
        self._store.set_reported(tenant, device_id, check_configuration(configuration), self._clock.now())

    def deploy(self, tenant: str, device_id: str, *, retries: int = 0,
               update_control_map: dict | None = None) -> str:
        """Make a configuration deployment of the device's desired configuration (a snapshot: a
        later change needs a new deployment), with an update control map if given; returns its
        id. The device is then asked to check for updates at once if it is connected
        (deviceconnect), else it gets it at its next poll. NotFound (no record), BadRequest
        (retries, control map)."""
        record = self.get_device(tenant, device_id)
        deployment_id = str(uuid.uuid4())
        self._services.deployments.create_configuration_deployment(
            tenant, deployment_id, device_id, name=deployment_name(deployment_id),
            configuration=record.configured, retries=retries, update_control_map=update_control_map)
        self._store.set_deployment_id(tenant, device_id, deployment_id)
        self._check_update(tenant, device_id)
        return deployment_id

    def _check_update(self, tenant: str, device_id: str) -> None:
        """Best effort, as Mender's workflow: a device that is not connected polls in time."""
        deviceconnect = getattr(self._services, "deviceconnect", None)
        if deviceconnect is None:
            return
        try:
            deviceconnect.send_client_command(tenant, INTERNAL_USER, device_id, CHECK_UPDATE)
        except ServiceError as exc:  # not connected, unknown to deviceconnect, refused by a hook
            log.info("device %s not asked to check for updates (%s): it gets its configuration deployment at "
                     "its next poll", device_id, exc.message)
        except Exception:  # the bus: the deployment is made, the device polls for it anyway
            log.exception("could not ask %s to check for updates", device_id)

    # ------------------------------------------------------------------ lifecycle (devauth, tenantadm)
    def provision_device(self, tenant: str, device_id: str) -> None:
        """A device was accepted: give it an empty record (idempotent)."""
        self._store.provision_device(tenant, device_id, self._clock.now())

    def delete_device(self, tenant: str, device_id: str) -> None:
        """A device was decommissioned: forget its configuration (idempotent)."""
        self._store.delete_device(tenant, device_id)

    def delete_tenant(self, tenant: str) -> None:
        """Remove every configuration of an organization."""
        self._store.delete_tenant(tenant)
