"""Test tools: the real `mender-artifact` (build and read artifacts) and a Python artifact crafter
for malformed and hostile inputs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import re
import subprocess
import tarfile

import zstandard
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

MENDER_ARTIFACT = "mender-artifact"


class MenderArtifact:
    """Builds artifacts with the real mender-artifact 3.9 into a directory."""

    def __init__(self, workdir: str):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self._n = 0

    def _path(self, stem: str) -> str:
        self._n += 1
        return os.path.join(self.dir, f"{stem}-{self._n}.mender")

    def _run(self, args: list[str]) -> None:
        r = subprocess.run([MENDER_ARTIFACT, *args], cwd=self.dir, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr + r.stdout

    def _write_file(self, name: str, data: bytes) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def single_file(self, name: str, device_types=("dt1",), content: bytes = b"hello\n", provides=(),
                    depends=(), key: str | None = None, compression: str | None = None,
                    software_name: str | None = None, depends_on_artifact=()) -> str:
        sub = os.path.join(self.dir, f"sf{self._n}")
        os.makedirs(sub, exist_ok=True)
        files = {"dest_dir": b"/etc/app\n", "filename": b"app.conf\n", "permissions": b"644\n", "app.conf": content}
        for fname, data in files.items():
            with open(os.path.join(sub, fname), "wb") as f:
                f.write(data)
        out = self._path(name.replace("/", "_"))
        args = ["write", "module-image", "-T", "single-file", "-n", name, "-o", out]
        for dt in device_types:
            args += ["-t", dt]
        for fname in files:
            args += ["-f", os.path.join(sub, fname)]
        for p in provides:
            args += ["--provides", p]
        for d in depends:
            args += ["--depends", d]
        for a in depends_on_artifact:
            args += ["-N", a]
        if software_name:
            args += ["--software-name", software_name]
        if compression:
            args += ["--compression", compression]
        if key:
            args += ["-k", key]
        self._run(args)
        return out

    def directory(self, name: str, device_types=("dt1",), key: str | None = None) -> str:
        tree = os.path.join(self.dir, f"tree{self._n}")
        os.makedirs(os.path.join(tree, "sub"), exist_ok=True)
        for rel, data in (("a.txt", b"alpha\n"), ("sub/b.bin", os.urandom(3000))):
            with open(os.path.join(tree, rel), "wb") as f:
                f.write(data)
        update_tar = os.path.join(self.dir, f"update{self._n}.tar")
        with tarfile.open(update_tar, "w") as tf:
            tf.add(tree, arcname=".")
        dest = self._write_file(f"dest_dir{self._n}", b"/opt/app\n")
        # the module reads files named exactly update.tar and dest_dir
        d = os.path.join(self.dir, f"dir{self._n}")
        os.makedirs(d, exist_ok=True)
        os.replace(update_tar, os.path.join(d, "update.tar"))
        os.replace(dest, os.path.join(d, "dest_dir"))
        out = self._path(name)
        args = ["write", "module-image", "-T", "directory", "-n", name, "-o", out,
                "-f", os.path.join(d, "update.tar"), "-f", os.path.join(d, "dest_dir")]
        for dt in device_types:
            args += ["-t", dt]
        if key:
            args += ["-k", key]
        self._run(args)
        return out

    def rootfs(self, name: str, device_types=("dt1",), version: int = 3, size: int = 20000,
               compression: str | None = None, image_name: str | None = None) -> str:
        image = self._write_file(image_name or f"rootfs{self._n}.ext4", os.urandom(size))
        out = self._path(name)
        args = ["write", "rootfs-image", "-v", str(version), "-n", name, "-f", image, "-o", out]
        for dt in device_types:
            args += ["-t", dt]
        if compression:
            args += ["--compression", compression]
        self._run(args)
        return out

    def bootstrap(self, name: str, device_types=("dt1",)) -> str:
        out = self._path(name)
        args = ["write", "bootstrap-artifact", "-n", name, "-o", out]
        for dt in device_types:
            args += ["-t", dt]
        self._run(args)
        return out

    def read(self, path: str) -> dict:
        r = subprocess.run([MENDER_ARTIFACT, "read", "--no-progress", path], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        return parse_read_output(r.stdout)


def parse_read_output(text: str) -> dict:
    """The metadata `mender-artifact read` prints, as a dict comparable with ours."""
    out: dict = {"updates": []}
    lines = text.splitlines()
    section = None
    update = None
    for line in lines:
        stripped = line.strip()
        if update is None and (m := re.match(r"^\s+Name: (.*)$", line)):
            out["name"] = m.group(1)
        elif stripped.startswith("Version:") and update is None:
            out["version"] = int(stripped.split(":", 1)[1])
        elif stripped.startswith("Signature:"):
            out["signed"] = "no signature" not in stripped
        elif stripped.startswith("Depends on one of artifact(s):"):
            out["depends_artifacts"] = re.search(r"\[(.*)\]", stripped).group(1).split()
        elif stripped.startswith("Compatible devices:"):
            out["device_types"] = re.search(r"'\[(.*)\]'", stripped).group(1).split()
        elif re.match(r"^\s+\d+:$", line):
            update = {"provides": {}, "depends": {}, "clears": [], "files": [], "type": None}
            out["updates"].append(update)
        elif update is not None and stripped.startswith("Type:"):
            t = stripped.split(":", 1)[1].strip()
            update["type"] = None if t == "Empty type" else t
        elif update is not None and stripped.startswith(("Provides:", "Depends:", "Metadata:", "Files:")):
            section = stripped.split(":")[0]
        elif update is not None and stripped.startswith("Clears Provides:"):
            update["clears"] = json.loads(stripped.split(":", 1)[1])
            section = None
        elif update is not None and section in ("Provides", "Depends") and line.startswith("\t"):
            k, v = stripped.split(": ", 1)
            update["provides" if section == "Provides" else "depends"][k] = v
        elif update is not None and section == "Files":
            if stripped.startswith("name:"):
                update["files"].append({"name": stripped.split(":", 1)[1].strip()})
            elif stripped.startswith("size:"):
                update["files"][-1]["size"] = int(stripped.split(":", 1)[1])
            elif stripped.startswith("checksum:"):
                update["files"][-1]["checksum"] = stripped.split(":", 1)[1].strip()
    return out


def rsa_key_file(path: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(path, "wb") as f:  # PKCS#1, as mender-artifact wants
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return path


def ec_key_file(path: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    with open(path, "wb") as f:  # SEC1
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return path


# --------------------------------------------------------------------------- crafting in Python

def compress(data: bytes, kind: str) -> bytes:
    return {"gz": lambda d: gzip.compress(d), "xz": lambda d: lzma.compress(d),
            "zst": lambda d: zstandard.ZstdCompressor().compress(d), "": lambda d: d}[kind](data)


def tar_bytes(members: list, fmt=tarfile.GNU_FORMAT) -> bytes:
    """members: (name, bytes) or TarInfo-with-data tuples (info, bytes|None)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for name, data in members:
            if isinstance(name, tarfile.TarInfo):
                tf.addfile(name, io.BytesIO(data) if data is not None else None)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 1700000000
                tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def craft(name: str = "crafted", device_types=("dt1",), files=None, compression: str = "gz",
          header_info: dict | None = None, type_info: dict | None = None, extra_outer=(),
          manifest_override: bytes | None = None, drop_from_manifest=(), corrupt_manifest=(),
          data_members=None, header_members=None, version: dict | None = None, signed: bool = False,
          header_name: str | None = None, data_override: bytes | None = None,
          digests: dict[str, str] | None = None) -> bytes:
    """A v3 artifact built by hand; every knob makes one thing wrong. `data_override`: the
    (compressed) payload member as given (the manifest still lists `files`, with their `digests`
    where given)."""
    files = files if files is not None else [("app.conf", b"hello\n")]
    version_b = json.dumps(version or {"format": "mender", "version": 3}).encode()
    hi = header_info or {"payloads": [{"type": "single-file"}], "artifact_provides": {"artifact_name": name},
                         "artifact_depends": {"device_type": list(device_types)}}
    ti = type_info or {"type": "single-file"}
    hmembers = header_members if header_members is not None else [
        ("header-info", json.dumps(hi).encode()), ("headers/0000/type-info", json.dumps(ti).encode())]
    suffix = f".{compression}" if compression else ""
    header = compress(tar_bytes(hmembers), compression)
    hname = header_name or f"header.tar{suffix}"
    data = data_override if data_override is not None else \
        compress(tar_bytes(data_members if data_members is not None else files), compression)
    sums = {f"data/0000/{n}": (digests or {}).get(n) or hashlib.sha256(d).hexdigest() for n, d in files}
    sums[hname] = hashlib.sha256(header).hexdigest()
    sums["version"] = hashlib.sha256(version_b).hexdigest()
    for p in drop_from_manifest:
        sums.pop(p, None)
    for p in corrupt_manifest:
        sums[p] = "0" * 64
    manifest = manifest_override if manifest_override is not None else \
        "".join(f"{v}  {k}\n" for k, v in sorted(sums.items())).encode()
    outer = [("version", version_b), ("manifest", manifest)]
    if signed:
        outer.append(("manifest.sig", b"c2lnbmF0dXJl"))
    outer += [(hname, header), (f"data/0000.tar{suffix}", data), *extra_outer]
    return tar_bytes(outer)


def raw_header(name: bytes = b"file", size: int = 0, typeflag: bytes = b"0", *, magic: bytes = b"ustar\x0000",
               prefix: bytes = b"", size_field: bytes | None = None, mtime: int = 1700000000) -> bytes:
    """One 512-byte tar header block with any size and type, its checksum right: what an attacker
    (or an unusual writer) puts in front of data, byte for byte."""
    block = bytearray(512)
    block[0:len(name[:100])] = name[:100]
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = size_field if size_field is not None else b"%011o\0" % size
    block[136:148] = b"%011o\0" % mtime
    block[156:157] = typeflag
    block[257:265] = magic
    block[345:345 + len(prefix)] = prefix
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def raw_entry(name: bytes, data: bytes, typeflag: bytes = b"0", **kw) -> bytes:
    """A header and its data, padded to whole blocks."""
    return raw_header(name, len(data), typeflag, **kw) + data + b"\0" * (-len(data) % 512)


def pax_record(key: bytes, value: bytes) -> bytes:
    """One pax record: "<length> key=value\\n", the length counting itself."""
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


END_OF_ARCHIVE = b"\0" * 1024
