#!/usr/bin/env bash
# Command two: install everything the tests need (Debian and Python packages) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
# Debian packages the suite uses:
APT_PACKAGES=(
  openssl curl util-linux                       # certificates, probes, unshare for the device client
  mender-client mender-cli mender-artifact      # the real Mender clients (end-to-end tests)
  radosgw ceph-mon ceph-osd uuid-runtime        # a real S3 endpoint (../shared/tools/s3-radosgw.sh)
  chromium                                      # the web UI's browser tests (Playwright drives it)
  nats-server mender-connect dbus-daemon        # deviceconnect: the NATS bus, the real mender-connect and its D-Bus
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
exec .venv/bin/python -m pytest "$@"
