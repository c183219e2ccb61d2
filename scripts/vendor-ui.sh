#!/usr/bin/env bash
# Bring the web UI's third-party ES modules in from the npm registry, exactly the pinned versions:
# `npm pack` fetches each package tarball, its sha512 must match the integrity pinned below (the
# registry's own `dist.integrity`), and only the files the UI loads are copied to
# ui/static/vendor/ (committed: the server serves them itself and never needs the network).
# Run it after changing a version here; tests/ui/test_vendor.py checks the committed files
# against ui/static/vendor/MANIFEST.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(
  "@xterm/xterm@6.0.0 sha512-TQwDdQGtwwDt+2cgKDLn0IRaSxYu1tSUjgKarSDkUM0ZNiSRXFpjxEsvc/Zgc5kq5omJ+V0a8/kIM2WD3sMOYg=="
  "@msgpack/msgpack@3.1.3 sha512-47XIizs9XZXvuJgoaJUIE2lFoID8ugvc0jzSHP+Ptfk8nTbnR8g788wv48N03Kx0UkAv559HWRQ3yzOgzlRNUA=="
)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
vendor=ui/static/vendor
for entry in "${PACKAGES[@]}"; do
  spec="${entry% *}"; integrity="${entry#* }"
  tarball="$(cd "$work" && npm pack --silent "$spec")"
  actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
  if [ "$actual" != "$integrity" ]; then
    echo "$spec: integrity $actual does not match the pinned $integrity" >&2
    exit 1
  fi
  mkdir -p "$work/${tarball%.tgz}"
  tar -xzf "$work/$tarball" -C "$work/${tarball%.tgz}"
done
rm -rf "$vendor/xterm" "$vendor/msgpack"
mkdir -p "$vendor/xterm" "$vendor/msgpack/utils"
x="$work/xterm-xterm-6.0.0/package"
cp "$x/lib/xterm.mjs" "$x/css/xterm.css" "$x/LICENSE" "$vendor/xterm/"
m="$work/msgpack-msgpack-3.1.3/package"
cp "$m"/dist.esm/*.mjs "$vendor/msgpack/"
cp "$m"/dist.esm/utils/*.mjs "$vendor/msgpack/utils/"
cp "$m/LICENSE" "$vendor/msgpack/"
# the maps are not shipped: drop the comments that point at them
sed -i '/^\/\/# sourceMappingURL=/d' "$vendor"/xterm/xterm.mjs "$vendor"/msgpack/*.mjs "$vendor"/msgpack/utils/*.mjs
{
  echo "# Files brought in by scripts/vendor-ui.sh (sha256, path); do not edit them by hand."
  for entry in "${PACKAGES[@]}"; do echo "# ${entry}"; done
  (cd "$vendor" && find . -type f ! -name MANIFEST | sort | xargs sha256sum)
} > "$vendor/MANIFEST"
echo "vendored into $vendor"
