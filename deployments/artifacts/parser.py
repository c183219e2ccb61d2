"""Streaming reader of `.mender` artifacts (format versions 2 and 3).

One forward pass over the outer (uncompressed) tar: `version`, `manifest`, optional
`manifest.sig`, `header.tar[.gz|.xz|.zst]`, then `data/NNNN.tar[...]`. Every file the manifest
lists is checked against its SHA-256, and every file that must be listed is. Nothing is ever
extracted to disk and no member is held in memory beyond the small metadata files.
"""

from __future__ import annotations

import gzip
import json
import lzma
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import zstandard

from common.clock import rfc3339
from common.errors import BadRequest
from deployments.artifacts.streams import CHUNK, HashingReader, LimitedReader

META_LIMIT = 1024 * 1024          # version, manifest, manifest.sig, header-info, type-info, meta-data, files
HEADER_LIMIT = 16 * 1024 * 1024   # the whole decompressed header tar
MAX_PAYLOADS = 16
MAX_PAYLOAD_FILES = 4096
MAX_FILE_NAME = 255

_COMPRESSED = r"\.tar(\.gz|\.xz|\.zst)?"
_HEADER = re.compile(rf"^header{_COMPRESSED}$")
_DATA = re.compile(rf"^data/(\d{{4}}){_COMPRESSED}$")
_HEADER_MEMBER = re.compile(r"^headers/(\d{4})/(type-info|meta-data|files)$")
_SCRIPT = re.compile(r"^scripts/[A-Za-z0-9_.-]{1,255}$")
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64})  (\S+)$")
_OUTER_BUFSIZE = 1024 * 1024
_INNER_BUFSIZE = 1024 * 1024


class InvalidArtifact(BadRequest):
    """The upload is not a well-formed .mender artifact (400)."""


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


def parse_artifact(fileobj) -> ArtifactMeta:
    """Read a whole artifact from a binary file-like; raise InvalidArtifact naming the problem."""
    try:
        return _Reader(fileobj).run()
    except InvalidArtifact:
        raise
    except (tarfile.TarError, EOFError, lzma.LZMAError, zstandard.ZstdError, zlib.error) as exc:
        raise InvalidArtifact(f"invalid artifact: {_describe(exc)}") from None
    except (gzip.BadGzipFile, OSError) as exc:
        if type(exc).__module__.startswith(("werkzeug", "gunicorn")):
            raise
        raise InvalidArtifact(f"invalid artifact: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "unexpected end of data" in text:
        return f"truncated ({text})"
    return text


def _date(mtime: float) -> str:
    try:
        return rfc3339(mtime)
    except (OverflowError, OSError, ValueError):
        _fail("a payload file has an impossible modification time")


def _fail(message: str) -> None:
    raise InvalidArtifact(f"invalid artifact: {message}")


def _json_object(raw: bytes, what: str, allow_empty: bool = False) -> dict:
    if allow_empty and not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        _fail(f"{what} is not valid JSON")
    if not isinstance(value, dict):
        _fail(f"{what} must be a JSON object")
    return value


def _str_list(value: Any, what: str, allow_empty: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not all(isinstance(v, str) and v for v in value)
            or (not value and not allow_empty)):
        _fail(f"{what} must be a list of non-empty strings")
    return list(value)


def _open_compressed(suffix: str | None, raw):
    if not suffix:
        return raw
    if suffix == ".gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if suffix == ".xz":
        return lzma.LZMAFile(raw)
    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)


def _read_small(fileobj, size: int, what: str, limit: int = META_LIMIT) -> bytes:
    if size > limit:
        _fail(f"{what} is larger than {limit} bytes")
    data = fileobj.read(size)
    if len(data) != size:
        _fail(f"{what} is truncated")
    return data


class _Reader:
    def __init__(self, fileobj):
        self.fileobj = fileobj
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
        tf = tarfile.open(fileobj=self.fileobj, mode="r|", bufsize=_OUTER_BUFSIZE)
        position = 0
        for member in tf:
            name = member.name
            if not member.isreg():
                _fail(f"{name!r} is not a regular file")
            if position == 0 and name != "version":
                _fail(f"the first file must be 'version', not {name!r}")
            if position == 1 and name != "manifest":
                _fail(f"the second file must be 'manifest', not {name!r}")
            position += 1
            reader = tf.extractfile(member)
            if name == "version" and position == 1:
                self._read_version(reader, member.size)
            elif name == "manifest" and position == 2:
                self._read_manifest(reader, member.size)
            elif name == "manifest.sig" and position == 3:
                _read_small(reader, member.size, "manifest.sig")
                self.signed = True
            elif name in ("manifest-augment",) or name.startswith("header-augment"):
                _fail("augmented artifacts are not supported")
            elif (m := _HEADER.match(name)) and self.header is None:
                self._read_header(name, m.group(1), reader)
            elif (m := _DATA.match(name)) and self.header is not None:
                self._read_data(name, int(m.group(1)), m.group(2), reader)
            else:
                _fail(f"unexpected file {name!r}")
        # what tarfile read ahead past the end-of-archive block (private, but stable for decades)
        drain_tail(bytes(getattr(tf.fileobj, "buf", b"")))
        return self._result()

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
            m = _MANIFEST_LINE.match(line)
            if not m:
                _fail(f"malformed manifest line {line[:100]!r}")
            digest, path = m.groups()
            if path in manifest:
                _fail(f"manifest lists {path!r} twice")
            manifest[path] = digest
        self.manifest = manifest
        self._check("version", self.version_digest or "")

    # ------------------------------------------------------------------ header
    def _read_header(self, name: str, suffix: str | None, reader) -> None:
        hashing = HashingReader(reader)
        decompressed = LimitedReader(_open_compressed(suffix, hashing), HEADER_LIMIT,
                                     lambda: _fail(f"{name} is larger than {HEADER_LIMIT} bytes uncompressed"))
        inner = tarfile.open(fileobj=decompressed, mode="r|", bufsize=64 * 1024)
        first = True
        for member in inner:
            hname = member.name
            if not member.isreg():
                _fail(f"{name}: {hname!r} is not a regular file")
            content = _read_small(inner.extractfile(member), member.size, f"{name}: {hname}")
            if first:
                if hname != "header-info":
                    _fail(f"{name}: the first file must be 'header-info', not {hname!r}")
                self._header_info(content)
                first = False
            elif _SCRIPT.match(hname):
                self.scripts.append(hname[len("scripts/"):])
            elif m := _HEADER_MEMBER.match(hname):
                self._header_member(int(m.group(1)), m.group(2), content, hname)
            else:
                _fail(f"{name}: unexpected file {hname!r}")
        if first:
            _fail(f"{name} has no header-info")
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
        if not isinstance(payloads, list) or not payloads or len(payloads) > MAX_PAYLOADS:
            _fail(f"header-info: there must be 1 to {MAX_PAYLOADS} payloads")
        for p in payloads:
            if not isinstance(p, dict) or not (p.get("type") is None or isinstance(p.get("type"), str)):
                _fail("header-info: every payload needs a type")
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
            self.type_infos[index] = doc
        elif kind == "meta-data":
            self.meta_data[index] = _json_object(content, hname, allow_empty=True)
        else:
            self.v2_files[index] = _str_list(_json_object(content, hname).get("files"), f"{hname}: files",
                                             allow_empty=True)

    # ------------------------------------------------------------------ payloads
    def _read_data(self, name: str, index: int, suffix: str | None, reader) -> None:
        if index != self.next_data or index >= len(self.payload_types):
            _fail(f"unexpected payload {name!r}")
        self.next_data += 1
        # the manifest lists the payload's files, not the compressed member: only those are hashed
        inner = tarfile.open(fileobj=_open_compressed(suffix, reader), mode="r|", bufsize=_INNER_BUFSIZE)
        files: list[dict] = []
        seen: set[str] = set()
        for member in inner:
            fname = member.name
            if (not fname or "/" in fname or "\\" in fname or "\0" in fname or fname in (".", "..")
                    or len(fname.encode()) > MAX_FILE_NAME):
                _fail(f"{name}: file name {fname[:100]!r} is not allowed")
            if not member.isreg():
                _fail(f"{name}: {fname!r} is not a regular file")
            if fname in seen:
                _fail(f"{name}: {fname!r} appears twice")
            if len(files) >= MAX_PAYLOAD_FILES:
                _fail(f"{name}: more than {MAX_PAYLOAD_FILES} files")
            seen.add(fname)
            content = HashingReader(inner.extractfile(member))
            content.drain()
            if content.count != member.size:
                _fail(f"{name}: {fname!r} is truncated")
            self._check(f"data/{index:04d}/{fname}", content.hexdigest())
            files.append({"name": fname, "checksum": content.hexdigest(), "size": member.size,
                          "date": _date(member.mtime)})
        while reader.read(CHUNK):
            pass
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
