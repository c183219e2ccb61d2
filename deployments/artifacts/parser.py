"""Streaming reader of `.mender` artifacts (format versions 2 and 3).

One forward pass over the outer (uncompressed) tar: `version`, `manifest`, optional
`manifest.sig`, `header.tar[.gz|.xz|.zst]`, then `data/NNNN.tar[...]`. Every file the manifest
lists is checked against its SHA-256, and every file that must be listed is. Nothing is ever
extracted to disk and no member is held in memory beyond the small metadata files.
Every tar (outer, header, payloads) goes through the bounded `TarReader`, every decompressed byte
through the artifact's `Budget` (limits.py): the stdlib's tarfile never sees the input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from common.clock import rfc3339
from deployments.artifacts.limits import XZ_MEMORY, ZSTD_WINDOW, Budget, InvalidArtifact, ReadLimits
from deployments.artifacts.streams import (CHUNK, CountingReader, DecompressError, HashingReader, LimitedReader,
                                           decompressing)
from deployments.artifacts.strings import MAX_NAME_BYTES, string_problem
from deployments.artifacts.tarstream import TarReader

META_LIMIT = 1024 * 1024          # version, manifest, manifest.sig, header-info, type-info, meta-data, files
HEADER_LIMIT = 16 * 1024 * 1024   # the whole decompressed header tar
MAX_PAYLOADS = 16
MAX_PAYLOAD_FILES = 4096
MAX_FILE_NAME = 255

_COMPRESSED = r"\.tar(\.gz|\.xz|\.zst)?"
_HEADER = re.compile(rf"header{_COMPRESSED}")  # patterns: fullmatch ($ would let a newline end them)
_DATA = re.compile(rf"data/([0-9]{{4}}){_COMPRESSED}")
_HEADER_MEMBER = re.compile(r"headers/([0-9]{4})/(type-info|meta-data|files)")
_SCRIPT = re.compile(r"scripts/[A-Za-z0-9_.-]{1,255}")
_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (\S+)")


@dataclass
class ArtifactMeta:
    """What an artifact declares, as read from it."""

    name: str
    version: int
    signed: bool
    device_types: list[str]
    provides: dict[str, str]
    depends: dict[str, list[str]]
    clears_provides: list[str]
    updates: list[dict]
    scripts: list[str] = field(default_factory=list)

    @property
    def update_types(self) -> list[str]:
        return sorted({u["type_info"]["type"] for u in self.updates if u["type_info"]["type"]})


def parse_artifact(fileobj, limits: ReadLimits | None = None, budget: Budget | None = None) -> ArtifactMeta:
    """Read a whole artifact from a binary file-like, to its end; raise InvalidArtifact naming the
    problem or the limit it passed. `budget` (made from `limits` if not given) counts what it cost."""
    budget = budget or Budget(limits)
    try:
        return _Reader(fileobj, budget).run()
    except DecompressError as exc:
        raise InvalidArtifact(f"invalid artifact: {_describe(exc)}") from None
    except RecursionError:
        raise InvalidArtifact("invalid artifact: nested too deeply") from None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text or "unexpected end of data" in text:
        return f"truncated ({text})"
    return f"corrupt compressed data ({text})"


def _date(mtime: float) -> str:
    try:
        return rfc3339(mtime)
    except (OverflowError, OSError, ValueError):
        _fail("a payload file has an impossible modification time")


def _fail(message: str) -> None:
    raise InvalidArtifact(f"invalid artifact: {message}")


# How deep a header's JSON document may nest. json.loads takes what the recursion limit lets
# through at the parser's depth in the stack, about 966 levels: such an artifact was stored (201),
# then every deeper reader of its metadata failed (creating a deployment of it: 400 "nested too
# deeply"). Artifacts nest a few levels.
MAX_JSON_DEPTH = 64


def _nests_deeper(value, limit: int) -> bool:
    """Whether a parsed JSON value nests objects and arrays more than `limit` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _json_object(raw: bytes, what: str, allow_empty: bool = False) -> dict:
    if allow_empty and not raw.strip():
        return {}
    try:
        value = json.loads(raw)
        # lone surrogates ("\\ud800") parse, but no store or response could encode them
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        _fail(f"{what} is not valid JSON")
    if not isinstance(value, dict):
        _fail(f"{what} must be a JSON object")
    if _nests_deeper(value, MAX_JSON_DEPTH):
        _fail(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


# strings Mender's reader restricts to 256 bytes (the rest: MAX_VALUE_BYTES)
_NAME_KEYS = ("artifact_name", "artifact_group", "device_type")


def _check_string(value: str, what: str, max_bytes: int | None = None) -> None:
    problem = string_problem(value, max_bytes) if max_bytes else string_problem(value)
    if problem:
        _fail(f"{what} {problem}")


def _check_map(mapping: dict, what: str) -> None:
    """Keys and values of provides / depends (values of other types are refused by their readers)."""
    for key, value in mapping.items():
        _check_string(key, f"{what}: a key")
        limit = MAX_NAME_BYTES if key in _NAME_KEYS else None
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                _check_string(v, f"{what}.{key[:100]}", limit)


def _str_list(value: Any, what: str, allow_empty: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not all(isinstance(v, str) and v for v in value)
            or (not value and not allow_empty)):
        _fail(f"{what} must be a list of non-empty strings")
    return list(value)


def _unpacked(suffix: str | None, raw, member) -> CountingReader:
    """The decompressed bytes of an outer member, each one counted against its budget."""
    return CountingReader(decompressing(suffix, raw, xz_memory=XZ_MEMORY, zstd_window=ZSTD_WINDOW), member.spend)


def _drain_unpacked(unpacked, name: str) -> None:
    """Read a member's stream to its end (so a compressed one is checked whole, to its checksum
    trailer): after the tar's end-of-archive marker only zero padding may follow."""
    while chunk := unpacked.read(CHUNK):
        if chunk.count(0) != len(chunk):
            _fail(f"{name}: data after the end of its archive")


def _read_small(fileobj, size: int, what: str, limit: int = META_LIMIT) -> bytes:
    if size > limit:
        _fail(f"{what} is larger than {limit} bytes")
    data = fileobj.read(size)
    if len(data) != size:
        _fail(f"{what} is truncated")
    return data


class _Reader:
    def __init__(self, fileobj, budget: Budget):
        self.fileobj = fileobj
        self.budget = budget
        self.version: int | None = None
        self.version_digest: str | None = None
        self.manifest: dict[str, str] | None = None
        self.checked: set[str] = set()
        self.signed = False
        self.header: dict | None = None
        self.type_infos: dict[int, dict] = {}
        self.meta_data: dict[int, dict] = {}
        self.v2_files: dict[int, list[str]] = {}
        self.scripts: list[str] = []
        self.payload_types: list[Any] = []
        self.files: dict[int, list[dict]] = {}
        self.next_data = 0

    # ------------------------------------------------------------------ outer tar
    def run(self) -> ArtifactMeta:
        outer = TarReader(self.fileobj, self.budget, "artifact")
        position = 0
        while (member := outer.next()) is not None:
            name = member.name
            if not member.is_regular:
                _fail(f"{name[:100]!r} is not a regular file")
            if position == 0 and name != "version":
                _fail(f"the first file must be 'version', not {name[:100]!r}")
            if position == 1 and name != "manifest":
                _fail(f"the second file must be 'manifest', not {name[:100]!r}")
            position += 1
            if name == "version" and position == 1:
                self._read_version(outer, member.size)
            elif name == "manifest" and position == 2:
                self._read_manifest(outer, member.size)
            elif name == "manifest.sig" and position == 3:
                _read_small(outer, member.size, "manifest.sig")
                self.signed = True
            elif name in ("manifest-augment",) or name.startswith("header-augment"):
                _fail("augmented artifacts are not supported")
            elif (m := _HEADER.fullmatch(name)) and self.header is None:
                self._read_header(name, m.group(1), outer, member.size)
            elif (m := _DATA.fullmatch(name)) and self.header is not None:
                self._read_data(name, int(m.group(1)), m.group(2), outer, member.size)
            else:
                _fail(f"unexpected file {name[:100]!r}")
        result = self._result()
        while chunk := self.fileobj.read(CHUNK):  # only zero padding may follow the end-of-archive marker
            self.budget.tick()
            drain_tail(chunk)
        return result

    def _check(self, path: str, digest: str) -> None:
        assert self.manifest is not None
        expected = self.manifest.get(path)
        if expected is None:
            _fail(f"{path!r} is not listed in the manifest")
        if expected != digest:
            _fail(f"checksum mismatch for {path!r}")
        self.checked.add(path)

    def _read_version(self, reader, size: int) -> None:
        hashing = HashingReader(reader)
        doc = _json_object(_read_small(hashing, size, "version"), "version")
        if doc.get("format") != "mender":
            _fail("version: format must be 'mender'")
        if doc.get("version") not in (2, 3) or isinstance(doc.get("version"), bool):
            _fail(f"unsupported artifact version {doc.get('version')!r} (2 and 3 are supported)")
        self.version = doc["version"]
        self.version_digest = hashing.hexdigest()

    def _read_manifest(self, reader, size: int) -> None:
        text = _read_small(reader, size, "manifest")
        try:
            lines = text.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            _fail("manifest is not UTF-8 text")
        manifest: dict[str, str] = {}
        for line in lines:
            if not line.strip():
                continue
            m = _MANIFEST_LINE.fullmatch(line)
            if not m:
                _fail(f"malformed manifest line {line[:100]!r}")
            digest, path = m.groups()
            if path in manifest:
                _fail(f"manifest lists {path!r} twice")
            manifest[path] = digest
        self.manifest = manifest
        self._check("version", self.version_digest or "")

    # ------------------------------------------------------------------ header
    def _read_header(self, name: str, suffix: str | None, reader, size: int) -> None:
        hashing = HashingReader(reader)
        unpacked = LimitedReader(_unpacked(suffix, hashing, self.budget.member(name, size)), HEADER_LIMIT,
                                 lambda: _fail(f"{name} is larger than {HEADER_LIMIT} bytes uncompressed"))
        inner = TarReader(unpacked, self.budget, name)
        first = True
        while (member := inner.next()) is not None:
            hname = member.name
            if not member.is_regular:
                _fail(f"{name}: {hname[:100]!r} is not a regular file")
            content = _read_small(inner, member.size, f"{name}: {hname[:100]}")
            if first:
                if hname != "header-info":
                    _fail(f"{name}: the first file must be 'header-info', not {hname[:100]!r}")
                self._header_info(content)
                first = False
            elif _SCRIPT.fullmatch(hname):
                self.scripts.append(hname[len("scripts/"):])
            elif m := _HEADER_MEMBER.fullmatch(hname):
                self._header_member(int(m.group(1)), m.group(2), content, hname)
            else:
                _fail(f"{name}: unexpected file {hname[:100]!r}")
        if first:
            _fail(f"{name} has no header-info")
        _drain_unpacked(unpacked, name)
        hashing.drain()
        self._check(name, hashing.hexdigest())

    def _header_info(self, raw: bytes) -> None:
        info = _json_object(raw, "header-info")
        if self.version == 3:
            payloads = info.get("payloads")
            provides = info.get("artifact_provides")
            depends = info.get("artifact_depends")
            if not isinstance(provides, dict) or not isinstance(provides.get("artifact_name"), str):
                _fail("header-info: artifact_provides.artifact_name is missing")
            if not isinstance(depends, dict):
                _fail("header-info: artifact_depends is missing")
            self.header = {"name": provides["artifact_name"],
                           "provides": self._str_map(provides, "header-info: artifact_provides"),
                           "depends": {k: _str_list(v, f"header-info: artifact_depends.{k}")
                                       for k, v in depends.items()},
                           "device_types": _str_list(depends.get("device_type"),
                                                     "header-info: artifact_depends.device_type")}
        else:
            payloads = info.get("updates")
            if not isinstance(info.get("artifact_name"), str):
                _fail("header-info: artifact_name is missing")
            device_types = _str_list(info.get("device_types_compatible"), "header-info: device_types_compatible")
            self.header = {"name": info["artifact_name"], "provides": {"artifact_name": info["artifact_name"]},
                           "depends": {"device_type": device_types}, "device_types": device_types}
        if not self.header["name"]:
            _fail("header-info: the artifact name is empty")
        _check_string(self.header["name"], "the artifact name", MAX_NAME_BYTES)
        _check_map(self.header["provides"], "artifact_provides")
        _check_map(self.header["depends"], "artifact_depends")
        if not isinstance(payloads, list) or not payloads or len(payloads) > MAX_PAYLOADS:
            _fail(f"header-info: there must be 1 to {MAX_PAYLOADS} payloads")
        for p in payloads:
            if not isinstance(p, dict) or not (p.get("type") is None or isinstance(p.get("type"), str)):
                _fail("header-info: every payload needs a type")
            if p.get("type") is not None:
                _check_string(p["type"], "header-info: a payload type")
            self.payload_types.append(p.get("type"))

    @staticmethod
    def _str_map(value: Any, what: str) -> dict[str, str]:
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            _fail(f"{what} must map strings to strings")
        return dict(value)

    def _header_member(self, index: int, kind: str, content: bytes, hname: str) -> None:
        if index >= len(self.payload_types):
            _fail(f"header: {hname!r} belongs to no payload")
        if kind == "type-info":
            doc = _json_object(content, hname)
            if doc.get("type") and doc.get("type") != self.payload_types[index]:
                _fail(f"{hname}: type {doc.get('type')!r} differs from header-info")
            for key in ("artifact_provides", "artifact_depends"):
                if isinstance(doc.get(key), dict):
                    _check_map(doc[key], f"{hname}: {key}")
            clears = doc.get("clears_artifact_provides")
            for c in clears if isinstance(clears, list) else []:
                if isinstance(c, str):
                    _check_string(c, f"{hname}: clears_artifact_provides")
            self.type_infos[index] = doc
        elif kind == "meta-data":
            self.meta_data[index] = _json_object(content, hname, allow_empty=True)
        else:
            self.v2_files[index] = _str_list(_json_object(content, hname).get("files"), f"{hname}: files",
                                             allow_empty=True)

    # ------------------------------------------------------------------ payloads
    def _read_data(self, name: str, index: int, suffix: str | None, reader, size: int) -> None:
        if index != self.next_data or index >= len(self.payload_types):
            _fail(f"unexpected payload {name!r}")
        self.next_data += 1
        # the manifest lists the payload's files, not the compressed member: only those are hashed
        budget = self.budget.member(name, size)
        unpacked = _unpacked(suffix, reader, budget)
        inner = TarReader(unpacked, self.budget, name)
        files: list[dict] = []
        seen: set[str] = set()
        while (member := inner.next()) is not None:
            fname = member.name
            if (not fname or "/" in fname or "\\" in fname or "\0" in fname or fname in (".", "..")
                    or len(fname.encode()) > MAX_FILE_NAME or not fname.isprintable()):
                _fail(f"{name}: file name {fname[:100]!r} is not allowed")
            if not member.is_regular:
                _fail(f"{name}: {fname!r} is not a regular file")
            if fname in seen:
                _fail(f"{name}: {fname!r} appears twice")
            if len(files) >= MAX_PAYLOAD_FILES:
                _fail(f"{name}: more than {MAX_PAYLOAD_FILES} files")
            budget.claim(fname, member.size)
            seen.add(fname)
            content = HashingReader(inner)
            content.drain()
            self._check(f"data/{index:04d}/{fname}", content.hexdigest())
            files.append({"name": fname, "checksum": content.hexdigest(), "size": member.size,
                          "date": _date(member.mtime)})
        _drain_unpacked(unpacked, name)
        if self.version == 2 and index in self.v2_files and sorted(self.v2_files[index]) != sorted(seen):
            _fail(f"{name}: files differ from headers/{index:04d}/files")
        self.files[index] = files

    # ------------------------------------------------------------------ result
    def _result(self) -> ArtifactMeta:
        if self.manifest is None:
            _fail("empty or incomplete artifact")
        if self.header is None:
            _fail("no header")
        if self.next_data != len(self.payload_types):
            _fail(f"{len(self.payload_types)} payload(s) declared, {self.next_data} found")
        missing = sorted(set(self.manifest) - self.checked)
        if missing:
            _fail(f"the manifest lists {missing[0]!r}, which the artifact does not contain")
        provides = dict(self.header["provides"])
        depends = {k: list(v) for k, v in self.header["depends"].items()}
        clears: list[str] = []
        updates = []
        for i, ptype in enumerate(self.payload_types):
            ti = self.type_infos.get(i, {})
            for key, value in self._str_map(ti.get("artifact_provides") or {}, f"type-info {i}: artifact_provides").items():
                if key in provides:
                    _fail(f"artifact_provides: {key!r} is defined twice")
                provides[key] = value
            dep = ti.get("artifact_depends") or {}
            if not isinstance(dep, dict):
                _fail(f"type-info {i}: artifact_depends must be an object")
            for key, value in dep.items():
                if key in depends:
                    _fail(f"artifact_depends: {key!r} is defined twice")
                depends[key] = _str_list(value, f"type-info {i}: artifact_depends.{key}")
            for c in _str_list(ti.get("clears_artifact_provides") or [], f"type-info {i}: clears_artifact_provides",
                               allow_empty=True):
                if c not in clears:
                    clears.append(c)
            meta = self.meta_data.get(i, {})
            updates.append({"type_info": {"type": ptype}, "files": self.files.get(i, []),
                            "metadata": meta, "meta_data": [meta] if meta else []})
        return ArtifactMeta(name=self.header["name"], version=self.version or 0, signed=self.signed,
                            device_types=self.header["device_types"], provides=provides, depends=depends,
                            clears_provides=clears, updates=updates, scripts=self.scripts)


def drain_tail(chunk: bytes) -> None:
    """Bytes after the end-of-archive marker must be zero padding."""
    if chunk.count(0) != len(chunk):
        _fail("data after the end of the archive")


__all__ = ["ArtifactMeta", "InvalidArtifact", "parse_artifact", "drain_tail", "CHUNK"]
