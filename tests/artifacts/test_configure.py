"""The generated `mender-configure` artifact of a configuration deployment: read by the real
mender-artifact 3.9 and by the server's own reader, the same bytes for the same deployment, any
byte range of them on demand."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

from deployments.artifacts.configure import ConfigurationArtifact
from deployments.artifacts.parser import parse_artifact
from deviceconfig.model import MAX_ATTRIBUTES, MAX_KEY_LENGTH, MAX_VALUE_LENGTH


def _artifact(config: dict, name: str = "configuration-0f9d", device_type: str = "raspberrypi4",
              mtime: int = 1_700_000_000) -> ConfigurationArtifact:
    return ConfigurationArtifact(name=name, device_type=device_type, configuration=config, mtime=mtime)


def _mender_artifact(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["mender-artifact", *args], capture_output=True, text=True, timeout=60)


def test_the_real_mender_artifact_reads_it(tmp_path):
    config = {"timezone": "Europe/Oslo", "motd": "line 1\nline \"2\"", "ключ": "значение", "a.b": ""}
    art = _artifact(config, device_type="pi 4 \"rev b\"")
    path = tmp_path / "c.mender"
    path.write_bytes(b"".join(art.chunks()))
    assert path.stat().st_size == art.size
    r = _mender_artifact(["validate", str(path)])
    assert r.returncode == 0, r.stdout + r.stderr
    r = _mender_artifact(["read", str(path)])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Name: configuration-0f9d" in out and "Version: 3" in out
    assert "Compatible devices: '[pi 4 \"rev b\"]'" in out
    assert "Type:   mender-configure" in out
    assert "data-partition.mender-configure.version: configuration-0f9d" in out
    assert 'Clears Provides: ["data-partition.mender-configure.*"]' in out
    assert "Files: None" in out
    # the meta-data is the configuration, exactly
    body = out.split("Metadata:", 1)[1].split("Files:", 1)[0]
    assert json.loads(body) == config


def test_the_servers_reader_reads_it():
    config = {"k": "v"}
    meta = parse_artifact(io.BytesIO(b"".join(_artifact(config).chunks())))
    assert (meta.name, meta.version, meta.device_types, meta.update_types) == (
        "configuration-0f9d", 3, ["raspberrypi4"], ["mender-configure"])
    assert meta.updates[0]["meta_data"] == [config]
    assert meta.clears_provides == ["data-partition.mender-configure.*"]


def test_at_the_limits(tmp_path):
    config = {f"{i:0{MAX_KEY_LENGTH}d}"[:-1] + "€": "ü" * MAX_VALUE_LENGTH for i in range(MAX_ATTRIBUTES)}
    art = _artifact(config)
    path = tmp_path / "big.mender"
    path.write_bytes(b"".join(art.chunks()))
    r = _mender_artifact(["validate", str(path)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert parse_artifact(io.BytesIO(path.read_bytes())).updates[0]["meta_data"] == [config]


def test_empty_configuration():
    """An empty configuration is still written as `{}` (mender-artifact would leave the meta-data
    out, and the client would hand the module `null`)."""
    data = b"".join(_artifact({}).chunks())
    parse_artifact(io.BytesIO(data))
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        header = outer.extractfile("header.tar").read()
    with tarfile.open(fileobj=io.BytesIO(header)) as inner:
        assert inner.extractfile("headers/0000/meta-data").read() == b"{}"


def test_deterministic_and_ranges():
    config = {"b": "2", "a": "1"}
    one, two = _artifact(config), _artifact(dict(reversed(config.items())))
    data = b"".join(one.chunks())
    assert data == b"".join(two.chunks()) and one.etag == two.etag and one.size == two.size == len(data)
    for start, end in ((0, 1), (0, one.size), (511, 513), (1000, 4000), (one.size - 1, None), (one.size, None),
                       (5, 5), (0, one.size + 100)):
        assert b"".join(one.chunks(start, end)) == data[start:end]
    # anything the bytes are made of changes them, and the validator
    others = [_artifact({"b": "2", "a": "x"}), _artifact(config, name="configuration-other"),
              _artifact(config, device_type="other"), _artifact(config, mtime=1_700_000_001)]
    for other in others:
        assert b"".join(other.chunks()) != data and other.etag != one.etag
