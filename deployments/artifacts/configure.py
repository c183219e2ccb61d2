"""The `mender-configure` artifact of a configuration deployment, generated for each download.

As Mender's deployments service makes it (artifact format version 3, no compression): one
module-image payload of type `mender-configure` with no files, the configuration as the payload's
`meta-data` (a JSON object of strings, which the update module writes to its configuration file
and hands to its apply scripts), providing `data-partition.mender-configure.version` (the
artifact's name) and clearing `data-partition.mender-configure.*`.

The bytes are a pure function of the deployment (name, configuration, creation time) and the
device type, so a retried or resumed download (HTTP Range) gets the same bytes from any worker.
Nothing is buffered but the configuration itself: the archive is a list of pieces (tar headers,
the small JSON files, padding), hashed in one pass for the manifest and written in another.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from typing import Iterator

MODULE_TYPE = "mender-configure"
PROVIDES_KEY = "data-partition.mender-configure.version"
CLEARS_PROVIDES = "data-partition.mender-configure.*"
BLOCK = tarfile.BLOCKSIZE
_END = b"\0" * (2 * BLOCK)


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def meta_data(configuration: dict[str, str]) -> bytes:
    """The payload's meta-data: the configuration as a JSON object, keys sorted."""
    return _json(configuration)


def _header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uname, info.gname = size, mtime, 0o600, "root", "root"
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _members(files: list[tuple[str, bytes]], mtime: int) -> list[bytes]:
    """The pieces of an uncompressed tar of `files` (the contents are not copied)."""
    pieces: list[bytes] = []
    for name, content in files:
        pieces += [_header(name, len(content), mtime), content, b"\0" * (-len(content) % BLOCK)]
    pieces.append(_END)
    return pieces


class ConfigurationArtifact:
    """One configuration deployment's artifact for one device type: `size`, `etag`, `chunks()`."""

    def __init__(self, *, name: str, device_type: str, configuration: dict[str, str], mtime: int):
        mtime = int(mtime)
        version = _json({"format": "mender", "version": 3})
        header_info = _json({"artifact_depends": {"device_type": [device_type]},
                             "artifact_provides": {"artifact_name": name},
                             "payloads": [{"type": MODULE_TYPE}]})
        type_info = _json({"artifact_provides": {PROVIDES_KEY: name},
                           "clears_artifact_provides": [CLEARS_PROVIDES], "type": MODULE_TYPE})
        header = _members([("header-info", header_info), ("headers/0000/type-info", type_info),
                           ("headers/0000/meta-data", meta_data(configuration))], mtime)
        header_size = sum(map(len, header))
        header_sum = hashlib.sha256()
        for piece in header:
            header_sum.update(piece)
        sums = {"header.tar": header_sum.hexdigest(), "version": hashlib.sha256(version).hexdigest()}
        manifest = "".join(f"{sums[k]}  {k}\n" for k in sorted(sums)).encode()
        data = _END  # the payload's empty tar: a module image without files
        self._pieces: list[bytes] = []
        for member, content in (("version", version), ("manifest", manifest)):
            self._pieces += [_header(member, len(content), mtime), content, b"\0" * (-len(content) % BLOCK)]
        self._pieces += [_header("header.tar", header_size, mtime), *header, b"\0" * (-header_size % BLOCK)]
        self._pieces += [_header("data/0000.tar", len(data), mtime), data, _END]
        self._pieces = [p for p in self._pieces if p]
        self.size = sum(map(len, self._pieces))
        # a strong validator named by what the bytes are made of
        self.etag = hashlib.sha256(header_sum.digest() + manifest + str(mtime).encode()).hexdigest()[:32]

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes from `start` up to `end` (exclusive; None: the end), piece by piece."""
        end = self.size if end is None else min(end, self.size)
        offset = 0
        for piece in self._pieces:
            lo, hi = offset, offset + len(piece)
            offset = hi
            if hi <= start:
                continue
            if lo >= end:
                return
            yield piece[max(0, start - lo):min(len(piece), end - lo)]
