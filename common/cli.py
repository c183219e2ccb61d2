"""Helpers shared by the services' `flask …` commands."""

from __future__ import annotations

import os
import sys

import click

from common.errors import ServiceError
from common.tenancy import tenant_from_api


def _tenant_value(_ctx, _param, value: str) -> str:
    try:
        return tenant_from_api(value)
    except ServiceError as exc:
        raise click.BadParameter(exc.message) from None


def tenant_option(fn):
    """`--tenant ID`: an organization id, `default` (or nothing) for the default organization;
    the command receives the stored id ("" for the default organization)."""
    return click.option("--tenant", default="", callback=_tenant_value,
                        help="Organization id (default: the default organization).")(fn)


def read_password(password: str | None) -> str:
    """The --password value, else a hidden prompt on a terminal, else one line of stdin."""
    if password is not None:
        return password
    stdin = sys.stdin
    if stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (click's test runner)
        line = stdin.readline()
    else:
        line = _read_line(fd)
    if not line:
        raise click.ClickException("no password given (use --password or pass it on stdin)")
    return line.rstrip("\r\n")


def _read_line(fd: int, limit: int = 4096) -> str:
    """One line of a file descriptor, read byte by byte: a buffered `readline` would take the
    lines after it too, which the next command of a script (`printf 'a\\nb\\n' | (…; …)`) needs."""
    data = bytearray()
    while len(data) < limit:
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
        if byte == b"\n":
            break
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException("the password on stdin is not UTF-8") from None
