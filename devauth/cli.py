"""`flask devauth ...` commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup


def register_cli(app, ctx) -> None:
    group = AppGroup("devauth", help="Device authentication and admission.")
    app.cli.add_command(group)
