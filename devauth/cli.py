"""`flask devauth ...` commands."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from common.app import cli_data
from common.errors import BadRequest
from common.cli import tenant_option


def register_cli(app, ctx) -> None:
    group = AppGroup("devauth", help="Device authentication and admission.")

    @group.command("preauthorize")
    @click.argument("file", type=click.File("rb"))
    @click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default=None,
                  help="File format (default: from the file name, else from the content).")
    @tenant_option
    @click.option("--quiet", is_flag=True, help="Print only rows that were not created, and the summary.")
    def preauthorize_command(file, fmt, tenant, quiet) -> None:
        """Preauthorize the devices of a CSV or JSON FILE ('-' for stdin): one result per row."""
        from devauth import bulk
        data = file.read()
        try:
            rows = bulk.parse_rows(data, fmt or bulk.detect_format(data, filename=getattr(file, "name", "")))
        except BadRequest as exc:
            raise click.ClickException(exc.message) from None
        cli_data(ctx, create=True)
        ctx.ensure_migrated()
        counts = {"created": 0, "conflict": 0, "invalid": 0}
        lines = []
        results = ctx.services.devauth.preauthorize_rows(tenant, rows)
        with click.progressbar(results, length=len(rows), label="preauthorizing", file=sys.stderr,
                               show_pos=True) as bar:
            for result in bar:
                counts[result.status] += 1
                if quiet and result.status == "created":
                    continue
                detail = " ".join(x for x in (result.device_id, result.reason) if x)
                lines.append(f"row {result.row}: {result.status} {detail}".rstrip())
        for line in lines:
            click.echo(line)
        click.echo(f"{len(rows)} rows: {counts['created']} created, {counts['conflict']} conflict, "
                   f"{counts['invalid']} invalid")
        if counts["invalid"]:
            sys.exit(1)

    @group.command("max-devices")
    @click.argument("limit", type=click.IntRange(min=-1), required=False)
    @tenant_option
    @click.option("--clear", is_flag=True, help="Remove the tenant's limit (DEVICEAUTH_MAX_DEVICES applies).")
    def max_devices_command(limit, tenant, clear) -> None:
        """Show, set (LIMIT; -1 unlimited) or --clear a tenant's accepted-device limit."""
        cli_data(ctx, create=limit is not None or clear)
        ctx.ensure_migrated()
        svc = ctx.services.devauth
        if clear and limit is not None:
            raise click.UsageError("give a LIMIT or --clear, not both")
        if clear:
            svc.clear_max_devices(tenant)
        elif limit is not None:
            svc.set_max_devices(tenant, limit)
        click.echo(f"max_devices: {svc.max_devices(tenant)}")

    app.cli.add_command(group)
