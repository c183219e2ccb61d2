#!/usr/bin/env bash
# Command one: install the server into .venv and serve it on the embedded default
# (SQLite and filesystem artifact storage under ./data): the API and UI on 0.0.0.0:8080, the
# internal API and /metrics on 127.0.0.1:8081 (MENDER_BIND, MENDER_INTERNAL_BIND).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
exec .venv/bin/gunicorn -c gunicorn.conf.py "$@"
