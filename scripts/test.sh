#!/usr/bin/env bash
# Command two: install everything the tests need (Debian and Python packages) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# The end-to-end tests run the real Mender client in private mount namespaces, and the README test
# runs the README in private network and mount namespaces: say so now, not as errors deep in the run.
preflight_problems=()
if [ "$(id -u)" -ne 0 ]; then
  preflight_problems+=("run it as root: it installs Debian packages, and the end-to-end tests mount inside namespaces")
elif ! mountpoint -q /; then
  preflight_problems+=("/ is not a mount point (a plain chroot?): namespaces with private mounts need one; bind-mount the root onto itself before entering it (scripts/fresh-check.sh shows how)")
elif ! getent hosts localhost >/dev/null || [ ! -f /etc/hosts ]; then
  preflight_problems+=("localhost does not resolve from /etc/hosts (debootstrap writes none): add '127.0.0.1 localhost' and '::1 localhost' to /etc/hosts")
elif ! unshare --mount --net --propagation private true 2>/dev/null; then
  preflight_problems+=("cannot create mount and network namespaces (unshare --mount --net): a container without CAP_SYS_ADMIN? run it on a machine or VM, or a container started with --privileged")
fi
if [ ${#preflight_problems[@]} -gt 0 ]; then
  for problem in "${preflight_problems[@]}"; do echo "scripts/test.sh: $problem" >&2; done
  exit 2
fi

# Debian packages the suite uses:
APT_PACKAGES=(
  openssl curl util-linux iproute2              # certificates, probes, unshare and ip for the namespaces
  mender-client mender-cli mender-artifact      # the real Mender clients (end-to-end tests)
  radosgw ceph-mon ceph-osd uuid-runtime        # a real S3 endpoint (tests/artifacts/radosgw.sh)
  chromium                                      # the web UI's browser tests (Playwright drives it)
  nats-server mender-connect dbus-daemon        # deviceconnect: the NATS bus, the real mender-connect and its D-Bus
  libatomic1                                    # Playwright's node driver needs it; not pulled without recommends
  dbus-bin jq                                   # deviceconfig: the mender-configure test module (dbus-send, jq)
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
# Parallel by default (pytest-xdist): one worker per core, at most 4 (every test is xdist-safe: own
# ports, own data directories, shared radosgw refcounted). `-n N` or `-p no:xdist` overrides it.
workers=()
case " $* " in
  *" -n "*|*" -n"[0-9]*|*" --numprocesses"*|*" -p no:xdist "*|*" --collect-only "*|*" --co "*) ;;
  *) cores=$(nproc 2>/dev/null || echo 2); workers=(-n "$(( cores < 4 ? cores : 4 ))") ;;
esac
exec .venv/bin/python -m pytest "${workers[@]}" "$@"
