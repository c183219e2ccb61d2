"""Building a single-file `.mender` artifact (format version 3), as `mender-artifact write
module-image -T single-file` does: payload files `dest_dir`, `filename`, `permissions` and the file."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time
from typing import Callable, Iterator

from common.errors import BadRequest
from deployments.artifacts.streams import CHUNK, file_chunks

UPDATE_TYPE = "single-file"
_PERMISSIONS = re.compile(r"^[0-7]{3,4}$")


def _safe_filename(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not name or name in (".", "..") or "\0" in name or len(name.encode()) > 255:
        raise BadRequest("file: a file name is required (plain name, at most 255 bytes)")
    return name


def parse_args(raw: str, upload_filename: str | None) -> dict:
    """The `args` JSON of a single_file generation: dest_dir (required, absolute), optional
    filename and permissions (octal, default 644)."""
    try:
        args = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise BadRequest("args: not valid JSON") from None
    if not isinstance(args, dict):
        raise BadRequest("args: must be a JSON object")
    dest_dir = args.get("dest_dir")
    if not isinstance(dest_dir, str) or not dest_dir.startswith("/") or "\n" in dest_dir or "\0" in dest_dir:
        raise BadRequest("args: dest_dir (an absolute path) is required")
    filename = _safe_filename(args.get("filename") or upload_filename or "")
    permissions = str(args.get("permissions", "644"))
    if not _PERMISSIONS.fullmatch(permissions):
        raise BadRequest("args: permissions must be octal, e.g. 644")
    return {"dest_dir": dest_dir, "filename": filename, "permissions": permissions}


def _member(name: str, size: int, mtime: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uname, info.gname = size, mtime, mode, "root", "root"
    return info


def _tar_bytes(members: list[tuple[str, bytes]], mtime: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members:
            tf.addfile(_member(name, len(data), mtime), io.BytesIO(data))
    return out.getvalue()


def _outer_member(name: str, size: int, mtime: int) -> bytes:
    return _member(name, size, mtime, 0o600).tobuf(format=tarfile.GNU_FORMAT)


def _pad(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def build_single_file(*, name: str, device_types: list[str], args: dict, source_chunks: Iterator[bytes],
                      temp_dir: str, max_size: int, on_too_large: Callable[[], None]) -> Iterator[bytes]:
    """Spool the file (anonymous temp files, gone even after a crash), then yield the artifact's bytes."""
    mtime = int(time.time())
    raw = tempfile.TemporaryFile(dir=temp_dir)
    data = tempfile.TemporaryFile(dir=temp_dir)
    try:
        digest, size = hashlib.sha256(), 0
        for chunk in source_chunks:
            size += len(chunk)
            if size > max_size:
                on_too_large()
            digest.update(chunk)
            raw.write(chunk)
        raw.seek(0)
        small = {"dest_dir": args["dest_dir"].encode() + b"\n", "filename": args["filename"].encode() + b"\n",
                 "permissions": args["permissions"].encode() + b"\n"}
        with gzip.GzipFile(fileobj=data, mode="wb", mtime=mtime) as gz:
            with tarfile.open(fileobj=gz, mode="w|", format=tarfile.GNU_FORMAT) as tf:
                for fname, content in small.items():
                    tf.addfile(_member(fname, len(content), mtime), io.BytesIO(content))
                tf.addfile(_member(args["filename"], size, mtime), raw)
        raw.close()
        data_size = data.tell()
        data.seek(0)
        version = json.dumps({"format": "mender", "version": 3}).encode()
        header_info = json.dumps({"payloads": [{"type": UPDATE_TYPE}], "artifact_provides": {"artifact_name": name},
                                  "artifact_depends": {"device_type": device_types}}).encode()
        type_info = json.dumps({"type": UPDATE_TYPE,
                                "artifact_provides": {f"rootfs-image.{UPDATE_TYPE}.version": name},
                                "clears_artifact_provides": [f"rootfs-image.{UPDATE_TYPE}.*"]}).encode()
        header = gzip.compress(_tar_bytes([("header-info", header_info), ("headers/0000/type-info", type_info)],
                                          mtime), mtime=mtime)
        sums = {f"data/0000/{k}": hashlib.sha256(v).hexdigest() for k, v in small.items()}
        sums[f"data/0000/{args['filename']}"] = digest.hexdigest()
        sums["header.tar.gz"] = hashlib.sha256(header).hexdigest()
        sums["version"] = hashlib.sha256(version).hexdigest()
        manifest = "".join(f"{v}  {k}\n" for k, v in sorted(sums.items())).encode()
        for member, content in (("version", version), ("manifest", manifest), ("header.tar.gz", header)):
            yield _outer_member(member, len(content), mtime) + content + _pad(len(content))
        yield _outer_member("data/0000.tar.gz", data_size, mtime)
        yield from file_chunks(data, CHUNK)
        yield _pad(data_size) + b"\0" * (2 * tarfile.BLOCKSIZE)
    finally:
        raw.close()
        data.close()


def temp_dir_for(data_dir: str) -> str:
    path = os.path.join(data_dir, "tmp")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path
