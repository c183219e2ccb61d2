"""The UI's static files under content-addressed URLs, so that a browser keeps them.

A page (`index.html`, `terminal.html`) is served with every static URL it names carrying its
file's content hash (`/ui/static/app.css?v=…`), an import map that gives each ES module the same
(modules import each other by relative paths: the browser resolves `../api.js`, then the map
turns it into `/ui/static/js/api.js?v=…`), and a `modulepreload` link per module the page's entry
imports statically, so that they are fetched in one round of parallel requests instead of one
round per level of imports (the UI's pages are `import()`ed when first shown: mapped, not
preloaded). A URL whose hash is the file's current one is served as immutable for
a year; the page itself is revalidated on every load (`no-cache`), so an upgraded server's new
hashes are seen at once, and a stale or absent hash is served as before (revalidated).

The import map is the one inline script: the page's Content-Security-Policy allows exactly its
SHA-256 (a page built here holds nothing else inline). The hashes are computed once per process
from the files on disk (they change only with the code).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property

STATIC_PREFIX = "/ui/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
# `import … from "./x.js"`, `export … from "../x.mjs"`, `import("./x.js")`, `import "./x.js"`:
# relative specifiers only (the UI imports nothing by bare name or absolute URL)
_STATIC_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s+)["'](\.\.?/[^"']+)["']""")
_DYNAMIC_IMPORT = re.compile(r"""\bimport\s*\(\s*["'](\.\.?/[^"']+)["']""")
_STATIC_URL = re.compile(r'(\s(?:href|src)=")' + re.escape(STATIC_PREFIX) + r'([^"?#]+)(")')


@dataclass(frozen=True)
class Page:
    html: bytes
    script_hash: str  # the CSP source of the page's import map: 'sha256-…'
    etag: str  # unquoted (werkzeug quotes it)


class Assets:
    """Content hashes of the files under `static_dir`, and the pages built with them."""

    def __init__(self, static_dir: str):
        self.static_dir = static_dir
        self._pages: dict[str, Page] = {}

    @cached_property
    def versions(self) -> dict[str, str]:
        """Every static file's path relative to `static_dir` (with `/`) → a hash of its content."""
        out = {}
        for root, _dirs, files in os.walk(self.static_dir):
            for name in files:
                path = os.path.join(root, name)
                rel = os.path.relpath(path, self.static_dir).replace(os.sep, "/")
                with open(path, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()[:20]
        return out

    def url(self, rel: str) -> str:
        version = self.versions.get(rel)
        return STATIC_PREFIX + rel + (f"?v={version}" if version else "")

    def is_current(self, rel: str, version: str | None) -> bool:
        return version is not None and self.versions.get(rel) == version

    def module_graph(self, entry: str, dynamic: bool = True) -> list[str]:
        """The modules `entry` reaches through relative imports (with `dynamic`, `import()`s too),
        entry first, each once."""
        seen, order, todo = set(), [], [entry]
        while todo:
            rel = todo.pop(0)
            if rel in seen or rel not in self.versions:
                continue
            seen.add(rel)
            order.append(rel)
            with open(os.path.join(self.static_dir, rel), encoding="utf-8") as f:
                source = f.read()
            base = os.path.dirname(rel)
            specs = _STATIC_IMPORT.findall(source) + (_DYNAMIC_IMPORT.findall(source) if dynamic else [])
            for spec in specs:
                todo.append(os.path.normpath(os.path.join(base, spec)).replace(os.sep, "/"))
        return order

    def page(self, name: str) -> Page:
        """`name` (an HTML file of `static_dir`) built once per process."""
        page = self._pages.get(name)
        if page is None:
            page = self._pages[name] = self._build(name)
        return page

    def _build(self, name: str) -> Page:
        with open(os.path.join(self.static_dir, name), encoding="utf-8") as f:
            html = f.read()
        entries = re.findall(r'<script type="module" src="' + re.escape(STATIC_PREFIX) + r'([^"]+)"', html)
        modules: list[str] = []
        preloads: list[str] = []
        for entry in entries:
            modules += [m for m in self.module_graph(entry) if m not in modules]
            preloads += [m for m in self.module_graph(entry, dynamic=False) if m not in preloads]
        imports = {STATIC_PREFIX + m: self.url(m) for m in modules}
        import_map = json.dumps({"imports": imports}, separators=(",", ":"), sort_keys=True)
        digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
        head = [f'<script type="importmap">{import_map}</script>']
        head += [f'<link rel="modulepreload" href="{self.url(m)}">' for m in preloads]
        html = _STATIC_URL.sub(lambda m: m.group(1) + self.url(m.group(2)) + m.group(3), html)
        # the map must come before the first module script (and the preloads need it to resolve)
        first = html.find('<script type="module"')
        if first < 0:
            first = html.find("</head>")
        html = html[:first] + "\n  ".join(head) + "\n  " + html[first:]
        body = html.encode()
        return Page(body, f"'sha256-{digest}'", hashlib.sha256(body).hexdigest()[:20])
