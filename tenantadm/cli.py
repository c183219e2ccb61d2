"""`flask tenantadm …`: create, list, show, suspend, reactivate, rename and delete organizations,
rotate their tenant tokens, set their limits. An organization is named by its id (`default` for
the default one) or by its name when no other organization has it."""

from __future__ import annotations

import click

from common.app import cli_data
from common.cli import read_password
from common.clock import rfc3339
from common.errors import ServiceError
from common.tenancy import tenant_to_api
from tenantadm.model import SUSPENDED


def register(app, ctx) -> None:
    """Add the `tenantadm` command group to the app's CLI."""

    @app.cli.group("tenantadm")
    def group() -> None:
        """Manage organizations (tenants)."""

    def service(create: bool = False):
        """The service, once the command said which data it works on (only create-org may start
        a new database) and every service's migrations ran (an organization reaches them all)."""
        cli_data(ctx, create=create)
        ctx.ensure_migrated()
        return ctx.services.tenantadm

    def run(fn):
        try:
            return fn()
        except ServiceError as exc:
            raise click.ClickException(exc.message) from None

    def show(tenant, svc=None) -> None:
        click.echo(f"id: {tenant_to_api(tenant.id)}")
        click.echo(f"name: {tenant.name}")
        click.echo(f"status: {tenant.status}")
        click.echo(f"created: {rfc3339(tenant.created_ts) if tenant.created_ts else '-'}")
        click.echo(f"tenant_token: {tenant.tenant_token}")
        if svc is not None:
            echo_limits(svc, tenant.id)

    def echo_limits(svc, tenant_id: str) -> None:
        limits = svc.limits(tenant_id)
        for kind, u in (("devices", limits.devices), ("users", limits.users), ("storage", limits.storage)):
            click.echo(f"{kind}: {u.usage} of {u.limit}")

    @group.command("create-org")
    @click.option("--name", required=True, help="The organization's name.")
    @click.option("--admin-email", default=None, help="Email of its first user (who logs in with it).")
    @click.option("--password", default=None,
                  help="That user's password; read from stdin (or prompted) when omitted, which keeps it out of `ps`.")
    @click.option("--max-devices", type=click.IntRange(min=-1), default=None,
                  help="Accepted-device limit (-1: unlimited; default DEVICEAUTH_MAX_DEVICES).")
    @click.option("--max-users", type=click.IntRange(min=-1), default=None,
                  help="User limit (-1: unlimited; default USERADM_MAX_USERS).")
    @click.option("--storage-limit", type=click.IntRange(min=0), default=None,
                  help="Artifact storage limit in bytes (0: unlimited; default DEPLOYMENTS_STORAGE_LIMIT).")
    def create_org(name, admin_email, password, max_devices, max_users, storage_limit) -> None:
        """Create an organization (and its first user); print its id and tenant token."""
        svc = service(create=True)
        secret = read_password(password) if admin_email else None
        tenant = run(lambda: svc.create_tenant(name, admin_email=admin_email, admin_password=secret,
                                               max_devices=max_devices, max_users=max_users,
                                               storage_limit=storage_limit))
        click.echo(f"id: {tenant_to_api(tenant.id)}")
        click.echo(f"tenant_token: {tenant.tenant_token}")

    @group.command("list-orgs")
    @click.option("--q", "query", default=None, help="An id, or part of a name.")
    def list_orgs(query) -> None:
        """List organizations: id, status, created, name (tab-separated)."""
        svc, skip = service(), 0
        while True:
            tenants, total = svc.list_tenants(q=query, skip=skip, limit=500)
            for t in tenants:
                created = rfc3339(t.created_ts) if t.created_ts else "-"
                click.echo(f"{tenant_to_api(t.id)}\t{t.status}\t{created}\t{t.name}")
            skip += len(tenants)
            if not tenants or skip >= total:
                break

    @group.command("show")
    @click.argument("org")
    def show_org(org) -> None:
        """Show an organization: status, tenant token, limits and usage."""
        svc = service()
        show(run(lambda: svc.find(org)), svc)

    @group.command("suspend")
    @click.argument("org")
    def suspend(org) -> None:
        """Suspend an organization: its users' logins and tokens and its devices' auth fail (401)."""
        svc = service()
        tenant = run(lambda: svc.set_status(svc.find(org).id, SUSPENDED))
        click.echo(f"{tenant_to_api(tenant.id)}: {tenant.status}")

    @group.command("activate")
    @click.argument("org")
    def activate(org) -> None:
        """Reactivate a suspended organization (or approve a signup)."""
        svc = service()
        tenant = run(lambda: svc.set_status(svc.find(org).id, "active"))
        click.echo(f"{tenant_to_api(tenant.id)}: {tenant.status}")

    @group.command("rename")
    @click.argument("org")
    @click.argument("name")
    def rename(org, name) -> None:
        """Rename an organization."""
        svc = service()
        tenant = run(lambda: svc.rename(svc.find(org).id, name))
        click.echo(f"{tenant_to_api(tenant.id)}: {tenant.name}")

    @group.command("rotate-token")
    @click.argument("org")
    def rotate_token(org) -> None:
        """Give an organization a new tenant token (accepted devices keep working with the old one,
        which admits no new device); print it."""
        svc = service()
        tenant = run(lambda: svc.rotate_token(svc.find(org).id))
        click.echo(tenant.tenant_token)

    @group.command("set-limits")
    @click.argument("org")
    @click.option("--max-devices", type=click.IntRange(min=-1), default=None, help="-1: unlimited.")
    @click.option("--max-users", type=click.IntRange(min=-1), default=None, help="-1: unlimited.")
    @click.option("--storage-limit", type=click.IntRange(min=0), default=None, help="Bytes; 0: unlimited.")
    def set_limits(org, max_devices, max_users, storage_limit) -> None:
        """Set an organization's limits; print them with the usage."""
        svc = service()
        tenant = run(lambda: svc.find(org))
        run(lambda: svc.set_limits(tenant.id, max_devices=max_devices, max_users=max_users,
                                   storage_limit=storage_limit))
        echo_limits(svc, tenant.id)

    @group.command("delete")
    @click.argument("org")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def delete(org, yes) -> None:
        """Delete an organization with all its devices, inventory, artifacts, deployments, users
        and tokens (an active one is suspended first). Safe to run again after a failure."""
        svc = service()
        tenant = run(lambda: svc.find(org))
        if not yes:
            click.confirm(f"Delete organization {tenant.name!r} ({tenant_to_api(tenant.id)}) and all its data?",
                          abort=True)
        if tenant.status == "active":
            run(lambda: svc.set_status(tenant.id, SUSPENDED))
        run(lambda: svc.delete_tenant(tenant.id))
        click.echo(f"{tenant_to_api(tenant.id)}: deleted")
