#!/usr/bin/env bash
# The README's two commands on a really fresh machine: builds a Debian 12 root with debootstrap
# (minbase plus python3, git and ca-certificates: nothing else) in DIR, clones this repository's
# committed HEAD into it, and runs inside it, as root:
#   1. bash scripts/serve.sh      (checked: health answers 204 on the internal listener, 127.0.0.1:8081; then stopped)
#   2. bash scripts/test.sh ARGS  (the whole suite by default; ARGS go to pytest)
# Not part of the suite (it takes tens of minutes: two sets of packages to install, the whole
# suite to run). Needs root and the network to reach Debian's and PyPI's registries.
#
# usage: bash scripts/fresh-check.sh DIR [pytest arguments...]
#   DIR is created (or reused: an existing root is kept, so a second run skips debootstrap; the
#   clone is made anew). DEBIAN_MIRROR overrides the mirror (default http://deb.debian.org/debian).
# The root runs in its own mount namespace (so nothing stays mounted when it ends) with /proc,
# /sys, /dev, /dev/pts, /dev/shm and a tmpfs /tmp mounted, and the root bind-mounted onto itself:
# the suite's namespaces need `/` to be a mount point, which a plain chroot is not.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash scripts/fresh-check.sh DIR [pytest arguments...]" >&2
  exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "fresh-check.sh: run it as root (debootstrap, chroot, mounts)" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$(mkdir -p "$1" && cd "$1" && pwd)
shift
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { echo "fresh-check: $*" >&2; }

command -v debootstrap >/dev/null || {
  log "installing debootstrap on this host"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

if [ ! -x "$root/usr/bin/python3" ]; then
  log "debootstrap bookworm (minbase + python3, git, ca-certificates) into $root"
  started=$(date +%s)
  debootstrap --variant=minbase --include=python3,git,ca-certificates bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
    || { tail -30 "$root.debootstrap.log" >&2; exit 1; }
  log "debootstrap took $(( $(date +%s) - started )) s"
else
  log "reusing the root in $root"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"  # the network, as a fresh machine's DHCP would give it
# The /etc/hosts every installed Debian has (the installer writes it; debootstrap does not).
[ -f "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
# A mirror that serves a dated snapshot needs its Release files' validity not checked: carry over
# that one setting when this host has it (it says nothing about what the project installs).
if apt-config dump 2>/dev/null | grep -q '^Acquire::Check-Valid-Until "false"'; then
  echo 'Acquire::Check-Valid-Until "false";' > "$root/etc/apt/apt.conf.d/99fresh-check-snapshot"
fi

# Certificate authorities this host adds to Debian's (a TLS-intercepting proxy's, where the network
# passes through one): a fresh machine on the same network is given them too.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1
fi

clone=/root/mender-server-py
rm -rf "${root:?}$clone"
git clone -q --no-hardlinks "$repo" "$root$clone"
log "cloned $(git -C "$repo" rev-parse --short HEAD) into $root$clone (committed files only)"

# What runs inside: the README's two commands, in a clean environment (no variable of this host).
cat > "$root/root/fresh-check-inside.sh" <<'EOF'
#!/bin/bash
set -uo pipefail
set -m  # the server in a process group of its own, stopped as a whole
cd /root/mender-server-py
echo "fresh-check (inside): bash scripts/serve.sh" >&2
bash scripts/serve.sh > /root/serve.log 2>&1 &
serve_pid=$!
status=000
for _ in $(seq 1 900); do
  status=$(python3 -c 'import urllib.request, sys
try:
    print(urllib.request.urlopen("http://127.0.0.1:8081/api/internal/v1/deployments/health", timeout=2).status)
except Exception as e:
    print(getattr(e, "code", "000"))' 2>/dev/null)
  [ "$status" = 204 ] && break
  kill -0 $serve_pid 2>/dev/null || break
  sleep 1
done
kill -TERM -- -$serve_pid 2>/dev/null || kill -TERM $serve_pid 2>/dev/null || true
wait $serve_pid 2>/dev/null || true
if [ "$status" != 204 ]; then
  echo "fresh-check (inside): serve.sh did not answer 204 on /api/internal/v1/deployments/health (got $status):" >&2
  tail -40 /root/serve.log >&2
  exit 1
fi
echo "fresh-check (inside): serve.sh answered 204" >&2
echo "fresh-check (inside): bash scripts/test.sh $*" >&2
bash scripts/test.sh "$@"
EOF
chmod +x "$root/root/fresh-check-inside.sh"

log "running the two commands inside (mount namespace; chroot)"
exec unshare --mount --propagation private --fork bash -c '
  set -e
  root=$1; shift
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount -t sysfs sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
  mkdir -p "$root/dev/shm" && mount -t tmpfs -o mode=1777 shm "$root/dev/shm" 2>/dev/null || true
  exec chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM="${TERM:-dumb}" setsid /bin/bash /root/fresh-check-inside.sh "$@"
' fresh-check "$root" "$@"
