"""The UI's third-party modules (xterm.js, msgpack) are exactly what scripts/vendor-ui.sh brought
from the npm registry: every file listed in ui/static/vendor/MANIFEST, none changed, none extra;
and they are served like the UI's own files, the terminal page with its own policy."""

from __future__ import annotations

import hashlib
import os
import re

from tests.helpers import ROOT

VENDOR = os.path.join(ROOT, "ui", "static", "vendor")


def test_vendored_files_match_the_manifest():
    listed = {}
    pins = []
    with open(os.path.join(VENDOR, "MANIFEST")) as f:
        for line in f:
            if line.startswith("#"):
                pins.append(line)
                continue
            digest, path = line.split()
            listed[os.path.normpath(path)] = digest
    present = set()
    for directory, _, files in os.walk(VENDOR):
        for name in files:
            rel = os.path.relpath(os.path.join(directory, name), VENDOR)
            if rel != "MANIFEST":
                present.add(os.path.normpath(rel))
    assert present == set(listed), "vendor files differ from the manifest: run scripts/vendor-ui.sh"
    for rel, digest in listed.items():
        with open(os.path.join(VENDOR, rel), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, f"{rel} was changed by hand"
    with open(os.path.join(ROOT, "scripts", "vendor-ui.sh")) as f:
        script = f.read()
    for spec in re.findall(r'"(@[a-z0-9/-]+@[0-9.]+ sha512-[A-Za-z0-9+/=]+)"', script):
        assert any(spec in pin for pin in pins), f"{spec} is pinned in the script but not in the manifest"


def test_terminal_page_and_modules_are_served(sqlite_client):
    r = sqlite_client.get("/ui/terminal")
    assert r.status_code == 200 and b"/ui/static/js/terminal.js" in r.data
    csp = r.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/]+=*';", csp) and "frame-ancestors 'self'" in csp and "'unsafe-eval'" not in csp
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    main = sqlite_client.get("/")
    assert "'unsafe-inline'" not in main.headers["Content-Security-Policy"]  # only the terminal's page has it
    assert main.headers["X-Frame-Options"] == "DENY"
    for path in ("/ui/static/vendor/xterm/xterm.mjs", "/ui/static/vendor/msgpack/index.mjs", "/ui/static/js/terminal.js"):
        r = sqlite_client.get(path)
        assert r.status_code == 200 and "javascript" in r.headers["Content-Type"], path
