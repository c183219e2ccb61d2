"""`flask useradm …` admin commands and the first-start admin bootstrap."""

from __future__ import annotations

import click

from common.app import cli_data
from common.errors import ServiceError
from common.logging import get_logger
from common.cli import read_password as _read_password, tenant_option

log = get_logger("useradm")


def register(app, ctx) -> None:
    """Add the `useradm` command group to the app's CLI."""

    @app.cli.group("useradm")
    def useradm_group() -> None:
        """Manage users."""

    def service():
        return ctx.services.useradm

    @useradm_group.command("create-user")
    @click.option("--email", required=True, help="The user's email (login name).")
    @click.option("--password", default=None,
                  help="The password; read from stdin (or prompted) when omitted, which keeps it out of `ps`.")
    @tenant_option
    def create_user(email: str, password: str | None, tenant: str) -> None:
        """Create a user and print its id."""
        cli_data(ctx, create=True)
        try:
            user = service().create_user(email, _read_password(password), tenant=tenant)
        except ServiceError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(user.id)

    @useradm_group.command("set-password")
    @click.option("--email", required=True, help="The user's email.")
    @click.option("--password", default=None, help="The new password; read from stdin (or prompted) when omitted.")
    @tenant_option
    def set_password(email: str, password: str | None, tenant: str) -> None:
        """Set a user's password and revoke all of that user's tokens."""
        cli_data(ctx, create=False)
        try:
            user = service().set_password(email, _read_password(password), tenant=tenant)
        except ServiceError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"password changed for {user.email}; its tokens are revoked")

    @useradm_group.command("list-users")
    @tenant_option
    def list_users(tenant: str) -> None:
        """List users: id, email, created, last login (tab-separated)."""
        from common.clock import rfc3339
        cli_data(ctx, create=False)
        svc, skip = service(), 0
        svc.ensure_ready()
        while True:
            users, total = svc.list_users(tenant, skip=skip, limit=500)
            for u in users:
                login = rfc3339(u.login_ts) if u.login_ts else "-"
                click.echo(f"{u.id}\t{u.email}\t{rfc3339(u.created_ts)}\t{login}")
            skip += len(users)
            if not users or skip >= total:
                break


def bootstrap_hook(ctx):
    """A startup hook creating MENDER_ADMIN_EMAIL when no user exists yet (idempotent)."""

    def hook() -> None:
        email, password = ctx.config["MENDER_ADMIN_EMAIL"], ctx.config["MENDER_ADMIN_PASSWORD"]
        if not email:
            return
        if not password:
            log.error("MENDER_ADMIN_EMAIL is set but MENDER_ADMIN_PASSWORD is empty: no admin created")
            return
        try:
            user = ctx.services.useradm.bootstrap_admin(email, password)
        except ServiceError as exc:
            log.error("admin bootstrap failed", error=exc.message)
            return
        if user is not None:
            log.info("created the bootstrap admin user", email=user.email, user_id=user.id)

    return hook
