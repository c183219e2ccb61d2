"""The .mender reader against artifacts built by the real mender-artifact, and against hostile input."""

from __future__ import annotations

import io
import json
import os

import pytest

from deployments.artifacts.parser import InvalidArtifact, parse_artifact
from tests.artifacts.tools import compress, craft, tar_bytes


def parse_file(path):
    with open(path, "rb") as f:
        return parse_artifact(f)


def assert_same_as_mender_artifact(meta, read):
    """Our metadata equals what `mender-artifact read` prints."""
    assert meta.name == read["name"]
    assert meta.version == read["version"]
    assert meta.signed == read["signed"]
    assert meta.device_types == read["device_types"]
    assert len(meta.updates) == len(read["updates"])
    expected_provides = {"artifact_name": read["name"]}
    expected_depends = {"device_type": read["device_types"]}
    if read.get("depends_artifacts"):
        expected_depends["artifact_name"] = read["depends_artifacts"]
    for ours, theirs in zip(meta.updates, read["updates"]):
        assert ours["type_info"]["type"] == theirs["type"]
        assert [(f["name"], f["size"], f["checksum"]) for f in ours["files"]] == \
               [(f["name"], f["size"], f["checksum"]) for f in theirs["files"]]
        expected_provides.update(theirs["provides"])
        expected_depends.update({k: [v] for k, v in theirs["depends"].items()})
        for c in theirs["clears"]:
            assert c in meta.clears_provides
    assert meta.provides == expected_provides
    assert meta.depends == expected_depends


def test_single_file_with_provides_and_depends(ma):
    path = ma.single_file("app-1.0", device_types=("dt1", "dt2"), provides=["foo:bar"],
                          depends=["rootfs-image.checksum:abc"], depends_on_artifact=["app-0.9"])
    meta = parse_file(path)
    assert_same_as_mender_artifact(meta, ma.read(path))
    assert meta.provides["foo"] == "bar"
    assert meta.depends == {"device_type": ["dt1", "dt2"], "artifact_name": ["app-0.9"],
                            "rootfs-image.checksum": ["abc"]}
    assert meta.clears_provides == ["rootfs-image.single-file.*"]
    assert [f["name"] for f in meta.updates[0]["files"]] == ["dest_dir", "filename", "permissions", "app.conf"]
    assert meta.update_types == ["single-file"]


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_signed_artifacts_are_marked_signed(ma, signing_keys, kind):
    path = ma.single_file(f"signed-{kind}", key=signing_keys[kind])
    meta = parse_file(path)
    assert meta.signed is True
    assert_same_as_mender_artifact(meta, ma.read(path))


def test_directory_update(ma):
    path = ma.directory("dir-1", device_types=("rpi4",))
    meta = parse_file(path)
    assert_same_as_mender_artifact(meta, ma.read(path))
    assert meta.update_types == ["directory"]


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("compression", ["gzip", "lzma", "none"])
def test_rootfs_versions_and_compressions(ma, version, compression):
    path = ma.rootfs(f"rootfs-v{version}", version=version, compression=compression)
    meta = parse_file(path)
    assert_same_as_mender_artifact(meta, ma.read(path))
    assert meta.version == version


@pytest.mark.parametrize("version", [2, 3])
def test_long_payload_names_the_real_tool_writes_as_pax(ma, version):
    name = "r" * 150 + ".ext4"  # longer than ustar's 100 bytes: Go's tar writer adds a pax path record
    path = ma.rootfs("long-name-ü", version=version, image_name=name)
    meta = parse_file(path)
    assert_same_as_mender_artifact(meta, ma.read(path))
    assert meta.updates[0]["files"][0]["name"] == name and meta.name == "long-name-ü"


def test_software_name_and_signed_directory(ma, signing_keys):
    path = ma.single_file("sw", software_name="myapp")
    assert_same_as_mender_artifact(parse_file(path), ma.read(path))
    path = ma.directory("dir-signed", key=signing_keys["rsa"])
    assert parse_file(path).signed


def test_bootstrap_artifact_has_an_empty_payload(ma):
    path = ma.bootstrap("boot")
    meta = parse_file(path)
    assert_same_as_mender_artifact(meta, ma.read(path))
    assert meta.updates[0]["type_info"] == {"type": None} and meta.update_types == []


@pytest.mark.parametrize("compression", ["zst", "xz", "gz", ""])
def test_crafted_compressions_including_zstd(compression):
    meta = parse_artifact(io.BytesIO(craft("z", compression=compression)))
    assert meta.name == "z" and meta.updates[0]["files"][0]["name"] == "app.conf"


def test_meta_data_is_reported():
    data = craft("m", header_members=[
        ("header-info", b'{"payloads":[{"type":"t"}],"artifact_provides":{"artifact_name":"m"},'
                        b'"artifact_depends":{"device_type":["d"]}}'),
        ("headers/0000/type-info", b'{"type":"t"}'), ("headers/0000/meta-data", b'{"k":"v"}')])
    meta = parse_artifact(io.BytesIO(data))
    assert meta.updates[0]["metadata"] == {"k": "v"} and meta.updates[0]["meta_data"] == [{"k": "v"}]


# --------------------------------------------------------------------------- rejected input

def _bad(data: bytes, reason: str):
    with pytest.raises(InvalidArtifact) as exc:
        parse_artifact(io.BytesIO(data))
    assert reason in exc.value.message, exc.value.message


def test_zero_bytes_and_not_a_tar():
    _bad(b"", "invalid artifact")
    _bad(b"this is not a tar archive" * 100, "invalid artifact")
    _bad(os.urandom(10240), "invalid artifact")


def test_truncated_everywhere(ma):
    with open(ma.single_file("trunc"), "rb") as f:
        good = f.read()
    for cut in (100, 600, 1500, len(good) // 2, len(good) - 1100):
        with pytest.raises(InvalidArtifact):
            parse_artifact(io.BytesIO(good[:cut]))


def test_corrupted_payload_fails_its_checksum(ma):
    with open(ma.rootfs("corrupt", compression="none"), "rb") as f:
        data = bytearray(f.read())
    data[-5000] ^= 0xFF  # inside the uncompressed payload file
    _bad(bytes(data), "checksum mismatch")


def test_manifest_rules():
    _bad(craft(corrupt_manifest=["data/0000/app.conf"]), "checksum mismatch for 'data/0000/app.conf'")
    _bad(craft(corrupt_manifest=["header.tar.gz"]), "checksum mismatch for 'header.tar.gz'")
    _bad(craft(corrupt_manifest=["version"]), "checksum mismatch for 'version'")
    _bad(craft(drop_from_manifest=["data/0000/app.conf"]), "not listed in the manifest")
    _bad(craft(manifest_override=b"not a manifest\n"), "malformed manifest line")
    ghost = ("0" * 64 + "  data/0000/ghost\n").encode()
    _bad(_with_manifest_line(craft(), ghost), "does not contain")


def _with_manifest_line(artifact: bytes, line: bytes) -> bytes:
    import tarfile
    members = []
    with tarfile.open(fileobj=io.BytesIO(artifact)) as tf:
        for m in tf.getmembers():
            data = tf.extractfile(m).read()
            if m.name == "manifest":
                data += line
            members.append((m.name, data))
    return tar_bytes(members)


def test_order_and_unknown_members():
    _bad(tar_bytes([("manifest", b""), ("version", b"{}")]), "the first file must be 'version'")
    _bad(craft(extra_outer=[("evil.sh", b"rm -rf /")]), "unexpected file 'evil.sh'")
    _bad(craft(extra_outer=[("../../etc/passwd", b"x")]), "unexpected file")
    _bad(craft(version={"format": "mender", "version": 1}), "unsupported artifact version 1")
    _bad(craft(version={"format": "other", "version": 3}), "format must be 'mender'")


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/b", "..", "a\\b", "\uff0e\uff0e/x", "x" * 300])
def test_payload_file_names_that_are_refused(name):
    _bad(craft(files=[(name, b"x")]), "is not allowed")


def test_links_and_devices_are_refused():
    import tarfile
    link = tarfile.TarInfo("app.conf")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    _bad(craft(files=[("app.conf", b"")], data_members=[(link, None)]), "not a regular file")
    outer_link = tarfile.TarInfo("version")
    outer_link.type, outer_link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _bad(tar_bytes([(outer_link, None)]), "not a regular file")


def test_oversized_members():
    _bad(tar_bytes([("version", b" " * (1024 * 1024 + 1))]), "version is larger than")
    big = b" " * (2 * 1024 * 1024)
    _bad(craft(header_members=[("header-info", big)]), "larger than")
    # a decompression bomb in the header: 17 MiB of zeros compress to a few KiB
    bomb = [("header-info", b'{"payloads":[{"type":"t"}],"artifact_provides":{"artifact_name":"b"},'
                            b'"artifact_depends":{"device_type":["d"]}}')] + \
           [(f"scripts/ArtifactInstall_Enter_{i:02d}", b"\0" * (1024 * 1024)) for i in range(17)]
    _bad(craft(header_members=bomb), "larger than")


def test_header_rules():
    _bad(craft(header_members=[("headers/0000/type-info", b"{}")]), "the first file must be 'header-info'")
    _bad(craft(header_info={"payloads": [{"type": "t"}], "artifact_provides": {}, "artifact_depends": {}}),
         "artifact_name is missing")
    _bad(craft(header_info={"payloads": [], "artifact_provides": {"artifact_name": "a"},
                            "artifact_depends": {"device_type": ["d"]}}), "payloads")
    _bad(craft(header_info={"payloads": [{"type": "t"}], "artifact_provides": {"artifact_name": "a"},
                            "artifact_depends": {"device_type": []}}), "device_type")
    _bad(craft(header_members=[("header-info", b"[1, 2]")]), "must be a JSON object")
    _bad(craft(header_members=[("header-info", b"{not json")]), "not valid JSON")
    _bad(craft(type_info={"type": "other"}), "differs from header-info")
    _bad(craft(type_info={"type": "single-file", "artifact_provides": {"artifact_name": "x"}}), "defined twice")
    _bad(craft(header_name="header.tar.bz2"), "unexpected file")
    _bad(craft(extra_outer=[("data/0001.tar\n", b"")]), "unexpected file")
    _bad(craft(extra_outer=[("data/\u0661\u0661\u0661\u0661.tar", b"")]), "unexpected file")  # digits are ASCII


def test_garbage_after_the_archive_is_refused_but_zero_padding_is_not():
    from deployments.artifacts.parser import drain_tail
    drain_tail(b"\0" * 4096)
    with pytest.raises(InvalidArtifact):
        drain_tail(b"\0\0garbage")


def test_compressed_garbage_in_header():
    data = craft()
    bad = data.replace(compress(b"", "") or b"\x1f\x8b", b"\x1f\x8c", 1)
    with pytest.raises(InvalidArtifact):
        parse_artifact(io.BytesIO(bad))


def test_single_bit_flips_never_let_altered_payload_through(ma, signing_keys):
    """S9: a flipped bit anywhere is either refused, or lands where it cannot change what a device
    installs (signature bytes, tar padding, compressed-stream headers); the payload files the server
    records are then exactly the original ones. Never any error but InvalidArtifact."""
    import random
    with open(ma.single_file("flip", key=signing_keys["rsa"], content=os.urandom(3000)), "rb") as f:
        good = f.read()
    original = parse_artifact(io.BytesIO(good))
    rng = random.Random(1234)
    refused = 0
    for _ in range(400):
        data = bytearray(good)
        offset = rng.randrange(len(data))
        data[offset] ^= 1 << rng.randrange(8)
        try:
            meta = parse_artifact(io.BytesIO(bytes(data)))
        except InvalidArtifact:
            refused += 1
            continue
        assert meta.updates == original.updates and meta.name == original.name
        assert meta.provides == original.provides and meta.depends == original.depends
    assert refused > 200


def _nested(depth: int) -> str:
    """A JSON array nesting `depth` levels."""
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("member", ["header-info", "headers/0000/type-info", "headers/0000/meta-data"])
def test_header_json_nests_at_most_64_levels(member):
    """json.loads took ~966 levels at the parser's stack depth; stored so, the metadata then failed
    deeper readers (creating a deployment of such an artifact: 400 "nested too deeply")."""
    def artifact(depth: int) -> bytes:
        docs = {"header-info": {"payloads": [{"type": "single-file"}], "artifact_provides": {"artifact_name": "n"},
                                "artifact_depends": {"device_type": ["dt1"]}},
                "headers/0000/type-info": {"type": "single-file"},
                "headers/0000/meta-data": {}}
        text = {name: json.dumps(doc) for name, doc in docs.items()}
        # the document itself is level 1: a member nesting `depth - 1` levels below it
        text[member] = text[member][:-1] + (", " if docs[member] else "") + f'"deep": {_nested(depth - 1)}}}'
        return craft(name="n", header_members=[(name, doc.encode()) for name, doc in text.items()])

    meta = parse_artifact(io.BytesIO(artifact(64)))
    assert meta.name == "n"
    for depth in (65, 900):
        _bad(artifact(depth), f"{member} nests deeper than 64 levels")
